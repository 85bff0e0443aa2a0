"""A run's training episodes per block of env steps: how many grasped the cube at all, lifted it
(centre above 4 cm) and succeeded, split by the curriculum stage they started at when the log has it.
Reads a finished run's train_log.parquet, or a run still in progress (its .partial folder) from the
trainer's checkpoint: where in training a run found (or lost) the grasp and the lift.

    python benchmarks/train_episodes.py data/runs/lift_v19_mujoco/drqv2/seed0 --every 10000
"""
from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd
import torch

from drqv2_exploration import LIFTED_Z   # the same bar for "lifted" as the exploration table


def episodes(run):
    run = Path(run)
    if (run / "train_log.parquet").exists() and not run.name.endswith(".partial"):
        return pd.read_parquet(run / "train_log.parquet")
    state = torch.load(run / "trainer" / "trainer.pt", map_location="cpu", weights_only=False)
    return pd.DataFrame(state["episodes"]).rename(columns={"step": "global_step"})


def table(df, every):
    df = df.assign(steps=df["global_step"] // every * every)
    keys = ["steps"] + (["curriculum_stage"] if "curriculum_stage" in df else [])
    return df.groupby(keys).agg(
        episodes=("success_once", "size"),
        grasped=("grasp_steps", lambda x: (x > 0).mean()),
        lifted=("max_cube_z", lambda x: (x > LIFTED_Z).mean()),
        success=("success_once", "mean"),
        grasp_steps=("grasp_steps", "mean")).round(2)


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run", help="a run folder (data/runs/<task>_<reward>_<backend>/<algo>/seed<N>[.partial])")
    ap.add_argument("--every", type=int, default=10000, help="env steps per block")
    args = ap.parse_args()
    print(table(episodes(args.run), args.every).to_string())
