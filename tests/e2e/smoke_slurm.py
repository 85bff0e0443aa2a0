"""The smoke DAG on a real SLURM cluster: a single-node one brought up on this machine from Debian's
packages (cluster/local-slurm.sh), driven by Snakemake's SLURM executor with profiles/slurm/.

    python -m tests.e2e.smoke_slurm            # what `make test` runs (as root)
    python -m tests.e2e.smoke_slurm --keep /tmp/slurm-smoke

Checks, in throwaway copies of the project:
1. every job of the smoke DAG ran as a SLURM job: its SLURM job id is in its log;
2. the report equals the same DAG's report run locally, but for wall times;
3. a train job cancelled with `scancel` mid-run is resubmitted (the profile's retries), resumes from
   its last checkpoint, and ends with the weights of the same run never interrupted.
The cluster's daemons are stopped by pid at the end, whatever happened.
"""
from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from pipeline.dag.registry import ROOT
from pipeline.run import checkpoints
from tests.e2e.smoke import BIN, SMOKE, copy_project, sh

CLUSTER = ["bash", str(Path(ROOT) / "cluster" / "local-slurm.sh")]
SLURM = ["--executor", "slurm", "--workflow-profile", "profiles/slurm"]
RUN = "data/runs/lift_v19_mujoco/ppo/seed0"
# The cancelled run, merged over the smoke values: long enough to cancel between checkpoints.
LONG = "ppo:\n  total_timesteps: 40960\ncheckpoint_every: 2048\ntrain:\n  chunk_steps: 0\n"
CANCEL_AFTER = 8192


def snakemake(ws: Path, *args: str, timeout: int = 900) -> str:
    """snakemake, bounded: it treats SIGTERM as a graceful stop and would wait for running jobs."""
    return sh(["timeout", "-k", "10", str(timeout), "snakemake", "--cores", "2", *args], ws, quiet=True)


def without_wall_times(text: str) -> str:
    return "\n".join(line for line in text.splitlines() if not line.startswith("| Wall time"))


def job_costs(ws: Path) -> dict:
    """Per job of the DAG, from SLURM's own times (squeue keeps finished jobs for MinJobAge) and
    the rule's benchmark file: submission to start, and the job's time beyond its command's
    (Snakemake's start-up inside the job)."""
    rows = subprocess.run(["squeue", "-h", "-t", "all", "-o", "%i|%V|%S|%e|%T"], capture_output=True,
                          text=True).stdout.split()
    from datetime import datetime
    wait, total = [], []
    for row in rows:
        _, submit, start, end, state = row.split("|")
        if state == "COMPLETED":
            t = [datetime.fromisoformat(x) for x in (submit, start, end)]
            wait.append((t[1] - t[0]).total_seconds())
            total.append((t[2] - t[1]).total_seconds())
    command = [float(p.read_text().splitlines()[1].split()[0]) for p in (ws / "benchmarks/out").rglob("*.tsv")]
    return {"jobs": len(total), "submit_to_start_s": sum(wait) / max(len(wait), 1),
            "job_minus_command_s": (sum(total) - sum(command)) / max(len(total), 1)}


def check_jobs(ws: Path) -> int:
    logs = sorted((ws / "logs").rglob("*.log"))
    missing = [str(p.relative_to(ws)) for p in logs if not re.search(r"^slurm job \d+ on ", p.read_text(), re.M)]
    if not logs or missing:
        raise SystemExit(f"smoke_slurm: jobs that did not run as SLURM jobs: {missing or 'no logs at all'}")
    return len(logs)


def cancel_and_resume(base: Path) -> dict:
    """scancel the train job once a middle checkpoint exists; Snakemake resubmits it."""
    ref, ws = copy_project(base / "reference"), copy_project(base / "cancel")
    for w in (ref, ws):
        (w / "long.yaml").write_text(LONG)
    snakemake(ref, RUN, "--configfile", SMOKE, "long.yaml")
    cmd = ["timeout", "-k", "10", "900", "snakemake", "--cores", "2", RUN, *SLURM, "--configfile", SMOKE, "long.yaml"]
    print("+", " ".join(cmd), flush=True)
    env = {"PATH": f"{BIN}:/usr/bin:/bin:/usr/sbin:/sbin", "OMP_NUM_THREADS": "1", "HOME": str(Path.home())}
    proc = subprocess.Popen(cmd, cwd=ws, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL, text=True)
    marker = checkpoints.meta_path(ws / f"{RUN}.partial", CANCEL_AFTER)
    deadline = time.time() + 600
    while not marker.exists():
        if proc.poll() is not None or time.time() > deadline:
            raise SystemExit(f"smoke_slurm: the train job never reached its checkpoint at step {CANCEL_AFTER}:\n"
                             + proc.communicate()[0][-3000:])
        time.sleep(0.2)
    job = subprocess.run(["squeue", "-h", "-t", "running", "-o", "%i"], capture_output=True, text=True).stdout.split()
    if len(job) != 1:
        raise SystemExit(f"smoke_slurm: expected one running job to cancel, found {job}")
    subprocess.run(["scancel", job[0]], check=True)
    print(f"scancel {job[0]} after checkpoint {CANCEL_AFTER}", flush=True)
    out = proc.communicate()[0]
    if proc.returncode != 0:
        raise SystemExit(f"smoke_slurm: the DAG did not recover from scancel (exit {proc.returncode}):\n{out[-3000:]}")
    log = (ws / "logs/train/lift_v19_mujoco_ppo_0.log").read_text()
    if "resuming ppo seed 0 from global step" not in log:
        raise SystemExit("smoke_slurm: the resubmitted train job did not resume from its checkpoint:\n" + log[-2000:])
    if not checkpoints.same_weights(checkpoints.final_weights(ws / RUN), checkpoints.final_weights(ref / RUN)):
        raise SystemExit("smoke_slurm: the cancelled and resumed run ends with other weights than an uninterrupted one")
    resumed = re.search(r"resuming ppo seed 0 from global step (\d+)", log).group(1)
    print(f"smoke_slurm: train cancelled as job {job[0]}, resubmitted, resumed from step {resumed}, same final weights")
    return {"cancelled_job": job[0], "resumed_from": int(resumed)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--keep", help="run in this folder and keep it (default: a temporary folder, removed)")
    args = ap.parse_args(argv)
    base = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="smoke-slurm-"))
    sh(CLUSTER + ["up"], Path(ROOT))
    try:
        local = copy_project(base / "local")
        snakemake(local, "--configfile", SMOKE)
        ws = copy_project(base / "slurm")
        t = time.time()
        snakemake(ws, *SLURM, "--configfile", SMOKE)
        wall = time.time() - t
        jobs = check_jobs(ws)
        here, there = (without_wall_times((w / "reports/lift_v19.md").read_text()) for w in (ws, local))
        if here != there:
            raise SystemExit("smoke_slurm: the SLURM run's report differs from the local run's")
        print(f"smoke_slurm: {jobs} jobs ran as SLURM jobs in {wall:.0f} s; the report equals the local run's")
        costs = job_costs(ws)
        print(f"smoke_slurm: per job, submission to start {costs['submit_to_start_s']:.1f} s, job time beyond "
              f"its command {costs['job_minus_command_s']:.1f} s (over {costs['jobs']} jobs)")
        cancel_and_resume(base)
    finally:
        sh(CLUSTER + ["down"], Path(ROOT))
        if not args.keep:
            shutil.rmtree(base, ignore_errors=True)
    print("smoke_slurm ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
