"""Env steps per second with random actions: lift on Genesis gs.cpu and on MuJoCo, walk (Go2) on Genesis.

    OMP_NUM_THREADS=1 nice -n 15 python benchmarks/genesis_speed.py [--seconds 3] [--n 1 64 512]

One process; each (task, backend, n_envs) scene is built once, reset, warmed up (--warmup steps, which
also covers any first-call kernel compilation), then stepped for about --seconds with uniform random
actions in [-1, 1] through the vector env's step() (autoreset included). Build time is the
constructor's wall time: for Genesis it includes scene.build, i.e. the kernel compilation the first
time a set of solver options is seen with an empty cache (~/.cache/quadrants), and loading that cache
afterwards. The load average is printed with the table: the figures are only comparable at similar load.
Prints a markdown table; --out writes the rows as JSON too.
"""
import argparse
import json
import os
import platform
import time

import numpy as np


def measure(make, n, seconds, warmup, seed=0):
    t0 = time.perf_counter()
    env = make(n)
    build = time.perf_counter() - t0
    rng = np.random.default_rng(seed)
    shape = env.action_space.shape
    env.reset(seed=seed)
    t0 = time.perf_counter()
    for _ in range(warmup):
        env.step(rng.uniform(-1, 1, shape))
    warm = time.perf_counter() - t0
    steps, t0 = 0, time.perf_counter()
    while True:
        env.step(rng.uniform(-1, 1, shape))
        steps += 1
        elapsed = time.perf_counter() - t0
        if elapsed >= seconds and steps >= 3:
            break
    env.close()
    return {"n_envs": n, "build_s": build, "warmup_s": warm, "steps": steps, "seconds": elapsed,
            "env_steps_per_s": steps * n / elapsed, "ms_per_step": 1e3 * elapsed / steps}


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--seconds", type=float, default=3.0)
    p.add_argument("--warmup", type=int, default=10)
    p.add_argument("--n", type=int, nargs="+", default=[1, 64, 512])
    p.add_argument("--only", nargs="+", default=["lift/genesis", "lift/mujoco", "walk/genesis"])
    p.add_argument("--out", default=None)
    args = p.parse_args()

    t0 = time.perf_counter()
    import envs
    import_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    import genesis  # noqa: F401
    from envs.backends.genesis import init_genesis
    init_genesis()
    gs_import_s = time.perf_counter() - t0

    makers = {
        "lift/genesis": lambda n: envs.make_vec_env("lift", "v19", n, seed=0, backend="genesis"),
        "lift/mujoco": lambda n: envs.make_vec_env("lift", "v19", n, seed=0, backend="mujoco"),
        "walk/genesis": lambda n: envs.make_vec_env("walk", "v2", n, seed=0, backend="genesis"),
    }
    load0 = os.getloadavg()
    rows = []
    for key in args.only:
        for n in args.n:
            r = measure(makers[key], n, args.seconds, args.warmup)
            r["task"], r["backend"] = key.split("/")
            rows.append(r)
            print(f"# {key} n={n}: {r['env_steps_per_s']:,.0f} env steps/s, build {r['build_s']:.1f} s, "
                  f"warm-up {r['warmup_s']:.1f} s ({r['steps']} steps timed)", flush=True)
    load1 = os.getloadavg()

    print()
    print(f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores; "
          f"load average (1/5/15 min) at start {load0[0]:.2f}/{load0[1]:.2f}/{load0[2]:.2f}, "
          f"at end {load1[0]:.2f}/{load1[1]:.2f}/{load1[2]:.2f}; OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')}, "
          f"nice {os.nice(0)}")
    print(f"`import envs` {import_s:.1f} s; `import genesis` + gs.init {gs_import_s:.1f} s")
    print()
    print("| task | backend | n_envs | env steps/s | ms per step() | build (s) | warm-up (s) |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['task']} | {r['backend']} | {r['n_envs']} | {r['env_steps_per_s']:,.0f} | "
              f"{r['ms_per_step']:.2f} | {r['build_s']:.1f} | {r['warmup_s']:.1f} |")
    if args.out:
        with open(args.out, "w") as f:
            json.dump({"rows": rows, "load_start": load0, "load_end": load1}, f, indent=1)


if __name__ == "__main__":
    main()
