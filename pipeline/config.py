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
import sys
from collections.abc import Mapping
from pathlib import Path

import yaml

import algos
from envs.backends import BACKENDS as _BACKENDS
from envs.settings import ENV, Field, count as _pos_int

PARAMS_FILE = Path(__file__).resolve().parent.parent / "params.yaml"

BACKENDS = tuple(_BACKENDS)
ALGOS = tuple(algos.ALGOS)


class ParamsError(ValueError):
    """Raised with every problem found, one per line."""


# Blocks: top-level keys holding a mapping of fields. Every field is required (params.yaml is the
# complete record of an experiment, so there are no hidden defaults to drift), except a preset's
# optional overrides (drqv2). Each algorithm's block is the PARAMS of its module (algos/).
BLOCKS: dict[str, dict[str, Field]] = {
    "env": ENV,
    "sanity": {"episodes": _pos_int(), "seed": _pos_int(0)},
    "evaluation": {"episodes": _pos_int(), "deterministic": Field("bool"), "seed": _pos_int(0)},
    "render": {"fps": _pos_int(), "width": _pos_int(16), "height": _pos_int(16), "cameras": Field("str"),
               "seed": _pos_int(0), "checkpoint": Field("str", choices=("final", "best"))},
    # How the train stage runs, not what it learns: a run chunked or not ends with the same weights.
    "train": {"chunk_steps": _pos_int(0), "chunk_retries": _pos_int(0)},
    "report": {"consistency_tolerance": Field("float", min=0.0), "success_threshold": Field("float", min=0.0, max=1.0)},
    # The variants reports/{task}_compare.md puts side by side, each over `seeds`: every reward x
    # algorithm x backend listed, the first reward version the baseline ("before"); or, where `pairs`
    # lists "reward/algo" pairs, those pairs (the first the baseline) x backends instead.
    # How a residual learner ("ppo+scripted", algos/__init__.py) blends its actions with its base:
    # applied = clip(base + alpha * residual), with a reward term -penalty * |residual|^2.
    "residual": {"alpha": Field("float", min=0.0), "penalty": Field("float", min=0.0)},
    "compare": {"rewards": Field("list"), "algos": Field("list"), "backends": Field("list"),
                "pairs": Field("list", optional=True)},
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


def algo_name(text: str) -> str:
    """argparse type of --algo: a registry algorithm or learner+base, else the valid ones."""
    if algos.problem(text):
        raise argparse.ArgumentTypeError(algos.problem(text))
    return text


def algo_blocks(name: str) -> list[str]:
    """The params blocks a run of algorithm `name` reads: its learner's, and `residual` for a
    residual learner."""
    return [algos.learner(name)] + (["residual"] if algos.base_policy(name) else [])


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
    for a in [a for a in algo_names if not algos.problem(a) and "scripted" in (algos.learner(a), algos.base_policy(a))]:
        from envs.tasks import get_task

        def scripted(t):    # the task overrides Task.scripted_controller, which has none
            return get_task(t).scripted_controller.__qualname__ != "Task.scripted_controller"
        if not scripted(task):
            problems.append(f"algos: {a} needs a task with a scripted controller; valid tasks: "
                            f"{', '.join(t for t in tasks if scripted(t))}")
    return problems


def compare_variants(compare: dict) -> list[tuple[str, str, str]]:
    """(reward, algo, backend) of every variant the compare block names, in report order."""
    if compare.get("pairs"):
        pairs = [tuple(p.split("/", 1)) for p in compare["pairs"]]
    else:
        pairs = [(r, a) for r in compare["rewards"] for a in compare["algos"]]
    return [(r, a, b) for r, a in pairs for b in compare["backends"]]


def compare_problems(params: dict) -> list[str]:
    """The compare block names reward versions of the task, algorithms with a block, backends; each
    pair is "reward/algo" of those, the algorithm able to train on the reward."""
    from envs import rewards
    c, problems, task = params["compare"], [], params["task"]
    versions = rewards.available(task)
    valid = {"rewards": versions, "algos": [a for a in ALGOS if a in params], "backends": BACKENDS}

    def ok(key, v):
        if key == "algos":      # a listed learner, alone or on a base
            return not algos.problem(v) and algos.learner(v) in params
        return v in valid[key]
    for key in ("rewards", "algos", "backends"):
        bad = [v for v in c[key] if not ok(key, v)]
        if bad:
            problems.append(f"compare.{key}: {', '.join(map(str, bad))} not valid for task {task}; "
                            f"valid: {', '.join(valid[key])}")
    for pair in c.get("pairs") or []:
        reward, _, algo = pair.partition("/")
        if reward not in versions or not ok("algos", algo):
            problems.append(f"compare.pairs: {pair!r} is not reward/algo; valid rewards for task {task}: "
                            f"{', '.join(versions)}; valid algos: {', '.join(valid['algos'])}")
        else:
            problems += [f"compare.pairs {pair}: {p}" for p in task_reward_problems(task, reward, [algo])]
    return problems


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

    listed = params.get("algos")
    if not isinstance(listed, list) or not listed:
        problems.append(f"algos: expected a non-empty list drawn from {', '.join(ALGOS)}; got {listed!r}")
    else:
        for a in listed:
            if not isinstance(a, str) or algos.problem(a):
                problems.append(f"algos: {algos.problem(str(a))}")
            elif algos.learner(a) not in params:
                problems.append(f"{algos.learner(a)}: missing block for algorithm {algos.learner(a)} "
                                "listed in algos")
        if len(set(map(str, listed))) != len(listed):
            problems.append(f"algos: duplicates in {listed}")
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
        problems += task_reward_problems(params.get("task"), params.get("reward"), params.get("algos") or ())
        if not any(p.startswith(("task:", "compare")) for p in problems):
            problems += compare_problems(params)
    if problems:
        raise ParamsError("invalid params:\n  " + "\n  ".join(problems))
    return params


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("params", nargs="?", default=str(PARAMS_FILE), help="params file (default: params.yaml)")
    ap.add_argument("--merge", action="append", default=[], metavar="YAML",
                    help="override file(s) merged on top, as snakemake --configfile does")
    ap.add_argument("--print", action="store_true", help="print the merged params as YAML")
    ap.add_argument("--out", help="write {\"ok\": true} here when valid (dvc.yaml's first stage)")
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
    if args.out:
        # Always the same bytes: the stages after it rerun for their own params, not for this file.
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text('{"ok": true}\n')
    return 0


if __name__ == "__main__":
    sys.exit(main())
