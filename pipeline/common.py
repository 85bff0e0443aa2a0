"""Small helpers every stage CLI shares: params flags, threads, provenance, JSON, checkpoints."""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import subprocess
import sys
from importlib import metadata
from pathlib import Path

from pipeline import config as cfg

LIBRARIES = ("torch", "mujoco", "gymnasium", "stable-baselines3", "numpy", "pandas", "pyarrow")


class StageError(RuntimeError):
    """A problem the user must fix; the stage prints it as one clear line and exits non-zero."""


def add_policy_args(parser: argparse.ArgumentParser) -> None:
    """The arguments of stages that load trained policies (evaluate, render): whose runs, which threads."""
    parser.add_argument("--task", required=True)
    parser.add_argument("--reward", required=True)
    parser.add_argument("--backend", default="mujoco", choices=cfg.BACKENDS, help="physics backend")
    parser.add_argument("--algo", required=True, type=cfg.algo_name, help="as train's --algo")
    parser.add_argument("--runs", nargs="+", required=True, help="run folders (one per seed)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (the job's cores)")


def add_block_args(parser: argparse.ArgumentParser, *blocks: str, required: bool = True) -> None:
    """Add `--block.key` options for every field of the given params blocks (or scalar keys)."""
    for block in blocks:
        if block in cfg.BLOCKS:
            group = parser.add_argument_group(f"params: {block}")
            for name, f in cfg.BLOCKS[block].items():
                group.add_argument(f"--{block}.{name}", dest=f"{block}.{name}", type=f.parse,
                                   required=required and not f.optional, metavar=f.type.upper(),
                                   help=f.describe())
        else:
            f = cfg.SCALARS[block]
            parser.add_argument(f"--{block}", dest=block, type=f.parse, required=required, help=f.describe())


def env_block(args: argparse.Namespace) -> dict:
    """The env block with the backend it runs on (the top-level `backend` key of params.yaml)."""
    return {**block(args, "env"), "backend": args.backend}


def block(args: argparse.Namespace, name: str) -> dict:
    """The values of one params block from parsed args, as the dict params.yaml holds (optional
    fields left out when not given). A value the schema rejects stops the stage, naming the valid ones."""
    out, problems = {}, []
    for k, f in cfg.BLOCKS[name].items():
        value = getattr(args, f"{name}.{k}")
        if value is None and f.optional:
            continue
        if value is not None and not f.check(value):
            problems.append(f"--{name}.{k}: got {value!r}; expected {f.describe()}")
        out[k] = value
    if problems:
        raise cfg.ParamsError("; ".join(problems))
    return out


def set_threads(n: int) -> None:
    """Use exactly the cores the DAG tool gave this job: two jobs with 2 torch threads each on a
    2-core machine slow each other down by an order of magnitude (field notes)."""
    os.environ["OMP_NUM_THREADS"] = str(n)
    import torch
    torch.set_num_threads(n)


def git_commit() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True,
                             cwd=Path(__file__).resolve().parent.parent)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], capture_output=True,
                               text=True, cwd=Path(__file__).resolve().parent.parent).stdout.strip()
        return out.stdout.strip() + ("-dirty" if dirty else "")
    except (subprocess.CalledProcessError, FileNotFoundError):
        return "unknown"


def versions() -> dict:
    out = {"python": platform.python_version()}
    for lib in LIBRARIES:
        try:
            out[lib] = metadata.version(lib)
        except metadata.PackageNotFoundError:
            out[lib] = "missing"
    return out


def write_atomic(path: str | Path, data: bytes) -> None:
    """Write to a temporary file and rename: a crash or a full disk never leaves a torn file behind
    (the old file, if any, stays whole)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    try:
        tmp.write_bytes(data)
    except OSError:
        tmp.unlink(missing_ok=True)
        raise
    os.replace(tmp, path)


def write_json(path: str | Path, obj) -> None:
    """Sorted keys and a trailing newline: the same data always gives the same bytes. Atomic."""
    write_atomic(path, (json.dumps(obj, indent=2, sort_keys=True, default=_plain) + "\n").encode())


def warn(message: str) -> None:
    print(f"warning: {message}", file=sys.stderr, flush=True)


def sha256_file(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_json(path: str | Path):
    return json.loads(Path(path).read_text())


def _plain(o):
    if hasattr(o, "item"):
        return o.item()      # numpy scalars
    if hasattr(o, "tolist"):
        return o.tolist()
    raise TypeError(f"not JSON-serialisable: {type(o).__name__}")


def reward_fingerprint(task: str, reward: str) -> str:
    """sha256 of a reward version's code: its module and the reward code it imports (its task's
    shared terms), as the stages' code deps read them (pipeline/codedeps.py)."""
    from envs import rewards
    from pipeline import codedeps
    rewards.module_path(task, reward)           # an unknown version raises, naming the valid ones
    digest = hashlib.sha256()
    for rel in codedeps.closure([f"envs/rewards/{task}/{reward}.py"]):
        if rel.startswith(f"envs/rewards/{task}/"):
            digest.update(rel.encode() + b"\0" + (codedeps.ROOT / rel).read_bytes())
    return digest.hexdigest()


# Env settings that change what the policy sees: a checkpoint must match them exactly.
OBS_KEYS = ("obs_mode", "image_size", "frame_stack")


def policy_env(algo: str, env_params: dict, found: list[tuple[Path, dict]]) -> dict:
    """The env settings to evaluate or render a run's checkpoints on: the env block with what the
    algorithm imposes (HER: goal observations; DrQ-v2: pixels with the frame stack of its block; a
    residual learner: its base and blending; all read from the checkpoint), without a curriculum. Check each checkpoint against them
    with check_checkpoint."""
    import algos
    path, meta = found[-1]
    if meta["algo"] != algo:
        raise StageError(f"refusing checkpoint {path}: algorithm is {meta['algo']!r}, asked for {algo!r}")
    # Evaluation runs at env.curriculum_stage: a training curriculum never applies.
    residual = meta.get("residual")      # a residual learner's blending, as it trained
    residual = {k: v for k, v in residual.items() if k != "base"} if residual else None
    return {**algos.env_settings(algo, env_params, meta["hparams"], residual), "curriculum_from": -1}


def check_checkpoint(meta: dict, path, task: str, reward: str, obs_env: dict) -> None:
    """Refuse a checkpoint made for another task, reward version or reward code (devlog 001's
    silent v11-for-v19 mix-up), or one whose observations differ from the env we build."""
    fingerprint = reward_fingerprint(task, reward)
    problems = []
    if meta["task"] != task:
        problems.append(f"task is {meta['task']!r}, asked for {task!r}")
    if meta["reward"] != reward:
        problems.append(f"reward version is {meta['reward']!r}, asked for {reward!r}")
    elif meta["reward_fingerprint"] != fingerprint:
        problems.append(f"reward {reward} code changed since training (fingerprint {meta['reward_fingerprint'][:12]} "
                        f"in checkpoint, {fingerprint[:12]} now): retrain")
    # The env the policy was trained on: HER on goal obs and DrQ-v2 on its frame stack, whatever the
    # env block says (metadata older than trained_env recorded only the obs_mode).
    trained = meta.get("trained_env") or {**meta["env"], "obs_mode": meta["obs_mode"]}
    for key, value in obs_env.items():
        if trained.get(key) != value:
            problems.append(f"env.{key} is {trained.get(key)!r} in checkpoint, {value!r} here")
    if problems:
        raise StageError(f"refusing checkpoint {path}: " + "; ".join(problems))


IMPORTS_LOG = "PIPELINE_IMPORTS_LOG"     # a folder: each stage writes the project modules it loaded there


def log_imports() -> None:
    """With $PIPELINE_IMPORTS_LOG set, record this stage's command line and every project module it
    has loaded (pipeline/smoke.py checks them against the stage's declared code deps)."""
    folder = os.environ.get(IMPORTS_LOG)
    if not folder:
        return
    root = Path(__file__).resolve().parent.parent
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
    except (StageError, cfg.ParamsError, FloatingPointError) as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:      # a second Ctrl-C during training, or Ctrl-C in another stage
        print("stopped by Ctrl-C; the last checkpoint written stands", file=sys.stderr)
        sys.exit(130)
