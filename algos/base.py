"""What every algorithm provides, and the type its params schema is written in.

An algorithm is one module (or package) under algos/, listed by one line in algos/__init__.py.
It defines, at top level, importing only the standard library and this module (the heavy learning
code is imported inside its functions, so reading a schema costs milliseconds):

    PARAMS: dict[str, Field]                      its params.yaml block, one Field per key
    env_settings(env_params, hp) -> dict          the env block it trains and is evaluated on
    make_trainer(vec_env, hp, seed, threads, log_dir) -> Trainer
    load_policy(path, deterministic, step) -> Policy

The train stage (pipeline/train.py) drives any Trainer through the same loop; where its checkpoint
files go is pipeline/checkpoints.py's business, not the algorithm's.
"""
from __future__ import annotations

import argparse
import re
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Protocol

# Values end up on shell command lines (the DAG tools pass every parameter as an argument), so
# strings are restricted to characters that need no quoting.
SAFE_STR = re.compile(r"^[A-Za-z0-9_.,:+\-]+$")
LIST_ITEM = re.compile(r"^[A-Za-z0-9_.:+\-/]+$")   # no comma: a list goes on a command line comma-joined


@dataclass(frozen=True)
class Field:
    """One params.yaml key: its type, valid values and how it reads from a command line."""
    type: str                   # "int" | "float" | "bool" | "str" | "float|auto" | "list" (of safe words)
    choices: tuple = ()         # valid values of a "str" field (empty: any safe token)
    min: float | None = None    # inclusive lower bound for numbers
    max: float | None = None    # inclusive upper bound for numbers
    optional: bool = False      # may be left out (an override of a preset)
    # A "str" field whose values match this regex instead of SAFE_STR; such values can hold shell
    # characters like parentheses, so they go on command lines in single quotes (see `quoted`).
    pattern: str | None = None
    hint: str = ""              # what a valid value of a patterned field looks like

    @property
    def quoted(self) -> bool:
        return self.pattern is not None

    def describe(self) -> str:
        if self.choices:
            return "one of " + ", ".join(map(str, self.choices))
        if self.pattern:
            return self.hint
        kind = {"int": "an integer", "float": "a number (write 3.0e-4, not 3e-4)", "bool": "true or false",
                "str": "a word of letters, digits and _.,:+-", "float|auto": "a number or auto",
                "list": "a non-empty list of words of letters, digits and _.:+-/"}[self.type]
        bounds = [f">= {self.min}"] if self.min is not None else []
        bounds += [f"<= {self.max}"] if self.max is not None else []
        return kind + (" " + " and ".join(bounds) if bounds else "")

    def check(self, value) -> bool:
        if self.type == "bool":
            return isinstance(value, bool)
        if self.type == "float|auto" and value == "auto":
            return True
        if self.type == "list":
            return (isinstance(value, list) and len(value) > 0 and len(set(map(str, value))) == len(value)
                    and all(isinstance(v, str) and LIST_ITEM.match(v) for v in value))
        if self.type == "str":
            if self.pattern:
                return isinstance(value, str) and re.fullmatch(self.pattern, value) is not None
            return isinstance(value, str) and bool(SAFE_STR.match(value)) and (
                not self.choices or value in self.choices)
        if isinstance(value, bool):             # bool is an int in Python; never a number here
            return False
        ok_types = (int,) if self.type == "int" else (int, float)
        if not isinstance(value, ok_types):
            return False
        return (self.min is None or value >= self.min) and (self.max is None or value <= self.max)

    def parse(self, text: str):
        """A command-line string back to a typed value (the inverse of how the DAG writes it)."""
        if self.type == "bool":
            if text.lower() not in ("true", "false"):
                raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")
            return text.lower() == "true"
        if self.type == "int":
            return int(text)
        if self.type == "list":
            return text.split(",")
        if self.type == "float" or (self.type == "float|auto" and text != "auto"):
            return float(text)
        return text


def count(lo: int = 1) -> Field:
    return Field("int", min=lo)


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
