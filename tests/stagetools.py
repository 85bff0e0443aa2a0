"""Test helpers for the stage CLIs: their arguments on the smoke params, running them, and reading
what a training run ended with."""
from __future__ import annotations

import copy
import shlex
import subprocess
import sys
import time
from pathlib import Path

from pipeline.dag import params as cfg
from pipeline.dag.registry import STAGES, flags

PARAMS = cfg.merge(cfg.load(), cfg.load(cfg.PARAMS_FILE.parent / "config" / "smoke.yaml"))
ENV = {"OMP_NUM_THREADS": "1", "PATH": ""}


def stage(module, *args, check=True):
    proc = subprocess.run([sys.executable, "-m", f"pipeline.{module}", *map(str, args)],
                          capture_output=True, text=True, env=ENV)
    if check and proc.returncode != 0:
        raise AssertionError(proc.stdout + proc.stderr)
    return proc


def train_args(out, sanity, algo="ppo", reward="v19", seed=0, every=128, total=256, chunk_steps=0, retries=2):
    p = cfg.merge(PARAMS, {algo: {"total_timesteps": total}, "checkpoint_every": every,
                           "train": {"chunk_steps": chunk_steps, "chunk_retries": retries}})
    return [str(a) for a in ["--task", "lift", "--reward", reward, "--algo", algo, "--seed", seed, "--sanity", sanity,
                             "--out", out, "--threads", 1, *shlex.split(flags(STAGES["train"], p, algo))]]


def start_training(*args, stdout=subprocess.DEVNULL) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "pipeline.train", *args], stdout=stdout,
                            stderr=subprocess.STDOUT if stdout == subprocess.PIPE else subprocess.DEVNULL,
                            text=True, env=ENV)


def wait_for(path: Path, proc: subprocess.Popen, timeout: float = 300) -> None:
    """Wait until path exists while proc keeps running."""
    deadline = time.time() + timeout
    while not path.exists():
        assert proc.poll() is None, f"training ended before {path.name} appeared"
        assert time.time() < deadline, f"{path.name} did not appear within {timeout} s"
        time.sleep(0.05)


def checkpoint_steps(algo, total, every=128):
    """The checkpoint steps of an uninterrupted run: every `every` steps, except that PPO saves
    between rollouts (num_envs * n_steps steps each), at the first rollout boundary past each
    grid point, and finishes its last rollout."""
    rollout = PARAMS["ppo"]["num_envs"] * PARAMS["ppo"]["n_steps"] if algo == "ppo" else 1
    up = lambda n: -(-n // rollout) * rollout
    return sorted({0, up(total), *(up(g) for g in range(every, total + 1, every))})


def final_weights(run: Path) -> dict:
    """name -> tensor of every network weight in a finished run's last checkpoint (SB3 or DrQ-v2)."""
    from pipeline.run import checkpoints
    return checkpoints.final_weights(run)


def same_weights(a: dict, b: dict) -> bool:
    from pipeline.run import checkpoints
    return checkpoints.same_weights(a, b)


def params_errors(mutate) -> str:
    """The validation errors of params.yaml as changed by mutate (which must make it invalid)."""
    import pytest

    from pipeline.run import settings
    params = copy.deepcopy(cfg.load())
    mutate(params)
    with pytest.raises(settings.ParamsError) as e:
        cfg.validate(params)
    return str(e.value)
