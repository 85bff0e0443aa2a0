"""The whole DAG on config/smoke.yaml, through Snakemake and through DVC, in throwaway copies.

    python -m tests.e2e.smoke                  # both tools (what `make test` and CI run)
    python -m tests.e2e.smoke --tool dvc --keep /tmp/smoke
    python -m tests.e2e.smoke --tool snakemake --backend genesis   # the same DAG on Genesis (CPU)
    python -m tests.e2e.smoke --tool snakemake --experiment config/walk.yaml   # the Go2 walk DAG, tiny

Nothing in the working tree is touched: each tool runs in its own copy of the project (the files
git tracks plus untracked, non-ignored ones), so a smoke report never overwrites a real one. For DVC
the copy gets the smoke values merged into params.yaml, a regenerated dvc.yaml, and its own git
repository (`dvc exp run` needs a commit). Checks: the report is written with real numbers, a
rerun does nothing, a torn checkpoint stops the DAG and the recovery it names works (Snakemake),
`dvc exp run -S`, `dvc exp show`, `dvc metrics diff` and `dvc plots show` work.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from pipeline.dag.registry import ROOT
from pipeline.run.cli import IMPORTS_LOG

BIN = Path(sys.executable).parent
SMOKE = "config/smoke.yaml"
EXP_SHOW_DROP = r"^(envs|pipeline|algos)/|^data/(runs|sanity|videos)/|^data/.*\.(parquet|json|tsv)$|^(her|drqv2|sanity|render|report)\.|Created"


def tool_env(env: dict | None = None) -> dict:
    return {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}", "OMP_NUM_THREADS": "1",
            **(env or {})}


def sh(cmd: list[str], cwd: Path, quiet: bool = False, env: dict | None = None, timeout: float = 1800) -> str:
    """Run cmd with no standard input (as CI does) and fail, naming it, past timeout seconds."""
    print("+", " ".join(cmd), flush=True)
    try:
        proc = subprocess.run(cmd, cwd=cwd, env=tool_env(env), stdin=subprocess.DEVNULL, capture_output=True,
                              text=True, timeout=timeout)
    except subprocess.TimeoutExpired as e:
        out = (e.stdout or b"").decode(errors="replace") if isinstance(e.stdout, bytes) else (e.stdout or "")
        print(out[-3000:])
        raise SystemExit(f"smoke: `{' '.join(cmd)}` did not finish in {timeout:.0f} s")
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


def merged_params(ws: Path, configfiles=(), values=()) -> dict:
    """The params a run sees: params.yaml, the config files over it, then --config values."""
    import yaml

    from pipeline.dag import params as cfg
    params = cfg.load(ws / "params.yaml")
    for extra in configfiles:
        params = cfg.merge(params, cfg.load(ws / extra))
    for value in values:       # --config key=value, as Snakemake reads it
        key, _, text = value.partition("=")
        params[key] = yaml.safe_load(text)
    return params


def check_report(ws: Path, configfiles=(), values=()) -> None:
    params = merged_params(ws, configfiles, values)
    report = ws / "reports" / f"{params['task']}_{params['reward']}.md"
    text = report.read_text()
    for needle in ("Mean Reward:", "Success Rate:", *TASK_NEEDLES.get(params["task"], ()), "## Provenance"):
        if needle not in text:
            raise SystemExit(f"smoke: {report} lacks {needle!r}")
    from pipeline.dag.registry import EVAL
    for algo in params["algos"]:        # every algorithm evaluated, to a number
        path = ws / (EVAL.format(task=params["task"], reward=params["reward"], backend=params["backend"], algo=algo) + ".json")
        rate = json.loads(path.read_text()).get("success_rate")
        if not isinstance(rate, (int, float)) or not 0 <= rate <= 1:
            raise SystemExit(f"smoke: {path.relative_to(ws)} has success_rate {rate!r}, not a rate")
    print(f"smoke: {report.relative_to(ws)} ok ({len(text)} bytes)")


def check_imports(folder: Path, compared: bool, params: dict) -> None:
    """Every stage that ran loaded only project modules among its declared code deps; every stage
    the experiment needs ran (demos only for an algorithm that learns from demonstrations)."""
    from pipeline.dag.registry import STAGES, code_files
    records = [json.loads(p.read_text()) for p in sorted(folder.glob("*.json"))]
    for rec in records:
        argv = rec["argv"]
        stage = next(s for s in STAGES.values() if s.module == Path(argv[0]).stem)
        ident = {k: argv[argv.index(f"--{k}") + 1] for k in ("task", "reward", "backend", "algo") if f"--{k}" in argv}
        if "--demos.controller" in argv:
            ident["controller"] = argv[argv.index("--demos.controller") + 1]
        undeclared = sorted(set(rec["modules"]) - set(code_files(stage, ident)))
        if undeclared:
            raise SystemExit(f"smoke: stage {stage.name} {ident} imported {undeclared}, which its code deps lack")
    expected = {s.module for s in STAGES.values()
                if "snakemake" in s.tools and (compared or s.name != "compare") and s.wanted(params)}
    if not {Path(r["argv"][0]).stem for r in records} >= expected:
        raise SystemExit(f"smoke: import records from only {sorted({Path(r['argv'][0]).stem for r in records})}")
    print(f"smoke: {len(records)} stage runs imported only their declared code")


def smoke_snakemake(ws: Path, cores: int, backend: str | None = None, experiment: str | None = None,
                    values: list[str] = ()) -> dict:
    configfiles = [experiment, SMOKE] if experiment else [SMOKE]
    values = [*values, *([f"backend={backend}"] if backend else [])]
    config = ["--configfile", *configfiles] + (["--config", *values] if values else [])
    t = time.time()
    imports = ws / "imports"
    sh(["snakemake", "--cores", str(cores), *config], ws, quiet=True, env={IMPORTS_LOG: str(imports)})
    full = time.time() - t
    check_report(ws, configfiles, values)
    if backend and f"{backend} vs mujoco" not in next((ws / "reports").glob("*.md")).read_text():
        raise SystemExit(f"smoke: the report lacks the {backend} vs mujoco parity table")
    t = time.time()
    out = sh(["snakemake", "--cores", str(cores), *config], ws, quiet=True)
    noop = time.time() - t
    if "Nothing to be done" not in out:
        raise SystemExit("smoke: a second snakemake run was not a no-op:\n" + out)
    sh(["snakemake", "--lint"], ws, quiet=True)
    timings = {"snakemake_full_s": round(full, 1), "snakemake_noop_s": round(noop, 2)}
    if not (backend or experiment):
        timings.update(smoke_compare(ws, config, cores, imports))
        timings.update(smoke_torn_checkpoint(ws, config, cores))
    check_imports(imports, compared=not (backend or experiment), params=merged_params(ws, configfiles, values))
    sh(["snakemake", *config, "--report", "report.html"], ws, quiet=True)
    if (ws / "report.html").stat().st_size < 100_000:
        raise SystemExit("smoke: snakemake --report wrote a report.html without its figures and videos")
    return timings


def smoke_compare(ws: Path, config: list[str], cores: int, imports: Path) -> dict:
    """The comparison target builds the variants it lacks (v11's chain), reuses v19's, and writes
    the before/after table."""
    t = time.time()
    out = sh(["snakemake", "--cores", str(cores), "reports/lift_compare.md", *config], ws, quiet=True,
             env={IMPORTS_LOG: str(imports)})
    ran = sorted({line.split("rule ")[1].rstrip(":") for line in out.splitlines()
                  if line.startswith(("rule ", "localrule "))})
    if ran != ["compare", "evaluate", "train"]:     # v11's chain only: v19's exists
        raise SystemExit(f"smoke: reports/lift_compare.md ran rules {ran}, expected v11's train and evaluate and compare")
    text = (ws / "reports/lift_compare.md").read_text()
    for needle in ("| Metric | v11 | v19 | v19 vs v11 |", "## Per seed", "Success Rate"):
        if needle not in text:
            raise SystemExit(f"smoke: reports/lift_compare.md lacks {needle!r}")
    return {"snakemake_compare_s": round(time.time() - t, 1)}


def smoke_torn_checkpoint(ws: Path, config: list[str], cores: int) -> dict:
    """A torn newest checkpoint stops the DAG (evaluate and render) naming the file and the
    recovery, and the recovery it names works: --forcerun of the run folder retrains that run
    alone, to the same weights, and the report is back at the trained final step."""
    from pipeline.run import checkpoints
    t = time.time()
    run = "data/runs/lift_v19_mujoco/ppo/seed0"
    weights, other = checkpoints.final_weights(ws / run), (ws / "data/runs/lift_v19_mujoco/sac/seed0/run.json").stat()
    newest = sorted((ws / run / "checkpoints").glob("step_*.zip"))[-1]
    newest.write_bytes(newest.read_bytes()[:1000])         # torn, as by a crash or a full disk
    force = ["snakemake", "--cores", str(cores), "--keep-going", "--forcerun", "data/eval/lift_v19_mujoco/ppo.json",
             "data/videos/lift_v19_mujoco/ppo.mp4", *config]
    print("+", " ".join(force), "(must fail)", flush=True)
    proc = subprocess.run(force, cwd=ws, env=tool_env(), stdin=subprocess.DEVNULL, capture_output=True, text=True,
                          timeout=1800)
    recovery = f"`--forcerun {run}`"
    for stage in ("evaluate", "render"):
        log = (ws / f"logs/{stage}/lift_v19_mujoco_ppo.log").read_text()
        if proc.returncode == 0 or f"{newest.relative_to(ws)} does not match its recorded sha256" not in log \
                or recovery not in log:
            raise SystemExit(f"smoke: a torn checkpoint did not stop {stage} naming it and the recovery:\n{log}")
    out = sh(["snakemake", "--cores", str(cores), "--forcerun", run, *config], ws, quiet=True)   # the recovery
    trained = [line for line in out.splitlines() if "wildcards:" in line and "seed=" in line]
    metrics = json.loads((ws / "data/eval/lift_v19_mujoco/ppo.json").read_text())
    if (len(trained) != 1 or "algo=ppo, seed=0" not in trained[0] or metrics["final_step"] != 512
            or (ws / "data/runs/lift_v19_mujoco/sac/seed0/run.json").stat().st_mtime != other.st_mtime
            or not checkpoints.same_weights(weights, checkpoints.final_weights(ws / run))):
        raise SystemExit(f"smoke: the recovery from a torn checkpoint did not retrain ppo seed 0 alone to the "
                         f"same weights and final step 512 (trained: {trained}, final step {metrics['final_step']})")
    print("smoke: a torn checkpoint stopped evaluate and render; the recovery they name restored the run")
    return {"snakemake_torn_checkpoint_s": round(time.time() - t, 1)}


def smoke_dvc(ws: Path) -> dict:
    merged = subprocess.run([sys.executable, "-m", "pipeline.dag.params", "--merge", SMOKE], cwd=ws,
                            capture_output=True, text=True, check=True).stdout
    (ws / "params.yaml").write_text(merged)
    sh([sys.executable, "-m", "pipeline.dag.dvcgen"], ws, quiet=True)
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
    remote = smoke_remote(ws, git)
    out = sh(["dvc", "exp", "run", "-S", "evaluation.episodes=3"], ws, quiet=True)
    ran = sorted(line.split("'")[1] for line in out.splitlines() if line.startswith("Running stage"))
    if ran != ["evaluate-ppo", "evaluate-sac", "headline", "params", "report"]:
        raise SystemExit(f"smoke: dvc exp run -S evaluation.episodes=3 ran {ran}")
    # Params and headline metrics only: code and data hashes make the table unreadable.
    sh(["dvc", "exp", "show", "--no-pager", "--md", "--drop", EXP_SHOW_DROP], ws)
    sh(["dvc", "metrics", "show"], ws, quiet=True)
    sh(["dvc", "metrics", "diff"], ws, quiet=True)
    sh(["dvc", "plots", "show", "--out", "dvc_plots"], ws, quiet=True)
    if not (ws / "dvc_plots" / "index.html").exists():
        raise SystemExit("smoke: dvc plots show wrote no dvc_plots/index.html")
    return {"dvc_full_s": round(full, 1), "dvc_noop_s": round(noop, 2), **remote, **smoke_scratch(ws),
            **smoke_dvc_grid(ws)}


def smoke_remote(ws: Path, git: list[str]) -> dict:
    """Results shared through a DVC remote (docs/pipeline.md, "Sharing results: a DVC remote"): the
    workspace pushes to a local-directory remote set per site (.dvc/config.local, which git
    ignores), a fresh git clone pulls, and has every output without training: `dvc status` is
    clean, `dvc repro` runs nothing, and the report regenerated from the pulled data is the pushed
    one byte for byte, figures included."""
    t = time.time()
    remote, clone = ws.parent / "dvc-remote", ws.parent / "dvc-clone"
    sh(["dvc", "remote", "add", "-d", "--local", "shared", str(remote)], ws, quiet=True)
    sh(["dvc", "push"], ws, quiet=True)
    if sh(["git", "status", "--porcelain"], ws, quiet=True).strip():
        raise SystemExit("smoke: a per-site DVC remote changed files git tracks")
    sh(["git", "clone", "-q", str(ws), str(clone)], ws.parent)
    sh(["dvc", "remote", "add", "-d", "--local", "shared", str(remote)], clone, quiet=True)
    sh(["dvc", "pull"], clone, quiet=True)
    if "Data and pipelines are up to date" not in sh(["dvc", "status"], clone, quiet=True):
        raise SystemExit("smoke: after dvc pull, dvc status is not clean")
    if "Running stage" in sh(["dvc", "repro"], clone, quiet=True):
        raise SystemExit("smoke: after dvc pull, dvc repro ran stages")
    out = sh(["dvc", "repro", "--force", "--single-item", "report"], clone, quiet=True)
    if sum("Running stage" in line for line in out.splitlines()) != 1:
        raise SystemExit(f"smoke: the forced report stage ran other stages:\n{out}")
    pushed, pulled = (sorted((p.relative_to(w), p.read_bytes()) for p in (w / "reports").rglob("*") if p.is_file())
                      for w in (ws, clone))
    if pushed != pulled or sh(["git", "status", "--porcelain"], clone, quiet=True).strip():
        raise SystemExit("smoke: the report regenerated from pulled data differs from the pushed one")
    print(f"smoke: dvc push, a fresh clone's dvc pull: nothing retrained, reports/ identical ({len(pulled)} files)")
    return {"dvc_remote_s": round(time.time() - t, 1)}


def smoke_scratch(ws: Path) -> dict:
    """Every stage reruns in an empty folder holding only its declared deps (code, data, params
    file where declared): a forgotten dependency fails here instead of going stale in silence."""
    from dvc.repo import Repo
    t = time.time()
    with Repo(str(ws)) as repo:
        stages = [(s.name, s.cmd, [d.def_path for d in s.deps], [o.def_path for o in s.outs])
                  for s in repo.index.stages]
    for name, cmd, deps, outs in stages:
        scratch = Path(tempfile.mkdtemp(prefix=f"scratch-{name}-"))
        try:
            for dep in deps:
                src, dst = ws / dep, scratch / dep
                dst.parent.mkdir(parents=True, exist_ok=True)
                if src.is_dir():
                    shutil.copytree(src, dst, dirs_exist_ok=True)
                else:
                    shutil.copy2(src, dst)
            imports = scratch / ".imports"
            sh(["bash", "-c", cmd], scratch, quiet=True, env={IMPORTS_LOG: str(imports)})
            missing = [o for o in outs if not (scratch / o).exists()]
            foreign = sorted({f for p in imports.glob("*.json") for f in json.loads(p.read_text())["foreign"]})
            if missing or foreign:
                raise SystemExit(f"smoke: stage {name} in a folder of its declared deps only: "
                                 f"outputs missing {missing}; modules loaded from outside it {foreign}")
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
    print(f"smoke: {len(stages)} stages ran from their declared deps alone")
    return {"dvc_scratch_s": round(time.time() - t, 1)}


def smoke_dvc_grid(ws: Path) -> dict:
    """A grid of two reward versions through DVC's queue; `dvc exp show` lists both experiments'
    headline numbers in the same column (metrics.json, identity as values)."""
    t = time.time()
    sh(["dvc", "exp", "run", "--queue", "-S", "reward=v11,v19"], ws, quiet=True)
    # The queue's workers are daemons that inherit the starter's stdout: give them a file, never a
    # pipe this process waits on, and stop them by pid whether or not they shut down by themselves.
    print("+ dvc queue start -j 2", flush=True)
    with open(ws / "dvc_queue.log", "w") as log:
        subprocess.run(["dvc", "queue", "start", "-j", "2"], cwd=ws, env=tool_env(), stdin=subprocess.DEVNULL,
                       stdout=log, stderr=subprocess.STDOUT, timeout=300, check=True)
    try:
        deadline = time.time() + 900
        while True:
            status = sh(["dvc", "queue", "status"], ws, quiet=True, timeout=120)
            if not any(w in status for w in ("Queued", "Running")):
                break
            if time.time() > deadline:
                raise SystemExit("smoke: the DVC queue did not finish in 15 minutes:\n" + status)
            time.sleep(5)
    finally:
        stop_queue_workers(ws)
    if "Failed" in status:
        raise SystemExit("smoke: a queued DVC experiment failed:\n" + status)
    values = headline_values(json.loads(sh(["dvc", "exp", "show", "--json"], ws, quiet=True)))
    if {"v11", "v19"} - set(values):
        raise SystemExit(f"smoke: dvc exp show has metrics.json:ppo.success_rate for rewards {sorted(values)} only")
    print(f"smoke: dvc exp show, metrics.json ppo.success_rate by reward: {values}")
    return {"dvc_grid_s": round(time.time() - t, 1)}


def stop_queue_workers(ws: Path) -> None:
    """`dvc queue stop`, then SIGTERM to any worker still alive after 30 s (their pids are in
    .dvc/tmp/exps/celery/*.pid)."""
    subprocess.run(["dvc", "queue", "stop"], cwd=ws, env=tool_env(), stdin=subprocess.DEVNULL,
                   capture_output=True, timeout=120)
    pids = [int(f.read_text().split()[0]) for f in (ws / ".dvc/tmp/exps/celery").glob("*.pid")
            if f.read_text().strip().isdigit()]
    deadline = time.time() + 30
    while time.time() < deadline and any(Path(f"/proc/{pid}").exists() for pid in pids):
        time.sleep(1)
    for pid in pids:
        try:
            os.kill(pid, signal.SIGTERM)
            print(f"smoke: stopped DVC queue worker {pid}, still alive after `dvc queue stop`")
        except ProcessLookupError:
            pass


def headline_values(tree) -> dict:
    """{reward: ppo.success_rate} of every experiment in `dvc exp show --json` output."""
    found = {}
    if isinstance(tree, dict):
        data = tree.get("data") if isinstance(tree.get("data"), dict) else tree
        params = (data.get("params") or {}).get("params.yaml", {}).get("data", {})
        metrics = (data.get("metrics") or {}).get("metrics.json", {}).get("data", {})
        if "reward" in params and "success_rate" in metrics.get("ppo", {}):
            found[params["reward"]] = metrics["ppo"]["success_rate"]
        for v in tree.values():
            found.update(headline_values(v))
    elif isinstance(tree, list):
        for v in tree:
            found.update(headline_values(v))
    return found


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tool", choices=("both", "snakemake", "dvc"), default="both")
    ap.add_argument("--cores", type=int, default=2)
    ap.add_argument("--keep", help="run in this folder and keep it (default: a temporary folder, removed)")
    ap.add_argument("--backend", help="run on this physics backend instead of params.yaml's (Snakemake only)")
    ap.add_argument("--experiment", help="an experiment file merged before the smoke values, e.g. config/walk.yaml "
                                         "(Snakemake only)")
    ap.add_argument("--config", nargs="+", default=[], metavar="KEY=VALUE",
                    help="top-level values over both, as snakemake --config takes them (Snakemake only)")
    args = ap.parse_args(argv)
    base = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="smoke-"))
    timings = {}
    try:
        if (args.backend or args.experiment or args.config) and args.tool != "snakemake":
            raise SystemExit("smoke: --backend, --experiment and --config go with --tool snakemake")
        if args.tool in ("both", "snakemake"):
            timings.update(smoke_snakemake(copy_project(base / "snakemake"), args.cores, args.backend, args.experiment,
                                           args.config))
        if args.tool in ("both", "dvc"):
            timings.update(smoke_dvc(copy_project(base / "dvc")))
    finally:
        if not args.keep:
            shutil.rmtree(base, ignore_errors=True)
    print("smoke ok:", ", ".join(f"{k} {v}" for k, v in timings.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
