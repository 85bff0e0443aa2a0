"""Where an artifact came from: the commit, the library versions, the reward code's fingerprint."""
from __future__ import annotations

import hashlib
import platform
import subprocess
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LIBRARIES = ("torch", "mujoco", "gymnasium", "stable-baselines3", "numpy", "pandas", "pyarrow")


def git_commit() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True,
                             cwd=ROOT)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], capture_output=True,
                               text=True, cwd=ROOT).stdout.strip()
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

def loaded_code() -> dict[str, str]:
    """{file: sha256} of every project module this process has loaded: the code that made what it
    writes (the results page marks a result stale when one of these files changes)."""
    import sys
    out = {}
    for name, module in list(sys.modules.items()):
        path = getattr(module, "__file__", None)
        if name.split(".")[0] in ("pipeline", "envs", "algos") and path:
            path = Path(path).resolve()
            if path.is_relative_to(ROOT):
                out[str(path.relative_to(ROOT))] = hashlib.sha256(path.read_bytes()).hexdigest()
    return dict(sorted(out.items()))


def reward_fingerprint(task: str, reward: str) -> str:
    """sha256 of a reward version's code: its module and its task's shared terms (a version imports
    no other project code: pipeline/dag/registry.py refuses it)."""
    from envs import rewards
    rewards.module_path(task, reward)           # an unknown version raises, naming the valid ones
    digest = hashlib.sha256()
    for rel in sorted([f"envs/rewards/{task}/__init__.py", f"envs/rewards/{task}/{reward}.py"]):
        digest.update(rel.encode() + b"\0" + (ROOT / rel).read_bytes())
    return digest.hexdigest()
