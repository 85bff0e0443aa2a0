"""What the report and compare stages share: metric titles, the learning-curve figure, the commit
line of a provenance record."""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

# Episode metrics of the env itself, whatever the task (a residual learner's correction size).
ENV_METRICS = {"residual_l2": ("Residual L2 per Step", "{:.3f}")}


def label_of(task: str, name: str) -> tuple[str, str]:
    """(title, format) of an episode metric (listed in metrics.json): as the task declares it
    (envs Task.episode_metrics), or one of the env's own (ENV_METRICS)."""
    import envs.tasks
    metric = envs.tasks.get_task(task).episode_metrics.get(name)
    return (metric.label, metric.fmt) if metric else ENV_METRICS.get(name, (name, "{:.3g}"))


def seed_curves(df: pd.DataFrame, column: str) -> pd.DataFrame:
    """Per checkpoint step that every seed has: the mean over each seed's evaluation episodes, then
    mean and std across seeds (std 0 with one seed)."""
    per_seed = df.groupby(["step", "seed"])[column].mean().unstack("seed").dropna()
    return pd.DataFrame({"mean": per_seed.mean(axis=1), "std": per_seed.std(axis=1, ddof=1).fillna(0.0)})


def learning_curves(frames: dict[str, pd.DataFrame], path: Path, stages: dict | None = None) -> None:
    """Evaluation return and success over checkpoints, mean across seeds with a +/- 1 std band;
    stages: {label: {seed: [{"stage", "step"}, ...]}} marks where a training curriculum moved."""
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    for label, df in frames.items():
        for ax, column, scale, bounds in ((axes[0], "return", 1.0, (None, None)),
                                          (axes[1], "success_once", 100.0, (0.0, 100.0))):
            c = seed_curves(df, column) * scale
            line, = ax.plot(c.index, c["mean"], marker="o", label=f"{label} ({df.seed.nunique()} seeds)")
            band = (c["mean"] - c["std"]).clip(lower=bounds[0]), (c["mean"] + c["std"]).clip(upper=bounds[1])
            ax.fill_between(c.index, *band, alpha=0.2)
            for moves in (stages or {}).get(label, {}).values():
                for move in moves[1:]:
                    ax.axvline(move["step"], color=line.get_color(), linestyle=":", alpha=0.6)
                    if ax is axes[1]:
                        ax.text(move["step"], 100, f" stage {move['stage']}", color=line.get_color(),
                                fontsize=7, rotation=90, va="top")
    axes[0].set(xlabel="env steps", ylabel="mean eval return", title="Return (mean across seeds, +/- 1 std)")
    axes[1].set(xlabel="env steps", ylabel="eval success (%)", title="Success rate (mean across seeds, +/- 1 std)",
                ylim=(-5, 105))
    for ax in axes:
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100, metadata={"Software": None})   # no version stamp: same data, same bytes
    plt.close(fig)


def commits(provenance: dict) -> str:
    """The commit the runs trained at, or each commit with its seeds where they differ."""
    by_seed = provenance.get("git_commits") or {"all": provenance["git_commit"]}
    seeds = {}
    for seed, commit in by_seed.items():
        seeds.setdefault(commit[:12], []).append(seed)
    if len(seeds) == 1:
        return next(iter(seeds))
    return ", ".join(f"{c} (seed{'s' if len(s) > 1 else ''} {', '.join(s)})" for c, s in seeds.items())
