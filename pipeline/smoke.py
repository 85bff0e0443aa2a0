"""The whole DAG on config/smoke.yaml, through Snakemake and through DVC, in throwaway copies.

    python -m pipeline.smoke                  # both tools (what `make test` and CI run)
    python -m pipeline.smoke --tool dvc --keep /tmp/smoke
    python -m pipeline.smoke --tool snakemake --backend genesis   # the same DAG on Genesis (CPU)
    python -m pipeline.smoke --tool snakemake --experiment config/walk.yaml   # the Go2 walk DAG, tiny

Nothing in the working tree is touched: each tool runs in its own copy of the project (the files
git tracks plus untracked, non-ignored ones), so a smoke report never overwrites a real one. For DVC
the copy gets the smoke values merged into params.yaml, a regenerated dvc.yaml, and its own git
repository (`dvc exp run` needs a commit). Checks: the report is written with real numbers, a
rerun does nothing, `dvc exp run -S`, `dvc exp show`, `dvc metrics diff` and `dvc plots show` work.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from pipeline.common import IMPORTS_LOG
from pipeline.stages import ROOT

BIN = Path(sys.executable).parent
SMOKE = "config/smoke.yaml"
EXP_SHOW_DROP = r"^(envs|pipeline|algos)/|^data/(runs|sanity|videos)/|^data/.*\.(parquet|json|tsv)$|^(her|drqv2|sanity|render|report)\.|Created"


def sh(cmd: list[str], cwd: Path, quiet: bool = False, env: dict | None = None) -> str:
    print("+", " ".join(cmd), flush=True)
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}", "OMP_NUM_THREADS": "1",
           **(env or {})}
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    out = proc.stdout + proc.stderr
    if proc.returncode != 0:
        print(out)
        raise SystemExit(f"smoke: `{' '.join(cmd)}` failed with exit code {proc.returncode}")
    if not quiet:
        print(out.rstrip()[-3000:])
    return out


def project_files() -> list[str]:
    """What a clone would hold: git's tracked and untracked-but-not-ignored files (or, outside a
    git checkout, everything but the usual generated folders)."""
    proc = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                          capture_output=True, text=True)
    if proc.returncode == 0:
        return [f for f in proc.stdout.split("\0") if f]
    skip = {".git", ".venv", "data", "logs", ".snakemake", ".dvc", "__pycache__", ".pytest_cache"}
    return [str(p.relative_to(ROOT)) for p in Path(ROOT).rglob("*")
            if p.is_file() and not skip & set(p.relative_to(ROOT).parts)]


def copy_project(dest: Path) -> Path:
    for rel in project_files():
        src = Path(ROOT) / rel
        if src.is_file() and not rel.startswith(("data/", "reports/", "dvc.lock")):
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)
    return dest


# What a report must hold: the devlog's evaluation block, the task's own metrics, provenance.
TASK_NEEDLES = {"lift": ("Max Cube Z:", "Mean Grasp Steps:"),
                "walk": ("Forward Velocity (m/s):", "Distance (m):", "Training episodes per chunk")}


def check_report(ws: Path, configfiles=()) -> None:
    from pipeline import config as cfg
    params = cfg.load(ws / "params.yaml")
    for extra in configfiles:
        params = cfg.merge(params, cfg.load(ws / extra))
    report = ws / "reports" / f"{params['task']}_{params['reward']}.md"
    text = report.read_text()
    for needle in ("Mean Reward:", "Success Rate:", *TASK_NEEDLES.get(params["task"], ()), "## Provenance"):
        if needle not in text:
            raise SystemExit(f"smoke: {report} lacks {needle!r}")
    print(f"smoke: {report.relative_to(ws)} ok ({len(text)} bytes)")


def check_imports(folder: Path) -> None:
    """Every stage that ran loaded only project modules among its declared code deps."""
    from pipeline.stages import STAGES, code_files
    records = [json.loads(p.read_text()) for p in sorted(folder.glob("*.json"))]
    for rec in records:
        argv = rec["argv"]
        stage = next(s for s in STAGES.values() if s.module == Path(argv[0]).stem)
        ident = {k: argv[argv.index(f"--{k}") + 1] for k in ("task", "reward", "backend", "algo") if f"--{k}" in argv}
        undeclared = sorted(set(rec["modules"]) - set(code_files(stage, ident)))
        if undeclared:
            raise SystemExit(f"smoke: stage {stage.name} {ident} imported {undeclared}, which its code deps lack")
    if not {Path(r["argv"][0]).stem for r in records} >= {s.module for s in STAGES.values()}:
        raise SystemExit(f"smoke: import records from only {sorted({Path(r['argv'][0]).stem for r in records})}")
    print(f"smoke: {len(records)} stage runs imported only their declared code")


def smoke_snakemake(ws: Path, cores: int, backend: str | None = None, experiment: str | None = None) -> dict:
    configfiles = [experiment, SMOKE] if experiment else [SMOKE]
    config = ["--configfile", *configfiles] + (["--config", f"backend={backend}"] if backend else [])
    t = time.time()
    imports = ws / "imports"
    sh(["snakemake", "--cores", str(cores), *config], ws, quiet=True, env={IMPORTS_LOG: str(imports)})
    full = time.time() - t
    check_report(ws, configfiles)
    check_imports(imports)
    if backend and f"{backend} vs mujoco" not in next((ws / "reports").glob("*.md")).read_text():
        raise SystemExit(f"smoke: the report lacks the {backend} vs mujoco parity table")
    t = time.time()
    out = sh(["snakemake", "--cores", str(cores), *config], ws, quiet=True)
    noop = time.time() - t
    if "Nothing to be done" not in out:
        raise SystemExit("smoke: a second snakemake run was not a no-op:\n" + out)
    sh(["snakemake", "--lint"], ws, quiet=True)
    return {"snakemake_full_s": round(full, 1), "snakemake_noop_s": round(noop, 2)}


def smoke_dvc(ws: Path) -> dict:
    merged = subprocess.run([sys.executable, "-m", "pipeline.config", "--merge", SMOKE], cwd=ws,
                            capture_output=True, text=True, check=True).stdout
    (ws / "params.yaml").write_text(merged)
    sh([sys.executable, "-m", "pipeline.dvcgen"], ws, quiet=True)
    git = ["git", "-c", "user.email=smoke@localhost", "-c", "user.name=smoke"]
    sh(["git", "init", "-q"], ws)
    sh(git + ["add", "-A"], ws, quiet=True)
    sh(git + ["commit", "-q", "-m", "smoke"], ws, quiet=True)
    if not (ws / ".dvc").exists():     # the project tracks .dvc/ itself, so a copy usually has it
        sh(["dvc", "init", "-q"], ws)
        sh(git + ["commit", "-q", "-m", "dvc init"], ws, quiet=True)
    t = time.time()
    sh(["dvc", "repro"], ws, quiet=True)
    full = time.time() - t
    check_report(ws)
    t = time.time()
    out = sh(["dvc", "repro"], ws, quiet=True)
    noop = time.time() - t
    if "Running stage" in out:
        raise SystemExit("smoke: a second dvc repro was not a no-op:\n" + out)
    sh(git + ["add", "-A"], ws, quiet=True)
    sh(git + ["commit", "-q", "-m", "smoke results"], ws, quiet=True)
    out = sh(["dvc", "exp", "run", "-S", "evaluation.episodes=3"], ws, quiet=True)
    ran = sorted(line.split("'")[1] for line in out.splitlines() if line.startswith("Running stage"))
    if ran != ["evaluate-ppo", "evaluate-sac", "params", "report"]:
        raise SystemExit(f"smoke: dvc exp run -S evaluation.episodes=3 ran {ran}")
    # Params and headline metrics only: code and data hashes make the table unreadable.
    sh(["dvc", "exp", "show", "--no-pager", "--md", "--drop", EXP_SHOW_DROP], ws)
    sh(["dvc", "metrics", "show"], ws, quiet=True)
    sh(["dvc", "metrics", "diff"], ws, quiet=True)
    sh(["dvc", "plots", "show", "--out", "dvc_plots"], ws, quiet=True)
    if not (ws / "dvc_plots" / "index.html").exists():
        raise SystemExit("smoke: dvc plots show wrote no dvc_plots/index.html")
    return {"dvc_full_s": round(full, 1), "dvc_noop_s": round(noop, 2)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tool", choices=("both", "snakemake", "dvc"), default="both")
    ap.add_argument("--cores", type=int, default=2)
    ap.add_argument("--keep", help="run in this folder and keep it (default: a temporary folder, removed)")
    ap.add_argument("--backend", help="run on this physics backend instead of params.yaml's (Snakemake only)")
    ap.add_argument("--experiment", help="an experiment file merged before the smoke values, e.g. config/walk.yaml "
                                         "(Snakemake only)")
    args = ap.parse_args(argv)
    base = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="smoke-"))
    timings = {}
    try:
        if (args.backend or args.experiment) and args.tool != "snakemake":
            raise SystemExit("smoke: --backend and --experiment go with --tool snakemake")
        if args.tool in ("both", "snakemake"):
            timings.update(smoke_snakemake(copy_project(base / "snakemake"), args.cores, args.backend, args.experiment))
        if args.tool in ("both", "dvc"):
            timings.update(smoke_dvc(copy_project(base / "dvc")))
    finally:
        if not args.keep:
            shutil.rmtree(base, ignore_errors=True)
    print("smoke ok:", ", ".join(f"{k} {v}" for k, v in timings.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
