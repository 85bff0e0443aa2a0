"""DVC's stage `headline`: the experiment's headline numbers at paths that do not depend on it.

    python -m pipeline.dag.headline --task lift --reward v19 --backend mujoco \
        --metrics data/eval/lift_v19_mujoco/ppo.json ... --curves data/eval/lift_v19_mujoco/ppo_curve.tsv ... \
        --out metrics.json --plots plots

`dvc exp show`, `dvc metrics diff` and `dvc plots diff` compare experiments by file path, and the
evaluation outputs' paths carry the experiment's identity, so two reward versions would share no
column. Here the identity is a value inside the file (task, reward, backend) and the numbers of each
algorithm sit under its name: metrics.json and plots/<algo>.tsv (success rate over env steps).
"""
from __future__ import annotations

import argparse
import shutil
from pathlib import Path

from pipeline.run import cli, files


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    for name in ("task", "reward", "backend", "out", "plots"):
        ap.add_argument(f"--{name}", required=True)
    ap.add_argument("--metrics", nargs="+", required=True, help="evaluate's metrics JSON, one per algorithm")
    ap.add_argument("--curves", nargs="+", required=True, help="evaluate's curve TSV, one per algorithm")
    return ap.parse_args(argv)


def summary(m: dict) -> dict:
    """Pooled over the final checkpoints' episodes as the devlogs give them; per seed the success
    rate with its episodes and 95% Wilson interval; across seeds n, mean, std, min and max, and from
    5 seeds the 95% interval of the mean with its method (pipeline/run/stats.py). Below 5 seeds
    there is no interval key: min and max are the range."""
    a = m["across_seeds"]
    out = {"success_rate": m["success_rate"], "mean_return": m["mean_return"], "final_step": m["final_step"],
           "seeds": a["success_rate"]["n"],
           **{f"{k}_seed_{x}": a[k][x] for k in ("success_rate", "mean_return") for x in ("mean", "std", "min", "max")},
           "per_seed": {f"seed{s}": {k: v[k] for k in ("success_rate", "successes", "episodes", "success_low",
                                                       "success_high")}
                        for s, v in sorted(m["per_seed"].items(), key=lambda kv: int(kv[0]))},
           **{k: m[k] for k in m["task_metrics"]}}
    if a["success_rate"]["ci_low"] is not None:
        out.update(success_rate_ci_low=a["success_rate"]["ci_low"], success_rate_ci_high=a["success_rate"]["ci_high"],
                   success_rate_ci_method=a["success_rate"]["ci_method"])
    return out


def main(argv=None) -> int:
    args = parse_args(argv)
    plots = Path(args.plots)
    plots.mkdir(parents=True, exist_ok=True)
    result = {"task": args.task, "reward": args.reward, "backend": args.backend}
    for m_path, c_path in zip(args.metrics, args.curves):
        algo = Path(m_path).stem
        result[algo] = summary(files.read_json(m_path))
        shutil.copyfile(c_path, plots / f"{algo}.tsv")
    files.write_json(args.out, result)
    print(f"wrote {args.out} and {plots}/")
    return 0


if __name__ == "__main__":
    cli.run_main(main)
