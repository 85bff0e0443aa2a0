"""Simulation tasks for the SO-101 arm: the small API every stage, algorithm and backend uses.

    import envs
    vec = envs.make_vec_env("lift", reward="v19", num_envs=16, seed=0)      # gymnasium VectorEnv
    sb3_env = envs.SB3VecEnv(vec)                                           # what Stable-Baselines3 trains on
    env = envs.make_env("lift", reward="v19", render_size=(240, 320))      # one clean env, for videos
    envs.TASKS, envs.rewards.available("lift"), envs.run_sanity("lift")

Env settings (keyword arguments of make_vec_env / make_env, all with documented defaults in
envs/tasks/base.py TaskConfig): max_episode_steps, action_scale, control_hz, lift_height,
hold_steps, curriculum_stage, domain_randomization, obs_mode ("state" | "pixels" |
"state+pixels" | "goal"), image_size, frame_stack.

Vector env semantics (envs/vector.py):
- Gymnasium 1.x VectorEnv with autoreset mode SAME_STEP: when env i finishes, the step that
  finished it returns env i's *reset* observation; the last observation of the finished episode
  is in infos["final_obs"][i] and its statistics in infos["final_info"] (masked with "_final_info").
- Resetting env i never touches env j. Episode statistics live in the env, so an episode that
  spans many rollouts or training-loop calls is reported whole.
- final_info of every finished episode: return, episode_len, success_once, success_at_end,
  max_cube_z, grasp_steps and one "reward/<component>" sum per reward component.
"""
import gymnasium

from envs import rewards
from envs.tasks import TASKS, TaskConfig
from envs.vector import BatchedEnv, make_vec_env
from envs.single import GoalEnv, SingleEnv, make_env
from envs.sb3 import SB3VecEnv
from envs.sanity import run_sanity

__all__ = ["TASKS", "TaskConfig", "BatchedEnv", "SingleEnv", "GoalEnv", "SB3VecEnv", "make_vec_env", "make_env",
           "run_sanity", "rewards"]

# gymnasium.make("SO101Lift-v0", reward="v19", ...) for the single env.
for _id, _task, _mode in [("SO101Lift-v0", "lift", "state"),
                          ("SO101PickPlace-v0", "pick_place", "state"),
                          ("SO101PickPlaceGoal-v0", "pick_place", "goal")]:
    if _id not in gymnasium.registry:
        gymnasium.register(id=_id, entry_point="envs.single:make_env",
                           kwargs={"task": _task, "obs_mode": _mode})
