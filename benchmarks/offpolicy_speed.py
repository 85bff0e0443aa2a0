"""Off-policy learners' training speed on the lift env: our rlpd (algos/rlpd/) against
Stable-Baselines3's SAC at the same settings, in env steps per second of one core.

    python benchmarks/offpolicy_speed.py                     # 2 critics: plain SAC
    python benchmarks/offpolicy_speed.py --critics 10        # an ensemble of 10 (RLPD's size)

Equal settings for both: one env, one critic update and one actor update per env step, batch 256,
256x256 actor and critics, the same critic count, no demonstrations, torch on one thread. rlpd's
critics run without LayerNorm here, as SB3's have none (--layer-norm times rlpd's with it), and in
float32 unless --bf16 (rlpd's `bf16: on`, matrix products in bfloat16).
Each measurement is a fresh process that trains the real trainer (the train stage's make_trainer)
for --warmup env steps, then times --steps more; the learners take turns, --repeats times each, and
the table gives the median. Run it on an otherwise idle machine.
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

LEARNERS = ("sac", "rlpd")


def settings(algo: str, critics: int, layer_norm: bool, bf16: bool) -> dict:
    """The params block of `algo` at the benchmark's settings."""
    hp = yaml.safe_load(open("params.yaml"))[algo]
    hp.update(num_envs=1, batch_size=256, net_width=256, net_depth=2, learning_starts=256)
    if algo == "sac":
        hp.update(train_freq=1, gradient_steps=1)
    else:
        hp.update(utd_ratio=1.0, num_critics=critics, num_min_critics=2, critic_layer_norm=layer_norm, demo_ratio=0.0,
                  bf16="on" if bf16 else "off")
    return hp


def measure(algo: str, critics: int, layer_norm: bool, bf16: bool, warmup: int, steps: int) -> float:
    """Env steps per second of one training process (this process)."""
    import algos
    from pipeline.run import cli
    cli.set_threads(1)
    from envs.vector import make_vec_env
    hp = settings(algo, critics, layer_norm, bf16)
    env = algos.env_settings(algo, yaml.safe_load(open("params.yaml"))["env"], hp)
    vec = make_vec_env("lift", "v19", 1, seed=0, **env)
    trainer = sb3_sac(vec, hp, critics) if algo == "sac" else algos.get(algo).make_trainer(vec, hp, 0, 1, None)
    trainer.train_until(warmup, lambda: False)
    start, t0 = trainer.global_step, time.perf_counter()
    trainer.train_until(warmup + steps, lambda: False)
    return (trainer.global_step - start) / (time.perf_counter() - t0)


def sb3_sac(vec, hp, critics):
    """SB3's SAC as the train stage builds it (algos/sac.py), with `critics` critics."""
    from stable_baselines3 import SAC

    from algos import sb3
    model = SAC("MlpPolicy", sb3.make_vec(vec, hp), seed=0, verbose=0, device="cpu",
                policy_kwargs={"net_arch": sb3.net(hp), "n_critics": critics}, **sb3.ctor_args(hp))
    return sb3.SB3Trainer(model, SAC, model.env, hp["total_timesteps"], replay=True, log_dir="/tmp/offpolicy_speed_tb")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--critics", type=int, default=2)
    ap.add_argument("--layer-norm", action="store_true", help="rlpd's critics with LayerNorm")
    ap.add_argument("--bf16", action="store_true", help="rlpd's matrix products in bfloat16")
    ap.add_argument("--warmup", type=int, default=500)
    ap.add_argument("--steps", type=int, default=1500)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--child", choices=LEARNERS, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        print(json.dumps(measure(args.child, args.critics, args.layer_norm, args.bf16, args.warmup, args.steps)))
        return 0
    rates = {algo: [] for algo in LEARNERS}
    for r in range(args.repeats):
        for algo in (LEARNERS if r % 2 == 0 else LEARNERS[::-1]):
            child = [sys.executable, __file__, "--child", algo, "--critics", str(args.critics), "--warmup",
                     str(args.warmup), "--steps", str(args.steps)] + (["--layer-norm"] if args.layer_norm else []) \
                + (["--bf16"] if args.bf16 else [])
            out = subprocess.run(child, check=True, capture_output=True, text=True).stdout
            rates[algo].append(json.loads(out.strip().splitlines()[-1]))
            print(f"repeat {r + 1}/{args.repeats} {algo}: {rates[algo][-1]:.1f} env steps/s", flush=True)
    sac, rlpd = (statistics.median(rates[a]) for a in LEARNERS)
    print(f"\n| critics | rlpd LayerNorm | rlpd matmuls | SB3 SAC steps/s | rlpd steps/s | ratio |\n"
          f"|---|---|---|---|---|---|\n| {args.critics} | {'yes' if args.layer_norm else 'no'} | "
          f"{'bf16' if args.bf16 else 'fp32'} | {sac:.1f} | {rlpd:.1f} | {rlpd / sac:.2f}x |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
