"""Why HER learned nothing in devlog 004, measured: how often does the cube move at all?

HER relabels a transition with goals the cube actually reached later. If exploration never moves
the cube, every relabelled goal is the cube's start, and no transition teaches carrying it. This
runs the behaviour SAC + HER explores with before learning (uniform random actions, what SB3 does
for learning_starts steps) on pick_place from each curriculum stage, and counts the episodes in
which the cube moved (> 1 cm on the table plane), was lifted off the table (> 1 cm), or was only
pushed (the task's episode metrics cube_moved, cube_lifted, pushed_only).

    python benchmarks/her_diversity.py --episodes 200
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from envs.vector import BatchedEnv, episode_stats  # noqa: E402


def measure(stage: int, episodes: int, num_envs: int, seed: int, steps: int) -> dict:
    env = BatchedEnv(task="pick_place", reward="sparse", num_envs=num_envs, seed=seed, obs_mode="goal",
                     curriculum_stage=stage, max_episode_steps=steps)
    rng = np.random.default_rng(seed)
    env.reset(seed=seed)
    rows = []
    while len(rows) < episodes:
        _, _, term, trunc, infos = env.step(rng.uniform(-1, 1, (num_envs, 6)))
        rows += [episode_stats(infos, i) for i in np.flatnonzero(term | trunc)]
    env.close()
    rows = rows[:episodes]
    return {k: float(np.mean([r[k] for r in rows])) for k in ("cube_moved", "cube_lifted", "pushed_only",
                                                               "success_once")} | {
        "mean_travel_m": float(np.mean([r["cube_travel"] for r in rows]))}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--episodes", type=int, default=200)
    ap.add_argument("--num-envs", type=int, default=8)
    ap.add_argument("--steps", type=int, default=200, help="episode length (params.yaml: 200)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    print("| start (curriculum stage) | cube moved | cube lifted | pushed only | success | mean travel (m) |")
    print("|---|---:|---:|---:|---:|---:|")
    names = {0: "0: arm at rest", 1: "1: gripper 6 cm above the cube", 2: "2: jaws open around the cube",
             3: "3: jaws closing on the cube"}
    for stage in (0, 1, 2, 3):
        m = measure(stage, args.episodes, args.num_envs, args.seed, args.steps)
        print(f"| {names[stage]} | {m['cube_moved']:.0%} | {m['cube_lifted']:.0%} | {m['pushed_only']:.0%} | "
              f"{m['success_once']:.0%} | {m['mean_travel_m']:.3f} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
