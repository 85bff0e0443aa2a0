"""Statistics of a result whose unit is the seed (the design's principle 14): n always shown, a range
below 5 seeds, a named interval from 5, per-seed rates with binomial intervals, and comparisons that
say how likely one variant beats the other.

Per seed, a success rate is k successes in n evaluation episodes; its 95% Wilson score interval
(`wilson`) says how precisely those n episodes measure that seed's policy (at a 50-80% rate the
standard error is 9-11 points from 20 episodes, 6-7 from 50).

Across seeds, each seed gives one number and the summary is over those numbers, never over pooled
episodes (`across_seeds`):
    across_seeds([0.9, 0.7, 1.0]) -> {"n": 3, "mean": 0.87, "std": ..., "min": 0.7, "max": 1.0,
                                      "ci_low": None, "ci_high": None, "ci_method": None, "iqm": None}
- below MIN_SEEDS_INTERVAL (5) seeds there is no interval, only the range (min, max), shown as a
  range. A percentile bootstrap over 3 seeds is exactly that range (a resample of the lowest seed
  alone has probability 1/27 > 2.5%), and the range holds the true mean in only ~70-85% of 3-seed
  experiments (~50-65% with 2 seeds; tests/test_stats.py measures it);
- from 5 seeds, the 95% Student t-interval of the mean over seeds (mean +/- t(0.975, n-1) s/sqrt n;
  INTERVAL_METHOD names it in every output), clipped to the metric's bounds (a rate's [0, 1]).
  Simulated 5-seed experiments (seeds' true rates from a Beta around the mean, 50 episodes each) put
  its coverage at 94-95% in mid range and 92% at a 90% mean when seeds spread by ~6 points; where
  seeds spread widely near 0% or 100% it falls (~85-90%), and where seeds split into solved and
  failed no 5-seed interval is reliable: the per-seed numbers show that case;
- the interquartile mean (scipy's trim_mean(x, 0.25), as rliable computes it) from MIN_SEEDS_IQM
  (4) seeds, the first n at which it trims anything.

A comparison of two variants over their seeds (`compare`): the probability of improvement P(X > Y),
the mean over all seed pairs of 1[x > y] + 0.5 1[x = y] (rliable's definition), and a two-sided
permutation test of the difference of seed means: exact (every split of the seeds) up to
EXACT_SPLITS splits, else RANDOM_PERMUTATIONS random ones with a fixed random state. With fewer than
MIN_SEEDS_COMPARE (5) seeds on either side it gives no verdict: at 3 vs 3 even a complete separation
has p = 2/20 = 0.10, so the test cannot reach 0.05, and overlapping ranges say nothing either.
Everything here is deterministic: the same numbers give the same bytes.
"""
from __future__ import annotations

import itertools
import math
from functools import lru_cache

import numpy as np

CONFIDENCE = 0.95
MIN_SEEDS_INTERVAL = 5
MIN_SEEDS_IQM = 4
MIN_SEEDS_COMPARE = 5
ALPHA = 0.05                      # a comparison's verdict: two-sided permutation p below this
INTERVAL_METHOD = "95% t-interval"
EXACT_SPLITS = 200_000            # 10 vs 10 seeds is 184,756 splits: exact
RANDOM_PERMUTATIONS = 20_000
TOO_FEW = "too few seeds to tell"


def _z() -> float:
    from scipy.stats import norm
    return float(norm.ppf(0.5 + CONFIDENCE / 2))


def wilson(successes: int, trials: int) -> tuple[float, float]:
    """The 95% Wilson score interval of a success rate from `successes` of `trials` episodes."""
    if trials <= 0:
        raise ValueError("a Wilson interval needs at least one trial")
    z, p = _z(), successes / trials
    centre = (p + z * z / (2 * trials)) / (1 + z * z / trials)
    half = z / (1 + z * z / trials) * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials))
    # at 0 or all successes the bound is exactly 0 or 1; say so rather than 0.9999999999999999
    return (0.0 if successes == 0 else centre - half), (1.0 if successes == trials else centre + half)


def rate(successes: int, trials: int) -> dict:
    """One seed's success rate with its Wilson interval and the counts it comes from."""
    low, high = wilson(successes, trials)
    return {"successes": int(successes), "episodes": int(trials), "success_rate": successes / trials,
            "success_low": low, "success_high": high}


def _clean(values) -> np.ndarray:
    return np.asarray([v for v in values if v is not None and not math.isnan(v)], dtype=float)


def across_seeds(values, bounds: tuple[float, float] | None = None) -> dict:
    """n, mean, std (ddof 1), min, max; from 5 seeds the 95% t-interval of the mean (ci_low,
    ci_high, ci_method), clipped to `bounds`; from 4 seeds the interquartile mean."""
    x = _clean(values)
    out = {"n": int(len(x)), "mean": None, "std": None, "min": None, "max": None,
           "ci_low": None, "ci_high": None, "ci_method": None, "iqm": None}
    if len(x) == 0:
        return out
    out.update(mean=float(x.mean()), std=float(x.std(ddof=1)) if len(x) > 1 else 0.0,
               min=float(x.min()), max=float(x.max()))
    if len(x) >= MIN_SEEDS_INTERVAL:
        low, high = t_interval(x)
        if bounds is not None:
            low, high = max(low, bounds[0]), min(high, bounds[1])
        out.update(ci_low=low, ci_high=high, ci_method=INTERVAL_METHOD)
    if len(x) >= MIN_SEEDS_IQM:
        from scipy.stats import trim_mean
        out["iqm"] = float(trim_mean(x, 0.25))
    return out


def t_interval(x: np.ndarray) -> tuple[float, float]:
    """Student's t-interval of the mean: mean +/- t(0.975, n-1) * s / sqrt(n)."""
    from scipy.stats import t
    mean, half = float(x.mean()), float(t.ppf(0.5 + CONFIDENCE / 2, len(x) - 1) * x.std(ddof=1) / math.sqrt(len(x)))
    return mean - half, mean + half


def probability_of_improvement(other, base) -> float:
    """P(X > Y): over every pair of a seed x of `other` and a seed y of `base`, the mean of
    1[x > y] + 0.5 1[x = y]."""
    x, y = _clean(other)[:, None], _clean(base)[None, :]
    return float(np.mean((x > y) + 0.5 * (x == y)))


@lru_cache(maxsize=16)
def _splits(n_a: int, n: int) -> np.ndarray:
    """Every choice of n_a of n seeds as group A, one row each (index arrays)."""
    return np.array(list(itertools.combinations(range(n), n_a)), dtype=np.int16)


def permutation_p(a, b) -> tuple[float, str]:
    """Two-sided permutation test of mean(a) - mean(b): (p, method). Exact over every split of
    the pooled seeds when there are at most EXACT_SPLITS, else RANDOM_PERMUTATIONS random ones
    (p = (1 + as extreme) / (1 + permutations), fixed random state)."""
    a, b = _clean(a), _clean(b)
    pooled, n_a = np.concatenate([a, b]), len(a)
    total = pooled.sum()
    observed = abs(a.mean() - b.mean())
    tol = 1e-9 * max(1.0, float(np.abs(pooled).max()))
    if math.comb(len(pooled), n_a) <= EXACT_SPLITS:
        sums = pooled[_splits(n_a, len(pooled))].sum(axis=1)
        diffs = np.abs(sums / n_a - (total - sums) / len(b))
        return float(np.mean(diffs >= observed - tol)), "exact permutation test"
    rng = np.random.default_rng(0)
    perms = rng.permuted(np.tile(pooled, (RANDOM_PERMUTATIONS, 1)), axis=1)
    sums = perms[:, :n_a].sum(axis=1)
    diffs = np.abs(sums / n_a - (total - sums) / len(b))
    return (1 + int(np.sum(diffs >= observed - tol))) / (1 + RANDOM_PERMUTATIONS), \
        f"permutation test ({RANDOM_PERMUTATIONS:,} random permutations)"


def compare(base, other) -> dict:
    """`other`'s seeds against `base`'s: difference of means, and from 5 seeds each the
    probability of improvement P(other > base), the permutation p-value and a verdict: "higher" or
    "lower" where p < ALPHA, else "no clear difference"; below 5 seeds on a side, TOO_FEW."""
    a, b = _clean(other), _clean(base)
    out = {"n_base": int(len(b)), "n_other": int(len(a)),
           "delta": float(a.mean() - b.mean()) if len(a) and len(b) else None,
           "p_improvement": None, "p_value": None, "test": None, "verdict": TOO_FEW}
    if min(len(a), len(b)) < MIN_SEEDS_COMPARE:
        return out
    p, test = permutation_p(a, b)
    verdict = "no clear difference" if p >= ALPHA else ("higher" if out["delta"] > 0 else "lower")
    return {**out, "p_improvement": probability_of_improvement(a, b), "p_value": p, "test": test,
            "verdict": verdict}


def solved(per_seed: dict, bar: float) -> tuple[int, int]:
    """(seeds that cleared the bar, seeds)."""
    values = [v for v in per_seed.values() if v is not None]
    return sum(v >= bar for v in values), len(values)


def span(low: float, high: float, f: str = "{:.2f}") -> str:
    """'70-95%' for percentages, else '550.00 to 750.00' (a dash would read as a minus sign)."""
    lo, hi = f.format(low), f.format(high)
    if lo.endswith("%") and hi.endswith("%") and not lo.startswith("-") and not hi.startswith("-"):
        return f"{lo[:-1]}-{hi}"
    return f"{lo} to {hi}"


def fmt(s: dict | None, f: str = "{:.2f}") -> str:
    """'n = 1 seed, 90%'; 'n = 3 seeds, mean 87%, range 70-100%'; 'n = 5 seeds, mean 84%,
    95% t-interval [76%, 92%]'; the interquartile mean appended from 4 seeds."""
    if not s or s["n"] == 0:
        return "n/a"
    if s["n"] == 1:
        return f"n = 1 seed, {f.format(s['mean'])}"
    text = f"n = {s['n']} seeds, mean {f.format(s['mean'])}, "
    if s.get("ci_low") is not None:
        text += f"{s['ci_method']} [{f.format(s['ci_low'])}, {f.format(s['ci_high'])}]"
    else:
        text += f"range {span(s['min'], s['max'], f)}"
    if s.get("iqm") is not None:
        text += f", IQM {f.format(s['iqm'])}"
    return text


def fmt_rate(r: dict) -> str:
    """One seed's success: '90% (45/50, 79-96%)': successes/episodes and the Wilson interval."""
    return (f"{r['success_rate']:.0%} ({r['successes']}/{r['episodes']}, "
            f"{span(r['success_low'], r['success_high'], '{:.0%}')})")


def fmt_compare(c: dict, f: str = "{:.2f}") -> str:
    """A change cell: '+25%; P(higher) 0.92; p = 0.016' (the change in bold where p < ALPHA), or
    '+25% (too few seeds to tell)'."""
    if c["delta"] is None:
        return "n/a"
    text = ("+" if c["delta"] >= 0 else "-") + f.format(abs(c["delta"]))
    if c["verdict"] == TOO_FEW:
        return f"{text} ({TOO_FEW})"
    if c["verdict"] != "no clear difference":
        text = f"**{text}**"
    p = "p < 0.001" if c["p_value"] < 0.001 else f"p = {c['p_value']:.3f}"
    return f"{text}; P(higher) {c['p_improvement']:.2f}; {p}"
