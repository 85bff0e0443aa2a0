"""How often the statistics across seeds hold the true mean (pipeline/run/stats.py), by simulation.

    python benchmarks/interval_coverage.py            # the tables of docs/pipeline.md ("Data flow")

Each simulated experiment draws every seed's true success rate from a Beta with the given mean
(concentration `spread`: the larger, the closer seeds are to each other), then measures it over 50
evaluation episodes, as the evaluate stage does at the final checkpoint. The tables give the share
of 4,000 experiments in which the 95% t-interval of 5 seeds, and the range of 2-4 seeds, hold the
true mean over seeds.
"""
from __future__ import annotations

import argparse

import numpy as np

from pipeline.run import stats


def simulated_rates(rng, mean, seeds, experiments, spread=20.0, episodes=50):
    """Seeds' success rates in simulated experiments: each seed's true rate from a Beta with the
    given mean (concentration `spread`: at mean 0.9, seeds' rates spread by ~6 points), then the
    rate measured over `episodes` evaluation episodes."""
    p = rng.beta(mean * spread, (1 - mean) * spread, size=(experiments, seeds))
    return rng.binomial(episodes, p) / episodes


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--experiments", type=int, default=4000)
    args = ap.parse_args(argv)
    rng = np.random.default_rng(0)
    means, spreads = (0.5, 0.9, 0.95, 0.98), (100.0, 20.0, 10.0, 5.0)
    print("95% t-interval of 5 seeds: share of experiments holding the true mean")
    print("| spread (Beta concentration) | " + " | ".join(f"mean {m}" for m in means) + " |")
    for spread in spreads:
        cells = []
        for mean in means:
            x = simulated_rates(rng, mean, 5, args.experiments, spread)
            held = [s["ci_low"] <= mean <= s["ci_high"] for s in (stats.across_seeds(r, bounds=(0.0, 1.0)) for r in x)]
            cells.append(f"{np.mean(held):.1%}")
        print(f"| {spread:g} | " + " | ".join(cells) + " |")
    print("\nrange of n seeds (lowest to highest): share holding the true mean, spread 20")
    print("| seeds | " + " | ".join(f"mean {m}" for m in means) + " |")
    for seeds in (2, 3, 4):
        cells = []
        for mean in means:
            x = simulated_rates(rng, mean, seeds, args.experiments)
            cells.append(f"{np.mean((x.min(axis=1) <= mean) & (mean <= x.max(axis=1))):.1%}")
        print(f"| {seeds} | " + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
