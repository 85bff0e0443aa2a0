"""Rewards of any reward version for recorded demonstrations, from the step states they store: the
reward version is a train-time relabel, and the controller never runs again for it.

    rewards, components = relabel(dataset, "lift", "v19")

rewards is one value per step (per action), episode after episode in the dataset's order;
components maps each of the version's component names to values aligned with it. They equal what
the env pays for the same steps (tests/test_demos.py), including its rule that the step on which a
simulation blew up pays 0.
"""
from __future__ import annotations

import importlib

import numpy as np


def step_state(meta: dict, fields: dict):
    """The task's step state for an episode's steps, one row per action (the rows after each step:
    infos index 1 on; index 0 is the state after reset, which no reward scores)."""
    module, _, name = meta["step_state"]["type"].partition(":")
    if not module.startswith("envs.tasks."):
        raise ValueError(f"step state type {meta['step_state']['type']!r} is not a task's")
    kind = getattr(importlib.import_module(module), name)
    constants = {k: np.asarray(v) if isinstance(v, list) else v for k, v in meta["step_state"]["constants"].items()}
    return kind(**{k: np.asarray(v)[1:] for k, v in fields.items()}, **constants)


def relabel(dataset, task: str, reward: str) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """(rewards, components) of reward version `reward` of `task` for every step of the dataset."""
    from envs import rewards as versions
    from pipeline.run.demos import episode_info
    meta = dataset.storage.metadata
    if meta["task"] != task:
        raise ValueError(f"demonstrations of task {meta['task']!r} cannot be scored by a reward of task {task!r}")
    compute = versions.get(task, reward).compute
    rewards, components = [], {}
    for ep, info in zip(dataset.iterate_episodes(), episode_info(dataset)):
        steps = len(ep.actions)
        r, parts = compute(step_state(meta, ep.infos["state"]))
        r = np.broadcast_to(np.asarray(r, dtype=np.float64), (steps,)).copy()
        parts = {k: np.broadcast_to(np.asarray(v, dtype=np.float64), (steps,)).copy() for k, v in parts.items()}
        if info.get("unstable"):        # the env pays 0 for the step whose simulation blew up (its last)
            r[-1] = 0.0
            for v in parts.values():
                v[-1] = 0.0
        rewards.append(r)
        for k, v in parts.items():
            components.setdefault(k, []).append(v)
    return np.concatenate(rewards), {k: np.concatenate(v) for k, v in components.items()}
