"""A short Stable-Baselines3 PPO probe of the Go2 walk task on Genesis gs.cpu, per reward version.

    OMP_NUM_THREADS=1 nice -n 15 python benchmarks/walk_probe.py --reward v1 --steps 300000

Not the pipeline's training (that is `snakemake --configfile config/walk.yaml`, docs/walk.md): a quick
look at whether PPO settings train at all, and what the early behaviour looks like (does the robot keep its height? move forward? fall?). Every --every env steps it
prints, for the episodes finished since the last line, mean return, episode length, forward velocity
(world x, m/s), base height (m), distance (m) and the fraction that fell; and the same per-step
averages over the episodes still running (episodes last up to --max-episode-steps, so at 64 envs few
finish early on). --out writes every line as JSON.
"""
import argparse
import json
import os
import time

import numpy as np


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--reward", default="v2")
    p.add_argument("--steps", type=int, default=300_000)
    p.add_argument("--n-envs", type=int, default=64)
    p.add_argument("--every", type=int, default=25_000)
    p.add_argument("--max-episode-steps", type=int, default=1000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", default=None)
    # PPO and action settings; --genesis-example sets those of Genesis's go2 locomotion example
    # (lr 1e-3, entropy 0.01, initial std 1, [512, 256, 128], 24 steps per env, 4 minibatches).
    p.add_argument("--genesis-example", action="store_true")
    p.add_argument("--action-scale", type=float, default=0.25, help="rad of joint-target offset at action 1")
    args = p.parse_args()

    import torch
    torch.set_num_threads(args.threads)
    from stable_baselines3 import PPO
    from stable_baselines3.common.callbacks import BaseCallback

    import envs

    t0 = time.perf_counter()
    env = envs.make_vec_env("walk", args.reward, args.n_envs, seed=args.seed, backend="genesis",
                            max_episode_steps=args.max_episode_steps, action_scale=args.action_scale)
    task = env.task
    print(f"# walk {args.reward}: {args.n_envs} envs built in {time.perf_counter() - t0:.1f} s; "
          f"termination {task.termination_height} m (grace {task.grace_steps} steps at {task.grace_height} m)",
          flush=True)
    venv = envs.SB3VecEnv(env)
    lines = []

    class Probe(BaseCallback):
        def __init__(self):
            super().__init__()
            self.done, self.next, self.start = [], args.every, time.perf_counter()

        def _on_step(self):
            for info in self.locals["infos"]:
                if "final_info" in info:
                    self.done.append(info["final_info"])
            if self.num_timesteps >= self.next:
                self.next += args.every
                self.report()
            return True

        def report(self):
            st = env.episode_stats_so_far()
            live = st["episode_len"] > 0
            row = {"steps": self.num_timesteps, "wall_s": round(time.perf_counter() - self.start, 1),
                   "finished": len(self.done)}
            if self.done:
                for k in ("return", "episode_len", "mean_forward_vel", "mean_base_height", "distance_x", "terminated"):
                    row[f"ep_{k}"] = float(np.mean([d[k] for d in self.done]))
            if live.any():
                row["live_forward_vel"] = float(np.mean(st["mean_forward_vel"][live]))
                row["live_base_height"] = float(np.mean(st["mean_base_height"][live]))
                row["live_len"] = float(np.mean(st["episode_len"][live]))
            lines.append(row)
            fmt = lambda k, f="{:.3f}": f.format(row[k]) if k in row else "-"  # noqa: E731
            print(f"{row['steps']:>8} steps {row['wall_s']:>7.1f} s | finished {row['finished']:>4}: "
                  f"return {fmt('ep_return', '{:.1f}')} len {fmt('ep_episode_len', '{:.0f}')} "
                  f"vx {fmt('ep_mean_forward_vel')} height {fmt('ep_mean_base_height')} "
                  f"dist {fmt('ep_distance_x', '{:.2f}')} fell {fmt('ep_terminated', '{:.2f}')} | "
                  f"running: vx {fmt('live_forward_vel')} height {fmt('live_base_height')} "
                  f"len {fmt('live_len', '{:.0f}')}", flush=True)
            self.done = []

    if args.genesis_example:
        ppo = dict(n_steps=24, batch_size=24 * args.n_envs // 4, n_epochs=5, learning_rate=1e-3, ent_coef=0.01,
                   max_grad_norm=1.0, policy_kwargs={"net_arch": [512, 256, 128], "log_std_init": 0.0,
                                                     "activation_fn": torch.nn.ELU})
    else:
        ppo = dict(n_steps=64, batch_size=1024, n_epochs=5, learning_rate=3e-4, ent_coef=0.0,
                   max_grad_norm=0.5, policy_kwargs={"net_arch": [128, 128], "log_std_init": -1.0})
    model = PPO("MlpPolicy", venv, gamma=0.99, gae_lambda=0.95, clip_range=0.2,
                seed=args.seed, verbose=0, device="cpu", **ppo)
    t0 = time.perf_counter()
    model.learn(args.steps, callback=Probe())
    wall = time.perf_counter() - t0
    print(f"# {args.steps} steps in {wall:.0f} s ({args.steps / wall:,.0f} env steps/s including PPO updates); "
          f"load average {os.getloadavg()[0]:.2f}", flush=True)
    if args.out:
        with open(args.out, "w") as f:
            json.dump({"args": vars(args), "lines": lines, "wall_s": wall}, f, indent=1)
    env.close()


if __name__ == "__main__":
    main()
