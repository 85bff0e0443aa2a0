"""Stage `train`: one run (algorithm x seed) on the batched vector env: PPO, SAC, HER
(Stable-Baselines3) or DrQ-v2 (algos/drqv2.py, from the wrist camera's pixels).

    python -m pipeline.train --task lift --reward v19 --algo ppo --seed 0 \
        --sanity data/sanity/lift_mujoco.json --out data/runs/lift_v19/ppo/seed0 --threads 1 \
        --env.max_episode_steps 200 ... --ppo.learning_rate 0.0003 ... --checkpoint_every 50000

Writes into --out:
  checkpoints/step_<global step>.zip   the model (plus replay_<step>.pkl for off-policy algorithms,
                                       kept for the latest checkpoint only, so a resume keeps it)
  checkpoints/step_<global step>.pt    DrQ-v2 instead: the agent (DrQV2Agent.from_checkpoint reads it);
  trainer/                             its resume state, latest only: trainer.pt (agent, optimisers,
                                       RNG, steps, episodes) and the replay buffer's chunks (deleted
                                       when the run completes)
  checkpoints/step_<global step>.json  where it came from: task, reward + fingerprint, algo, step,
                                       seed, params, the env it trained on, library versions, git commit
  train_log.parquet                    one row per finished training episode (from final_info)
  tb/                                  TensorBoard
  run.json                             summary: wall time, env steps/s, final step

Until training completes everything lives in <out>.partial (the DAG tools delete declared outputs
before a rerun); a rerun of the same command finding checkpoints of the same configuration there
resumes from the latest one (weights, optimiser, replay buffer, global step, wall time) instead of
starting over, and ends with the same step count.

DrQ-v2 trains on pixels (obs_mode "pixels", frame_stack from its block) whatever env.obs_mode says,
as HER trains on goal observations; the checkpoint metadata records that env as `trained_env`.
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import shutil
import time
from pathlib import Path

import pandas as pd
from tqdm import tqdm

import algos
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


def recorder(run: "Run"):
    """An SB3 callback that logs every finished episode, saves checkpoints on a fixed global-step
    grid and drives tqdm (built here so that a DrQ-v2 run never imports Stable-Baselines3)."""
    from stable_baselines3.common.callbacks import BaseCallback
    from stable_baselines3.common.on_policy_algorithm import OnPolicyAlgorithm

    class Recorder(BaseCallback):
        def __init__(self):
            super().__init__()
            self.bar = None
            self.on_policy = False
            self.rollout_start = 0

        def _on_training_start(self):
            self.bar = progress_bar(run, self.num_timesteps)
            self.on_policy = isinstance(self.model, OnPolicyAlgorithm)

        def resume_point(self) -> int:
            """The global step an interrupted run can be saved at: for PPO the start of the current
            rollout (the weights have not changed since; its partial rollout is discarded)."""
            return self.rollout_start if self.on_policy else self.num_timesteps

        def _on_rollout_start(self):
            self.rollout_start = self.num_timesteps
            # On-policy (PPO): checkpoint between rollouts, where the weights were just updated and
            # the step count is a whole number of rollouts. A mid-rollout checkpoint would resume
            # with a shifted rollout grid and end at another step count than an uninterrupted run.
            if self.on_policy and self.num_timesteps >= run.next_checkpoint:
                run.save(self.model, self.num_timesteps)

        def _on_step(self) -> bool:
            self.bar.update(self.training_env.num_envs)
            for env_id, info in enumerate(self.locals["infos"]):
                if "final_info" in info:
                    run.episodes.append({"global_step": self.num_timesteps, "env": env_id, **info["final_info"]})
                    for k in ("success_once", "max_cube_z", "grasp_steps"):
                        self.logger.record_mean(f"rollout/{k}", float(info["final_info"][k]))
            if not self.on_policy and self.num_timesteps >= run.next_checkpoint:
                run.save(self.model, self.num_timesteps)
            return True

        def _on_training_end(self):
            self.bar.close()
    return Recorder()


def progress_bar(run: "Run", initial: int):
    return tqdm(total=run.total, initial=initial, unit="step", mininterval=5.0, desc=f"{run.algo} seed{run.seed}")


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
        # The env it trains on: the env block, with the obs_mode (and for DrQ-v2 the frame stack)
        # the algorithm imposes.
        self.trained_env = algos.env_settings(self.algo, self.env_params, self.hp)
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

    def metadata(self, step: int, model_file: str, **extra) -> dict:
        return {**self.identity, "global_step": step, "total_timesteps": self.total, "wall_s": self.wall(),
                "obs_mode": self.trained_env["obs_mode"], "trained_env": self.trained_env, "model_file": model_file,
                "model_sha256": common.sha256_file(self.ckpt_dir / model_file),
                "versions": common.versions(), "git_commit": common.git_commit(), **extra}

    def advance(self, step: int):
        """The next checkpoint is the first grid point after step."""
        while self.next_checkpoint <= step:
            self.next_checkpoint += self.every

    def save(self, model, step: int):
        """Write a checkpoint; its JSON is written last, so a run killed mid-save leaves the previous
        checkpoint (and its replay buffer) as the latest complete one."""
        from algos import sb3
        check_finite_weights(model.policy.named_parameters(), step, self)
        self.ckpt_dir.mkdir(parents=True, exist_ok=True)
        stem = self.ckpt_dir / f"step_{step:09d}"
        model.save(str(stem) + ".zip")
        if sb3.has_replay_buffer(self.algo):
            model.save_replay_buffer(str(self.ckpt_dir / f"replay_{step:09d}.pkl"))
        self._write_log()
        common.write_json(str(stem) + ".json", self.metadata(step, stem.name + ".zip"))
        # The buffers of the two latest checkpoints are kept (they can be gigabytes): the previous
        # one is what a resume needs when the latest checkpoint turns out torn or corrupted.
        for old in sorted(self.ckpt_dir.glob("replay_*.pkl"))[:-2]:
            old.unlink()
        self.advance(step)

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
        state = path.exists() and (self.algo != "drqv2" or (self.out / DRQV2_STATE / "trainer.pt").exists())
        return (path, meta) if same and state else None

    def finish(self, global_step: int, steps_run: int, resumed_from):
        common.write_json(self.out / "run.json", {
            "task": self.args.task, "reward": self.args.reward, "algo": self.algo, "seed": self.seed,
            "global_step": global_step, "wall_s": self.wall(),
            "env_steps_per_s": round(steps_run / max(time.time() - self.started, 1e-9), 1),
            "episodes": len(self.episodes), "resumed_from": resumed_from})
        if self.final.exists():
            shutil.rmtree(self.final)
        self.out.rename(self.final)
        print(f"done: {global_step} steps, {len(self.episodes)} episodes, {self.wall():.0f} s")


def train(args) -> int:
    common.set_threads(args.threads)
    problems = cfg.task_reward_problems(args.task, args.reward, [args.algo], full=True)
    if problems:
        raise cfg.ParamsError("; ".join(problems))
    missing = [f"--{args.algo}.{k}" for k, f in cfg.BLOCKS[args.algo].items()
               if getattr(args, f"{args.algo}.{k}") is None and not f.optional]
    if missing:
        raise common.StageError(f"algorithm {args.algo} needs {', '.join(missing)}")
    if args.algo == "drqv2":
        try:    # a bad override (say a malformed schedule) stops here, before the env is built
            algos.drqv2_config(common.block(args, "drqv2"), args.seed, args.threads)
        except ValueError as e:
            raise cfg.ParamsError(str(e)) from None
    sanity = common.read_json(args.sanity)
    if not sanity.get("ok"):
        raise common.StageError(f"{args.sanity} says the env is broken: {'; '.join(sanity.get('problems', []))}")

    run = Run(args)
    resume = run.resumable()
    if resume is None and run.out.exists():
        shutil.rmtree(run.out)      # stale or foreign contents: never mix two configurations
    run.out.mkdir(parents=True, exist_ok=True)
    if args.algo == "drqv2":
        return train_drqv2(args, run, resume)
    return train_sb3(args, run, resume)


def train_sb3(args, run: Run, resume) -> int:
    import envs
    from algos import sb3

    vec = envs.SB3VecEnv(envs.make_vec_env(args.task, args.reward, run.hp["num_envs"], seed=args.seed,
                                           **run.trained_env))
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
        run.advance(step)      # the next grid point after step: an off-grid (Ctrl-C) save keeps the grid
        run.prior_wall = meta["wall_s"]
        print(f"resuming {args.algo} seed {args.seed} from global step {step}")
    else:
        model = sb3.build(args.algo, vec, run.hp, args.seed, tensorboard_log=str(run.out / "tb"))
        run.save(model, 0)          # the untrained policy: the baseline every later checkpoint improves on
        step = 0

    remaining = run.total - model.num_timesteps
    if remaining > 0:
        callback = recorder(run)
        try:
            # reset_num_timesteps=False keeps the global step (devlog 004: a resume must not count from 0).
            model.learn(total_timesteps=remaining, callback=callback, reset_num_timesteps=not resume,
                        tb_log_name="tb", progress_bar=False)
        except KeyboardInterrupt:   # Ctrl-C: save where a resume can continue exactly, then stop
            saved = callback.resume_point()
            model.num_timesteps = saved
            if not (run.ckpt_dir / f"step_{saved:09d}.json").exists():
                run.save(model, saved)
            vec.close()
            print(f"interrupted: checkpoint saved at global step {saved}; rerun the same command to resume")
            return 130
    if model.num_timesteps > step and not (run.ckpt_dir / f"step_{model.num_timesteps:09d}.json").exists():
        run.save(model, model.num_timesteps)
    vec.close()
    run.finish(model.num_timesteps, model.num_timesteps - step, step if resume else None)
    return 0


# --- DrQ-v2 ------------------------------------------------------------------------------------

DRQV2_STATE = "trainer"     # <run>/trainer/: DrQV2Trainer.save's resume state (latest checkpoint only)


def drqv2_row(record: dict) -> dict:
    """A DrQ-v2 episode record as a train_log row, in the SB3 runs' columns: global_step, env and
    the env's final_info (return, episode_len, success_once, ..., reward/<component>)."""
    stats = {k: v for k, v in record.items() if k not in ("step", "env", "episode_return", "episode_length")}
    return {"global_step": record["step"], "env": record["env"], **stats}


def check_finite_weights(named_parameters, step: int, run: "Run") -> None:
    """Refuse to checkpoint a diverged network: stop with the step and the parameter, keeping the
    last good checkpoint as the latest (NaN in observations or rewards already stops in the env)."""
    import torch
    for name, value in named_parameters:
        if not torch.isfinite(value).all():
            last = max((int(p.stem[5:]) for p in run.ckpt_dir.glob("step_*.json")), default=None)
            raise common.StageError(f"non-finite weights in {name} at global step {step} ({run.algo} seed "
                                    f"{run.seed}); last good checkpoint: step {last}")


def save_drqv2(run: Run, trainer, writer=None) -> None:
    """A checkpoint at the trainer's global step. Order matters for a run killed mid-save:
    1. checkpoints/step_N.pt, the agent (a file no metadata points at yet);
    2. trainer/ (replay chunks, then trainer.pt by atomic rename): the resume point;
    3. train_log.parquet, then checkpoints/step_N.json, which makes step N a checkpoint.
    Killed before 2, the run resumes from the previous checkpoint; between 2 and 3, it resumes at
    step N and writes N's metadata first thing (save_drqv2 again: the agent is the same)."""
    import torch
    step = trainer.global_step
    agent = trainer.agent
    check_finite_weights(((f"{part}.{name}", value) for part in ("encoder", "actor", "critic")
                          for name, value in getattr(agent, part).named_parameters()), step, run)
    run.ckpt_dir.mkdir(parents=True, exist_ok=True)
    stem = run.ckpt_dir / f"step_{step:09d}"
    tmp = stem.with_suffix(".pt.tmp")
    # The trainer.pt layout ({"agent": ...}), so DrQV2Agent.from_checkpoint reads it.
    torch.save({"agent": trainer.agent.state_dict(), "global_step": step, "num_updates": trainer.num_updates}, tmp)
    os.replace(tmp, stem.with_suffix(".pt"))
    trainer.save(run.out / DRQV2_STATE)
    run.episodes = [drqv2_row(r) for r in trainer.episodes]
    run._write_log()
    config = {k: v for k, v in dataclasses.asdict(trainer.config).items() if k != "torch_threads"}
    common.write_json(str(stem) + ".json", run.metadata(
        step, stem.name + ".pt", num_updates=trainer.num_updates, drqv2_config=config,
        device=str(trainer.agent.device)))
    if writer is not None:
        writer.flush()
    run.advance(step)


def train_drqv2(args, run: Run, resume) -> int:
    import envs
    from torch.utils.tensorboard import SummaryWriter

    from algos.drqv2 import DrQV2Trainer

    config = algos.drqv2_config(run.hp, args.seed, args.threads)
    vec = envs.make_vec_env(args.task, args.reward, run.hp["num_envs"], seed=args.seed, **run.trained_env)
    writer = SummaryWriter(str(run.out / "tb" / "drqv2"))

    def on_episode(record):
        for k in ("return", "episode_len", "success_once", "max_cube_z", "grasp_steps"):
            if k in record:
                writer.add_scalar(f"rollout/{k}", float(record[k]), record["step"])

    trainer = DrQV2Trainer(vec, config, on_episode=on_episode)
    if resume:
        path, meta = resume
        trainer.load(run.out / DRQV2_STATE)     # agent, optimisers, replay, RNG, steps, episode log
        step = trainer.global_step
        run.prior_wall = meta["wall_s"]
        run.episodes = [drqv2_row(r) for r in trainer.episodes]
        print(f"resuming {args.algo} seed {args.seed} from global step {step}")
        run.advance(meta["global_step"])
        if step > meta["global_step"]:      # killed after the resume point, before its metadata
            save_drqv2(run, trainer, writer)
    else:
        save_drqv2(run, trainer, writer)    # the untrained policy: the baseline every later checkpoint improves on
        step = 0

    bar = progress_bar(run, trainer.global_step)
    # Train in short legs, so the progress bar and TensorBoard move, stopping at every grid point.
    leg = trainer.num_envs * 25
    while trainer.global_step < run.total:
        before = trainer.global_step
        trainer.train_until(min(run.total, run.next_checkpoint, before + leg), progress=False)
        bar.update(trainer.global_step - before)
        for k, v in trainer.metrics.items():
            writer.add_scalar(f"train/{k}", v, trainer.global_step)
        writer.add_scalar("train/num_updates", trainer.num_updates, trainer.global_step)
        if trainer.global_step >= run.next_checkpoint:
            save_drqv2(run, trainer, writer)
    bar.close()
    if not (run.ckpt_dir / f"step_{trainer.global_step:09d}.json").exists():
        save_drqv2(run, trainer, writer)
    writer.close()
    vec.close()
    run.finish(trainer.global_step, trainer.global_step - step, step if resume else None)
    # A finished run is never resumed (a rerun starts over in <out>.partial), so its resume state,
    # which holds the replay buffer (up to drqv2.replay_memory_bytes), would only fill the DVC cache.
    shutil.rmtree(run.final / DRQV2_STATE, ignore_errors=True)
    return 0


def main(argv=None) -> int:
    return train(parse_args(argv))


if __name__ == "__main__":
    common.run_main(main)
