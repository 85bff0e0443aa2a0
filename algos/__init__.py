"""Learning algorithms behind one small interface.

algos.sb3    PPO, SAC and SAC+HER from Stable-Baselines3: build(name, env, hp, seed), load(name, path)
algos.drqv2  DrQ-v2, our own, for pixels: DrQV2Trainer, DrQV2Agent

What the evaluate and render stages need of any of them, here so that they have one code path:

    settings = env_settings(name, env_params, hp)   # the env the algorithm trains and is evaluated on
    policy = load_policy(name, checkpoint_path)     # policy.act(obs) -> action, for one env
    action = policy.act(obs)

Only the module of the algorithm asked for is imported, so an SB3 stage never loads DrQ-v2's code
(and the stage registry gives it no dependency on it) and the other way round.
"""
from __future__ import annotations

from typing import Protocol

import numpy as np

SB3 = ("ppo", "sac", "her")
# params.yaml drqv2 keys that drive the training loop rather than DrQV2Config.
DRQV2_LOOP_KEYS = ("total_timesteps", "num_envs")


class Policy(Protocol):
    def act(self, obs) -> np.ndarray:
        """The action for one observation of a single (non-vector) env."""


class SB3Policy:
    def __init__(self, model, deterministic: bool = True):
        self.model, self.deterministic = model, deterministic

    def act(self, obs) -> np.ndarray:
        action, _ = self.model.predict(obs, deterministic=self.deterministic)
        return action


class DrQV2Policy:
    """deterministic: the actor's mean (the paper's evaluation). Otherwise the behaviour policy of
    training at the checkpoint's step: scheduled exploration noise, or uniform random actions before
    num_expl_steps."""

    def __init__(self, agent, deterministic: bool = True, step: int = 0):
        self.agent, self.deterministic, self.step = agent, deterministic, step
        agent.train(False)

    def act(self, obs) -> np.ndarray:
        return self.agent.act(np.asarray(obs)[None], step=self.step, eval_mode=self.deterministic)[0]


def drqv2_config(hp: dict, seed: int = 0, threads: int = 0):
    """DrQV2Config from a params.yaml drqv2 block (its preset plus overrides), seed and threads."""
    from algos.drqv2 import DrQV2Config
    block = {k: v for k, v in hp.items() if k not in DRQV2_LOOP_KEYS}
    return DrQV2Config.from_params({**block, "seed": seed, "torch_threads": threads})


def env_settings(name: str, env_params: dict, hp: dict) -> dict:
    """The env block with what the algorithm imposes on it: HER learns from goal observations,
    DrQ-v2 from its own stack of wrist-camera frames (obs_mode pixels, frame_stack from its block),
    whatever env.obs_mode and env.frame_stack say."""
    if name == "drqv2":
        return {**env_params, "obs_mode": "pixels", "frame_stack": drqv2_config(hp).frame_stack}
    if name not in SB3:
        raise ValueError(f"unknown algorithm {name!r}; valid: {', '.join(SB3 + ('drqv2',))}")
    from algos import sb3
    return {**env_params, "obs_mode": sb3.obs_mode(name, env_params)}


def load_policy(name: str, path, deterministic: bool = True, step: int = 0) -> Policy:
    """A checkpoint as a Policy, on the CPU (one env at a time needs no GPU)."""
    if name == "drqv2":
        from algos.drqv2 import DrQV2Agent
        return DrQV2Policy(DrQV2Agent.from_checkpoint(path, device="cpu"), deterministic, step)
    from algos import sb3
    return SB3Policy(sb3.load(name, path), deterministic)
