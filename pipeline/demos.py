"""Stage `demos`: scripted demonstrations for the runs that read them (pipeline/run/settings.py:
reads_demos: bc; rlpd and drqv2 with demo_ratio > 0; any algorithm with env.reverse_curriculum), in
Minari's format (layout: pipeline/run/demos.py).

    python -m pipeline.demos --task lift --backend mujoco \\
        --out data/demos/lift_mujoco/picker/stage1_n100_seed0 \\
        --summary data/demos/lift_mujoco/picker/stage1_n100_seed0.json \\
        --env.max_episode_steps 200 ... --demos.episodes 100 --demos.seed 0 --demos.controller picker \
        --demos.pixels false

Runs the controller for demos.episodes whole episodes from the experiment's start distribution
(env.curriculum_stage, with its domain randomisation; a training curriculum never applies: a demo
from the evaluation start covers the whole task, every easier stage's start included), episode k
reset with seed demos.seed + k, and writes each one, the failed ones marked, to --out. It runs no
reward version, so editing one never reruns it: train relabels (pipeline/run/relabel.py).
Wrist-camera frames (env.image_size) are stored with the states where demos.pixels is true, which
the params check demands where a run learns from them (pipeline/run/settings.py: frames_problems).
--summary: JSON of the controller's success and what the dataset holds, the same bytes for the
same demonstrations (no wall time), so an edit that changes nothing reruns nothing after it in DVC.
"""
import argparse
import time
from pathlib import Path

import numpy as np

from pipeline.run import cli, files, settings
from pipeline.run import demos as dataset


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--task", required=True)
    ap.add_argument("--backend", required=True, choices=settings.BACKENDS, help="physics backend")
    ap.add_argument("--out", required=True, help="the dataset folder (a Minari dataset)")
    ap.add_argument("--summary", required=True, help="JSON: the controller's success, what the dataset holds")
    cli.add_block_args(ap, *(f"env.{k}" for k in settings.DEMOS_ENV), "demos")
    return ap.parse_args(argv)


def summary(task, backend, block, env, recording, path) -> dict:
    eps = recording.episodes
    success = [e.stats["success_once"] for e in eps]
    from envs.tasks import get_task
    metrics = list(get_task(task).episode_metrics)
    return {"task": task, "backend": backend, **block, "curriculum_stage": env["curriculum_stage"],
            "pixels": eps[0].frames is not None, "successes": int(sum(success)),
            "success_rate": float(np.mean(success)),
            "success_at_end_rate": float(np.mean([e.stats["success_at_end"] for e in eps])),
            "mean_episode_len": float(np.mean([len(e.actions) for e in eps])),
            "transitions": int(sum(len(e.actions) for e in eps)),
            **{f"mean_{m}": float(np.mean([e.stats[m] for e in eps])) for m in metrics},
            "dataset": str(path), "dataset_sha256": dataset.fingerprint(path)}


def main(argv=None) -> int:
    args = parse_args(argv)
    cli.set_threads(1)
    block = cli.block(args, "demos")
    env = {k: getattr(args, f"env.{k}") for k in settings.DEMOS_ENV}
    problems = [f"--env.{k}: got {v!r}; expected {settings.field('env.' + k).describe()}" for k, v in env.items()
                if not settings.field("env." + k).check(v)]
    problems += settings.demos_problems(args.task, block["controller"])
    if problems:
        raise settings.ParamsError("; ".join(problems))
    from envs.demos import record
    started = time.time()
    recording = record(args.task, block["controller"], block["episodes"], block["seed"],
                       pixels=block["pixels"], backend=args.backend, **env)
    recorded = time.time() - started
    meta = {"task": args.task, "backend": args.backend, **block, "env": env,
            "success_rate": float(np.mean([e.stats["success_once"] for e in recording.episodes]))}
    dataset.write(args.out, recording, meta)
    result = summary(args.task, args.backend, block, env, recording, args.out)
    files.write_json(args.summary, result)
    size = sum(f.stat().st_size for f in Path(args.out).rglob("*") if f.is_file())
    print(f"demos: {block['controller']} on {args.task}, {result['successes']}/{block['episodes']} episodes "
          f"successful, {result['transitions']} steps, {size / 1e6:.1f} MB; recorded in {recorded:.1f} s, "
          f"written in {time.time() - started - recorded:.1f} s")
    return 0


if __name__ == "__main__":
    cli.run_main(main)
