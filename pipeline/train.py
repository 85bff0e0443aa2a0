"""Stage `train`: one Stable-Baselines3 run (algorithm x seed) on the batched vector env.

    python -m pipeline.train --task lift --reward v19 --algo ppo --seed 0 \
        --sanity data/sanity/lift_mujoco.json --out data/runs/lift_v19/ppo/seed0 --threads 1 \
        --env.max_episode_steps 200 ... --ppo.learning_rate 0.0003 ... --checkpoint_every 50000

Writes into --out:
  checkpoints/step_<global step>.zip   the model (plus replay_<step>.pkl for off-policy algorithms,
                                       kept for the latest checkpoint only, so a resume keeps it)
  checkpoints/step_<global step>.json  where it came from: task, reward + fingerprint, algo, step,
                                       seed, params, library versions, git commit
  train_log.parquet                    one row per finished training episode (from final_info)
  tb/                                  TensorBoard
  run.json                             summary: wall time, env steps/s, final step

Until training completes everything lives in <out>.partial (the DAG tools delete declared outputs
before a rerun); a rerun of the same command finding checkpoints of the same configuration there
resumes from the latest one (weights, optimiser, replay buffer, global step, wall time) instead of
starting over, and ends with the same step count.
"""
from __future__ import annotations

import argparse
import shutil
import time
from pathlib import Path

import numpy as np
import pandas as pd
from stable_baselines3.common.callbacks import BaseCallback
from tqdm import tqdm

from pipeline import common
from pipeline import config as cfg


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--task", required=True)
    ap.add_argument("--reward", required=True)
    ap.add_argument("--algo", required=True, choices=cfg.ALGOS)
    ap.add_argument("--seed", type=int, required=True)
    ap.add_argument("--sanity", required=True, help="the sanity stage's JSON; training refuses a broken env")
    ap.add_argument("--out", required=True, help="run folder")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (the job's cores)")
    common.add_block_args(ap, "env", "checkpoint_every")
    common.add_block_args(ap, *cfg.ALGOS, required=False)   # only the --algo block is needed
    return ap.parse_args(argv)


class Recorder(BaseCallback):
    """Logs every finished episode, saves checkpoints on a fixed global-step grid, drives tqdm."""

    def __init__(self, run: "Run"):
        super().__init__()
        self.run = run
        self.bar = None

    def _on_training_start(self):
        self.bar = tqdm(total=self.run.total, initial=self.num_timesteps, unit="step", mininterval=5.0,
                        desc=f"{self.run.algo} seed{self.run.seed}")

    def _on_step(self) -> bool:
        self.bar.update(self.training_env.num_envs)
        for env_id, info in enumerate(self.locals["infos"]):
            if "final_info" in info:
                self.run.episodes.append({"global_step": self.num_timesteps, "env": env_id, **info["final_info"]})
                for k in ("success_once", "max_cube_z", "grasp_steps"):
                    self.logger.record_mean(f"rollout/{k}", float(info["final_info"][k]))
        if self.num_timesteps >= self.run.next_checkpoint:
            self.run.save(self.model, self.num_timesteps)
        return True

    def _on_training_end(self):
        self.bar.close()


class Run:
    def __init__(self, args):
        self.args = args
        self.algo, self.seed = args.algo, args.seed
        # Work happens in <out>.partial, renamed to <out> when training completes: both DAG tools
        # delete a stage's declared outputs before running it, so checkpoints kept there would be
        # lost on the rerun that should resume from them.
        self.final = Path(args.out)
        self.out = Path(str(args.out) + ".partial")
        self.ckpt_dir = self.out / "checkpoints"
        self.started, self.prior_wall = time.time(), 0.0
        self.hp = common.block(args, args.algo)
        self.env_params = common.block(args, "env")
        self.total = self.hp["total_timesteps"]
        self.every = args.checkpoint_every
        self.episodes: list[dict] = []
        self.next_checkpoint = 0
        import envs
        self.fingerprint = envs.rewards.fingerprint(args.task, args.reward)
        # Everything that decides the result: a resume is allowed only when all of it matches.
        self.identity = {"task": args.task, "reward": args.reward, "reward_fingerprint": self.fingerprint,
                         "algo": self.algo, "seed": self.seed, "env": self.env_params, "hparams": self.hp,
                         "checkpoint_every": self.every}

    def wall(self) -> float:
        return round(self.prior_wall + time.time() - self.started, 1)

    def metadata(self, step: int) -> dict:
        return {**self.identity, "global_step": step, "total_timesteps": self.total, "wall_s": self.wall(),
                "obs_mode": self._obs_mode(), "versions": common.versions(), "git_commit": common.git_commit()}

    def _obs_mode(self):
        from algos import sb3
        return sb3.obs_mode(self.algo, self.env_params)

    def save(self, model, step: int):
        """Write a checkpoint; its JSON is written last, so a run killed mid-save leaves the previous
        checkpoint (and its replay buffer) as the latest complete one."""
        from algos import sb3
        self.ckpt_dir.mkdir(parents=True, exist_ok=True)
        stem = self.ckpt_dir / f"step_{step:09d}"
        model.save(str(stem) + ".zip")
        if sb3.has_replay_buffer(self.algo):
            model.save_replay_buffer(str(self.ckpt_dir / f"replay_{step:09d}.pkl"))
        self._write_log()
        common.write_json(str(stem) + ".json", self.metadata(step))
        # Only the latest buffer is kept: it is all a resume needs, and it can be gigabytes.
        for old in self.ckpt_dir.glob("replay_*.pkl"):
            if old.name != f"replay_{step:09d}.pkl":
                old.unlink()
        while self.next_checkpoint <= step:
            self.next_checkpoint += self.every

    def _write_log(self):
        df = pd.DataFrame(self.episodes)
        if not df.empty:
            df.insert(0, "seed", self.seed)
            df.insert(0, "algo", self.algo)
        df.to_parquet(self.out / "train_log.parquet", index=False)

    def resumable(self):
        """The latest checkpoint if this folder holds the same configuration, else None (start clean)."""
        try:
            found = common.checkpoints(self.out)
        except common.StageError:
            return None
        path, meta = found[-1]
        same = all(meta.get(k) == v for k, v in self.identity.items())
        return (path, meta) if same and path.exists() else None


def train(args) -> int:
    import envs
    from algos import sb3

    common.set_threads(args.threads)
    problems = cfg.task_reward_problems(args.task, args.reward, [args.algo], full=True)
    if problems:
        raise cfg.ParamsError("; ".join(problems))
    missing = [f"--{args.algo}.{k}" for k in cfg.BLOCKS[args.algo] if getattr(args, f"{args.algo}.{k}") is None]
    if missing:
        raise common.StageError(f"algorithm {args.algo} needs {', '.join(missing)}")
    sanity = common.read_json(args.sanity)
    if not sanity.get("ok"):
        raise common.StageError(f"{args.sanity} says the env is broken: {'; '.join(sanity.get('problems', []))}")

    run = Run(args)
    resume = run.resumable()
    if resume is None and run.out.exists():
        shutil.rmtree(run.out)      # stale or foreign contents: never mix two configurations
    run.out.mkdir(parents=True, exist_ok=True)

    env_kwargs = {**run.env_params, "obs_mode": sb3.obs_mode(args.algo, run.env_params)}
    vec = envs.SB3VecEnv(envs.make_vec_env(args.task, args.reward, run.hp["num_envs"], seed=args.seed, **env_kwargs))
    vec.seed(args.seed)
    if resume:
        path, meta = resume
        model = sb3.load(args.algo, path, env=vec)
        step = meta["global_step"]
        replay = run.ckpt_dir / f"replay_{step:09d}.pkl"
        if sb3.has_replay_buffer(args.algo):
            if not replay.exists():
                raise common.StageError(f"cannot resume {path}: its replay buffer {replay} is missing")
            model.load_replay_buffer(str(replay))
        old = pd.read_parquet(run.out / "train_log.parquet")
        if not old.empty:   # episodes logged after the checkpoint are replayed by the resumed run
            run.episodes = old[old.global_step <= step].drop(columns=["algo", "seed"]).to_dict("records")
        run.next_checkpoint = step + run.every
        run.prior_wall = meta["wall_s"]
        print(f"resuming {args.algo} seed {args.seed} from global step {step}")
    else:
        model = sb3.build(args.algo, vec, run.hp, args.seed, tensorboard_log=str(run.out / "tb"))
        run.save(model, 0)          # the untrained policy: the baseline every later checkpoint improves on
        step = 0

    remaining = run.total - model.num_timesteps
    if remaining > 0:
        # reset_num_timesteps=False keeps the global step (devlog 004: a resume must not count from 0).
        model.learn(total_timesteps=remaining, callback=Recorder(run), reset_num_timesteps=not resume,
                    tb_log_name="tb", progress_bar=False)
    if model.num_timesteps > step and not (run.ckpt_dir / f"step_{model.num_timesteps:09d}.json").exists():
        run.save(model, model.num_timesteps)
    steps_run = model.num_timesteps - step
    common.write_json(run.out / "run.json", {
        "task": args.task, "reward": args.reward, "algo": args.algo, "seed": args.seed,
        "global_step": model.num_timesteps, "wall_s": run.wall(),
        "env_steps_per_s": round(steps_run / max(time.time() - run.started, 1e-9), 1),
        "episodes": len(run.episodes), "resumed_from": step if resume else None})
    if run.final.exists():
        shutil.rmtree(run.final)
    run.out.rename(run.final)
    vec.close()
    print(f"done: {model.num_timesteps} steps, {len(run.episodes)} episodes, {run.wall():.0f} s")
    return 0


def main(argv=None) -> int:
    return train(parse_args(argv))


if __name__ == "__main__":
    common.run_main(main)
