"""What DrQ-v2's first training episodes look like: the untrained agent of a seed (the weights its
training run starts from) rolled out at a lift curriculum stage with uniform random actions, with its
mean action plus Gaussian noise of several stddevs (as the exploration schedule adds it), and
deterministically. Per setting: the fraction of episodes that grasp at all, that lift, and that succeed.
The figures of docs/drqv2.md, "Exploration from the pre-grasp pose".

    python benchmarks/drqv2_exploration.py --seed 1 --stage 2
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np
import torch

import envs
from algos.drqv2 import DrQV2Config
from algos.drqv2.trainer import DrQV2Trainer

LIFTED_Z = 0.04   # cube centre height (m) that counts as lifted: 2.5 cm above its rest height


def rollout(agent, env, episodes, noise, rng):
    """Episodes of agent's mean action plus N(0, noise^2) ("uniform": uniform random actions)."""
    obs, _ = env.reset(seed=int(rng.integers(1 << 30)))
    done_eps = []
    while len(done_eps) < episodes:
        mu = agent.act(obs, eval_mode=True)
        if noise == "uniform":
            action = rng.uniform(-1.0, 1.0, size=mu.shape)
        else:
            action = np.clip(mu + float(noise) * rng.standard_normal(mu.shape), -1.0, 1.0)
        obs, _, terminated, truncated, infos = env.step(action.astype(np.float32))
        for i in np.flatnonzero(np.asarray(terminated) | np.asarray(truncated)):
            done_eps.append({k: float(np.asarray(infos["final_info"][k])[i])
                             for k in ("success_once", "max_cube_z", "grasp_steps")})
    return done_eps[:episodes]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seed", type=int, default=1, help="training seed whose initial weights to roll out")
    ap.add_argument("--stage", type=int, default=2, help="lift curriculum stage to start from")
    ap.add_argument("--noise", default="uniform,1.0,0.5,0.3,0.1,0", help="settings, comma-separated")
    ap.add_argument("--episodes", type=int, default=24)
    args = ap.parse_args()
    torch.set_num_threads(1)
    env = envs.make_vec_env("lift", reward="v19", num_envs=8, seed=args.seed, obs_mode="pixels", frame_stack=3,
                            curriculum_stage=args.stage, max_episode_steps=200)
    agent = DrQV2Trainer(env, DrQV2Config(seed=args.seed, torch_threads=1)).agent
    rng = np.random.default_rng(args.seed)
    print(f"seed {args.seed}, stage {args.stage}, {args.episodes} episodes per setting")
    print("| actions | grasped | lifted | success |\n|---|---:|---:|---:|")
    for noise in args.noise.split(","):
        t0 = time.time()
        eps = rollout(agent, env, args.episodes, noise, rng)
        label = "uniform random" if noise == "uniform" else f"mean + N(0, {float(noise):g}^2)"
        print(f"| {label} | {np.mean([e['grasp_steps'] > 0 for e in eps]):.0%} "
              f"| {np.mean([e['max_cube_z'] > LIFTED_Z for e in eps]):.0%} "
              f"| {np.mean([e['success_once'] for e in eps]):.0%} |  ({time.time() - t0:.0f} s)", flush=True)


if __name__ == "__main__":
    main()
