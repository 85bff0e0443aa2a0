"""Versioned rewards: one module per (task, version), e.g. envs/rewards/lift/v19.py.

A version module defines `compute(s: StepState) -> (reward, components)`, where components is a
dict of named per-env arrays that sum to the reward (logged per episode as "reward/<name>").
A version that can be computed from goals alone also defines `goal_reward(achieved, desired,
tolerance)`, which goal-conditioned training (HER) relabels with.

Adding a version is adding a file; listing is automatic. A version imports shared terms from its
task's package (envs/rewards/<task>/__init__.py), never from another version. The fingerprint of a
version's code (pipeline/run/cli.py reward_fingerprint) goes into every checkpoint so evaluation can
refuse a policy trained on other code.
"""
import importlib
import pkgutil
from pathlib import Path

HERE = Path(__file__).resolve().parent


def tasks():
    return sorted(p.name for p in HERE.iterdir() if p.is_dir() and (p / "__init__.py").exists())


def available(task):
    if task not in tasks():
        raise ValueError(f"no reward versions for task {task!r}; tasks with rewards: {tasks()}")
    return sorted(m.name for m in pkgutil.iter_modules([str(HERE / task)]))


def module_path(task, version):
    versions = available(task)
    if version not in versions:
        raise ValueError(f"unknown reward version {version!r} for task {task!r}; valid versions: {versions}")
    return HERE / task / f"{version}.py"


def get(task, version):
    """The reward module for (task, version); raises ValueError naming the valid versions."""
    module_path(task, version)
    return importlib.import_module(f"envs.rewards.{task}.{version}")
