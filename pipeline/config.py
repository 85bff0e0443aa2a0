"""params.yaml: load, merge, validate.

The schema below is the one description of every knob. The Snakefile validates the config with it
before building the DAG, the stage CLIs build their `--block.key` options from it, and the DVC
generator writes one `${block.key}` per field. Every error names the key and the valid values, and
all problems are reported at once, so a typo costs one attempt, not one per mistake.

    python -m pipeline.config                              # validate params.yaml
    python -m pipeline.config --merge config/smoke.yaml    # print params.yaml with overrides applied
"""
from __future__ import annotations

import argparse
import copy
import re
import sys
from dataclasses import dataclass
from pathlib import Path

import yaml

PARAMS_FILE = Path(__file__).resolve().parent.parent / "params.yaml"

# Values end up on shell command lines (the DAG tools pass every parameter as an argument), so
# strings are restricted to characters that need no quoting.
SAFE_STR = re.compile(r"^[A-Za-z0-9_.,:+\-]+$")

BACKENDS = ("mujoco", "genesis")   # = envs.tasks.base.BACKENDS (tests/test_params.py), without importing envs
ALGOS = ("ppo", "sac", "her", "drqv2")   # each has a block of the same name below
GOAL_TASKS = ("pick_place",)    # tasks with a goal-conditioned obs_mode, which HER needs


class ParamsError(ValueError):
    """Raised with every problem found, one per line."""


@dataclass(frozen=True)
class Field:
    type: str                   # "int" | "float" | "bool" | "str" | "float|auto"
    choices: tuple = ()         # valid values of a "str" field (empty: any safe token)
    min: float | None = None    # inclusive lower bound for numbers
    max: float | None = None    # inclusive upper bound for numbers
    optional: bool = False      # may be left out (drqv2's overrides of its preset)
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
                "str": "a word of letters, digits and _.,:+-", "float|auto": "a number or auto"}[self.type]
        bounds = [f">= {self.min}"] if self.min is not None else []
        bounds += [f"<= {self.max}"] if self.max is not None else []
        return kind + (" " + " and ".join(bounds) if bounds else "")

    def check(self, value) -> bool:
        if self.type == "bool":
            return isinstance(value, bool)
        if self.type == "float|auto" and value == "auto":
            return True
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
        """Inverse of format_value: a command-line string back to a typed value."""
        if self.type == "bool":
            if text.lower() not in ("true", "false"):
                raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")
            return text.lower() == "true"
        if self.type == "int":
            return int(text)
        if self.type == "float" or (self.type == "float|auto" and text != "auto"):
            return float(text)
        return text


def _pos_int(lo=1):
    return Field("int", min=lo)


def _sb3_common() -> dict:
    return {"total_timesteps": _pos_int(), "num_envs": _pos_int(), "learning_rate": Field("float", min=0.0),
            "batch_size": _pos_int(), "gamma": Field("float", min=0.0, max=1.0),
            "net_width": _pos_int(), "net_depth": _pos_int()}


def _off_policy() -> dict:
    return {**_sb3_common(), "buffer_size": _pos_int(), "learning_starts": _pos_int(0),
            "tau": Field("float", min=0.0, max=1.0), "train_freq": _pos_int(), "gradient_steps": _pos_int(),
            "ent_coef": Field("float|auto", min=0.0)}


_NUMBER = r"[0-9]+(\.[0-9]*)?([eE][-+]?[0-9]+)?"
# DrQ-v2's exploration noise: a constant or linear(init,final,duration), as algos.drqv2.schedule reads it.
SCHEDULE = rf"{_NUMBER}|linear\({_NUMBER},{_NUMBER},{_NUMBER}\)"


def _drqv2() -> dict:
    """DrQ-v2 (algos/drqv2.py): `preset` picks the base (cpu: DrQV2Config's defaults, gpu: the paper's
    values) and every other hyperparameter is an optional override of it, as DrQV2Config.from_params
    reads the block. total_timesteps and num_envs drive the training loop. The seed comes from
    `seeds` and the torch threads from the stage's --threads, as for the SB3 algorithms."""
    def opt(kind, **kw):
        return Field(kind, optional=True, **kw)
    return {"preset": Field("str", choices=("cpu", "gpu")), "total_timesteps": _pos_int(), "num_envs": _pos_int(),
            "lr": opt("float", min=0.0), "batch_size": opt("int", min=1), "feature_dim": opt("int", min=1),
            "hidden_dim": opt("int", min=1), "nstep": opt("int", min=1), "discount": opt("float", min=0.0, max=1.0),
            "critic_target_tau": opt("float", min=0.0, max=1.0), "update_every_steps": opt("int", min=1),
            "num_expl_steps": opt("int", min=0), "num_seed_steps": opt("int", min=0),
            "stddev_schedule": opt("str", pattern=SCHEDULE,
                                   hint="a constant like 0.2 or linear(init,final,duration), e.g. linear(1.0,0.1,100000)"),
            "stddev_clip": opt("float", min=0.0), "aug_pad": opt("int", min=0), "frame_stack": opt("int", min=1),
            "replay_memory_bytes": opt("int", min=1), "device": opt("str"),
            "encoder_bf16": opt("str", choices=("auto", "on", "off"))}


# Blocks: top-level keys holding a mapping of fields. Every field is required (params.yaml is the
# complete record of an experiment, so there are no hidden defaults to drift), except drqv2's
# overrides of its named preset.
BLOCKS: dict[str, dict[str, Field]] = {
    "env": {
        "max_episode_steps": _pos_int(), "action_scale": Field("float", min=0.0), "control_hz": Field("float", min=1.0),
        "lift_height": Field("float", min=0.0), "hold_steps": _pos_int(1), "curriculum_stage": Field("int", min=0, max=3),
        "domain_randomization": Field("bool"),
        "obs_mode": Field("str", choices=("state", "pixels", "state+pixels")),
        "image_size": _pos_int(), "frame_stack": _pos_int(), "goal_tolerance": Field("float", min=0.0),
    },
    "sanity": {"episodes": _pos_int(), "seed": _pos_int(0)},
    "ppo": {**_sb3_common(), "n_steps": _pos_int(), "n_epochs": _pos_int(), "gae_lambda": Field("float", min=0.0, max=1.0),
            "clip_range": Field("float", min=0.0), "ent_coef": Field("float", min=0.0),
            "vf_coef": Field("float", min=0.0), "max_grad_norm": Field("float", min=0.0),
            "log_std_init": Field("float"), "activation": Field("str", choices=("tanh", "relu", "elu")),
            "target_kl": Field("float", min=0.0), "reward_scale": Field("float", min=0.0)},
    "sac": _off_policy(),
    "her": {**_off_policy(), "n_sampled_goal": _pos_int(),
            "goal_selection_strategy": Field("str", choices=("future", "final", "episode"))},
    "evaluation": {"episodes": _pos_int(), "deterministic": Field("bool"), "seed": _pos_int(0)},
    "render": {"fps": _pos_int(), "width": _pos_int(16), "height": _pos_int(16), "cameras": Field("str"),
               "seed": _pos_int(0)},
    "drqv2": _drqv2(),
    # How the train stage runs, not what it learns: a run chunked or not ends with the same weights.
    "train": {"chunk_steps": _pos_int(0), "chunk_retries": _pos_int(0)},
    "report": {"consistency_tolerance": Field("float", min=0.0), "success_threshold": Field("float", min=0.0, max=1.0)},
}
SCALARS: dict[str, Field] = {
    "task": Field("str"), "reward": Field("str"), "backend": Field("str", choices=BACKENDS),
    "checkpoint_every": _pos_int(),
}
LISTS = ("algos", "seeds")
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
    return str(value)


def block_keys(block: str, params: dict | None = None) -> list[str]:
    """The fields of a block that params sets: all required ones, and the optional ones present.
    Without params, every field (what a stage CLI accepts)."""
    fields = BLOCKS[block]
    if params is None:
        return list(fields)
    given = params.get(block) or {}
    return [k for k, f in fields.items() if not f.optional or k in given]


def load(path: str | Path = PARAMS_FILE) -> dict:
    """Read a YAML mapping, turning parser errors into one line naming the file and position."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise ParamsError(f"{path}: file not found") from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ParamsError(f"{path}:{where} is not valid YAML: {getattr(e, 'problem', e)}") from None
    if not isinstance(data, dict):
        raise ParamsError(f"{path}: expected a mapping of keys (task:, reward:, ...), got {type(data).__name__}")
    return data


def merge(base: dict, override: dict) -> dict:
    """Deep-merge override into a copy of base: the same rule as snakemake --configfile."""
    out = copy.deepcopy(base)
    for k, v in override.items():
        out[k] = merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else copy.deepcopy(v)
    return out


def _rewards_module():
    """envs/rewards/__init__.py loaded on its own: listing tasks and reward versions then costs
    milliseconds instead of the seconds `import envs` takes (physics, torch), which keeps a no-op
    `snakemake` run fast. It lists what is on disk, exactly as envs.rewards.available does."""
    import importlib.util
    path = PARAMS_FILE.parent / "envs" / "rewards" / "__init__.py"
    spec = importlib.util.spec_from_file_location("_pipeline_envs_rewards", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def task_reward_problems(task, reward, algos=(), full=False) -> list[str]:
    """Task and reward checked against what envs/ provides, not a copy of its lists. With full=True
    (the stages) envs is imported and HER's need for a goal reward is checked too."""
    if full:
        import envs
        tasks, rewards = sorted(envs.TASKS), envs.rewards
    else:
        rewards = _rewards_module()
        tasks = rewards.tasks()
    if task not in tasks:
        return [f"task: unknown task {task!r}; valid: {', '.join(tasks)}"]
    versions = rewards.available(task)
    if reward not in versions:
        return [f"reward: unknown reward version {reward!r} for task {task}; valid: {', '.join(versions)}"]
    if full and "her" in algos and not hasattr(rewards.get(task, reward), "goal_reward"):
        usable = [v for v in versions if hasattr(rewards.get(task, v), "goal_reward")]
        return [f"reward: her relabels goals, which reward {reward!r} cannot score; valid for her: {', '.join(usable)}"]
    return []


def validate(params: dict, check_envs: bool = True) -> dict:
    """Return params unchanged if valid; otherwise raise ParamsError listing every problem."""
    problems: list[str] = []
    for key in params:
        if key not in TOP_LEVEL:
            problems.append(f"{key}: unknown key; valid keys: {', '.join(TOP_LEVEL)}")
    for key, f in SCALARS.items():
        if key not in params:
            problems.append(f"{key}: missing; expected {f.describe()}")
        elif not f.check(params[key]):
            problems.append(f"{key}: got {params[key]!r}; expected {f.describe()}")

    algos = params.get("algos")
    if not isinstance(algos, list) or not algos:
        problems.append(f"algos: expected a non-empty list drawn from {', '.join(ALGOS)}; got {algos!r}")
    else:
        for a in algos:
            if a not in ALGOS:
                problems.append(f"algos: unknown algorithm {a!r}; valid: {', '.join(ALGOS)}")
            elif a not in params:
                problems.append(f"{a}: missing block for algorithm {a} listed in algos")
        if len(set(map(str, algos))) != len(algos):
            problems.append(f"algos: duplicates in {algos}")
        if "her" in algos and params.get("task") not in GOAL_TASKS:
            problems.append(f"algos: her needs a goal-conditioned task; valid tasks for her: {', '.join(GOAL_TASKS)}")
    seeds = params.get("seeds")
    if (not isinstance(seeds, list) or not seeds or len(set(map(str, seeds))) != len(seeds)
            or not all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in seeds)):
        problems.append(f"seeds: expected a non-empty list of distinct integers >= 0; got {seeds!r}")

    for block, fields in BLOCKS.items():
        if block not in params:
            if block in REQUIRED_BLOCKS:
                problems.append(f"{block}: missing block; expected keys {', '.join(fields)}")
            continue
        values = params[block]
        if not isinstance(values, dict):
            problems.append(f"{block}: expected a mapping with keys {', '.join(fields)}; got {values!r}")
            continue
        for name in values:
            if name not in fields:
                problems.append(f"{block}.{name}: unknown key; valid keys: {', '.join(fields)}")
        for name, f in fields.items():
            if name not in values:
                if f.optional:
                    continue
                problems.append(f"{block}.{name}: missing; expected {f.describe()}")
            elif not f.check(values[name]):
                problems.append(f"{block}.{name}: got {values[name]!r}; expected {f.describe()}")

    if check_envs and not any(p.startswith(("task:", "reward:")) for p in problems):
        # The full check imports envs (seconds); only HER needs it, to see the reward's goal function.
        algos = params.get("algos") or ()
        problems += task_reward_problems(params.get("task"), params.get("reward"), algos, full="her" in algos)
    if problems:
        raise ParamsError("invalid params:\n  " + "\n  ".join(problems))
    return params


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("params", nargs="?", default=str(PARAMS_FILE), help="params file (default: params.yaml)")
    ap.add_argument("--merge", action="append", default=[], metavar="YAML",
                    help="override file(s) merged on top, as snakemake --configfile does")
    ap.add_argument("--print", action="store_true", help="print the merged params as YAML")
    args = ap.parse_args(argv)
    try:
        params = load(args.params)
        for extra in args.merge:
            params = merge(params, load(extra))
        validate(params)
    except ParamsError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if args.print or args.merge:
        # default_flow_style=None keeps short lists inline; PyYAML writes floats as 1.0e-05, which
        # YAML 1.1 and 1.2 both read as numbers.
        sys.stdout.write(yaml.safe_dump(params, sort_keys=False, default_flow_style=None))
    else:
        print(f"{args.params}: ok", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
