"""Test helpers: throwaway copies of the project and each DAG tool's own view of the pipeline.

The granularity tests run the real Snakemake and DVC on the real Snakefile, dvc.yaml and params,
with each stage replaced by a fake that writes its declared outputs in milliseconds. A fake's
output is a hash of its command line and of its input files, so, as with real stages, a changed
parameter changes the stage's output and reruns what reads it, and an unchanged one does not.
Every fake appends its stage instance name to ran.log: which stages ran is read from there.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent
IGNORE = shutil.ignore_patterns(".venv", ".git", "data", "logs", ".snakemake", "__pycache__", ".dvc",
                                "benchmarks", "*.egg-info", ".pytest_cache", "dvc.lock", "MUJOCO_LOG.TXT")

FAKE_STAGE = r'''"Fake stage for DAG tests: writes the declared outputs of stage {name!r} (see tests/dagtools.py)."
import hashlib, os, re, sys
from pipeline.dag.registry import STAGES, code_files

stage = STAGES[{name!r}]
files = re.findall(r"--(\S+) [{{](input|output)[.](\w+)[}}]", stage.args)   # (flag, kind, key)
values, current = {{}}, None
for a in sys.argv[1:]:
    if a.startswith("--"):
        current = values.setdefault(a[2:], [])
    else:
        current.append(a)
h = hashlib.sha256(" ".join(f"{{k}}={{v}}" for k, v in sorted(values.items()) if k != "threads").encode())
ident = {{k: values.get(k, [None])[0] for k in ("task", "reward", "backend", "algo", "seed")}}
ident["controller"] = values.get("demos.controller", [None])[0]     # the demos stage's controller
# A code change changes the output, as for real; except the sanity check's, whose file holds the
# verdict and figures, which an edit of the check leaves as they were (pipeline/sanity.py).
for f in code_files(stage, {{k: v for k, v in ident.items() if v is not None}}) if stage.name != "sanity" else []:
    h.update(open(f, "rb").read())
inputs = [p for flag, kind, key in files if kind == "input" for p in values[flag]]
if "demos.controller" in values and stage.name != "demos":     # a run reads the demonstrations its flags name
    from pipeline.run.demos import dataset_path
    inputs.append(dataset_path(ident["task"], ident["backend"], {{k: values["demos." + k][0] for k in
                               ("controller", "episodes", "seed")}}, values["env.curriculum_stage"][0]))
for p in inputs:
    paths = sorted(os.path.join(d, f) for d, _, fs in os.walk(p) for f in fs) if os.path.isdir(p) else [p]
    for f in paths:
        h.update(open(f, "rb").read())
for flag, kind, key in files:
    for p in values[flag] if kind == "output" else []:
        if stage.outputs[key].directory:
            os.makedirs(p, exist_ok=True)
            p = os.path.join(p, "result.txt")
        os.makedirs(os.path.dirname(p) or ".", exist_ok=True)
        open(p, "w").write(h.hexdigest())
name = "-".join([stage.name] + [values[k][0] for k in ("algo",) if k in stage.each] +
                ["seed" + values[k][0] for k in ("seed",) if k in stage.each])
if "reward" in values:
    name += "@" + values["reward"][0]
open("ran.log", "a").write(name + "\n")
'''


# DVC's own stages (pipeline/dag/registry.py): its params check, which Snakemake makes while it builds its
# DAG, and the headline numbers at stable paths, which only `dvc exp show` needs.
DVC_ONLY = ("params", "headline")


def make_workspace(dest: Path, fake: bool = True) -> Path:
    """A copy of the project in dest (no data, no venv); with fake=True the stages are fakes."""
    shutil.copytree(ROOT, dest, ignore=IGNORE, dirs_exist_ok=True)
    if fake:
        from pipeline.dag.registry import STAGES
        for stage in STAGES.values():
            if stage.name not in DVC_ONLY:      # the params check runs for real: it takes milliseconds
                path = dest / "pipeline" / f"{stage.module}.py"
                path.write_text(project_imports(path) + FAKE_STAGE.format(name=stage.name))
        (dest / "pipeline" / "dag" / "headline.py").write_text(FAKE_HEADLINE)
    return dest


def project_imports(module: Path) -> str:
    """The real stage's imports of project code, never run: the fake keeps the stage's code deps,
    which are read from its imports (pipeline/dag/codedeps.py)."""
    import ast
    tree = ast.parse(module.read_text())
    lines = sorted({ast.unparse(n) for n in ast.walk(tree) if isinstance(n, (ast.Import, ast.ImportFrom))
                    and (getattr(n, "module", None) or n.names[0].name).split(".")[0] in ("pipeline", "envs", "algos")})
    return "if False:     # the real stage's imports (its code deps)\n" + "".join(f"    {ln}\n" for ln in lines)


# DVC's headline stage, faked: it writes its outputs and, being no stage of the registry, no ran.log line.
FAKE_HEADLINE = '''"Fake headline stage for DAG tests (tests/dagtools.py)."
import os, sys
args = sys.argv[1:]
out, plots = args[args.index("--out") + 1], args[args.index("--plots") + 1]
curves = args[args.index("--curves") + 1:args.index("--out")]
open(out, "w").write("{}")
os.makedirs(plots, exist_ok=True)
for c in curves:
    open(os.path.join(plots, os.path.basename(c).replace("_curve", "")), "w").write("step\\tsuccess_rate\\n0\\t0\\n")
'''


def tool_env() -> dict:
    env = dict(os.environ)
    env["PATH"] = f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}"
    env["OMP_NUM_THREADS"] = "1"
    env.pop("PYTHONPATH", None)
    return env


def run(cmd: list[str], cwd: Path, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, cwd=cwd, env=tool_env(), capture_output=True, text=True)
    if check and proc.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc


def ran(ws: Path) -> list[str]:
    """Stage instances run since the last call (and forget them), e.g. "train-ppo-seed0@v19"."""
    log = ws / "ran.log"
    if not log.exists():
        return []
    names = log.read_text().split()
    log.unlink()
    return sorted(names)


def git_init(ws: Path) -> None:
    """DVC experiments need a git repository with a commit."""
    run(["git", "init", "-q"], ws)
    run(["git", "-c", "user.email=t@t", "-c", "user.name=t", "add", "-A"], ws)
    run(["git", "-c", "user.email=t@t", "-c", "user.name=t", "commit", "-q", "-m", "init"], ws)
    run([str(VENV_BIN / "dvc"), "init", "-q"], ws)
    run(["git", "-c", "user.email=t@t", "-c", "user.name=t", "commit", "-q", "-am", "dvc init"], ws)


def set_param(ws: Path, key: str, value: str) -> None:
    """Edit one scalar in params.yaml in place, as a user would (comments and layout kept)."""
    path = ws / "params.yaml"
    text = path.read_text()
    *parents, leaf = key.split(".")
    if parents:
        block = re.search(rf"^{parents[0]}:\n((?:[ #].*\n|\n)*)", text, re.M)
        body = re.sub(rf"^(\s+{leaf}:\s*)[^#\n]*?(\s*(#.*)?)$", rf"\g<1>{value}\g<2>", block.group(1), count=1,
                      flags=re.M)
        text = text[:block.start(1)] + body + text[block.end(1):]
    else:
        text = re.sub(rf"^({leaf}:\s*)[^#\n]*?(\s*(#.*)?)$", rf"\g<1>{value}\g<2>", text, count=1, flags=re.M)
    path.write_text(text)


# --- each tool's own view of the DAG ---------------------------------------------------------------

def snakemake_dag(ws: Path, targets: list[str] | None = None) -> dict:
    """{stage instance: {cmd, deps, outs, params, upstream}} from Snakemake's API."""
    from snakemake.api import SnakemakeApi
    from snakemake.settings.types import ConfigSettings, DAGSettings, OutputSettings, ResourceSettings

    from pipeline.dag.registry import IDENTITY, STAGES

    old = os.getcwd()
    os.chdir(ws)
    sys.path.insert(0, str(ws))
    try:
        with SnakemakeApi(OutputSettings()) as api:
            wf_api = api.workflow(resource_settings=ResourceSettings(cores=1),
                                  config_settings=ConfigSettings(),
                                  snakefile=ws / "Snakefile", workdir=ws)
            dag_api = wf_api.dag(dag_settings=DAGSettings(targets=set(targets or []), forceall=True))
            wf = dag_api.workflow_api._workflow
            wf._prepare_dag(forceall=True, ignore_incomplete=True, lock_warn_only=True, nolock=True)
            wf._build_dag()
            dag = wf.dag
            name_of = {}
            for job in dag.jobs:
                if job.rule.name == "all":
                    continue
                wc = job.wildcards_dict
                name_of[job] = STAGES[job.rule.name].dvc_name(wc.get("algo"), wc.get("seed"))
            out = {}
            for job, name in name_of.items():
                wc = job.wildcards_dict
                flag_keys = [k for v in dict(job.params.items()).values() if isinstance(v, str)
                             for k in re.findall(r"--(\S+) ", v + " ")]
                params = [k for k in IDENTITY if k in wc] + (["backend"] if "backend" in dict(job.params.items()) else [])
                cmd = job.shellcmd.split(" > ")[0].strip()
                out[name] = {"cmd": re.sub(r" --threads \d+", "", cmd),
                             "deps": sorted(set(map(str, job.input))), "outs": sorted(map(str, job.output)),
                             "params": sorted(params + flag_keys),
                             "upstream": sorted(name_of[d] for d in dag.dependencies[job] if d in name_of)}
            return out
    finally:
        os.chdir(old)
        sys.path.remove(str(ws))




def dvc_dag(ws: Path) -> dict:
    """{stage instance: {cmd, deps, outs, params, upstream}} from DVC's API."""
    from dvc.repo import Repo

    from pipeline.dag.registry import PARAMS_CHECK

    out = {}
    with Repo(str(ws)) as repo:
        graph = repo.index.graph
        for stage in repo.index.stages:
            if stage.name in DVC_ONLY:
                continue
            params = [k for p in stage.params for k in p.params]
            deps = [d.def_path for d in stage.deps if d not in stage.params and d.def_path != PARAMS_CHECK]
            out[stage.name] = {"cmd": re.sub(r" --threads \d+", "", stage.cmd),
                               # as a set: envs/backends/mujoco.py is listed twice with backend
                               # mujoco (core env code, and the backend's module); one dependency
                               "deps": sorted(set(deps)), "outs": sorted(o.def_path for o in stage.outs),
                               "params": sorted(params),
                               "upstream": sorted(s.name for s in graph.successors(stage) if s.name not in DVC_ONLY)}
    return out
