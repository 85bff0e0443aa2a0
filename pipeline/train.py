"""Stage `train`: one run (algorithm x seed) on the batched vector env, for any algorithm of the
registry (algos/): PPO, SAC, HER (Stable-Baselines3) or DrQ-v2 (from the wrist camera's pixels).

    python -m pipeline.train --task lift --reward v19 --backend mujoco --algo ppo --seed 0 \
        --sanity data/sanity/lift_mujoco.json --out data/runs/lift_v19_mujoco/ppo/seed0 --threads 1 \
        --env.max_episode_steps 200 ... --ppo.learning_rate 0.0003 ... --checkpoint_every 50000

Writes into --out:
  checkpoints/          a checkpoint every checkpoint_every global steps and at the end, the
                        untrained policy at step 0 included (format: pipeline/run/checkpoints.py)
  train_log.parquet     one row per finished training episode (the env's final_info)
  tb/                   TensorBoard
  run.json              summary: wall time, env steps/s, final step
  chunks.json           with train.chunk_steps > 0: one row per chunk attempt (pipeline/run/chunks.py)

Runs that survive (pipeline/run/runs.py): until training completes everything lives in <out>.partial;
a rerun of the same command finding checkpoints of the same configuration there resumes from the
latest intact one and ends with the same weights as a run that never stopped
(tests/test_resume.py). Ctrl-C (or SIGTERM) saves a checkpoint at the next consistent point and
exits with 130; a second Ctrl-C stops at once.

The algorithm decides the env it trains on (HER: goal observations; DrQ-v2: pixels with its frame
stack), whatever env.obs_mode says; the checkpoint metadata records it as `trained_env`.
"""
from __future__ import annotations

import argparse
import signal
import shutil
import sys
from pathlib import Path

from tqdm import tqdm

import algos
from pipeline.run import bases, checkpoints, chunks, cli, demos, files, provenance, settings, transitions
from pipeline.run.runs import Run


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--task", required=True)
    ap.add_argument("--reward", required=True)
    ap.add_argument("--backend", default="mujoco", choices=settings.BACKENDS, help="physics backend")
    ap.add_argument("--algo", required=True, type=settings.algo_name,
                    help="an algorithm of algos/, or a residual learner on a base: ppo+scripted")
    ap.add_argument("--seed", type=int, required=True)
    ap.add_argument("--sanity", required=True, help="the sanity stage's JSON; training refuses a broken env")
    ap.add_argument("--out", required=True, help="run folder")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (the job's cores)")
    cli.add_block_args(ap, "env", "checkpoint_every", "train")
    # Set by the chunk supervisor for its children: train up to this global step, checkpoint, exit 0.
    ap.add_argument("--stop-at", type=int, default=None, help=argparse.SUPPRESS)
    # Only the --algo block (and `residual` for a residual learner): a stage loads no other
    # algorithm's module. Then `demos`, where that block or the env block says the run reads them.
    known = ap.parse_known_args(argv)[0]
    cli.add_block_args(ap, algos.learner(known.algo), required=False)
    known = ap.parse_known_args(argv)[0]
    hp = given(known, algos.learner(known.algo))
    cli.add_block_args(ap, *settings.algo_blocks(known.algo, hp, cli.block(known, "env"))[1:], required=False)
    return ap.parse_args(argv)


def given(args, block: str) -> dict:
    """The values of a params block that the command line gives."""
    return {k: v for k, v in cli.block(args, block).items() if v is not None}


def check_inputs(args) -> dict:
    """Every refusal before the env is built: params, the algorithm's block, the sanity verdict.
    Returns the algorithm's block."""
    problems = settings.task_reward_problems(args.task, args.reward, [args.algo])
    if problems:
        raise settings.ParamsError("; ".join(problems))
    blocks = settings.algo_blocks(args.algo, given(args, algos.learner(args.algo)), cli.block(args, "env"))
    missing = [f"--{block}.{k}" for block in blocks for k, f in settings.BLOCKS[block].items()
               if getattr(args, f"{block}.{k}") is None and not f.optional]
    if missing:
        raise cli.StageError(f"algorithm {args.algo} needs {', '.join(missing)}")
    problems = settings.reverse_curriculum_problems(args.task, cli.block(args, "env"))
    if problems:
        raise settings.ParamsError("; ".join(problems))
    hp = cli.block(args, algos.learner(args.algo))
    try:    # a bad value (say a malformed schedule) stops here
        trained_env(args, hp)
    except ValueError as e:
        raise settings.ParamsError(str(e)) from None
    sanity = files.read_json(args.sanity)
    if not sanity.get("ok"):
        raise cli.StageError(f"{args.sanity} says the env is broken: {'; '.join(sanity.get('problems', []))}")
    if reads_demos(args, hp):
        params = {algos.learner(args.algo): hp, "env": cli.env_block(args), "demos": cli.block(args, "demos")}
        problems = settings.demos_problems(args.task, params["demos"]["controller"])
        problems += settings.frames_problems([args.algo], params)
        if problems:
            raise settings.ParamsError("; ".join(problems))
        if not demos_path(args).is_dir():
            raise cli.StageError(f"{demos_path(args)}: the demonstrations this {args.algo} run reads are missing "
                                 "(the DAG records them first: stage demos)")
    return hp


def reads_demos(args, hp: dict) -> bool:
    """Whether this run (its algorithm's block hp) reads the demonstrations: it learns from them, or
    its episodes start from their states (env.reverse_curriculum)."""
    return settings.reads_demos(args.algo, hp, cli.block(args, "env"))


def demos_path(args) -> Path:
    """The demonstrations a run that reads them reads: the demos stage's folder for the run's demos
    block and start stage (a declared input of the run in both DAGs)."""
    return Path(demos.dataset_path(args.task, args.backend, cli.block(args, "demos"),
                                   getattr(args, "env.curriculum_stage")))


def load_demos(args, hp: dict, env_params: dict) -> transitions.Demos:
    """The run's demonstrations as transitions, with wrist frames where it learns from them."""
    frames = settings.learns_from_frames(args.algo, hp, env_params)
    return transitions.for_training(demos_path(args), args.task, args.reward, env_params, pixels=frames)


def trained_env(args, hp: dict) -> dict:
    """The env settings this run trains on (the algorithm's, with a residual learner's blending)."""
    residual = cli.block(args, "residual") if algos.base_policy(args.algo) else None
    return algos.env_settings(args.algo, cli.env_block(args), hp, residual)


def train(args, argv) -> int:
    cli.set_threads(args.threads)
    hp = check_inputs(args)
    from envs.vector import make_vec_env
    env_params = cli.env_block(args)
    env_cfg = trained_env(args, hp)
    # The data a run learns or starts from, besides its env: in its identity, so new demonstrations
    # never resume an old run.
    data = {"path": str(demos_path(args)), "sha256": demos.fingerprint(demos_path(args))} \
        if reads_demos(args, hp) else None
    run = Run(args, hp, env_params, env_cfg, provenance.reward_fingerprint(args.task, args.reward), data)
    algorithm = algos.get(args.algo)

    def resumable(quiet=True):
        return checkpoints.resumable(run.out, run.identity, quiet=quiet)

    if cli.block(args, "train")["chunk_steps"] > 0 and args.stop_at is None:
        return chunks.train_in_chunks(args, argv, run, resumable)
    resume = resumable(quiet=False)
    if resume is None and run.out.exists():
        shutil.rmtree(run.out)      # stale or foreign contents: never mix two configurations
    run.out.mkdir(parents=True, exist_ok=True)

    interrupted = []

    def stop_soon(signum, frame):
        if interrupted:              # a second Ctrl-C: stop now; the last checkpoint stands
            raise KeyboardInterrupt
        interrupted.append(signum)
        print("\nCtrl-C: saving a checkpoint at the next consistent point (Ctrl-C again to stop at once)",
              flush=True)
    signal.signal(signal.SIGINT, stop_soon)
    signal.signal(signal.SIGTERM, stop_soon)

    # An offline learner (bc) has no num_envs: one env gives it its spaces. A reverse curriculum
    # starts training episodes from the demonstrations' states (envs/reverse.py).
    starts = ({"start_states": transitions.start_states(demos_path(args), args.task, env_params)}
              if env_cfg["reverse_curriculum"] else {})
    vec = make_vec_env(args.task, args.reward, hp.get("num_envs", 1), seed=args.seed,
                       **bases.with_trained_base(env_cfg, args.out, args.task, args.reward), **starts)
    # Demonstrations come with rewards relabelled for this run's reward version (pipeline/run/relabel.py),
    # and their wrist frames for a learner from pixels. Not kept here: a trainer keeps what it needs.
    trainer = algorithm.make_trainer(vec, hp, args.seed, args.threads, run.out / "tb" / args.algo,
                                     **({"demos": load_demos(args, hp, env_params)} if algos.uses_demos(args.algo, hp) else {}))
    return loop(run, trainer, resume, args.stop_at, lambda: bool(interrupted))


LEG = 25     # vector steps between progress updates (an SB3 rollout in progress always finishes)


def loop(run: Run, trainer, resume, stop_at, interrupted) -> int:
    """Train to the end (or to stop_at, a chunk's end), checkpointing on the global-step grid."""
    from torch.utils.tensorboard import SummaryWriter
    end = min(run.total, stop_at if stop_at is not None else run.total)

    writer = SummaryWriter(str(run.out / "tb" / run.algo))

    def checkpoint():
        episodes = trainer.episode_log()
        run.write_log(episodes)       # before the metadata that makes the checkpoint
        checkpoints.save(run.out, trainer, run.metadata(**trainer.info()))

    if resume:
        path, meta, state = resume
        trainer.load(state)
        run.prior_wall = meta["wall_s"]
        print(f"resuming {run.algo} seed {run.seed} from global step {trainer.global_step}")
        if trainer.global_step > meta["global_step"]:   # killed after the state's save, before its metadata
            checkpoint()
    else:
        checkpoint()            # the untrained policy: the baseline every later checkpoint improves on
    start = trainer.global_step
    logged = len(trainer.episode_log())      # episodes already written to TensorBoard
    bar = tqdm(total=run.total, initial=start, unit="step", mininterval=5.0, desc=f"{run.algo} seed{run.seed}")
    while trainer.global_step < end and not interrupted():
        before = trainer.global_step
        grid = (before // run.every + 1) * run.every
        trainer.train_until(min(end, grid, before + trainer.num_envs * LEG), should_stop=interrupted)
        bar.update(trainer.global_step - before)
        for k, v in trainer.losses().items():
            writer.add_scalar(f"train/{k}", v, trainer.global_step)
        episodes = trainer.episode_log()
        for row in episodes[logged:]:     # success, the task's metrics, reward terms
            for k, v in row.items():
                if k not in ("global_step", "env"):
                    writer.add_scalar(f"rollout/{k}", float(v), row["global_step"])
        logged = len(episodes)
        if trainer.global_step >= grid or trainer.global_step >= end or interrupted():
            checkpoint()
    bar.close()
    writer.close()
    trainer.close()
    if trainer.global_step < run.total:
        if interrupted():
            print(f"interrupted: checkpoint saved at global step {trainer.global_step}; rerun the same command to resume")
            return 130
        print(f"chunk done: checkpoint saved at global step {trainer.global_step}")
        return 0
    run.finish(trainer.global_step, trainer.global_step - start, resume[1]["global_step"] if resume else None,
               len(trainer.episode_log()))
    return 0


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    return train(parse_args(argv), argv)


if __name__ == "__main__":
    cli.run_main(main)
