"""Stable-Baselines3 algorithms behind one small interface: build(name, env, hp, seed), load(name, path).

`hp` is the algorithm's block of params.yaml, with SB3's own argument names, plus:
  total_timesteps, num_envs   used by the training loop, not the constructor
  net_width, net_depth        the MLP: [net_width] * net_depth for actor and critic
  log_std_init                (PPO) initial log std of the Gaussian policy
  activation                  (PPO) hidden-layer activation: tanh | relu | elu
  target_kl                   (PPO) SB3's target_kl, with 0 for None (no early stop)
  reward_scale                (PPO) factor on the rewards PPO learns from (SB3VecEnv; statistics unscaled)
HER is SAC with a HerReplayBuffer on the goal-conditioned env (obs_mode="goal"); the env's
compute_reward is the reward HER relabels with.
"""
from __future__ import annotations

import torch
from stable_baselines3 import PPO, SAC
from stable_baselines3.her import HerReplayBuffer

LOOP_KEYS = ("total_timesteps", "num_envs", "net_width", "net_depth", "log_std_init", "activation", "reward_scale")
ACTIVATIONS = {"tanh": torch.nn.Tanh, "relu": torch.nn.ReLU, "elu": torch.nn.ELU}


def _net(hp: dict) -> list[int]:
    return [hp["net_width"]] * hp["net_depth"]


def _ctor_args(hp: dict) -> dict:
    return {k: v for k, v in hp.items() if k not in LOOP_KEYS}


def build_ppo(env, hp, seed, tensorboard_log=None):
    args = _ctor_args(hp)
    args["target_kl"] = args.get("target_kl") or None
    return PPO("MlpPolicy", env, seed=seed, tensorboard_log=tensorboard_log, verbose=0, device="cpu",
               policy_kwargs={"net_arch": {"pi": _net(hp), "vf": _net(hp)}, "log_std_init": hp["log_std_init"],
                              "activation_fn": ACTIVATIONS[hp.get("activation", "tanh")]}, **args)


def build_sac(env, hp, seed, tensorboard_log=None):
    return SAC("MlpPolicy", env, seed=seed, tensorboard_log=tensorboard_log, verbose=0, device="cpu",
               policy_kwargs={"net_arch": _net(hp)}, **_ctor_args(hp))


def build_her(env, hp, seed, tensorboard_log=None):
    args = _ctor_args(hp)
    her = {"n_sampled_goal": args.pop("n_sampled_goal"),
           "goal_selection_strategy": args.pop("goal_selection_strategy")}
    return SAC("MultiInputPolicy", env, seed=seed, tensorboard_log=tensorboard_log, verbose=0, device="cpu",
               replay_buffer_class=HerReplayBuffer, replay_buffer_kwargs=her,
               policy_kwargs={"net_arch": _net(hp)}, **args)


# name -> (builder, SB3 class to load with, the env obs_mode it needs or None for params' obs_mode,
#          whether it keeps a replay buffer that a resumed run must restore)
ALGOS = {
    "ppo": (build_ppo, PPO, None, False),
    "sac": (build_sac, SAC, None, True),
    "her": (build_her, SAC, "goal", True),
}


def build(name: str, env, hp: dict, seed: int, tensorboard_log=None):
    if name not in ALGOS:
        raise ValueError(f"unknown algorithm {name!r}; valid: {', '.join(ALGOS)}")
    return ALGOS[name][0](env, hp, seed, tensorboard_log)


def obs_mode(name: str, env_params: dict) -> str:
    """The obs_mode the algorithm trains on: HER needs goal-conditioned observations."""
    return ALGOS[name][2] or env_params["obs_mode"]


def has_replay_buffer(name: str) -> bool:
    return ALGOS[name][3]


# Loading for inference (env=None): a one-slot plain replay buffer instead of the saved one, which
# would allocate buffer_size transitions and, for HER, demand an env to relabel goals with.
INFERENCE_ONLY = {"buffer_size": 1, "replay_buffer_class": None, "replay_buffer_kwargs": {}}


def load(name: str, path, env=None):
    """A saved model: with env to continue training, without it for evaluation and videos."""
    custom = INFERENCE_ONLY if env is None and has_replay_buffer(name) else None
    return ALGOS[name][1].load(str(path), env=env, device="cpu", custom_objects=custom)
