"""Soak test of chunked training: one run of 10 chunks, each in a fresh child process, with the peak
memory of every chunk. A leak that survives the chunking (something the parent accumulates, or state
carried from chunk to chunk, like an episode log or a replay that keeps growing) shows as growth.

    python benchmarks/soak.py                       # PPO on state lift, 10 chunks of 20,480 steps
    python benchmarks/soak.py --algo sac --chunk 2000

It runs the train stage itself (`python -m pipeline.train` with `--train.chunk_steps`), on the env
and algorithm blocks of params.yaml with a smaller budget, and reads the stage's chunks.json.
Target (issue 5): peak RSS grows less than 5% from chunk 2 to chunk 10 (chunk 1 pays the warm-up).
Off-policy algorithms preallocate their replay buffer, whose pages become resident as it fills:
that growth is the buffer, not a leak, so the target is stated for PPO.
"""
import argparse
import json
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from pipeline.dag import params as cfg
from pipeline.dag.registry import STAGES, flags

ROOT = Path(__file__).resolve().parent.parent


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--algo", default="ppo", choices=["ppo", "sac"])
    ap.add_argument("--chunk", type=int, default=20480, help="env steps per chunk")
    ap.add_argument("--chunks", type=int, default=10)
    ap.add_argument("--num-envs", type=int, default=16)
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "out" / "soak.json"))
    args = ap.parse_args()

    total = args.chunk * args.chunks
    params = cfg.merge(cfg.load(), {args.algo: {"total_timesteps": total, "num_envs": args.num_envs},
                                    "checkpoint_every": args.chunk,
                                    "train": {"chunk_steps": args.chunk, "chunk_retries": 0}})
    with tempfile.TemporaryDirectory() as tmp:
        sanity = Path(tmp) / "sanity.json"
        sanity.write_text(json.dumps({"ok": True, "problems": []}))
        run = Path(tmp) / "run"
        cmd = [sys.executable, "-m", "pipeline.train", "--task", params["task"], "--reward", params["reward"],
               "--algo", args.algo, "--seed", "0", "--sanity", str(sanity), "--out", str(run), "--threads", "1",
               *shlex.split(flags(STAGES["train"], params, args.algo))]
        t0 = time.time()
        subprocess.run(cmd, check=True, cwd=ROOT, env={"OMP_NUM_THREADS": "1", "PATH": ""})
        rows = json.loads((run / "chunks.json").read_text())
    wall = time.time() - t0
    base = rows[1]["peak_rss_mb"]
    print(f"\n{args.algo}, {args.chunks} chunks of {args.chunk} env steps, {args.num_envs} envs, {wall:.0f} s")
    print("| chunk | global steps | peak RSS (MB) | vs chunk 2 | wall (s) |")
    print("|---:|---|---:|---:|---:|")
    for r in rows:
        print(f"| {r['chunk']} | {r['start_step']}-{r['stop_at']} | {r['peak_rss_mb']:.1f} | "
              f"{100 * (r['peak_rss_mb'] / base - 1):+.1f}% | {r['wall_s']:.0f} |")
    growth = 100 * (rows[-1]["peak_rss_mb"] / base - 1)
    print(f"growth chunk 2 -> {rows[-1]['chunk']}: {growth:+.2f}% (target < 5%)")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps({"algo": args.algo, "chunk_steps": args.chunk, "num_envs": args.num_envs,
                                          "wall_s": round(wall, 1), "growth_pct": round(growth, 2),
                                          "chunks": rows}, indent=2) + "\n")
    return 0 if growth < 5.0 else 1


if __name__ == "__main__":
    sys.exit(main())
