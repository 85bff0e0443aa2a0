"""SAC with Hindsight Experience Replay (Stable-Baselines3's HerReplayBuffer).

HER trains on the goal-conditioned form of a task (obs_mode "goal": observation, achieved_goal,
desired_goal), whatever env.obs_mode says, and relabels goals with the env's compute_reward, which
the reward version's goal_reward provides.
"""
from algos import sb3
from envs.settings import Field, count

PARAMS = {**sb3.off_policy_params(), "n_sampled_goal": count(doc="relabelled goals per real transition"),
          "goal_selection_strategy": Field("str", choices=("future", "final", "episode"),
                                           doc="where relabelled goals come from")}
NEEDS_GOALS = True      # only goal-conditioned tasks with a goal reward (pipeline/dag/params.py checks)


def env_settings(env_params: dict, hp: dict) -> dict:
    return {**env_params, "obs_mode": "goal"}


def make_trainer(vec_env, hp, seed, threads, log_dir):
    from stable_baselines3 import SAC
    from stable_baselines3.her import HerReplayBuffer
    vec = sb3.make_vec(vec_env, hp)
    args = sb3.ctor_args(hp)
    her = {"n_sampled_goal": args.pop("n_sampled_goal"), "goal_selection_strategy": args.pop("goal_selection_strategy")}
    model = SAC("MultiInputPolicy", vec, seed=seed, verbose=0, device="cpu", replay_buffer_class=HerReplayBuffer,
                replay_buffer_kwargs=her, policy_kwargs={"net_arch": sb3.net(hp)}, **args)
    return sb3.SB3Trainer(model, SAC, vec, hp["total_timesteps"], replay=True, log_dir=log_dir)


def load_policy(path, deterministic=True, step=0):
    from stable_baselines3 import SAC
    return sb3.load_policy(SAC, path, deterministic, replay=True)


read_weights = sb3.read_weights
