"""Stage `compare`: reports/{task}_compare.md, the variants of params.yaml's `compare:` block side by
side, across seeds, from their evaluation outputs (declared inputs, so a change to one variant
reruns its chain and this report, and nothing else).

    python -m pipeline.compare --task lift --metrics data/eval/lift_v11_mujoco/ppo.json ... \
        --provenance ... --episodes ... --out reports/lift_compare.md --figures reports/lift_compare \
        --compare.rewards v11,v19 --compare.algos ppo --compare.backends mujoco --report.success_threshold 0.8 ...

The devlogs' before/after tables: per algorithm and backend, one column per reward version (the
first listed is the baseline), or with `compare.pairs` one column per reward/algo pair; each cell
the across-seed statistics (n, mean, the range below 5 seeds, the 95% t-interval from 5:
pipeline/run/stats.py). Each change column gives the difference of means with, from 5 seeds on each
side, how likely the variant beats the baseline (the probability of improvement over seed pairs) and
the exact permutation test's p-value, the change in bold where p < 0.05; below 5 seeds a side it
says "too few seeds to tell". Then the same across algorithms and backends, each seed's own numbers
(its success rate with successes/episodes and 95% Wilson interval), how many seeds cleared the
success bar, and learning curves (mean across seeds, +/- 1 std).
"""
from __future__ import annotations

import argparse
import itertools
import os
import shutil
from pathlib import Path

import pandas as pd

from pipeline.dag.params import compare_variants
from pipeline.run import cli, files, stats
from pipeline.run.reporting import commits, label_of, learning_curves


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--task", required=True)
    for name in ("metrics", "provenance", "episodes"):
        ap.add_argument(f"--{name}", nargs="+", required=True, help="one per variant, in the same order")
    ap.add_argument("--out", required=True)
    ap.add_argument("--figures", required=True)
    cli.add_block_args(ap, "compare", "report")
    return ap.parse_args(argv)


def seed_values(d: dict, key: str) -> list:
    """One number per seed of a variant (its final checkpoint's), where the seed has it."""
    return [v[key] for v in d["per_seed"].values() if v.get(key) is not None]


def change(base: dict, other: dict, key: str, f: str) -> str:
    """Difference of seed means, P(higher) and the permutation p-value, or too few seeds to tell."""
    return stats.fmt_compare(stats.compare(seed_values(base, key), seed_values(other, key)), f)


def rows(task: str, names: list[str]) -> list[tuple[str, str, str]]:
    return ([("Success Rate", "success_rate", "{:.0%}"), ("Mean Reward", "mean_return", "{:.2f}")]
            + [(label_of(task, k)[0], k, label_of(task, k)[1]) for k in names]
            + [("Terminated", "terminated_rate", "{:.0%}")])


def table(columns: dict[str, dict], task: str, names: list[str], baseline: str | None) -> list[str]:
    """Metric rows x variant columns of across-seed statistics; with a baseline, a change column per
    other variant."""
    others = [c for c in columns if c != baseline] if baseline else []
    lines = ["| " + " | ".join(["Metric", *columns, *(f"{c} vs {baseline}" for c in others)]) + " |",
             "|---|" + "---|" * (len(columns) + len(others))]
    for title, key, f in rows(task, names):
        cells = [stats.fmt(m["across_seeds"].get(key), f) for m in columns.values()]
        diffs = [change(columns[baseline], columns[c], key, f) for c in others]
        lines.append("| " + " | ".join([title, *cells, *diffs]) + " |")
    return lines


def main(argv=None) -> int:
    args = parse_args(argv)
    compare, bar = cli.block(args, "compare"), cli.block(args, "report")["success_threshold"]
    keys = compare_variants(compare)
    if not len(keys) == len(args.metrics) == len(args.provenance) == len(args.episodes):
        raise cli.StageError(f"{len(keys)} variants in compare, but {len(args.metrics)} metrics files")
    data = {}
    for key, m_path, p_path, e_path in zip(keys, args.metrics, args.provenance, args.episodes):
        p = files.read_json(p_path)
        if (p["task"], p["reward"], p["algo"]) != (args.task, key[0], key[1]) or p["env"]["backend"] != key[2]:
            raise cli.StageError(f"{p_path} holds {p['task']}/{p['reward']}/{p['algo']}/{p['env']['backend']}, "
                                    f"expected {args.task}/{'/'.join(key)}")
        data[key] = {**files.read_json(m_path), "provenance": p, "episodes": pd.read_parquet(e_path)}
    names = list(dict.fromkeys(k for d in data.values() for k in d["task_metrics"]))   # each variant's, in order
    seeds = sorted({s for d in data.values() for s in d["per_seed"]}, key=int)
    out, figs = Path(args.out), Path(args.figures)
    if figs.exists():
        shutil.rmtree(figs)
    figs.mkdir(parents=True)

    pairs = compare.get("pairs") or [f"{r}/{a}" for r in compare["rewards"] for a in compare["algos"]]
    title = ", ".join(compare["pairs"]) if compare.get("pairs") else \
        f"{', '.join(compare['rewards'])} x {', '.join(compare['algos'])}"
    md = [f"# {args.task}: {title} x {', '.join(compare['backends'])}", "",
          "Generated by `pipeline/compare.py` from the evaluation outputs of every variant; do not edit. "
          f"Each number is over seeds {', '.join(seeds)}: the final checkpoint of each seed, then across seeds "
          f"n, the mean and, below {stats.MIN_SEEDS_INTERVAL} seeds, their range (lowest-highest; no "
          f"confidence interval), from {stats.MIN_SEEDS_INTERVAL} seeds the 95% t-interval of the mean "
          "(Student's t). A change column gives the difference of the means; from "
          f"{stats.MIN_SEEDS_COMPARE} seeds on each side also P(higher), the probability that a seed of the "
          "variant scores higher than a seed of the baseline (the mean over all seed pairs, ties counting "
          "half), and p, the two-sided permutation test of the difference of seed means (exact up to 10 seeds "
          "a side, every split of the seeds); a change is "
          f"**bold** where p < {stats.ALPHA}. With fewer seeds it says too few seeds to tell.", ""]
    fewest = min(len(d["per_seed"]) for d in data.values())
    if fewest < stats.MIN_SEEDS_COMPARE:
        md += [f"**{fewest} seed{'s' if fewest > 1 else ''} in the smallest variant, fewer than "
               f"{stats.MIN_SEEDS_COMPARE}: no difference below can be told apart from seed-to-seed "
               "variation.**", ""]
    if compare.get("pairs"):
        md += ["## Variants", "", f"Reward/algorithm pairs; the first, {pairs[0]}, is the baseline.", ""]
        for backend in compare["backends"]:
            md += [f"### on {backend}", ""]
            md += table({p: data[(*p.split("/", 1), backend)] for p in pairs}, args.task, names, pairs[0]) + [""]
    else:
        # One reward version: its column is in the tables below, unless there are none.
        if len(compare["rewards"]) > 1 or (len(compare["algos"]) == 1 and len(compare["backends"]) == 1):
            md += ["## Reward versions", ""]
            for algo, backend in itertools.product(compare["algos"], compare["backends"]):
                md += [f"### {algo} on {backend}", ""]
                md += table({r: data[(r, algo, backend)] for r in compare["rewards"]}, args.task, names,
                            compare["rewards"][0] if len(compare["rewards"]) > 1 else None) + [""]
        if len(compare["algos"]) > 1:
            md += ["## Algorithms", ""]
            for reward, backend in itertools.product(compare["rewards"], compare["backends"]):
                md += [f"### {reward} / {backend}", ""]
                md += table({a: data[(reward, a, backend)] for a in compare["algos"]}, args.task, names,
                            compare["algos"][0]) + [""]
    if len(compare["backends"]) > 1:
        md += ["## Backends", ""]
        for pair in pairs:
            md += [f"### {pair}", ""]
            md += table({b: data[(*pair.split("/", 1), b)] for b in compare["backends"]}, args.task, names,
                        compare["backends"][0]) + [""]

    md += ["## Per seed", "", "Success rate (successes/episodes, 95% Wilson interval) and mean reward of each "
           f"seed's final checkpoint; solved: success >= {bar:.0%}.", "", "| Variant | " + " | ".join(f"seed {s}" for s in seeds) + " | Solved |",
           "|---|" + "---:|" * len(seeds) + "---|"]
    for key, d in data.items():
        per = d["per_seed"]
        ok, n = stats.solved({s: v["success_rate"] for s, v in per.items()}, bar)
        md.append(f"| {'/'.join(key)} | " + " | ".join(
            f"{stats.fmt_rate(per[s])}; {per[s]['mean_return']:.1f}" if s in per else "" for s in seeds)
            + f" | {ok} of {n} seeds |")
    md.append("")
    learning_curves({"/".join(k): d["episodes"] for k, d in data.items()}, figs / "learning_curve.png",
                    {"/".join(k): d["curriculum"] for k, d in data.items() if d.get("curriculum")})
    md += ["## Learning curves", "", f"![learning curves]({os.path.relpath(figs / 'learning_curve.png', out.parent)})", ""]
    md += ["## Provenance", "", "| Variant | Reward code | Commit | Final step | Train wall time per seed |",
           "|---|---|---|---:|---|"]
    for key, d in data.items():
        p = d["provenance"]
        walls = ", ".join(f"{s}: {w:.0f} s" for s, w in sorted(p["train_wall_s"].items(), key=lambda kv: int(kv[0])))
        md.append(f"| {'/'.join(key)} | {p['reward_fingerprint'][:12]} | {commits(p)} | "
                  f"{d['final_step']} | {walls} |")
    md.append("")
    out.write_text("\n".join(md))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    cli.run_main(main)
