"""Statistics of seeds (pipeline/run/stats.py): values computed by hand or published, the coverage of
the intervals by simulation, the comparison's verdicts, and how each is written.

Every simulation draws from a fixed random generator, so the file gives the same result on every run.
"""
import math

import numpy as np
import pytest
from scipy.stats import binomtest

from pipeline.run import stats


# --- per seed: Wilson score interval ------------------------------------------------------------

@pytest.mark.parametrize("k, n, low, high", [(0, 10, 0.0, 0.2775), (5, 10, 0.2366, 0.7634),
                                             (10, 10, 0.7225, 1.0), (45, 50, 0.7864, 0.9565),
                                             (18, 20, 0.6990, 0.9721)])
def test_wilson_interval_known_values(k, n, low, high):
    """Published values (0/10: upper 0.2775; 5/10: 0.2366-0.7634) and scipy's own Wilson interval."""
    got = stats.wilson(k, n)
    assert got == pytest.approx((low, high), abs=1e-4)
    ref = binomtest(k, n).proportion_ci(0.95, method="wilson")
    assert got == pytest.approx((ref.low, ref.high), abs=1e-9)
    assert stats.wilson(0, 10)[0] == 0.0 and stats.wilson(10, 10)[1] == 1.0, "exact bounds at 0 and n"


def test_a_seed_rate_carries_its_counts_and_interval():
    r = stats.rate(45, 50)
    assert (r["successes"], r["episodes"], r["success_rate"]) == (45, 50, 0.9)
    assert stats.fmt_rate(r) == "90% (45/50, 79-96%)"
    assert stats.fmt_rate(stats.rate(2, 2)) == "100% (2/2, 34-100%)"


# --- across seeds ---------------------------------------------------------------------------------

def test_below_five_seeds_a_range_and_no_interval():
    s = stats.across_seeds([0.2, 0.4, 0.9])
    assert s["n"] == 3 and s["mean"] == pytest.approx(0.5)
    assert s["std"] == pytest.approx(math.sqrt((0.3 ** 2 + 0.1 ** 2 + 0.4 ** 2) / 2))     # ddof 1
    assert (s["min"], s["max"]) == (0.2, 0.9)
    assert s["ci_low"] is None and s["ci_method"] is None and s["iqm"] is None
    text = stats.fmt(s, "{:.0%}")
    assert text == "n = 3 seeds, mean 50%, range 20-90%" and "interval" not in text
    assert stats.fmt(stats.across_seeds([0.9]), "{:.0%}") == "n = 1 seed, 90%"
    assert stats.fmt(stats.across_seeds([]), "{:.0%}") == "n/a"
    assert stats.fmt(stats.across_seeds([-12.0, 750.0])) == "n = 2 seeds, mean 369.00, range -12.00 to 750.00"


def test_from_five_seeds_a_named_t_interval():
    x = [0.6, 0.7, 0.8, 0.9, 1.0]
    s = stats.across_seeds(x)
    half = 2.7764451 * np.std(x, ddof=1) / math.sqrt(5)           # t(0.975, 4) s / sqrt(5)
    assert (s["ci_low"], s["ci_high"]) == pytest.approx((0.8 - half, 0.8 + half))
    assert s["ci_method"] == "95% t-interval"
    high = [0.8, 0.9, 1.0, 1.0, 1.0]
    assert stats.across_seeds(high)["ci_high"] > 1.0 and stats.across_seeds(high, bounds=(0.0, 1.0))["ci_high"] == 1.0
    assert stats.fmt(stats.across_seeds([0.8, 0.85, 0.9, 0.8, 0.85]), "{:.0%}") == \
        "n = 5 seeds, mean 84%, 95% t-interval [79%, 89%], IQM 83%"
    assert stats.across_seeds(x) == s, "the same numbers on every run"


def test_iqm_only_where_it_trims():
    assert stats.across_seeds([0.0, 1.0, 100.0])["iqm"] is None          # 3 seeds: trim_mean trims none
    assert stats.across_seeds([0.0, 1.0, 2.0, 100.0])["iqm"] == pytest.approx(1.5)   # middle two of four
    assert stats.across_seeds([0.0, 1.0, 2.0, 3.0, 100.0])["iqm"] == pytest.approx(2.0)
    assert stats.across_seeds([0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8])["iqm"] == pytest.approx(0.45)
    assert stats.fmt(stats.across_seeds([0.0, 1.0, 2.0, 100.0])).endswith(", IQM 1.50")


def simulated_rates(rng, mean, seeds, experiments, spread=20.0, episodes=50):
    """As benchmarks/interval_coverage.py simulates them: each seed's true rate from a Beta with the
    given mean (concentration `spread`), measured over `episodes` evaluation episodes."""
    p = rng.beta(mean * spread, (1 - mean) * spread, size=(experiments, seeds))
    return rng.binomial(episodes, p) / episodes


@pytest.mark.parametrize("mean", [0.2, 0.5, 0.7, 0.9])
def test_the_t_interval_covers_the_true_mean_at_five_seeds(mean):
    """A nominal 95% interval from 5 seeds holds the true mean over seeds in at least 90% of
    simulated experiments (measured: 92-95%)."""
    rng = np.random.default_rng(14)
    held = [s["ci_low"] <= mean <= s["ci_high"]
            for s in (stats.across_seeds(x, bounds=(0.0, 1.0)) for x in simulated_rates(rng, mean, 5, 1000))]
    assert np.mean(held) >= 0.90


def test_the_range_of_three_seeds_is_no_95_percent_interval():
    """Why below 5 seeds the output says range: the range of 3 seeds (which the old 95% percentile
    bootstrap returned) holds the true mean in far fewer than 95% of experiments."""
    rng = np.random.default_rng(3)
    x = simulated_rates(rng, 0.7, 3, 4000)
    coverage = np.mean((x.min(axis=1) <= 0.7) & (0.7 <= x.max(axis=1)))
    assert 0.70 < coverage < 0.85


# --- comparisons ----------------------------------------------------------------------------------

def test_probability_of_improvement_counts_ties_half():
    assert stats.probability_of_improvement([1.0, 2.0], [2.0, 3.0]) == pytest.approx(0.125)
    assert stats.probability_of_improvement([5.0, 6.0], [1.0, 2.0]) == 1.0


def test_a_clear_win_at_ten_seeds_each():
    rng = np.random.default_rng(10)
    base, other = rng.normal(0.5, 0.1, 10), rng.normal(0.8, 0.1, 10)
    c = stats.compare(base, other)
    assert c["verdict"] == "higher" and c["test"] == "exact permutation test"
    assert c["p_value"] < 0.001 and c["p_improvement"] > 0.9
    assert stats.compare(other, base)["verdict"] == "lower"
    assert stats.fmt_compare(c, "{:.0%}").startswith(f"**+{c['delta']:.0%}**; P(higher) ")


def test_too_few_seeds_to_tell_at_three_each():
    """Even a complete separation of 3 vs 3 seeds has exact p = 2/20: no verdict below 5 a side."""
    c = stats.compare([0.0, 0.0, 0.0], [1.0, 1.0, 1.0])
    assert c["verdict"] == stats.TOO_FEW and c["p_value"] is None and c["p_improvement"] is None
    assert stats.permutation_p([1.0, 1.0, 1.0], [0.0, 0.0, 0.0])[0] == pytest.approx(0.1)
    assert stats.fmt_compare(c, "{:.0%}") == "+100% (too few seeds to tell)"
    assert stats.compare([0.1] * 10, [0.9] * 4)["verdict"] == stats.TOO_FEW


def test_exact_permutation_p_at_five_seeds_each():
    c = stats.compare([0.1, 0.2, 0.3, 0.4, 0.5], [0.6, 0.7, 0.8, 0.9, 1.0])
    assert c["p_value"] == pytest.approx(2 / 252) and c["p_improvement"] == 1.0 and c["verdict"] == "higher"
    same = stats.compare([0.1, 0.3, 0.5, 0.7, 0.9], [0.2, 0.4, 0.6, 0.8, 0.5])
    assert same["verdict"] == "no clear difference"
    assert stats.fmt_compare(same, "{:.0%}") == "+0%; P(higher) 0.50; p = 1.000"


def test_the_permutation_test_holds_its_size():
    """With no difference between the variants, p < 0.05 in at most ~5% of 5 vs 5 experiments
    (interval overlap of 3-seed ranges, the old rule, flagged ~10%)."""
    rng = np.random.default_rng(5)
    x = simulated_rates(rng, 0.7, 10, 400, spread=5.0)
    flagged = [stats.compare(r[:5], r[5:])["verdict"] != "no clear difference" for r in x]
    assert np.mean(flagged) <= 0.07


def test_many_seeds_use_random_permutations_deterministically():
    a, b = list(np.linspace(0, 1, 12)), list(np.linspace(0.3, 1.3, 12))
    c = stats.compare(a, b)
    assert c["test"] == "permutation test (20,000 random permutations)" and c["verdict"] == "higher"
    assert stats.compare(a, b) == c


def test_solved_counts_seeds_over_the_bar():
    assert stats.solved({"0": 0.95, "1": 0.5, "2": 0.8}, 0.8) == (2, 3)
