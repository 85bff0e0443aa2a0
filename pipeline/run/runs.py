"""A training run's folder and its bookkeeping: where it works, what identifies it, what each
checkpoint records about where it came from, the episode log and the summary.

Until training completes everything lives in <out>.partial, renamed to <out> at the end: both DAG
tools delete a stage's declared outputs before running it, so checkpoints kept in <out> would be
lost on the rerun that should resume from them.
"""
from __future__ import annotations

import resource
import shutil
import time
from pathlib import Path

import pandas as pd

import algos
from pipeline.run import checkpoints, files, provenance


class Run:
    def __init__(self, args, hp: dict, env_params: dict, trained_env: dict, fingerprint: str, demos: dict | None = None):
        """demos: {path, sha256} of the demonstrations the run learns from, if any."""
        self.task, self.reward, self.algo, self.seed = args.task, args.reward, args.algo, args.seed
        self.final = Path(args.out)
        self.out = Path(str(args.out) + ".partial")
        self.started, self.prior_wall = time.time(), 0.0
        self.hp, self.trained_env = hp, trained_env
        self.total = algos.total_steps(args.algo, hp)     # 0: an algorithm that learns nothing (algos/scripted.py)
        self.every = args.checkpoint_every
        # Everything that decides the result: a resume is allowed only when all of it matches.
        self.identity = {"task": args.task, "reward": args.reward, "reward_fingerprint": fingerprint,
                         "algo": self.algo, "seed": self.seed, "env": env_params, "hparams": hp,
                         "residual": trained_env.get("residual"), "checkpoint_every": self.every}
        if demos is not None:
            self.identity["demos"] = demos

    def wall(self) -> float:
        return round(self.prior_wall + time.time() - self.started, 1)

    def metadata(self, **extra) -> dict:
        """What a checkpoint records besides its files (pipeline/run/checkpoints.py adds those)."""
        return {**self.identity, "total_timesteps": self.total, "wall_s": self.wall(),
                "obs_mode": self.trained_env["obs_mode"], "trained_env": self.trained_env,
                # This process's peak memory so far: growth from checkpoint to checkpoint is a leak.
                "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
                "versions": provenance.versions(), "git_commit": provenance.git_commit(),
                "code_sha256": provenance.loaded_code(), **extra}

    def write_log(self, episodes: list[dict]) -> None:
        """train_log.parquet: one row per finished training episode."""
        # No episodes (an offline learner takes no env steps): still the columns a reader selects on.
        df = pd.DataFrame(episodes) if episodes else pd.DataFrame({"global_step": [], "env": []}, dtype="int64")
        df.insert(0, "seed", self.seed)
        df.insert(0, "algo", self.algo)
        df.to_parquet(self.out / "train_log.parquet", index=False)

    def finish(self, global_step: int, steps_run: int, resumed_from, episodes: int) -> None:
        files.write_json(self.out / "run.json", {
            "task": self.task, "reward": self.reward, "algo": self.algo, "seed": self.seed,
            "global_step": global_step, "wall_s": self.wall(),
            "env_steps_per_s": round(steps_run / max(time.time() - self.started, 1e-9), 1),
            "resumed_from": resumed_from, "episodes": episodes})
        # A finished run is never resumed: its resume state (replay buffers) would only fill the DVC cache.
        checkpoints.drop_resume_state(self.out)
        if self.final.exists():
            shutil.rmtree(self.final)
        self.out.rename(self.final)
        print(f"done: {global_step} steps, {self.wall():.0f} s")
