"""params.yaml: load, merge, validate; DVC's first stage, `params`.

The schema is pipeline/run/settings.py. The Snakefile validates the config with it before
building the DAG; every error names the key and the valid values, and all problems are reported at
once, so a typo costs one attempt, not one per mistake.

    python -m pipeline.dag.params                              # validate params.yaml
    python -m pipeline.dag.params --merge config/smoke.yaml    # print params.yaml with overrides applied
"""
from __future__ import annotations

import argparse
import copy
import os
import re
import subprocess
import sys
from pathlib import Path

import yaml

import algos
from pipeline.run.settings import (ALGOS, BACKENDS, BLOCKS, REQUIRED_BLOCKS, SCALARS, TOP_LEVEL,
                                   ParamsError, task_reward_problems)
from pipeline.run.settings import demo_algos, demos_problems, frames_problems, reverse_curriculum_problems

PARAMS_FILE = Path(__file__).resolve().parents[2] / "params.yaml"


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

def from_command_line(params: dict) -> dict:
    """Seeds as integers, where a command line gave them as text: Snakemake's --config parses the
    items of a list with YAML's BaseLoader, so `--config 'seeds=[0,1,2]'` arrives as ['0', '1', '2'].
    Only plain decimal numbers are turned into ints ('01', '-1', '1.0' stay text and fail
    validation), in place, so that both DAG tools name seed0, seed1, ... the same."""
    seeds = params.get("seeds")
    if isinstance(seeds, list):
        params["seeds"] = [int(s) if isinstance(s, str) and re.fullmatch(r"0|[1-9][0-9]*", s) else s
                           for s in seeds]
    return params

def _demos_readable(problems: list[str], listed) -> bool:
    """Whether a run learns from demonstrations depends on its algorithm's block (algos.uses_demos):
    asked only where the algos list, the env, the demos block and those blocks are valid."""
    if any(p.startswith("algos:") for p in problems):
        return False
    return not any(p.startswith(("env", "demos", *map(algos.learner, listed))) for p in problems)


def validate(params: dict, check_envs: bool = True) -> dict:
    """Return params if valid (seeds given as text turned into ints, in place: from_command_line);
    otherwise raise ParamsError listing every problem."""
    from_command_line(params)
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
        if _demos_readable(problems, listed):
            problems += demos_problems(params["task"], params["demos"]["controller"]) if demo_algos(params) else []
            problems += frames_problems(demo_algos(params), params)
        problems += reverse_curriculum_problems(params["task"], params["env"] if isinstance(params.get("env"), dict) else {})
        if not any(p.startswith(("task:", "compare")) for p in problems):
            problems += compare_problems(params)
    if problems:
        raise ParamsError("invalid params:\n  " + "\n  ".join(problems))
    return params

def _flat(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        out.update(_flat(v, f"{prefix}{k}.") if isinstance(v, dict) else {f"{prefix}{k}": v})
    return out

def exp_run_hint(path) -> str | None:
    """Under `dvc exp run` in the workspace, how to get params.yaml back. DVC writes the -S values
    into the workspace's params.yaml before it runs the stages and leaves them there when a stage
    fails (DVC 3.67), so after `dvc exp run -S reward=v99` the file says v99 although the
    experiment never ran. Queued and --temp experiments run in a copy (DVC_ROOT is elsewhere) and
    leave the workspace alone: no hint."""
    baseline = os.environ.get("DVC_EXP_BASELINE_REV")
    root = os.environ.get("DVC_ROOT")
    if not os.environ.get("DVC_EXP_NAME") or not root or Path(root).resolve() != Path(path).resolve().parent:
        return None
    name = Path(path).name
    committed = subprocess.run(["git", "show", f"{baseline}:./{name}"], cwd=Path(path).parent,
                               capture_output=True, text=True)
    changes = ""
    if baseline and committed.returncode == 0:
        try:
            before, now = _flat(yaml.safe_load(committed.stdout) or {}), _flat(load(path))
            changes = "; ".join(f"{k}: {now.get(k, '(none)')} (was {before.get(k, '(none)')})"
                                for k in [*now, *(k for k in before if k not in now)]
                                if now.get(k) != before.get(k))
        except (ParamsError, yaml.YAMLError, AttributeError):
            pass
    held = f"now holds {changes}, against the last commit" if changes else "now differs from the last commit"
    return (f"note: {name} {held}: `dvc exp run` writes its -S values into the workspace's {name} before "
            f"it runs and leaves them there when a stage fails, with the workspace's outputs checked out "
            f"for them. Restore both with `git checkout {name} && dvc checkout` (git checkout also drops "
            "your own uncommitted edits of the file, if any), or rerun with valid values.")

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
        hint = exp_run_hint(args.params)
        if hint:
            print(hint, file=sys.stderr)
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
