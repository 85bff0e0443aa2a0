"""Residual control (devlog 003), for any task and any algorithm:

    applied action = clip(base(obs) + alpha * residual, -1, 1)

The learner's action is the residual; the base policy acts on the same observation. The env adds
a reward component `residual_penalty` = -penalty * |residual|^2 (the devlog's L2 penalty, which
keeps the correction small) and reports the episode's mean residual L2 norm as `residual_l2`.

Bases (`make_base`):
  zero       always 0: the residual learner is the whole policy (the devlog's first phase)
  scripted   the task's own scripted controller (envs/controllers/), privileged and imperfect
  a policy   any object with act(obs) -> actions for the batch (a trained run's policy, loaded by
             the pipeline) and, optionally, reset(ids)
A base that carries state between steps (the scripted controller's phases) has get_state() and
set_state(), which the env's checkpoint includes, so a resumed residual run continues exactly.
"""
import numpy as np

from envs import controllers

BASES = ("zero", "scripted")   # by name; a trained policy is passed as an object


class ZeroBase:
    def __init__(self, env):
        self.shape = (env.num_envs, env.task.action_dim)

    def act(self, obs):
        return np.zeros(self.shape)


class ScriptedBase:
    """The task's scripted controller as a base: it reads the true state, not the observation."""

    def __init__(self, env):
        self.controller = controllers.make(env)

    def act(self, obs):
        return self.controller.act()

    def reset(self, ids):
        self.controller.reset(ids)

    def get_state(self):
        return self.controller.get_state()

    def set_state(self, state):
        self.controller.set_state(state)


class PolicyBase:
    """A trained policy (act(obs) for one env's observation) as the base of a batch."""

    def __init__(self, policy):
        self.policy = policy

    def act(self, obs):
        return np.stack([np.asarray(self.policy.act(o), dtype=np.float64) for o in obs])


def make_base(base, env):
    if base == "zero":
        return ZeroBase(env)
    if base == "scripted":
        return ScriptedBase(env)
    if isinstance(base, str):
        raise ValueError(f"unknown base policy {base!r}; valid: {', '.join(BASES)}, or a policy object")
    return base


class Residual:
    def __init__(self, env, base, alpha: float, penalty: float):
        if not alpha > 0:
            raise ValueError(f"residual alpha must be > 0, got {alpha!r}")
        if not penalty >= 0:
            raise ValueError(f"residual penalty must be >= 0, got {penalty!r}")
        self.base = make_base(base, env)
        self.alpha, self.penalty = float(alpha), float(penalty)

    def blend(self, residual, obs):
        """(applied actions, penalty component, residual L2 norm), each batched."""
        base = np.asarray(self.base.act(obs), dtype=np.float64)
        applied = np.clip(base + self.alpha * residual, -1.0, 1.0)
        sq = np.sum(residual ** 2, axis=1)
        return applied, -self.penalty * sq, np.sqrt(sq)

    def reset(self, ids):
        if hasattr(self.base, "reset"):
            self.base.reset(ids)

    def get_state(self):
        return self.base.get_state() if hasattr(self.base, "get_state") else None

    def set_state(self, state):
        if hasattr(self.base, "set_state"):
            self.base.set_state(state)
