"""Simulation tasks for the SO-101 arm: the small API every stage, algorithm and backend uses.

    import envs
    vec = envs.make_vec_env("lift", reward="v19", num_envs=16, seed=0)      # gymnasium VectorEnv
    sb3_env = envs.SB3VecEnv(vec)                                           # what Stable-Baselines3 trains on
    env = envs.make_env("lift", reward="v19", render_size=(240, 320))      # one clean env, for videos
    envs.TASKS, envs.rewards.available("lift"), envs.run_sanity("lift")   # task registry: name -> Entry
    envs.tasks.get_task("pick_place").goal_conditioned                       # what a task declares (Task)

Env settings: keyword arguments of make_vec_env / make_env, each declared once, with its default and
doc, in envs/settings.py (ENV), plus backend (envs/backends/); envs/tasks/base.py's TaskConfig holds
and checks them. make_vec_env also takes residual= (envs/residual.py) and, with reverse_curriculum,
start_states= (envs/reverse.py).

Vector env semantics (envs/vector.py):
- Gymnasium 1.x VectorEnv with autoreset mode SAME_STEP: when env i finishes, the step that
  finished it returns env i's *reset* observation; the last observation of the finished episode
  is in infos["final_obs"][i] and its statistics in infos["final_info"] (masked with "_final_info").
- Resetting env i never touches env j. Episode statistics live in the env, so an episode that
  spans many rollouts or training-loop calls is reported whole.
- final_info of every finished episode: return, episode_len, success_once, success_at_end,
  terminated, the task's episode_metrics (lift: max_cube_z, grasp_steps) and one
  "reward/<component>" sum per reward component.
"""
import importlib

import gymnasium

from envs.tasks import TASKS

# Public names -> the module defining each, imported on first use (PEP 562), so that importing a task
# or reward module does not import Stable-Baselines3, torch or the physics.
_PUBLIC = {"make_vec_env": "envs.vector", "BatchedEnv": "envs.vector", "make_env": "envs.single",
           "SingleEnv": "envs.single", "GoalEnv": "envs.single", "SB3VecEnv": "envs.sb3",
           "run_sanity": "envs.sanity", "TaskConfig": "envs.tasks.base"}
__all__ = ["TASKS", "TaskConfig", "BatchedEnv", "SingleEnv", "GoalEnv", "SB3VecEnv", "make_vec_env", "make_env",
           "run_sanity", "rewards"]


def __getattr__(name):
    if name == "rewards":
        return importlib.import_module("envs.rewards")
    if name in _PUBLIC:
        return getattr(importlib.import_module(_PUBLIC[name]), name)
    raise AttributeError(f"module 'envs' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__))


# gymnasium.make("SO101Lift-v0", reward="v11", ...): each task's ids from its registry line; the
# reward defaults to the task's default for that obs_mode (Task.default_reward_for).
# make returns the env itself, without Gymnasium's OrderEnforcing and PassiveEnvChecker wrappers: the
# env refuses a step before reset and checks actions itself, and a wrapper hides a goal env's
# compute_reward from whoever holds it (Gymnasium 1.x wrappers forward no attributes), which
# Stable-Baselines3's check_env and users call on what make returns.
for _task, _entry in TASKS.items():
    for _id, _mode in _entry.gym_ids.items():
        if _id not in gymnasium.registry:
            gymnasium.register(id=_id, entry_point="envs.single:make_env", kwargs={"task": _task, "obs_mode": _mode},
                               order_enforce=False, disable_env_checker=True)
