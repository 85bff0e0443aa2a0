"""Env throughput against the raw physics bound, measured in the same run.

    python benchmarks/env_speed.py [--seconds 3] [--out benchmarks/out/env_speed.json]

Physics bound: mj_step calls per second of the same scene on one core (one MjData driven by the
same kind of motion as the env: random delta joint targets from the rest pose), divided by the
substeps per env step. An env can't step faster than that; the ratio says how much the env's own
Python costs on top. Each figure is the best of --rounds rounds, because other processes on a
small machine only ever slow a round down.
Targets (issue 2, one core of a 2-core CPU): state mode at N = 32 >= 70% of the bound;
pixel mode >= 500 env steps/s at 84x84.
"""
import argparse
import json
import os
import platform
import time
from pathlib import Path

import mujoco
import numpy as np

import envs


def physics_rate(seconds):
    env = envs.make_vec_env("lift", "v19", num_envs=1, seed=0)
    env.reset(seed=0)
    task = env.task
    m, d = task.physics.models[0], task.physics.datas[0]
    substeps = task.physics.substeps
    rng = np.random.default_rng(0)
    steps, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        mujoco.mj_resetDataKeyframe(m, d, 0)
        target = task.target[0].copy()
        for _ in range(200):   # one episode's worth of the env's own kind of motion
            target = np.clip(target + task.cfg.action_scale * rng.uniform(-1, 1, 6), task.ctrl_low, task.ctrl_high)
            d.ctrl[:] = target
            mujoco.mj_step(m, d, substeps)
        steps += 200 * substeps
    return steps / (time.perf_counter() - start), substeps


def env_rate(num_envs, seconds, **kwargs):
    env = envs.make_vec_env("lift", "v19", num_envs=num_envs, seed=0, **kwargs)
    env.reset(seed=0)
    rng = np.random.default_rng(0)
    actions = rng.uniform(-1, 1, (64, num_envs, 6))
    for a in actions[:5]:   # warm-up (first renders create the GL context)
        env.step(a)
    steps, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        for a in actions:
            env.step(a)
        steps += len(actions) * num_envs
    rate = steps / (time.perf_counter() - start)
    env.close()
    return rate


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", default="benchmarks/out/env_speed.json")
    args = parser.parse_args()
    mj_rate, substeps = max(physics_rate(args.seconds) for _ in range(args.rounds))
    bound = mj_rate / substeps
    print(f"physics: {mj_rate:,.0f} mj_step/s, {substeps} substeps/env step -> bound {bound:,.0f} env steps/s")
    results = {"machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
               "mujoco": mujoco.__version__, "mj_step_per_s": round(mj_rate), "substeps": substeps,
               "bound_env_steps_per_s": round(bound), "rows": []}
    cases = [("state", n, {}) for n in (1, 8, 32)]
    cases += [("pixels 84x84", n, {"obs_mode": "pixels", "frame_stack": 3}) for n in (1, 8)]
    for mode, n, kwargs in cases:
        rate = max(env_rate(n, args.seconds, **kwargs) for _ in range(args.rounds))
        row = {"mode": mode, "num_envs": n, "env_steps_per_s": round(rate), "fraction_of_bound": round(rate / bound, 3)}
        results["rows"].append(row)
        print(f"{mode:>13}  N={n:<3} {rate:9,.0f} env steps/s  {rate / bound:6.1%} of the physics bound")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
