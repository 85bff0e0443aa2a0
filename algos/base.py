"""What every algorithm provides.

An algorithm is one module (or package) under algos/, listed by one line in algos/__init__.py.
It defines, at top level, importing only the standard library and this module (the heavy learning
code is imported inside its functions, so reading a schema costs milliseconds):

    PARAMS: dict[str, Field]                      its params.yaml block, one Field (envs/settings.py) per key
    env_settings(env_params, hp) -> dict          the env block it trains and is evaluated on
    make_trainer(vec_env, hp, seed, threads, log_dir) -> Trainer
    load_policy(path, deterministic, step) -> Policy
    read_weights(path) -> dict[str, Tensor]       every network weight in a policy file
    gpus(hp) -> int                               optional: GPUs a training job asks a cluster for (default 0)
    total_steps(hp) -> int                        optional: the global step a run ends at (default
                                                  hp["total_timesteps"]; bc counts gradient steps)
    USES_DEMOS = True                             optional: it learns from the demos stage's dataset; the
                                                  DAG declares that dataset an input of its runs and
                                                  make_trainer gets it relabelled as demos=
                                                  (pipeline/run/transitions.py: Demos)
    uses_demos(hp) -> bool                        optional, instead of USES_DEMOS: whether a run with
                                                  block hp learns from them (rlpd, drqv2: demo_ratio > 0)

The train stage (pipeline/train.py) drives any Trainer through the same loop; where its checkpoint
files go is pipeline/run/checkpoints.py's business, not the algorithm's.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path
from typing import Callable, Iterable, Protocol


class Policy(Protocol):
    def act(self, obs):
        """The action for one observation of a single (non-vector) env."""


class Trainer(ABC):
    """One run's learner, its envs and everything a resume needs.

    The train stage calls, in this order:
        trainer.load(state_dir)                  only when resuming: continue exactly where save left off
        trainer.train_until(step, should_stop)   repeatedly, up to each checkpoint
        trainer.save_policy(path)                the policy a checkpoint holds (evaluate and render load it)
        trainer.save(state_dir)                  everything a resume needs, with its own commit point
    """
    policy_suffix = ".zip"          # the file name suffix save_policy writes
    # False: save() writes a whole state, kept per checkpoint (the two latest), so a damaged one
    # falls back to the one before. True: save() adds to one state folder, latest checkpoint only.
    keeps_one_state = False
    num_envs: int                   # envs stepped together (the loop's progress grain)
    episodes: list[dict]

    @property
    @abstractmethod
    def global_step(self) -> int:
        """Env steps taken, all envs together."""

    @abstractmethod
    def train_until(self, step: int, should_stop: Callable[[], bool]) -> None:
        """Collect and learn until global_step >= step, or until should_stop() is true, returning
        only where the training state is consistent (after an update), so that a checkpoint saved
        then continues exactly."""

    @abstractmethod
    def save_policy(self, path: Path) -> None: ...

    @abstractmethod
    def save(self, state_dir: Path) -> None:
        """Write the resume state into state_dir. A save killed half-way leaves the previous state
        loadable."""

    @abstractmethod
    def load(self, state_dir: Path) -> None:
        """Restore what save wrote, the envs' episodes in flight and every RNG included."""

    @abstractmethod
    def named_parameters(self) -> Iterable[tuple[str, object]]:
        """The learned tensors (torch), checked for NaN before any checkpoint is written."""

    def losses(self) -> dict[str, float]:
        """The latest update's losses, for TensorBoard (SB3 logs its own)."""
        return {}

    def info(self) -> dict:
        """What a checkpoint's metadata records about the learner (update count, resolved config)."""
        return {}

    def episode_log(self) -> list[dict]:
        """Finished training episodes, one row each: global_step, env and the env's final_info."""
        return self.episodes

    def close(self) -> None:
        """Release the envs."""
