"""Stage `evaluate`: every checkpoint of every seed of one algorithm, on fixed evaluation episodes.

    python -m pipeline.evaluate --task lift --reward v19 --algo ppo --runs data/runs/lift_v19_mujoco/ppo/seed0 \
        --out data/eval/lift_v19_mujoco/ppo.parquet --metrics data/eval/lift_v19_mujoco/ppo.json \
        --curve data/eval/lift_v19_mujoco/ppo_curve.tsv --env.max_episode_steps 200 ... --evaluation.episodes 20 \
        --evaluation.final_episodes 50 ...

Each episode runs in its own clean single env reset with seed `evaluation.seed + i`, so every
checkpoint sees the same cube positions and no episode is ever cut short or reset half-way. Each
seed's final checkpoint, whose success rate is the reported one, runs `evaluation.final_episodes`
episodes (at 50 a rate's standard error is 6-7 points, at 20 it is 9-11), the others
`evaluation.episodes`; episode i is reset with seed + i at every checkpoint.
Writes:
  --out      Parquet, one row per (algo, seed, checkpoint step, episode): reset_seed (the seed the
             episode's env was reset with), return, episode_len, success_once, success_at_end,
             terminated, the task's metrics (lift: max_cube_z, grasp_steps; walk: mean_forward_vel,
             distance_x, mean_base_height) and reward/<component> sums
  --metrics  JSON headline numbers of the final checkpoints (for dvc metrics / exp show): per seed
             the success rate with its successes, episodes and 95% Wilson interval, across seeds n,
             mean, std, min, max and from 5 seeds the named 95% interval (pipeline/run/stats.py);
             the training-time numbers of the same policies (to check they agree), and the training
             episodes summarised per chunk between checkpoints (devlog 002's per-chunk table)
  --curve    TSV learning curve: per checkpoint step, mean return, success rate and task metrics
  --provenance  JSON: task, reward + fingerprint, seeds, params, versions, commit, wall times, and
             the reset seeds the final and the other checkpoints were evaluated on
A checkpoint trained for another task, reward version or reward code is refused, not evaluated.
Every algorithm goes through the same loop (algos.load_policy(...).act(obs)); each is evaluated on
the env it trained on (HER: goal observations; DrQ-v2: its stack of wrist-camera frames).
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.run import bases, checkpoints, cli, files, finished, provenance, settings, stats


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    cli.add_policy_args(ap)
    ap.add_argument("--out", required=True)
    ap.add_argument("--metrics", required=True)
    ap.add_argument("--curve", required=True)
    ap.add_argument("--provenance", required=True, help="JSON: where the evaluated policies came from")
    cli.add_block_args(ap, "env", "evaluation")
    return ap.parse_args(argv)


def run_episode(policy, env, seed: int) -> dict:
    """One whole episode; its statistics are the env's own final_info (as in training)."""
    obs, _ = env.reset(seed=seed)
    while True:
        obs, _, terminated, truncated, info = env.step(policy.act(obs))
        if terminated or truncated:
            return info["episode_stats"]


def evaluate_run(args, run_dir, env_params, ev) -> list[dict]:
    import algos
    from envs.single import make_env

    found = finished.checkpoints(run_dir)     # all intact up to the trained step, or stop
    env_cfg = checkpoints.policy_env(args.algo, env_params, found)
    for path, meta in found:        # refuse before spending time on any of them
        checkpoints.check_checkpoint(meta, path, args.task, args.reward, {k: env_cfg[k] for k in checkpoints.OBS_KEYS})
    env = make_env(args.task, args.reward, **bases.with_trained_base(env_cfg, run_dir, args.task, args.reward))
    rows = []
    for k, (path, meta) in enumerate(found):
        policy = algos.load_policy(args.algo, path, ev["deterministic"], meta["global_step"])
        episodes = ev["final_episodes"] if k == len(found) - 1 else ev["episodes"]
        for i in range(episodes):
            stats = run_episode(policy, env, ev["seed"] + i)
            rows.append({"algo": args.algo, "seed": meta["seed"], "step": meta["global_step"], "episode": i,
                         "reset_seed": ev["seed"] + i, **stats})
        print(f"{args.algo} seed{meta['seed']} step {meta['global_step']}: "
              f"success {np.mean([r['success_once'] for r in rows[-episodes:]]):.0%} over {episodes} episodes")
    env.close()
    return rows


ENV_METRICS = ("residual_l2",)     # the env's own episode metrics, where the env reports them


def task_metrics(task: str) -> list[str]:
    import envs.tasks
    return list(envs.tasks.get_task(task).episode_metrics)


def training_side(run_dirs, window: int, names: list[str]) -> dict:
    """What training logged for the final policy: the last `window` finished episodes per seed.
    Evaluation and training measure the same policy and task, so they should agree (devlog 000
    shows what a 100x gap meant: broken episode accounting)."""
    frames = []
    for d in run_dirs:
        log = pd.read_parquet(f"{d}/train_log.parquet")
        if not log.empty:
            frames.append(log.tail(window))
    if not frames:
        return {"episodes": 0}
    log = pd.concat(frames)
    return {"episodes": int(len(log)), "mean_return": float(log["return"].mean()),
            "mean_episode_len": float(log["episode_len"].mean()),
            "success_rate": float(log["success_once"].mean()),
            **{k: float(log[k].mean()) for k in names}}


def training_chunks(run_dir, names: list[str]) -> list[dict]:
    """Training episodes of one run summarised per chunk between consecutive checkpoints (with
    train.chunk_steps = checkpoint_every, the chunks the run was trained in): devlog 002's table."""
    log = pd.read_parquet(f"{run_dir}/train_log.parquet")
    edges = sorted({0, *(int(meta["global_step"]) for _, meta in checkpoints.intact(run_dir, quiet=True))})
    rows = []
    for i, (lo, hi) in enumerate(zip(edges[:-1], edges[1:]), start=1):
        part = log[(log.global_step > lo) & (log.global_step <= hi)]
        row = {"chunk": i, "from_step": lo, "to_step": hi, "episodes": int(len(part))}
        if len(part):
            row.update({"mean_return": float(part["return"].mean()), "max_return": float(part["return"].max()),
                        "mean_episode_len": float(part.episode_len.mean()),
                        "success_rate": float(part.success_once.mean()),
                        "terminated_rate": float(part.terminated.mean()) if "terminated" in part else float("nan"),
                        **{k: float(part[k].mean()) for k in names}})
        rows.append(row)
    return rows


def best_checkpoints(df: pd.DataFrame) -> dict:
    """Per seed, the checkpoint with the highest evaluation success (the earliest of equals, as a
    best-model callback keeps it) and its figures. Chosen on the evaluation episodes themselves, so
    its success rate is an optimistic estimate; the final checkpoint's is not."""
    best = {}
    for seed, part in df.groupby("seed"):
        by_step = part.groupby("step").agg(success_rate=("success_once", "mean"), mean_return=("return", "mean"))
        step = by_step.success_rate.idxmax()
        best[str(int(seed))] = {"step": int(step), "success_rate": float(by_step.success_rate[step]),
                                "mean_return": float(by_step.mean_return[step])}
    return best


def curriculum_steps(run_dir) -> list[dict]:
    """Each curriculum stage a run trained at, with the global step at which its first episode at
    that stage ended (empty without a curriculum)."""
    log = pd.read_parquet(f"{run_dir}/train_log.parquet")
    if "curriculum_stage" not in log:
        return []
    firsts = log.groupby("curriculum_stage").global_step.min().sort_values()
    return [{"stage": int(stage), "step": int(step)} for stage, step in firsts.items()]


def headline(df: pd.DataFrame, names: list[str]) -> dict:
    """Devlog-style numbers over the final checkpoint of every seed: return, success, and each task
    metric as mean and std (lift: max_cube_z, grasp_steps; walk: mean_forward_vel, distance_x, ...)."""
    final = df[df.step == df.groupby("seed").step.transform("max")]
    out = {"final_step": int(final.step.max()), "episodes": int(len(final)),
           "mean_return": float(final["return"].mean()), "std_return": float(final["return"].std(ddof=0)),
           "success_rate": float(final.success_once.mean()), "success_at_end_rate": float(final.success_at_end.mean()),
           "terminated_rate": float(final.terminated.mean()), "mean_episode_len": float(final.episode_len.mean()),
           "task_metrics": names}
    for k in names:
        out[k], out[f"std_{k}"] = float(final[k].mean()), float(final[k].std(ddof=0))
    return out


SEED_KEYS = ("success_rate", "mean_return", "success_at_end_rate", "terminated_rate")
RATES = ("success_rate", "success_at_end_rate", "terminated_rate")     # bounded by [0, 1]


def per_seed(df: pd.DataFrame, names: list[str]) -> tuple[dict, dict]:
    """Each seed's final checkpoint summarised over its evaluation episodes (the success rate with
    its successes, episodes and 95% Wilson interval), then each number across seeds
    (pipeline/run/stats.py: n, mean, std, min, max; from 5 seeds the 95% t-interval; IQM from 4)."""
    seeds = {}
    for seed, part in df.groupby("seed"):
        final = part[part.step == part.step.max()]
        seeds[str(int(seed))] = {"final_step": int(final.step.max()),
                                 **stats.rate(int(final.success_once.sum()), len(final)),
                                 "mean_return": float(final["return"].mean()),
                                 "success_at_end_rate": float(final.success_at_end.mean()),
                                 "terminated_rate": float(final.terminated.mean()),
                                 **{k: float(final[k].mean()) for k in names}}
    across = {k: stats.across_seeds([s[k] for s in seeds.values()], bounds=(0.0, 1.0) if k in RATES else None)
              for k in (*SEED_KEYS, *names)}
    return seeds, across


def reset_seeds(df: pd.DataFrame) -> dict:
    """The reset seeds the final checkpoints and the others were evaluated on, as recorded."""
    last = df.step == df.groupby("seed").step.transform("max")
    return {"final_checkpoint": sorted(int(s) for s in df[last].reset_seed.unique()),
            "other_checkpoints": sorted(int(s) for s in df[~last].reset_seed.unique())}


def curve(df: pd.DataFrame, names: list[str]) -> pd.DataFrame:
    g = df.groupby("step")
    return pd.DataFrame({"step": g.size().index, "mean_return": g["return"].mean().values,
                         "success_rate": g.success_once.mean().values, **{k: g[k].mean().values for k in names}})


def main(argv=None) -> int:
    args = parse_args(argv)
    cli.set_threads(args.threads)
    problems = settings.task_reward_problems(args.task, args.reward, [args.algo])
    if problems:
        raise settings.ParamsError("; ".join(problems))
    env_params, ev = cli.env_block(args), cli.block(args, "evaluation")
    started = time.time()
    rows = []
    for run_dir in args.runs:
        rows += evaluate_run(args, run_dir, env_params, ev)
    for path in (args.out, args.metrics, args.curve, args.provenance):
        Path(path).parent.mkdir(parents=True, exist_ok=True)     # DVC, unlike Snakemake, does not
    df = pd.DataFrame(rows).sort_values(["seed", "step", "episode"], kind="stable").reset_index(drop=True)
    df.to_parquet(args.out, index=False)
    names = task_metrics(args.task) + [k for k in ENV_METRICS if k in df]
    curve(df, names).to_csv(args.curve, sep="\t", index=False, float_format="%.6g")

    metas = {meta["seed"]: meta for d in args.runs for _, meta in checkpoints.intact(d)[-1:]}
    runs = {d: files.read_json(f"{d}/run.json") for d in args.runs}
    first = next(iter(metas.values()))
    seeds, across = per_seed(df, names)
    metrics = {**headline(df, names), "per_seed": seeds, "across_seeds": across,
               "train": training_side(args.runs, ev["episodes"], names),
               "train_chunks": {str(r["seed"]): training_chunks(d, names) for d, r in runs.items()},
               "best": best_checkpoints(df)}
    stages = {str(r["seed"]): curriculum_steps(d) for d, r in runs.items()}
    if any(stages.values()):
        metrics["curriculum"] = stages
    prov = {
        "task": args.task, "reward": args.reward, "reward_fingerprint": first["reward_fingerprint"],
        "algo": args.algo, "seeds": sorted(metas), "git_commit": first["git_commit"],
        "git_commits": {str(s): m["git_commit"] for s, m in sorted(metas.items())},
        "versions": first["versions"], "hparams": first["hparams"], "env": first["env"],
        "trained_env": first.get("trained_env") or {**first["env"], "obs_mode": first["obs_mode"]},
        "train_wall_s": {str(r["seed"]): r["wall_s"] for r in runs.values()},
        "train_env_steps_per_s": {str(r["seed"]): r["env_steps_per_s"] for r in runs.values()},
        "eval_wall_s": round(time.time() - started, 1), "evaluation": ev, "eval_reset_seeds": reset_seeds(df),
        # the code of every seed's training and of this evaluation (the results page's stale mark)
        "code_sha256": {**{f: h for m in metas.values() for f, h in m.get("code_sha256", {}).items()},
                        **provenance.loaded_code()}}
    files.write_json(args.provenance, prov)
    files.write_json(args.metrics, metrics)
    print(f"{args.algo}: success {metrics['success_rate']:.0%}, return {metrics['mean_return']:.2f} "
          f"+/- {metrics['std_return']:.2f} at step {metrics['final_step']}")
    return 0


if __name__ == "__main__":
    cli.run_main(main)
