"""How fast DrQ-v2 trains: updates/s and env frames/hour for the CPU preset and the GPU preset.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/drqv2_speed.py --threads 1
    .venv/bin/python benchmarks/drqv2_speed.py --threads 2 --presets cpu --seconds 120
    .venv/bin/python benchmarks/drqv2_speed.py --device cuda          # on a GPU machine

Two measurements per preset, both at the real observation size (9 x 84 x 84 uint8, 6-D actions):
  1. components: seconds per replay sample, per gradient update and per batched act() call;
     frames/hour = 3600 / (act / num_envs + (sample + update) / update_every_steps);
  2. end to end: DrQV2Trainer.train_until on a stub VectorEnv that returns random frames at no cost,
     so the figure is the training loop itself (act, replay, updates) without physics or rendering;
     with --env lift it runs on the project's pixel lift env instead (a real run's rate).
The GPU preset on a CPU is timed for a handful of updates only (seconds each).
Results go to stdout (a Markdown table) and benchmarks/out/drqv2_speed_<device>_<threads>t.json.
"""
import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import gymnasium as gym
import numpy as np
import torch
from gymnasium.vector import AutoresetMode

from algos.drqv2 import DrQV2Config
from algos.drqv2.agent import resolve_device
from algos.drqv2.trainer import DrQV2Trainer

OBS_SHAPE, ACTION_DIM, FRAME_STACK = (9, 84, 84), 6, 3


class StubPixelVecEnv(gym.vector.VectorEnv):
    """Random uint8 frames, SAME_STEP autoreset every `episode_len` steps: a zero-cost env."""
    metadata = {"autoreset_mode": AutoresetMode.SAME_STEP}

    def __init__(self, num_envs, episode_len=200, seed=0):
        self.num_envs = num_envs
        self.episode_len = episode_len
        self.single_observation_space = gym.spaces.Box(0, 255, OBS_SHAPE, np.uint8)
        self.single_action_space = gym.spaces.Box(-1.0, 1.0, (ACTION_DIM,), np.float32)
        self.observation_space = gym.vector.utils.batch_space(self.single_observation_space, num_envs)
        self.action_space = gym.vector.utils.batch_space(self.single_action_space, num_envs)
        self.rng = np.random.default_rng(seed)
        self.t = np.zeros(num_envs, dtype=np.int64)
        self._pool = self.rng.integers(0, 256, (64, *OBS_SHAPE), dtype=np.uint8)

    def _obs(self):
        return self._pool[self.rng.integers(0, len(self._pool), self.num_envs)]

    def reset(self, *, seed=None, options=None):
        self.t[:] = 0
        return self._obs(), {}

    def step(self, actions):
        self.t += 1
        truncated = self.t >= self.episode_len
        terminated = np.zeros(self.num_envs, dtype=bool)
        obs = self._obs()
        infos = {}
        if truncated.any():
            final_obs = np.full(self.num_envs, None, dtype=object)
            for i in np.flatnonzero(truncated):
                final_obs[i] = obs[i].copy()
                self.t[i] = 0
            infos = {"final_obs": final_obs, "_final_obs": truncated.copy(),
                     "final_info": {"success_once": np.zeros(self.num_envs), "_success_once": truncated.copy()},
                     "_final_info": truncated.copy()}
        return obs, self.rng.normal(size=self.num_envs).astype(np.float32), terminated, truncated, infos


def _time(fn, n):
    fn()                                   # warm-up (allocations, kernel selection)
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    t = time.perf_counter()
    for _ in range(n):
        fn()
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return (time.perf_counter() - t) / n


def make_env(kind, num_envs):
    if kind == "stub":
        return StubPixelVecEnv(num_envs)
    import envs   # the project's env: pixel observations from the wrist camera, reward v19
    return envs.make_vec_env(kind, reward="v19", num_envs=num_envs, seed=0, obs_mode="pixels",
                             frame_stack=FRAME_STACK)


def bench_preset(name, cfg, num_envs, n_updates, seconds, env_kind="stub"):
    trainer = DrQV2Trainer(make_env(env_kind, num_envs), cfg)
    # Fill the replay with enough random data to sample from (no updates while filling).
    fill = max(cfg.batch_size * 4, 1000)
    seed_steps = cfg.num_seed_steps
    trainer.config.num_seed_steps = 10 ** 12
    trainer.train_until(fill, progress=False)
    trainer.config.num_seed_steps = seed_steps
    agent, replay = trainer.agent, trainer.replay
    obs = trainer._obs
    batch = replay.sample(cfg.batch_size)

    t_sample = _time(lambda: replay.sample(cfg.batch_size), max(n_updates, 3))
    t_update = _time(lambda: agent.update(batch, 10 ** 6), n_updates)
    t_act = _time(lambda: agent.act(obs, 10 ** 6), max(n_updates, 10))
    per_frame = t_act / num_envs + (t_sample + t_update) / cfg.update_every_steps
    row = {"preset": name, "encoder_bf16": agent.encoder_bf16, "batch_size": cfg.batch_size,
           "hidden_dim": cfg.hidden_dim, "feature_dim": cfg.feature_dim, "update_every_steps": cfg.update_every_steps,
           "num_envs": num_envs, "timed_updates": n_updates,
           "sample_s": t_sample, "update_s": t_update, "act_s": t_act,
           "updates_per_s": 1.0 / t_update, "frames_per_hour_components": 3600.0 / per_frame}

    if seconds > 0:   # end to end through the trainer, past the seed phase
        trainer.config.num_seed_steps = 0
        trainer.config.num_expl_steps = 0
        step0, upd0, t0 = trainer.global_step, trainer.num_updates, time.perf_counter()
        target = step0
        while time.perf_counter() - t0 < seconds:
            target += num_envs * 8
            trainer.train_until(target, progress=False)
        dt = time.perf_counter() - t0
        row.update(e2e_seconds=dt, e2e_frames=trainer.global_step - step0,
                   e2e_updates=trainer.num_updates - upd0,
                   frames_per_hour_e2e=3600.0 * (trainer.global_step - step0) / dt,
                   updates_per_s_e2e=(trainer.num_updates - upd0) / dt)
    return row


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=1, help="torch threads (set OMP_NUM_THREADS to match)")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--presets", default="cpu,gpu")
    ap.add_argument("--num-envs", type=int, default=8)
    ap.add_argument("--env", default="stub", help="stub (zero-cost random frames) or a task of the "
                    "project's envs, e.g. lift (pixels, v19): the end-to-end figure then includes "
                    "physics and rendering")
    ap.add_argument("--updates", type=int, default=0, help="timed updates (default 30 CPU preset, "
                    "3 GPU preset on CPU, 200 on CUDA)")
    ap.add_argument("--seconds", type=float, default=60.0, help="end-to-end run per preset (0: skip; "
                    "skipped for the GPU preset on CPU)")
    ap.add_argument("--encoder-bf16", default=None, choices=("auto", "on", "off"),
                    help="override the presets' encoder_bf16 (CPU preset: auto, GPU preset: off)")
    ap.add_argument("--note", default="", help="free text stored with the results (e.g. 'CPU shared')")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    device = resolve_device(args.device)

    rows = []
    for name in args.presets.split(","):
        if name == "cpu":
            cfg = DrQV2Config(device=str(device))
        else:
            cfg = DrQV2Config.gpu_preset(device=str(device), replay_memory_bytes=1 * 1024 ** 3)
        cfg.replay_memory_bytes = min(cfg.replay_memory_bytes, 1 * 1024 ** 3)   # speed does not depend on it
        if args.encoder_bf16:
            cfg.encoder_bf16 = args.encoder_bf16
        on_cpu = device.type == "cpu"
        n_updates = args.updates or (200 if not on_cpu else (3 if name == "gpu" else 30))
        seconds = 0.0 if (name == "gpu" and on_cpu) else args.seconds
        rows.append(bench_preset(name, cfg, args.num_envs, n_updates, seconds, args.env))
        print(json.dumps(rows[-1]), flush=True)

    meta = {"device": str(device), "threads": args.threads, "env": args.env, "torch": torch.__version__,
            "cpu": platform.processor() or platform.machine(), "nproc": os.cpu_count(),
            "loadavg_at_end": os.getloadavg(), "note": args.note,
            "time_utc": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime())}
    out = ROOT / "benchmarks" / "out"
    out.mkdir(parents=True, exist_ok=True)
    tag = f"_bf16{args.encoder_bf16}" if args.encoder_bf16 else ""
    tag += f"_{args.env}" if args.env != "stub" else ""
    path = out / f"drqv2_speed_{device.type}_{args.threads}t{tag}.json"
    path.write_text(json.dumps({"meta": meta, "rows": rows}, indent=1))

    print(f"\n{meta}\n")
    print("| preset | bf16 encoder | batch | hidden | update every | s/update | updates/s "
          "| frames/h (components) | frames/h (end to end) |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        e2e = f"{r['frames_per_hour_e2e']:,.0f}" if "frames_per_hour_e2e" in r else "-"
        bf16 = "on" if r["encoder_bf16"] else "off"
        print(f"| {r['preset']} | {bf16} | {r['batch_size']} | {r['hidden_dim']} | {r['update_every_steps']} "
              f"| {r['update_s']:.3f} | {r['updates_per_s']:.2f} | {r['frames_per_hour_components']:,.0f} "
              f"| {e2e} |")
    print(f"\nwritten {path}")


if __name__ == "__main__":
    main()
