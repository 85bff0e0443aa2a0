"""The pipeline's settings: every params.yaml key, its type and bounds, in one place to read.

The env block is declared in envs/settings.py (ENV), each algorithm's block in its module (algos/:
PARAMS), the pipeline's own blocks below. The stage CLIs build their `--block.key` options from
this (pipeline/run/cli.py), the DAG machinery validates params.yaml and writes the DVC params
with it (pipeline/dag/), and `python -m pipeline.dag.params --table` writes docs/settings.md.
"""
from __future__ import annotations

import argparse
from collections.abc import Mapping

import algos
from envs.backends import BACKENDS as _BACKENDS
from envs.controllers import CONTROLLERS, TASK_CONTROLLERS
from envs.settings import ENV, Field, count  # noqa: F401 (Field: the type of every setting)

BACKENDS = tuple(_BACKENDS)
ALGOS = tuple(algos.ALGOS)


class ParamsError(ValueError):
    """Raised with every problem found, one per line."""


# Blocks: top-level keys holding a mapping of fields. Every field is required (params.yaml is the
# complete record of an experiment, so there are no hidden defaults to drift), except a preset's
# optional overrides (drqv2). Each algorithm's block is the PARAMS of its module (algos/).
BLOCKS: dict[str, dict[str, Field]] = {
    "env": ENV,
    "sanity": {"episodes": count(default=5, doc="scripted-controller episodes the sanity stage runs"),
               "seed": count(0, default=0, doc="seed of the sanity stage's episodes")},
    "evaluation": {"episodes": count(default=20, doc="evaluation episodes per seed at every checkpoint but the final"),
                   "final_episodes": count(default=50, doc="evaluation episodes of each seed's final checkpoint, "
                                           "whose success rate is reported (its standard error: 6-7 points at 50, 9-11 at 20)"),
                   "deterministic": Field("bool", default=True, doc="act with the policy's mean, not a sample"),
                   "seed": count(0, default=1000, doc="episode i of every checkpoint is reset with seed + i")},
    "render": {"fps": count(default=25, doc="frames per second of the video"),
               "width": count(16, default=320, doc="pixels per camera, side by side"),
               "height": count(16, default=240, doc="pixels per camera"),
               "cameras": Field("str", default="front,wrist", doc="comma-separated cameras of the task"),
               "seed": count(0, default=1000, doc="seed of the rendered episode"),
               "checkpoint": Field("str", choices=("final", "best"), default="final",
                                   doc="render the final checkpoint, or the one evaluate found best")},
    # How the train stage runs, not what it learns: a run chunked or not ends with the same weights.
    "train": {"chunk_steps": count(0, default=0, doc="> 0: train in chunks of this many env steps, each in a fresh process"),
              "chunk_retries": count(0, default=2, doc="times a chunk that dies is rerun from the last checkpoint")},
    "report": {"consistency_tolerance": Field("float", min=0.0, default=0.25,
                                              doc="flag a train/eval success gap larger than this fraction"),
               "success_threshold": Field("float", min=0.0, max=1.0, default=0.8,
                                          doc="the success rate a run must reach to be called solved")},
    # How a residual learner ("ppo+scripted", algos/__init__.py) blends its actions with its base:
    # applied = clip(base + alpha * residual), with a reward term -penalty * |residual|^2.
    "residual": {"alpha": Field("float", min=0.0, default=0.7, doc="scale of the residual added to the base's action"),
                 "penalty": Field("float", min=0.0, default=0.001, doc="reward term -penalty * |residual|^2 per step")},
    # The scripted demonstrations (pipeline/demos.py) that runs read (reads_demos below): runs learning
    # from them (algos.uses_demos: bc; rlpd and drqv2 with demo_ratio > 0) and reverse-curriculum runs
    # starting from their states (env.reverse_curriculum, any algorithm). They start where evaluation
    # does, env.curriculum_stage (DEMOS_ENV below). A run that trains on pixels learns from their wrist
    # frames: demos.pixels true (frames_problems below).
    "demos": {"episodes": count(default=100, doc="scripted-controller episodes recorded, failed ones included"),
              "seed": count(0, default=0, doc="episode k of the demonstrations is reset with seed + k"),
              "controller": Field("str", choices=tuple(CONTROLLERS), default="picker",
                                  doc="the scripted controller that acts (envs/controllers/); one of the task's"),
              "pixels": Field("bool", default=False,
                              doc="store the wrist camera's frames (env.image_size) with the states: what a pixel "
                                  "learner (drqv2 with demo_ratio > 0) learns from")},
    # The variants reports/{task}_compare.md puts side by side, each over `seeds`: every reward x
    # algorithm x backend listed, the first reward version the baseline ("before"); or, where `pairs`
    # lists "reward/algo" pairs, those pairs (the first the baseline) x backends instead.
    "compare": {"rewards": Field("list", doc="reward versions compared; the first is the baseline"),
                "algos": Field("list", doc="algorithms compared"),
                "backends": Field("list", doc="physics backends compared"),
                "pairs": Field("list", optional=True, doc="reward/algo pairs instead of rewards x algos")},
}


class Blocks(Mapping):
    """The params blocks: the fixed ones above and one per algorithm, whose fields are the PARAMS
    of its module, imported only when asked for (a stage imports only its own algorithm)."""

    def __init__(self, fixed: dict):
        self.fixed = fixed

    def __getitem__(self, name):
        if name in self.fixed:
            return self.fixed[name]
        if name in ALGOS:
            return algos.get(name).PARAMS
        raise KeyError(name)

    def __iter__(self):
        return iter([*self.fixed, *ALGOS])

    def __len__(self):
        return len(self.fixed) + len(ALGOS)


BLOCKS = Blocks(BLOCKS)
SCALARS: dict[str, Field] = {
    "task": Field("str", default="lift", doc="the task (envs/tasks/)"),
    "reward": Field("str", default="v19", doc="a reward version of the task (envs/rewards/<task>/)"),
    "backend": Field("str", choices=BACKENDS, default="mujoco", doc="physics backend"),
    "checkpoint_every": count(default=50000, doc="env steps between checkpoints (the evaluation grid)"),
}

LISTS = ("algos", "seeds")

# The env settings that shape demonstrations, the demos stage's only env params: the episode, the
# arm's action interface, success, the start (curriculum_stage: where evaluation starts, which every
# curriculum stage's start is a later point of; a training curriculum never applies) and, with
# demos.pixels, the wrist camera's frames at image_size. Editing the others (obs_mode: the data holds
# the state, and frames where demos.pixels says; curriculum_from, frame_stack, ...) reruns no
# demonstrations.
DEMOS_ENV = ("max_episode_steps", "action_scale", "control_hz", "lift_height", "hold_steps", "curriculum_stage",
             "domain_randomization", "image_size", "goal_tolerance")
PIXEL_MODES = ("pixels", "state+pixels")      # the env.obs_mode values that observe the wrist camera

TOP_LEVEL = tuple(SCALARS) + LISTS + tuple(BLOCKS)

# Algorithm blocks are needed only for the algorithms listed in `algos`.
REQUIRED_BLOCKS = tuple(b for b in BLOCKS if b not in ALGOS)


def field(key: str) -> Field:
    """The Field for a dotted key, e.g. 'ppo.learning_rate' or 'task'."""
    if "." in key:
        block, name = key.split(".", 1)
        return BLOCKS[block][name]
    return SCALARS[key]

def format_value(value) -> str:
    """How a value appears on a command line; the same rule DVC uses when it interpolates ${...}."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ",".join(map(str, value))
    return str(value)

def block_keys(block: str, params: dict | None = None) -> list[str]:
    """The fields of a block that params sets: all required ones, and the optional ones present.
    Without params, every field (what a stage CLI accepts)."""
    fields = BLOCKS[block]
    if params is None:
        return list(fields)
    given = params.get(block) or {}
    return [k for k, f in fields.items() if not f.optional or k in given]

def algo_name(text: str) -> str:
    """argparse type of --algo: a registry algorithm or learner+base, else the valid ones."""
    if algos.problem(text):
        raise argparse.ArgumentTypeError(algos.problem(text))
    return text

def reads_demos(name: str, hp: dict, env: dict) -> bool:
    """Whether a run of algorithm `name` (its block hp) on env block `env` reads the demos stage's
    dataset: it learns from demonstrations (algos.uses_demos), or its training episodes start from
    their states (env.reverse_curriculum), whatever the algorithm. The one rule behind the dataset's
    DAG edges (pipeline/dag/registry.py) and the demos block on a train command line."""
    return algos.uses_demos(name, hp) or bool(env.get("reverse_curriculum"))


def algo_blocks(name: str, hp: dict, env: dict) -> list[str]:
    """The params blocks a run of algorithm `name` (block hp, env block env) reads besides env: its
    learner's, `residual` for a residual learner, and `demos` for a run that reads the
    demonstrations (reads_demos; the block names the dataset)."""
    return ([algos.learner(name)] + (["residual"] if algos.base_policy(name) else [])
            + (["demos"] if reads_demos(name, hp, env) else []))


def algo_block(params: dict, name: str) -> dict:
    """The params block of algorithm `name`'s learner ({} where params has none)."""
    return params.get(algos.learner(name)) or {}


def demo_algos(params: dict) -> list[str]:
    """The algorithms of the experiment whose runs read the demos stage's demonstrations."""
    return [a for a in params.get("algos") or ()
            if not algos.problem(a) and reads_demos(a, algo_block(params, a), params.get("env") or {})]


def learns_from_frames(name: str, hp: dict, env: dict) -> bool:
    """Whether a run of `name` (block hp, env block env) learns from the demonstrations' wrist
    frames: it learns from demonstrations and trains on pixels (drqv2 with demo_ratio > 0)."""
    return algos.uses_demos(name, hp) and algos.get(name).env_settings(env, hp)["obs_mode"] in PIXEL_MODES


def frames_problems(names, params: dict) -> list[str]:
    """The rule for recording wrist frames: demos.pixels is true where any run of `names` learns
    from them (a dataset without frames is refused at training too: pipeline/run/transitions.py)."""
    if params["demos"]["pixels"]:
        return []
    return [f"demos.pixels: {a} trains on pixels and learns from demonstrations, which must hold the wrist "
            "camera's frames: set demos.pixels: true" for a in names
            if learns_from_frames(a, algo_block(params, a), params["env"])]


def demos_problems(task: str, controller: str) -> list[str]:
    """The demonstrations' controller is a controller of the task."""
    if controller not in CONTROLLERS:
        return [f"demos.controller: unknown controller {controller!r}; valid: {', '.join(CONTROLLERS)}"]
    if TASK_CONTROLLERS.get(task) != controller:
        valid = [c for t, c in TASK_CONTROLLERS.items() if t == task]
        return [f"demos.controller: {controller} is not a controller of task {task}; valid for {task}: "
                f"{', '.join(valid) or 'none (the task has no scripted controller)'}"]
    return []


def reverse_curriculum_problems(task: str, env: dict) -> list[str]:
    """env.reverse_curriculum: a task whose episodes can start from recorded states, and no stage
    curriculum besides (both end at curriculum_stage; one moves the starts at a time)."""
    if not env.get("reverse_curriculum"):
        return []
    from envs.tasks import get_task, restorable_tasks
    problems = []
    if not get_task(task).restorable:
        problems.append(f"env.reverse_curriculum: task {task} cannot start episodes from recorded states; "
                        f"valid tasks: {', '.join(restorable_tasks())}")
    if env.get("curriculum_from") not in (-1, env.get("curriculum_stage")):
        problems.append("env.reverse_curriculum: the reverse curriculum replaces the stage curriculum; "
                        f"set env.curriculum_from to -1 (got {env.get('curriculum_from')})")
    return problems


def goal_algos(names) -> list[str]:
    """The algorithms among names that learn from goals (HER): they need a goal-conditioned task
    and a reward version with a goal_reward."""
    return [a for a in names if not algos.problem(a) and getattr(algos.get(a), "NEEDS_GOALS", False)]


def task_reward_problems(task, reward, algo_names=()) -> list[str]:
    """Task and reward checked against what envs/ provides, not a copy of its lists; for an
    algorithm that learns from goals, the task and reward are imported to see that they can."""
    from envs import rewards
    tasks = rewards.tasks()
    if task not in tasks:
        return [f"task: unknown task {task!r}; valid: {', '.join(tasks)}"]
    versions = rewards.available(task)
    if reward not in versions:
        return [f"reward: unknown reward version {reward!r} for task {task}; valid: {', '.join(versions)}"]
    problems = []
    for a in goal_algos(algo_names):
        from envs.tasks import get_task
        if not get_task(task).goal_conditioned:
            usable = [t for t in tasks if get_task(t).goal_conditioned]
            problems.append(f"algos: {a} needs a goal-conditioned task; valid tasks for {a}: {', '.join(usable)}")
        elif not hasattr(rewards.get(task, reward), "goal_reward"):
            usable = [v for v in versions if hasattr(rewards.get(task, v), "goal_reward")]
            problems.append(f"reward: {a} relabels goals, which reward {reward!r} cannot score; "
                            f"valid for {a}: {', '.join(usable)}")
    from envs import controllers        # read at call time (tests stand in a registry without a task)
    for a in [a for a in algo_names if not algos.problem(a) and "scripted" in (algos.learner(a), algos.base_policy(a))]:
        if task not in controllers.TASK_CONTROLLERS:
            problems.append(f"algos: {a} needs a task with a scripted controller; valid tasks: "
                            f"{', '.join(t for t in tasks if t in controllers.TASK_CONTROLLERS)}")
    return problems
