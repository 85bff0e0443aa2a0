"""What every stage's command line shares: `--block.key` options from the settings, the job's
threads, one clear line for a problem the user must fix, and the record of the modules it loaded."""
from __future__ import annotations

import argparse
import os
import platform
import sys
from pathlib import Path

from pipeline.run import settings
from pipeline.run.files import write_json

class StageError(RuntimeError):
    """A problem the user must fix; the stage prints it as one clear line and exits non-zero."""

def add_policy_args(parser: argparse.ArgumentParser) -> None:
    """The arguments of stages that load trained policies (evaluate, render): whose runs, which threads."""
    parser.add_argument("--task", required=True)
    parser.add_argument("--reward", required=True)
    parser.add_argument("--backend", default="mujoco", choices=settings.BACKENDS, help="physics backend")
    parser.add_argument("--algo", required=True, type=settings.algo_name, help="as train's --algo")
    parser.add_argument("--runs", nargs="+", required=True, help="run folders (one per seed)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (the job's cores)")

def add_block_args(parser: argparse.ArgumentParser, *blocks: str, required: bool = True) -> None:
    """Add `--block.key` options for every field of the given params blocks, or for one field
    ("env.curriculum_stage"), or a scalar key."""
    for block in blocks:
        if "." in block:
            f = settings.field(block)
            parser.add_argument(f"--{block}", dest=block, type=f.parse, required=required and not f.optional,
                                metavar=f.type.upper(), help=f.describe())
        elif block in settings.BLOCKS:
            group = parser.add_argument_group(f"params: {block}")
            for name, f in settings.BLOCKS[block].items():
                group.add_argument(f"--{block}.{name}", dest=f"{block}.{name}", type=f.parse,
                                   required=required and not f.optional, metavar=f.type.upper(),
                                   help=f.describe())
        else:
            f = settings.SCALARS[block]
            parser.add_argument(f"--{block}", dest=block, type=f.parse, required=required, help=f.describe())

def env_block(args: argparse.Namespace) -> dict:
    """The env block with the backend it runs on (the top-level `backend` key of params.yaml)."""
    return {**block(args, "env"), "backend": args.backend}

def block(args: argparse.Namespace, name: str) -> dict:
    """The values of one params block from parsed args, as the dict params.yaml holds (optional
    fields left out when not given). A value the schema rejects stops the stage, naming the valid ones."""
    out, problems = {}, []
    for k, f in settings.BLOCKS[name].items():
        value = getattr(args, f"{name}.{k}")
        if value is None and f.optional:
            continue
        if value is not None and not f.check(value):
            problems.append(f"--{name}.{k}: got {value!r}; expected {f.describe()}")
        out[k] = value
    if problems:
        raise settings.ParamsError("; ".join(problems))
    return out

def set_threads(n: int) -> None:
    """Use exactly the cores the DAG tool gave this job: two jobs with 2 torch threads each on a
    2-core machine slow each other down by an order of magnitude (field notes)."""
    os.environ["OMP_NUM_THREADS"] = str(n)
    import torch
    torch.set_num_threads(n)

def warn(message: str) -> None:
    print(f"warning: {message}", file=sys.stderr, flush=True)

IMPORTS_LOG = "PIPELINE_IMPORTS_LOG"     # a folder: each stage writes the project modules it loaded there

def log_imports() -> None:
    """With $PIPELINE_IMPORTS_LOG set, record this stage's command line and every project module it
    has loaded (tests/e2e/smoke.py checks them against the stage's declared code deps)."""
    folder = os.environ.get(IMPORTS_LOG)
    if not folder:
        return
    root = Path(__file__).resolve().parents[2]
    files, foreign = set(), set()
    for name, m in list(sys.modules.items()):
        if name.split(".")[0] not in ("pipeline", "envs", "algos") or not getattr(m, "__file__", None):
            continue
        path = Path(m.__file__).resolve()
        if path.is_relative_to(root):
            files.add(str(path.relative_to(root)))
        else:                   # a project module from another checkout (an editable install)
            foreign.add(str(path))
    write_json(Path(folder) / f"{os.getpid()}.json", {"argv": sys.argv, "modules": sorted(files),
                                                       "foreign": sorted(foreign)})

def run_main(main) -> None:
    """Run a stage's main(), turning StageError/ParamsError and the env's FloatingPointError (NaN or
    inf in observations, rewards or the simulation, with the env and step) into one line."""
    import atexit
    atexit.register(log_imports)
    if os.environ.get("SLURM_JOB_ID"):      # where the job ran, in its log
        print(f"slurm job {os.environ['SLURM_JOB_ID']} on {platform.node()}", flush=True)
    try:
        sys.exit(main())
    except (StageError, settings.ParamsError, FloatingPointError) as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:      # a second Ctrl-C during training, or Ctrl-C in another stage
        print("stopped by Ctrl-C; the last checkpoint written stands", file=sys.stderr)
        sys.exit(130)
