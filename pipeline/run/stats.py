"""Statistics across seeds: what a reader of an RL result asks first is how much it varies by seed.

The unit is the seed: each seed gives one number (say its final policy's success rate over the
evaluation episodes), and the summary is over those numbers, never over pooled episodes.
    across_seeds([0.9, 0.7, 1.0]) -> {"n": 3, "mean": ..., "std": ..., "ci_low": ..., "ci_high": ..., "iqm": None}
The 95% confidence interval of the mean is scipy's bootstrap over seeds (percentile method, fixed
random state, so a report is the same bytes on every run); the interquartile mean (the mean of the
middle 50%, as rliable reports it) is given from 5 seeds on. With one seed there is no interval.
"""
from __future__ import annotations

import math

import numpy as np

CONFIDENCE = 0.95
RESAMPLES = 10_000
MIN_SEEDS_IQM = 5


def across_seeds(values) -> dict:
    x = np.asarray([v for v in values if v is not None and not math.isnan(v)], dtype=float)
    out = {"n": int(len(x)), "mean": None, "std": None, "ci_low": None, "ci_high": None, "iqm": None}
    if len(x) == 0:
        return out
    out["mean"] = float(x.mean())
    out["std"] = float(x.std(ddof=1)) if len(x) > 1 else 0.0
    if len(x) >= 2:
        out["ci_low"], out["ci_high"] = bootstrap_ci(x)
    if len(x) >= MIN_SEEDS_IQM:
        from scipy.stats import trim_mean
        out["iqm"] = float(trim_mean(x, 0.25))
    return out


def bootstrap_ci(x: np.ndarray) -> tuple[float, float]:
    """The 95% percentile bootstrap interval of the mean over seeds."""
    if np.all(x == x[0]):            # every resample has the same mean
        return float(x[0]), float(x[0])
    from scipy.stats import bootstrap
    res = bootstrap((x,), np.mean, confidence_level=CONFIDENCE, n_resamples=RESAMPLES, method="percentile",
                    random_state=np.random.default_rng(0))
    return float(res.confidence_interval.low), float(res.confidence_interval.high)


def differs(a: dict, b: dict) -> bool | None:
    """True/False: the two intervals do / do not overlap; None when either has too few seeds to say."""
    if a.get("ci_low") is None or b.get("ci_low") is None:
        return None
    return a["ci_high"] < b["ci_low"] or b["ci_high"] < a["ci_low"]


def solved(per_seed: dict, bar: float) -> tuple[int, int]:
    """(seeds that cleared the bar, seeds)."""
    values = [v for v in per_seed.values() if v is not None]
    return sum(v >= bar for v in values), len(values)


def fmt(s: dict, f: str = "{:.2f}") -> str:
    """'m +/- s [lo, hi]' (n seeds)."""
    if not s or s["n"] == 0:
        return "n/a"
    text = f"{f.format(s['mean'])} +/- {f.format(s['std'])}"
    if s["ci_low"] is not None:
        text += f" [{f.format(s['ci_low'])}, {f.format(s['ci_high'])}]"
    if s.get("iqm") is not None:
        text += f", IQM {f.format(s['iqm'])}"
    return text
