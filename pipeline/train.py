"""Stage `train`: one run (algorithm x seed) on the batched vector env: PPO, SAC, HER
(Stable-Baselines3) or DrQ-v2 (algos/drqv2.py, from the wrist camera's pixels).

    python -m pipeline.train --task lift --reward v19 --algo ppo --seed 0 \
        --sanity data/sanity/lift_mujoco.json --out data/runs/lift_v19/ppo/seed0 --threads 1 \
        --env.max_episode_steps 200 ... --ppo.learning_rate 0.0003 ... --checkpoint_every 50000

Writes into --out:
  checkpoints/step_<global step>.zip   the model
  checkpoints/resume_<step>.pkl        what else continuing exactly needs: the envs' episodes in flight
                                       (physics, randomised models, generators, statistics), the
                                       training loop's last observations and the torch/numpy/python
                                       RNG states; with replay_<step>.pkl (off-policy algorithms),
                                       kept for the two latest checkpoints
  checkpoints/step_<global step>.pt    DrQ-v2 instead: the agent (DrQV2Agent.from_checkpoint reads it);
  trainer/                             its resume state, latest only: trainer.pt (agent, optimisers,
                                       RNG, steps, episodes) and the replay buffer's chunks (deleted
                                       when the run completes)
  checkpoints/step_<global step>.json  where it came from: task, reward + fingerprint, algo, step,
                                       seed, params, the env it trained on, library versions, git commit
  train_log.parquet                    one row per finished training episode (from final_info)
  tb/                                  TensorBoard
  run.json                             summary: wall time, env steps/s, final step
  chunks.json                          with train.chunk_steps > 0: one row per chunk attempt (steps,
                                       exit code, peak RSS, wall time)

Until training completes everything lives in <out>.partial (the DAG tools delete declared outputs
before a rerun); a rerun of the same command finding checkpoints of the same configuration there
resumes from the latest one instead of starting over, and ends with the same weights as a run that
never stopped (tests/test_resume.py). SB3 runs checkpoint where their loop is consistent:
between rollouts (PPO) or env steps (SAC, HER), after the last update; Ctrl-C (or SIGTERM) saves
at the next such point and exits with 130, a second Ctrl-C stops at once.

With train.chunk_steps > 0 this process only supervises: each chunk of training runs in a fresh
child process (`--stop-at`), which resumes from the last checkpoint and saves one at its end. A
chunk that dies (a signal, exit 139) is rerun from the last checkpoint up to train.chunk_retries
times; the peak memory of every chunk is logged, so a leak shows as growth from chunk to chunk.

DrQ-v2 trains on pixels (obs_mode "pixels", frame_stack from its block) whatever env.obs_mode says,
as HER trains on goal observations; the checkpoint metadata records that env as `trained_env`.
"""
from __future__ import annotations

import argparse
import collections
import dataclasses
import os
import pickle
import random
import resource
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm import tqdm

import algos
from pipeline import common
from pipeline import config as cfg


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--task", required=True)
    ap.add_argument("--reward", required=True)
    ap.add_argument("--backend", default="mujoco", choices=cfg.BACKENDS, help="physics backend")
    ap.add_argument("--algo", required=True, choices=cfg.ALGOS)
    ap.add_argument("--seed", type=int, required=True)
    ap.add_argument("--sanity", required=True, help="the sanity stage's JSON; training refuses a broken env")
    ap.add_argument("--out", required=True, help="run folder")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (the job's cores)")
    common.add_block_args(ap, "env", "checkpoint_every", "train")
    # Set by the chunk supervisor for its children: train up to this global step, checkpoint, exit 0.
    ap.add_argument("--stop-at", type=int, default=None, help=argparse.SUPPRESS)
    common.add_block_args(ap, *cfg.ALGOS, required=False)   # only the --algo block is needed
    return ap.parse_args(argv)


class StopTraining(Exception):
    """Raised from the SB3 callback to leave learn() at a consistent point (chunk end, Ctrl-C)."""


def recorder(run: "Run"):
    """An SB3 callback that logs every finished episode, saves checkpoints on a fixed global-step
    grid and drives tqdm (built here so that a DrQ-v2 run never imports Stable-Baselines3)."""
    from stable_baselines3.common.callbacks import BaseCallback

    class Recorder(BaseCallback):
        def __init__(self):
            super().__init__()
            self.bar = None

        def _on_training_start(self):
            self.bar = progress_bar(run, self.num_timesteps)

        def _on_rollout_start(self):
            # Between rollouts (PPO) or env steps (SAC, HER: a rollout is one step of every env),
            # just after an update: weights, optimiser, replay buffer, envs and RNGs agree here, so
            # a checkpoint saved here continues exactly. Saved anywhere else, a resume would end at
            # another step count or with other weights. Chunk ends and Ctrl-C stop here too.
            n = self.num_timesteps
            stop = run.interrupted or n >= run.stop_at
            if (n >= run.next_checkpoint or stop) and not run.saved(n):
                run.save(self.model, n)
            if stop:
                raise StopTraining

        def _on_step(self) -> bool:
            self.bar.update(self.training_env.num_envs)
            for env_id, info in enumerate(self.locals["infos"]):
                if "final_info" in info:
                    run.episodes.append({"global_step": self.num_timesteps, "env": env_id, **info["final_info"]})
                    for k, v in info["final_info"].items():     # success, the task's metrics, reward terms
                        if k not in ("return", "episode_len"):
                            self.logger.record_mean(f"rollout/{k}", float(v))
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
        self.env_params = common.env_block(args)
        # The env it trains on: the env block, with the obs_mode (and for DrQ-v2 the frame stack)
        # the algorithm imposes.
        self.trained_env = algos.env_settings(self.algo, self.env_params, self.hp)
        self.total = self.hp["total_timesteps"]
        self.every = args.checkpoint_every
        self.episodes: list[dict] = []
        self.next_checkpoint = 0
        self.stop_at = args.stop_at if args.stop_at is not None else self.total
        self.interrupted = False       # set by Ctrl-C/SIGTERM: save at the next consistent point, exit 130
        self.vec = None                # the SB3 run's env, whose episodes in flight a checkpoint holds
        self.last_saved = None         # global step of the checkpoint this process saved last
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
                # This process's peak memory so far: growth from checkpoint to checkpoint is a leak.
                "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
                "versions": common.versions(), "git_commit": common.git_commit(), **extra}

    def saved(self, step: int) -> bool:
        """Whether this process saved (or resumed from) a checkpoint at step. Files on disk do not
        count: a torn checkpoint skipped at resume is rewritten when the run gets there again."""
        return self.last_saved == step

    def advance(self, step: int):
        """The next checkpoint is the first grid point after step."""
        while self.next_checkpoint <= step:
            self.next_checkpoint += self.every

    def save(self, model, step: int):
        """Write an SB3 checkpoint: the model, the resume state (and replay buffer), then the JSON
        that makes it a checkpoint, with the sha256 of every file. A run killed mid-save leaves the
        previous checkpoint as the latest complete one."""
        from algos import sb3
        check_finite_weights(model.policy.named_parameters(), step, self)
        self.ckpt_dir.mkdir(parents=True, exist_ok=True)
        stem = self.ckpt_dir / f"step_{step:09d}"
        model.save(str(stem) + ".zip")
        resume_files = [f"resume_{step:09d}.pkl"]
        common.write_atomic(self.ckpt_dir / resume_files[0], pickle.dumps(loop_state(model, self.vec)))
        if sb3.has_replay_buffer(self.algo):
            resume_files.append(f"replay_{step:09d}.pkl")
            model.save_replay_buffer(str(self.ckpt_dir / resume_files[1]))
        self._write_log()
        common.write_json(str(stem) + ".json", self.metadata(
            step, stem.name + ".zip", resume_files={f: common.sha256_file(self.ckpt_dir / f) for f in resume_files}))
        # Replay buffers can be gigabytes: those of the two latest checkpoints are kept, the previous
        # one for a resume that finds the latest checkpoint torn or corrupted.
        for pattern in ("replay_*.pkl", "resume_*.pkl"):
            for old in sorted(self.ckpt_dir.glob(pattern))[:-2]:
                old.unlink()
        self.last_saved = step
        self.advance(step)

    def _write_log(self):
        df = pd.DataFrame(self.episodes)
        if not df.empty:
            df.insert(0, "seed", self.seed)
            df.insert(0, "algo", self.algo)
        df.to_parquet(self.out / "train_log.parquet", index=False)

    def resumable(self, quiet: bool = False):
        """The latest checkpoint a run of this configuration can continue from exactly, else None
        (start clean). A checkpoint whose resume files are missing or fail their sha256 is skipped
        with a warning, for the one before it."""
        try:
            found = common.checkpoints(self.out, quiet=quiet)
        except common.StageError:
            return None
        if not all(found[-1][1].get(k) == v for k, v in self.identity.items()):
            return None
        if self.algo == "drqv2":     # its resume state is trainer/, the latest checkpoint's only
            return found[-1] if (self.out / DRQV2_STATE / "trainer.pt").exists() else None
        for path, meta in reversed(found):
            bad = [f for f, sha in meta.get("resume_files", {"(none recorded)": ""}).items()
                   if not (self.ckpt_dir / f).exists() or common.sha256_file(self.ckpt_dir / f) != sha]
            if not bad:
                return path, meta
            if not quiet:
                common.warn(f"cannot resume from {path.name}: {', '.join(bad)} missing or corrupt; trying the one before")
        return None

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


def train(args, argv) -> int:
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
    if common.block(args, "train")["chunk_steps"] > 0 and args.stop_at is None:
        return train_in_chunks(args, argv, run)
    resume = run.resumable()
    if resume is None and run.out.exists():
        shutil.rmtree(run.out)      # stale or foreign contents: never mix two configurations
    run.out.mkdir(parents=True, exist_ok=True)

    def stop_soon(signum, frame):
        if run.interrupted:          # a second Ctrl-C: stop now; the last checkpoint stands
            raise KeyboardInterrupt
        run.interrupted = True
        print("\nCtrl-C: saving a checkpoint at the next consistent point (Ctrl-C again to stop at once)",
              flush=True)
    signal.signal(signal.SIGINT, stop_soon)
    signal.signal(signal.SIGTERM, stop_soon)
    if args.algo == "drqv2":
        return train_drqv2(args, run, resume)
    return train_sb3(args, run, resume)


def stopped(run: Run, step: int) -> int:
    """The end of a process that stopped before the run's end: Ctrl-C (130) or a chunk's end (0)."""
    if run.interrupted:
        print(f"interrupted: checkpoint saved at global step {step}; rerun the same command to resume")
        return 130
    print(f"chunk done: checkpoint saved at global step {step}")
    return 0


# --- SB3: what a checkpoint holds besides the model and the replay buffer ---------------------------

LOOP_ATTRS = ("_last_obs", "_last_episode_starts", "_last_original_obs", "_episode_num",
              "ep_info_buffer", "ep_success_buffer")


def loop_state(model, vec) -> dict:
    """Everything an SB3 run carries between rollouts that model.save leaves out or cannot make
    consistent: the envs' episodes in flight, the loop's last observations and every RNG."""
    import torch
    return {"env": vec.env.get_state(), "loop": {k: getattr(model, k, None) for k in LOOP_ATTRS},
            "rng": {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate(),
                    "action_space": model.action_space.np_random.bit_generator.state}}


def restore_loop_state(model, vec, state: dict) -> None:
    import torch
    vec.env.set_state(state["env"])
    for k, v in state["loop"].items():
        setattr(model, k, v)
    torch.set_rng_state(state["rng"]["torch"])
    np.random.set_state(state["rng"]["numpy"])
    random.setstate(state["rng"]["python"])
    model.action_space.np_random.bit_generator.state = state["rng"]["action_space"]


def train_sb3(args, run: Run, resume) -> int:
    import envs
    from algos import sb3

    vec = envs.SB3VecEnv(envs.make_vec_env(args.task, args.reward, run.hp["num_envs"], seed=args.seed,
                                           **run.trained_env), reward_scale=run.hp.get("reward_scale", 1.0))
    vec.seed(args.seed)
    run.vec = vec
    if resume:
        path, meta = resume
        model = sb3.load(args.algo, path, env=vec)
        step = meta["global_step"]
        if sb3.has_replay_buffer(args.algo):
            model.load_replay_buffer(str(run.ckpt_dir / f"replay_{step:09d}.pkl"))
        # After load (which reseeds every RNG from the model's seed): the state of the moment it was saved.
        restore_loop_state(model, vec, pickle.loads((run.ckpt_dir / f"resume_{step:09d}.pkl").read_bytes()))
        old = pd.read_parquet(run.out / "train_log.parquet")
        if not old.empty:   # episodes logged after the checkpoint are replayed by the resumed run
            run.episodes = old[old.global_step <= step].drop(columns=["algo", "seed"]).to_dict("records")
        run.advance(step)      # the next grid point after step: an off-grid (Ctrl-C) save keeps the grid
        run.last_saved = step
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
            # reset_num_timesteps=False keeps the global step (devlog 004: a resume must not count
            # from 0) and the envs as restored; learn() is always asked for the whole run, so that
            # SB3's progress (learning-rate schedules) is the same in every chunk.
            model.learn(total_timesteps=remaining, callback=callback, reset_num_timesteps=not resume,
                        tb_log_name="tb", progress_bar=False)
        except StopTraining:        # a chunk's end or Ctrl-C: the callback saved the checkpoint
            callback.bar.close()
            vec.close()
            return stopped(run, model.num_timesteps)
    if model.num_timesteps > step and not run.saved(model.num_timesteps):
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
    run.last_saved = step
    run.advance(step)


def train_drqv2(args, run: Run, resume) -> int:
    import envs
    from torch.utils.tensorboard import SummaryWriter

    from algos.drqv2 import DrQV2Trainer

    config = algos.drqv2_config(run.hp, args.seed, args.threads)
    vec = envs.make_vec_env(args.task, args.reward, run.hp["num_envs"], seed=args.seed, **run.trained_env)
    writer = SummaryWriter(str(run.out / "tb" / "drqv2"))

    def on_episode(record):
        for k, v in record.items():
            if k not in ("step", "env"):
                writer.add_scalar(f"rollout/{k}", float(v), record["step"])

    trainer = DrQV2Trainer(vec, config, on_episode=on_episode)
    if resume:
        path, meta = resume
        trainer.load(run.out / DRQV2_STATE)     # agent, optimisers, replay, RNG, steps, episode log
        step = trainer.global_step
        run.prior_wall = meta["wall_s"]
        run.episodes = [drqv2_row(r) for r in trainer.episodes]
        print(f"resuming {args.algo} seed {args.seed} from global step {step}")
        run.advance(meta["global_step"])
        run.last_saved = meta["global_step"]
        if step > meta["global_step"]:      # killed after the resume point, before its metadata
            save_drqv2(run, trainer, writer)
    else:
        save_drqv2(run, trainer, writer)    # the untrained policy: the baseline every later checkpoint improves on
        step = 0

    bar = progress_bar(run, trainer.global_step)
    # Train in short legs, so the progress bar and TensorBoard move, stopping at every grid point.
    leg = trainer.num_envs * 25
    end = min(run.total, run.stop_at)
    while trainer.global_step < end and not run.interrupted:
        before = trainer.global_step
        trainer.train_until(min(end, run.next_checkpoint, before + leg), progress=False,
                            should_stop=lambda: run.interrupted)
        bar.update(trainer.global_step - before)
        for k, v in trainer.metrics.items():
            writer.add_scalar(f"train/{k}", v, trainer.global_step)
        writer.add_scalar("train/num_updates", trainer.num_updates, trainer.global_step)
        if trainer.global_step >= run.next_checkpoint:
            save_drqv2(run, trainer, writer)
    bar.close()
    if not run.saved(trainer.global_step):
        save_drqv2(run, trainer, writer)
    writer.close()
    vec.close()
    if trainer.global_step < run.total:
        return stopped(run, trainer.global_step)
    run.finish(trainer.global_step, trainer.global_step - step, step if resume else None)
    # A finished run is never resumed (a rerun starts over in <out>.partial), so its resume state,
    # which holds the replay buffer (up to drqv2.replay_memory_bytes), would only fill the DVC cache.
    shutil.rmtree(run.final / DRQV2_STATE, ignore_errors=True)
    return 0


# --- chunks in fresh processes ------------------------------------------------------------------------

def train_in_chunks(args, argv, run: Run) -> int:
    """Run the training as a series of child processes, each resuming from the last checkpoint and
    stopping at the next multiple of chunk_steps. A child's leaked memory dies with it, and a child
    that dies (segfault, exit 139, OOM kill) costs at most one checkpoint interval: it is rerun from
    the last checkpoint, up to chunk_retries times in a row."""
    settings = common.block(args, "train")
    size, retries = settings["chunk_steps"], settings["chunk_retries"]
    log_path = run.out / "chunks.json"
    rows = common.read_json(log_path) if run.resumable(quiet=True) and log_path.exists() else []
    interrupted = []
    signal.signal(signal.SIGINT, lambda *_: interrupted.append(1))   # the child saves; we wait for it
    failures = 0
    while True:
        resume = run.resumable(quiet=True)
        start = resume[1]["global_step"] if resume else 0
        stop_at = min(run.total, (start // size + 1) * size)
        chunk = start // size + 1
        print(f"chunk {chunk} of {-(-run.total // size)}: global steps {start} -> {stop_at} in a fresh process"
              + (f" (retry {failures} of {retries})" if failures else ""), flush=True)
        t0 = time.time()
        code, peak_mb, tail = run_child([sys.executable, "-m", "pipeline.train", *argv, "--stop-at", str(stop_at)])
        rows.append({"chunk": chunk, "attempt": failures + 1, "start_step": start, "stop_at": stop_at,
                     "exit_code": code, "peak_rss_mb": peak_mb, "wall_s": round(time.time() - t0, 1)})
        done = code == 0 and stop_at >= run.total
        common.write_json((run.final if done else run.out) / "chunks.json", rows)
        report_memory(rows)
        if code == 0:
            failures = 0
            if done:
                return 0
            continue
        if code == 130 or interrupted:
            return 130
        if code == 2:     # the child's own clear error (bad input, NaN): rerunning cannot help
            return 2
        failures += 1
        if failures > retries:
            raise common.StageError(f"chunk {chunk} (global steps {start} -> {stop_at}) died {failures} times, "
                                    f"last with {describe_exit(code)}; its last output:\n{tail}")
        common.warn(f"chunk {chunk} died with {describe_exit(code)}; rerunning it from the last checkpoint")


def run_child(cmd: list[str]) -> tuple[int, float, str]:
    """Run cmd, passing its output through; return its exit code (-N: killed by signal N), its own
    peak RSS in MB (from wait4, so per child, not the maximum over all children) and its last lines."""
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    tail = collections.deque(maxlen=64)
    for block in iter(lambda: proc.stdout.read1(1 << 16), b""):
        sys.stdout.buffer.write(block)
        sys.stdout.buffer.flush()
        tail.append(block)
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)   # reaped here; keep Popen from waiting again
    text = b"".join(tail).decode(errors="replace").replace("\r", "\n")
    return proc.returncode, round(usage.ru_maxrss / 1024, 1), "\n".join(text.strip().splitlines()[-20:])


def describe_exit(code: int) -> str:
    if code < 0:
        return f"signal {signal.Signals(-code).name} (shell exit code {128 - code})"
    return f"exit code {code}" + (" (SIGSEGV)" if code == 139 else "")


def report_memory(rows: list[dict]) -> None:
    """Print the last chunk's peak memory next to the first full chunk's (chunk 1 pays for warm-up)."""
    ok = [r for r in rows if r["exit_code"] == 0]
    if not ok:
        return
    base = ok[1] if len(ok) > 1 else ok[0]
    growth = 100.0 * (ok[-1]["peak_rss_mb"] / base["peak_rss_mb"] - 1.0)
    print(f"chunk {ok[-1]['chunk']}: peak RSS {ok[-1]['peak_rss_mb']:.0f} MB "
          f"({growth:+.1f}% vs chunk {base['chunk']})", flush=True)


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    return train(parse_args(argv), argv)


if __name__ == "__main__":
    common.run_main(main)
