"""DrQ-v2 from lift curriculum stage 3 (jaws closing on the cube): deterministic success before
training and after each step count, with the CPU preset and an actor_bc_weight of your choice
(0 = the paper's actor loss). The figures of docs/drqv2.md, "The stage-3 regression".

    python benchmarks/drqv2_stage3.py --steps 4800,9600,14400 --bc 0.4
    python benchmarks/drqv2_stage3.py --steps 4800,9600,14400 --bc 0
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
from algos.drqv2.trainer import DrQV2Trainer, evaluate


def vec(n, seed):
    return envs.make_vec_env("lift", reward="v19", num_envs=n, seed=seed, obs_mode="pixels", frame_stack=3,
                             curriculum_stage=3, max_episode_steps=200)


def success(agent, episodes):
    return float(np.mean([e["success_once"] for e in evaluate(agent, vec(5, 123), episodes, seed=123)]))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", default="2400,4800,9600,14400,19200", help="env steps at which to evaluate")
    ap.add_argument("--bc", type=float, default=DrQV2Config().actor_bc_weight, help="actor_bc_weight")
    ap.add_argument("--episodes", type=int, default=10)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    torch.set_num_threads(1)
    trainer = DrQV2Trainer(vec(8, args.seed), DrQV2Config(seed=args.seed, torch_threads=1, actor_bc_weight=args.bc))
    t0 = time.time()
    print(f"actor_bc_weight {args.bc}: step 0, success {success(trainer.agent, args.episodes):.0%}", flush=True)
    for steps in (int(s) for s in args.steps.split(",")):
        trainer.train_until(steps)
        print(f"step {steps}, updates {trainer.num_updates}, success {success(trainer.agent, args.episodes):.0%}, "
              f"batch reward {trainer.metrics.get('batch_reward', float('nan')):.1f} ({time.time() - t0:.0f} s)",
              flush=True)


if __name__ == "__main__":
    main()
