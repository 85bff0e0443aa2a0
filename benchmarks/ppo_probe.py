"""Quick PPO probes of the lift task outside the DAG: how many steps a setting needs, or that it stalls.

    python benchmarks/ppo_probe.py --stage 0 --steps 4e6 [--normalize] [--gripper-scale 4]

The exploratory runs behind docs/results/README.md's notes on curriculum stage 0. The PPO settings
are the default params' (32 envs, n_steps 64, batch 512, 5 epochs, lr 3e-4, [256, 256],
log_std_init -0.5); prints training return and success every 50k steps. One torch thread.
"""
import argparse
import time

import numpy as np
import torch
from stable_baselines3 import PPO
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.vec_env import VecNormalize

import envs
from envs.tasks.base import TabletopTask


class Progress(BaseCallback):
    def __init__(self):
        super().__init__()
        self.start, self.last = time.time(), 0

    def _on_step(self):
        if self.num_timesteps - self.last >= 50_000:
            self.last = self.num_timesteps
            returns = [e["r"] for e in self.model.ep_info_buffer]
            success = list(self.model.ep_success_buffer)
            print(f"{self.num_timesteps} t={time.time() - self.start:.0f}s return={np.mean(returns):.1f} "
                  f"success={np.mean(success) if success else 0:.2f}", flush=True)
        return True


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--stage", type=int, default=0, help="curriculum stage")
    ap.add_argument("--steps", type=float, default=4e6)
    ap.add_argument("--normalize", action="store_true", help="wrap in VecNormalize (obs and reward)")
    ap.add_argument("--gripper-scale", type=float, default=1.0, help="gripper moves this many times faster")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    torch.set_num_threads(1)
    if args.gripper_scale != 1.0:   # an experiment, not an env setting: patch the delta-target step
        def apply_action(self, action, _scale=args.gripper_scale):
            scale = np.full(6, self.cfg.action_scale)
            scale[5] *= _scale
            self.last_action = action
            self.target = np.clip(self.target + scale * action, self.ctrl_low, self.ctrl_high)
            self.physics.step(self.target)
        TabletopTask.apply_action = apply_action
    venv = envs.SB3VecEnv(envs.make_vec_env("lift", "v19", 32, seed=args.seed, curriculum_stage=args.stage))
    if args.normalize:
        venv = VecNormalize(venv, gamma=0.99)
    model = PPO("MlpPolicy", venv, n_steps=64, batch_size=512, n_epochs=5, learning_rate=3e-4, gamma=0.99,
                gae_lambda=0.95, policy_kwargs=dict(net_arch=[256, 256], log_std_init=-0.5), seed=args.seed,
                device="cpu")
    model.learn(int(args.steps), callback=Progress())


if __name__ == "__main__":
    main()
