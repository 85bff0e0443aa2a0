"""Statistics across seeds (pipeline/run/stats.py) against values computed by hand."""
import itertools
import math

import numpy as np
import pytest

from pipeline.run import stats


def test_mean_and_std_are_over_seeds():
    s = stats.across_seeds([0.2, 0.4, 0.9])
    assert s["n"] == 3 and s["mean"] == pytest.approx(0.5)
    assert s["std"] == pytest.approx(math.sqrt((0.3 ** 2 + 0.1 ** 2 + 0.4 ** 2) / 2))     # ddof 1
    assert s["iqm"] is None, "no IQM under 5 seeds"


def test_bootstrap_interval_matches_the_exhaustive_bootstrap():
    """With 4 seeds all 4^4 resamples can be listed: the percentile interval of their means is the
    exact bootstrap interval, which scipy's 10,000 random resamples must reproduce closely."""
    x = [0.1, 0.35, 0.6, 1.0]
    means = [np.mean(r) for r in itertools.product(x, repeat=len(x))]
    low, high = np.percentile(means, [2.5, 97.5])
    s = stats.across_seeds(x)
    assert s["ci_low"] == pytest.approx(low, abs=0.02) and s["ci_high"] == pytest.approx(high, abs=0.02)
    assert s["ci_low"] < s["mean"] < s["ci_high"]
    assert stats.across_seeds(x) == s, "a fixed random state: the same numbers on every run"


def test_iqm_from_five_seeds():
    assert stats.across_seeds([0.0, 1.0, 2.0, 3.0, 100.0])["iqm"] == pytest.approx(2.0)   # middle 50%: 1, 2, 3
    assert stats.across_seeds([0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8])["iqm"] == pytest.approx(0.45)


def test_one_seed_has_no_interval_and_cannot_tell_a_difference():
    one, three = stats.across_seeds([0.9]), stats.across_seeds([0.1, 0.2, 0.3])
    assert one["ci_low"] is None and one["std"] == 0.0
    assert stats.differs(one, three) is None
    assert "[" not in stats.fmt(one)


def test_a_difference_needs_intervals_that_do_not_overlap():
    low, high, wide = (stats.across_seeds(v) for v in ([0.0, 0.05, 0.1], [0.9, 0.95, 1.0], [0.0, 0.5, 1.0]))
    assert stats.differs(low, high) is True
    assert stats.differs(low, wide) is False


def test_identical_seeds_give_a_point_interval():
    s = stats.across_seeds([1.0, 1.0, 1.0])
    assert (s["ci_low"], s["ci_high"], s["std"]) == (1.0, 1.0, 0.0)


def test_solved_counts_seeds_over_the_bar():
    assert stats.solved({"0": 0.95, "1": 0.5, "2": 0.8}, 0.8) == (2, 3)
