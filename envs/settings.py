"""Settings: the type every params.yaml key is declared in (`Field`), and the env block's settings.

A setting is declared once, here or in its algorithm's module (algos/*: PARAMS) or in the pipeline's
own blocks (pipeline/dag/params.py): name, type, bounds, default and one line of doc. From that one
declaration follow the params validation, the stage command-line flags, the DVC params, the env's
TaskConfig and the settings table of docs/settings.md.
"""
from __future__ import annotations

import argparse
import re
from dataclasses import dataclass

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
    default: object = None      # the value code outside the pipeline gets (params.yaml sets its own)
    doc: str = ""               # one line: what the setting does (the settings table of docs/settings.md)

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


def count(lo: int = 1, **kw) -> Field:
    """An integer >= lo."""
    return Field("int", min=lo, **kw)




def number(lo=None, hi=None, **kw) -> Field:
    """A float within [lo, hi]."""
    return Field("float", min=lo, max=hi, **kw)


# The env: block of params.yaml, passed to envs.make_vec_env / envs.make_env (TaskConfig). A task may
# change a default (Task.config_defaults: walk's 1000-step episodes); the pipeline always passes all.
ENV: dict[str, Field] = {
    "max_episode_steps": count(default=200, doc="time limit; reaching it is a truncation, not a termination"),
    "action_scale": number(0.0, default=0.04, doc="rad of joint-target change per step at action +-1"),
    "control_hz": number(1.0, default=50.0, doc="policy steps per simulated second (physics at 500 Hz)"),
    "lift_height": number(0.0, default=0.05, doc="m the cube's bottom must rise above the table"),
    "hold_steps": count(1, default=10, doc="consecutive steps held above lift_height for success"),
    "curriculum_stage": Field("int", min=0, max=3, default=0,
                              doc="start pose: 0 arm at rest, 1 gripper above the cube, 2 jaws around it, 3 closing"),
    "curriculum_from": Field("int", min=-1, max=3, default=-1,
                             doc=">= 0: training starts at this stage and moves towards curriculum_stage (-1: none)"),
    "curriculum_bar": number(0.0, 1.0, default=0.8,
                             doc="success rate over curriculum_window episodes that moves the curriculum on"),
    "curriculum_window": count(default=100, doc="episodes at the current stage (reverse_curriculum: from a "
                               "demonstration's pointer) the curriculum_bar is measured on"),
    "curriculum_mix": number(0.0, 0.99, default=0.0,
                             doc="fraction of training episodes started at an easier stage already passed"),
    "reverse_curriculum": Field("bool", default=False,
                                doc="training episodes start along the demos stage's successful demonstrations, "
                                    "at rest, and move back to curriculum_stage (docs/demos.md)"),
    "reverse_step": count(default=1, doc="demonstration steps a reverse_curriculum pointer moves back at the "
                          "curriculum_bar"),
    "domain_randomization": Field("bool", default=True, doc="cube pose, friction, mass; colours and lighting for pixels"),
    "obs_mode": Field("str", choices=("state", "pixels", "state+pixels", "goal"), default="state",
                      doc="what the policy observes (goal: HER's observation/achieved_goal/desired_goal)"),
    "image_size": count(default=84, doc="wrist camera resolution (square) of pixel observations"),
    "frame_stack": count(default=1, doc="wrist frames stacked along channels in pixel modes"),
    "goal_tolerance": number(0.0, default=0.02, doc="m, pick_place success radius"),
}
