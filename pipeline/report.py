"""Stage `report`: reports/{task}_{reward}.md, a devlog written from the evaluation data.

    python -m pipeline.report --task lift --reward v19 --sanity data/sanity/lift_mujoco.json \
        --episodes data/eval/lift_v19_mujoco/ppo.parquet ... --metrics data/eval/lift_v19_mujoco/ppo.json ... \
        --videos ... --stills ... --sheets ... --out reports/lift_v19.md --figures reports/lift_v19 \
        --report.consistency_tolerance 0.25 --report.success_threshold 0.8

In the devlogs' own formats: a configuration table; per algorithm the evaluation block
(`Mean Reward: m +/- s`, `Success Rate`, then the task's metrics, e.g. `Max Cube Z: m +/- s` for
lift, forward velocity and distance for walk), a training-vs-evaluation consistency line, a
per-checkpoint table with improvement over the first checkpoint and the training episodes per
chunk (devlog 002's table); learning curves (mean across seeds, with a band of one standard
deviation); videos and stills; the sanity figures; provenance. Every number a seed gives is shown per
seed (a success rate with its successes/episodes and 95% Wilson interval) and across seeds (n, mean,
and the range below 5 seeds or the 95% t-interval from 5; pipeline/run/stats.py). It reads its
declared inputs only: other reward versions are compared by reports/{task}_compare.md.
Nothing in it depends on when it was written: the same data gives the same bytes.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
from pathlib import Path

import pandas as pd

from pipeline.run import cli, files, settings, stats
from pipeline.run.reporting import commits, label_of, learning_curves





def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--task", required=True)
    ap.add_argument("--reward", required=True)
    ap.add_argument("--sanity", required=True)
    for name in ("episodes", "metrics", "provenance", "videos", "stills", "sheets", "renders"):
        ap.add_argument(f"--{name}", nargs="+", required=True, help="one per algorithm, in the same order")
    ap.add_argument("--demos", nargs="*", default=[],
                    help="the demos stage's summary JSON, where an algorithm learns from demonstrations")
    ap.add_argument("--out", required=True)
    ap.add_argument("--figures", required=True)
    cli.add_block_args(ap, "report")
    return ap.parse_args(argv)


STATISTICS = (
    "Success per seed: its rate over the final checkpoint's evaluation episodes (successes/episodes, "
    "95% Wilson score interval). Across seeds, the seed is the unit: n seeds, the mean over seeds, and "
    f"below {stats.MIN_SEEDS_INTERVAL} seeds their range (lowest-highest), which is no confidence interval "
    f"(the range of 3 seeds holds the true mean about 70-85% of the time); from {stats.MIN_SEEDS_INTERVAL} "
    "seeds the 95% t-interval of the mean over seeds (Student's t); the interquartile mean from "
    f"{stats.MIN_SEEDS_IQM} seeds, where it trims.")


def evaluation_line(ev: dict) -> str:
    """How the policies were evaluated: episodes at the final checkpoint and the others, reset seeds."""
    return (f"{ev['final_episodes']} episodes at each seed's final checkpoint, {ev['episodes']} at the others, "
            f"{'deterministic' if ev['deterministic'] else 'stochastic'}, episode i reset with seed {ev['seed']} + i")


def evaluation_block(m: dict) -> str:
    """The devlogs' evaluation block, number for number."""
    task = m["provenance"]["task"]
    return "\n".join([
        "```",
        f"Checkpoint: step {m['final_step']} (seeds {', '.join(map(str, m['provenance']['seeds']))})",
        f"Episodes: {m['episodes']}",
        f"Mean Reward: {m['mean_return']:.2f} +/- {m['std_return']:.2f}",
        f"Success Rate: {m['success_rate']:.1%}",
        *(f"{label_of(task, k)[0]}: {label_of(task, k)[1].format(m[k])} +/- "
          f"{label_of(task, k)[1].format(m['std_' + k])}" for k in m["task_metrics"]),
        f"Terminated: {m['terminated_rate']:.0%}",
        "```"])


def _rel_gap(a: float, b: float) -> float:
    scale = max(abs(a), abs(b))
    return 0.0 if scale < 1e-9 else abs(a - b) / scale


def consistency(m: dict, tol: float) -> str:
    """Training-time and evaluation numbers of the same final policy should agree; a large gap
    means the episode accounting is broken (devlog 000: ep_len 52 vs 300, reward 8.6 vs 852)."""
    t = m["train"]
    if not t.get("episodes"):
        return "Training vs evaluation: no finished training episodes logged, cannot compare."
    gaps = []
    if _rel_gap(t["mean_episode_len"], m["mean_episode_len"]) > tol:
        gaps.append(f"episode length {t['mean_episode_len']:.1f} vs {m['mean_episode_len']:.1f}")
    if _rel_gap(t["mean_return"], m["mean_return"]) > tol:
        gaps.append(f"return {t['mean_return']:.2f} vs {m['mean_return']:.2f}")
    if abs(t["success_rate"] - m["success_rate"]) > tol:
        gaps.append(f"success {t['success_rate']:.0%} vs {m['success_rate']:.0%}")
    figures = (f"training (last {t['episodes']} episodes, stochastic actions): return {t['mean_return']:.2f}, "
               f"length {t['mean_episode_len']:.1f}, success {t['success_rate']:.0%}; evaluation: return "
               f"{m['mean_return']:.2f}, length {m['mean_episode_len']:.1f}, success {m['success_rate']:.0%}")
    if gaps:
        return (f"**Training vs evaluation: GAP** beyond {tol:.0%} in {'; '.join(gaps)}. {figures}. "
                "Check episode accounting before trusting either number.")
    return f"Training vs evaluation: consistent within {tol:.0%}. {figures}."


def _improvement(value: float, first: float, is_first: bool) -> str:
    if is_first:
        return "Baseline"
    return "n/a" if abs(first) < 1e-9 else f"{(value - first) / abs(first):+.0%}"


def checkpoint_table(df: pd.DataFrame, task: str, names: list[str]) -> str:
    """Pooled over seeds and episodes; a step that only some seeds have (a checkpoint written when a
    run was stopped) says how many."""
    g = df.groupby("step")
    seeds = g.seed.nunique()
    total = df.seed.nunique()
    t = pd.DataFrame({"avg": g["return"].mean(), "max": g["return"].max(), "success": g.success_once.mean(),
                      **{k: g[k].mean() for k in names}}).reset_index()
    lines = ["| Step | Avg Reward | Max Reward | Success | " + " | ".join(label_of(task, k)[0] for k in names)
             + " | Improvement |", "|---:|---:|---:|---:|" + "---:|" * len(names) + "---:|"]
    for i, r in t.iterrows():
        some = f" ({seeds[r.step]} of {total} seeds)" if seeds[r.step] < total else ""
        lines.append(f"| {int(r.step)}{some} | {r.avg:.2f} | {r['max']:.2f} | {r.success:.0%} | "
                     + "".join(f"{label_of(task, k)[1].format(r[k])} | " for k in names)
                     + f"{_improvement(r.avg, t.avg.iloc[0], i == 0)} |")
    return "\n".join(lines)


def chunk_table(chunks: list[dict], task: str, names: list[str]) -> str:
    """Training episodes per chunk (between checkpoints), in devlog 002's columns plus the task's metrics."""
    lines = ["| Chunk | Env steps | Episodes | Avg Reward | Max Reward | Improvement | Success | Terminated | "
             + " | ".join(label_of(task, k)[0] for k in names) + " |",
             "|---:|---|---:|---:|---:|---:|---:|---:|" + "---:|" * len(names)]
    done = [c for c in chunks if c["episodes"]]
    first = done[0]["mean_return"] if done else 0.0
    for c in chunks:
        head = f"| {c['chunk']} | {c['from_step']:,}-{c['to_step']:,} | {c['episodes']} | "
        if not c["episodes"]:
            lines.append(head + "no episode finished | | | | | " + "| " * len(names))
            continue
        lines.append(head + f"{c['mean_return']:.2f} | {c['max_return']:.2f} | "
                     f"{_improvement(c['mean_return'], first, c is done[0])} | {c['success_rate']:.0%} | "
                     f"{c['terminated_rate']:.0%} | " + "".join(f"{label_of(task, k)[1].format(c[k])} | " for k in names))
    return "\n".join(lines)








def demos_line(d: dict) -> str:
    """What the learners that use demonstrations learnt from: the controller, its start, its success."""
    r = stats.rate(d["successes"], d["episodes"])
    return (f"The `{d['controller']}` controller, {d['episodes']} episodes from curriculum stage "
            f"{d['curriculum_stage']} (seed {d['seed']}{', with wrist frames' if d['pixels'] else ''}): success "
            f"{stats.fmt_rate(r)}, {d['transitions']} transitions; failed episodes are kept, marked. "
            f"Dataset sha256 `{d['dataset_sha256'][:12]}`.")


def sanity_line(checks: dict) -> str:
    if "stand" in checks:       # walk: the robot holds its default pose
        st = checks["stand"]
        return (f"holding the default pose, {st['fell']} of {st['episodes']} robots fell in {st['steps']} steps, "
                f"base height mean {st['mean_base_height']:.3f} m, min {st['min_base_height']:.3f} m.")
    sc = checks.get("scripted", {})
    return (f"scripted controller success {sc.get('success_rate', float('nan')):.0%} over {sc.get('episodes', '?')} "
            f"episodes, mean max cube z {sc.get('mean_max_cube_z', float('nan')):.3f}.")


def observations(m: dict) -> str:
    """What a policy sees, which the algorithm may impose over env.obs_mode (HER: goal; DrQ-v2: pixels)."""
    env = m["provenance"].get("trained_env") or m["provenance"]["env"]
    if env["obs_mode"] == "pixels":
        return f"pixels ({env['frame_stack']} x {env['image_size']}x{env['image_size']} wrist frames)"
    return env["obs_mode"]


def params_hash(metrics: dict[str, dict]) -> str:
    used = {a: {k: m["provenance"][k] for k in ("task", "reward", "env", "hparams", "evaluation", "seeds")}
            for a, m in metrics.items()}
    return hashlib.sha256(json.dumps(used, sort_keys=True).encode()).hexdigest()[:12]


def main(argv=None) -> int:
    args = parse_args(argv)
    opts = cli.block(args, "report")
    out, figs = Path(args.out), Path(args.figures)
    if figs.exists():
        shutil.rmtree(figs)
    figs.mkdir(parents=True)
    out.parent.mkdir(parents=True, exist_ok=True)
    here = out.parent

    metrics = {}
    frames = {}
    for ep_path, m_path, p_path in zip(args.episodes, args.metrics, args.provenance):
        m = {**files.read_json(m_path), "provenance": files.read_json(p_path)}
        algo = m["provenance"]["algo"]
        if m["provenance"]["task"] != args.task or m["provenance"]["reward"] != args.reward:
            raise cli.StageError(f"{m_path} holds {m['provenance']['task']}/{m['provenance']['reward']}, "
                                    f"not {args.task}/{args.reward}")
        metrics[algo], frames[algo] = m, pd.read_parquet(ep_path)
    sanity = files.read_json(args.sanity)
    first_metrics = next(iter(metrics.values()))
    first = first_metrics["provenance"]

    md = [f"# {args.task} with reward {args.reward}: {', '.join(metrics)}", "",
          f"Generated by `pipeline/report.py` from the evaluation data; do not edit. "
          f"Success bar: {opts['success_threshold']:.0%}.", ""]

    # --- summary -----------------------------------------------------------------------------
    names = list(dict.fromkeys(k for m in metrics.values() for k in m["task_metrics"]))   # each algorithm's, in order
    md += ["## Summary", "", "Final checkpoint of each seed. " + STATISTICS, "",
           "| Algorithm | Steps | Success per seed | Success across seeds | Mean Reward across seeds | "
           + " | ".join(label_of(args.task, k)[0] for k in names) + " | Solved |",
           "|---|---:|---|---|---|" + "---|" * len(names) + "---|"]
    for algo, m in metrics.items():
        per = m["per_seed"]
        ok, n = stats.solved({s: v["success_rate"] for s, v in per.items()}, opts["success_threshold"])
        a = m["across_seeds"]
        md.append(f"| {algo} | {m['final_step']} | "
                  + ", ".join(f"{s}: {stats.fmt_rate(v)}" for s, v in sorted(per.items(), key=lambda kv: int(kv[0])))
                  + f" | {stats.fmt(a['success_rate'], '{:.0%}')} | {stats.fmt(a['mean_return'])} | "
                  + "".join(f"{stats.fmt(a.get(k), label_of(args.task, k)[1])} | " for k in names)
                  + f"{ok} of {n} seeds |")
    md.append("")

    # --- configuration -------------------------------------------------------------------------
    md += ["## Configuration", "", "| Parameter | Value |", "|---|---|",
           f"| Task | {args.task} |", f"| Reward version | {args.reward} (code sha256 {first['reward_fingerprint'][:12]}) |",
           f"| Backend | {sanity.get('backend', '?')} |", f"| Algorithms | {', '.join(metrics)} |",
           f"| Seeds | {', '.join(map(str, first['seeds']))} |",
           f"| Observations | {'; '.join(f'{a}: {observations(m)}' for a, m in metrics.items())} |",
           f"| Evaluation | {evaluation_line(first['evaluation'])} |"]
    md += [f"| env.{k} | {settings.format_value(v)} |" for k, v in sorted(first["env"].items())]
    md.append("")
    keys = sorted({k for m in metrics.values() for k in m["provenance"]["hparams"]})
    md += ["| Hyperparameter | " + " | ".join(metrics) + " |", "|---|" + "---:|" * len(metrics)]
    for k in keys:
        md.append(f"| {k} | " + " | ".join(str(m["provenance"]["hparams"].get(k, "")) for m in metrics.values()) + " |")
    md.append("")

    # --- evaluation per algorithm ------------------------------------------------------------------
    md += ["## Evaluation", ""]
    for algo, m in metrics.items():
        md += [f"### {algo}", "", evaluation_block(m), "", consistency(m, opts["consistency_tolerance"]), "",
               "Per checkpoint (all seeds and evaluation episodes):", "", checkpoint_table(frames[algo], args.task, m["task_metrics"]), ""]
        for seed, chunks in sorted(m.get("train_chunks", {}).items()):
            md += [f"Training episodes per chunk between checkpoints (seed {seed}, stochastic actions):", "",
                   chunk_table(chunks, args.task, m["task_metrics"]), ""]
        if m.get("best"):
            md += ["Best checkpoint by evaluation success, per seed (picked on these same evaluation episodes, "
                   "so an optimistic figure; the tables above use the final checkpoint): "
                   + ", ".join(f"seed {s}: step {b['step']:,}, {b['success_rate']:.0%}"
                               for s, b in sorted(m["best"].items(), key=lambda kv: int(kv[0]))) + ".", ""]
        if m.get("curriculum"):
            md += [f"Training curriculum (evaluation always at stage {m['provenance']['env']['curriculum_stage']}); "
                   "each stage with the step at which its first training episode ended:", ""]
            md += [f"- seed {seed}: " + ", ".join(f"stage {c['stage']} at {c['step']:,}" for c in moves)
                   for seed, moves in sorted(m["curriculum"].items(), key=lambda kv: int(kv[0]))] + [""]

    learning_curves(frames, figs / "learning_curve.png",
                    {algo: m["curriculum"] for algo, m in metrics.items() if m.get("curriculum")})
    md += ["## Learning curves", "", f"![learning curves]({os.path.relpath(figs / 'learning_curve.png', here)})", ""]

    # --- videos ----------------------------------------------------------------------------------
    renders = {algo: files.read_json(r) for algo, r in zip(metrics, args.renders)}
    pixel_algos = [a for a, m in metrics.items() if observations(m).startswith("pixels")]
    sees = (f", then for {', '.join(pixel_algos)} the frames the policy sees (its frame stack, oldest on top)"
            if pixel_algos else "")
    cameras = ", ".join(next(iter(renders.values())).get("cameras", []))
    md += ["## Videos", "", f"Final policy, one clean env, cameras {cameras}{sees}; contact sheet: where each "
           "checkpoint's episode ends.", "", "| Algorithm | Video | Still | Contact sheet |", "|---|---|---|---|"]
    for algo, video, still, sheet in zip(metrics, args.videos, args.stills, args.sheets):
        ep = renders[algo]["episode"]
        video_note = f"{ep['steps']} steps, return {ep['return']:.2f}, {'success' if ep['success'] else 'no success'}"
        shutil.copyfile(still, figs / f"{algo}_still.png")
        shutil.copyfile(sheet, figs / f"{algo}_sheet.png")
        md.append(f"| {algo} | [{Path(video).name}]({os.path.relpath(video, here)}) ({video_note}) | "
                  f"![{algo} still]({os.path.relpath(figs / f'{algo}_still.png', here)}) | "
                  f"![{algo} sheet]({os.path.relpath(figs / f'{algo}_sheet.png', here)}) |")
    md.append("")

    # --- demonstrations, sanity and provenance -----------------------------------------------------------
    for path in args.demos:
        md += ["## Demonstrations", "", demos_line(files.read_json(path)), ""]
    md += ["## Env sanity", "", f"Sanity check {'passed' if sanity.get('ok') else 'FAILED'} on "
           f"{sanity.get('backend')}; {sanity_line(sanity.get('checks', {}))}", ""]
    parity = sanity.get("checks", {}).get("parity")
    if parity:      # a backend other than MuJoCo: the same scripted controller on both
        md += [f"Backend parity ({sanity.get('backend')} vs mujoco, scripted controller, same seeds):", "",
               f"| | {sanity.get('backend')} | mujoco |", "|---|---:|---:|",
               f"| scripted success | {parity['success_rate']:.0%} | {parity['mujoco_success_rate']:.0%} |",
               f"| cube position gap over the first {parity['steps']} steps, mean / max (mm) | "
               f"{1000 * parity['cube_divergence_mean_m']:.1f} / {1000 * parity['cube_divergence_max_m']:.1f} | |",
               f"| gripper position gap over the first {parity['steps']} steps, mean / max (mm) | "
               f"{1000 * parity['gripper_divergence_mean_m']:.1f} / {1000 * parity['gripper_divergence_max_m']:.1f} | |", ""]
    md += ["## Provenance", "", "| | |", "|---|---|",
           *(f"| Git commit {algo} | {commits(m['provenance'])} |" for algo, m in metrics.items()),
           f"| Params hash | {params_hash(metrics)} |",
           f"| Reward fingerprint | {first['reward_fingerprint']} |",
           "| Versions | " + ", ".join(f"{k} {v}" for k, v in sorted(first["versions"].items())) + " |"]
    for algo, m in metrics.items():
        p = m["provenance"]
        walls = ", ".join(f"seed {s}: {w:.0f} s ({p['train_env_steps_per_s'][s]:.0f} steps/s)"
                          for s, w in sorted(p["train_wall_s"].items(), key=lambda kv: int(kv[0])))
        md.append(f"| Wall time {algo} | train {walls}; evaluate {p['eval_wall_s']:.0f} s; "
                  f"render {renders[algo]['wall_s']:.0f} s |")
    md.append("")
    out.write_text("\n".join(md))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    cli.run_main(main)
