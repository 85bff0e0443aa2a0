"""The stage registry: the one place that says what each stage runs, reads, writes and depends on.

Both DAG tools are rendered from STAGES:
- `python -m pipeline.dvcgen` writes dvc.yaml (committed; tests/test_dag.py fails when it is stale);
- the Snakefile builds each rule's input/output/params/shell from the functions at the bottom.

Templates use {task}, {reward}, {backend} (the experiment's identity: `${...}` params in DVC,
wildcards in Snakemake), {algo} and {seed} (one DVC stage per algorithm/seed, wildcards in Snakemake).
Every value a stage uses goes on its command line, as `--block.key value` for each field of a
params block, so both tools see every change and a stage can be rerun by hand from its log.
"""
from __future__ import annotations

import glob
import os
from dataclasses import dataclass, field as dc_field

from pipeline import config as cfg

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
IDENTITY = ("task", "reward", "backend")    # scalar params that name outputs
DIMS = ("algo", "seed")                     # fan-out dimensions, listed by params `algos`, `seeds`


@dataclass(frozen=True)
class Input:
    path: str
    over: str | None = None     # "algo" or "seed": one path per listed value, passed space-separated


@dataclass(frozen=True)
class Output:
    path: str
    kind: str = "out"           # out | metric | plot: DVC lists them under outs/metrics/plots
    directory: bool = False
    cache: bool = True          # False for files that belong in git (reports)


@dataclass(frozen=True)
class Stage:
    name: str
    module: str                         # run as `python -m pipeline.<module>`
    each: tuple[str, ...]               # fan-out: () | ("algo",) | ("algo", "seed")
    args: str                           # identity and file arguments; {input.x}/{output.x}/{task}...
    params: tuple[str, ...]             # params.yaml keys passed as flags: a block name or a scalar
    code: tuple[str, ...]               # source files the stage runs (templates)
    inputs: dict[str, Input] = dc_field(default_factory=dict)
    outputs: dict[str, Output] = dc_field(default_factory=dict)
    threads: int = 1
    resources: dict = dc_field(default_factory=dict)

    def dvc_name(self, algo: str | None = None, seed: int | None = None) -> str:
        parts = [self.name] + ([algo] if "algo" in self.each else []) + ([f"seed{seed}"] if "seed" in self.each else [])
        return "-".join(parts)


# --- code dependencies -------------------------------------------------------------------------
# Precise, so that editing one reward version reruns only its runs: each stage lists the env code
# shared by all tasks, its task's module, and (train/evaluate/render) its reward version's module.

def code_files(stage: Stage, fmt) -> list[str]:
    """A stage's code deps; stages that run a task also depend on the shared env code, and stages
    that run an algorithm on the modules that implement it (ALGO_CODE)."""
    own = []
    for c in stage.code:
        own += list(ALGO_CODE[fmt("{algo}")]) if c == ALGO else [fmt(c)]
    runs_env = any(c.startswith("envs/") for c in stage.code)
    return sorted(set(own + (env_core_files() if runs_env else [])))


def _rel(path: str) -> str:
    return os.path.relpath(path, ROOT)


def env_core_files() -> list[str]:
    """envs/ files every task uses: all of envs/ except task modules and reward version modules."""
    files = []
    for path in sorted(glob.glob(os.path.join(ROOT, "envs", "**", "*"), recursive=True)):
        rel = _rel(path)
        if os.path.isdir(path) or "__pycache__" in rel or rel.endswith((".pyc", ".md")):
            continue
        parts = rel.split(os.sep)
        if parts[:2] == ["envs", "tasks"] and parts[-1] not in ("__init__.py", "base.py"):
            continue    # a task module: added per task as envs/tasks/{task}.py
        if parts[:2] == ["envs", "rewards"] and len(parts) == 4:
            continue    # a task's rewards: added per task and per reward version (TASK_CODE, REWARD_CODE)
        if parts[:2] == ["envs", "backends"] and parts[-1] not in ("__init__.py", "mujoco.py"):
            continue    # a backend other than MuJoCo (which every task imports): BACKEND_CODE
        files.append(rel)
    return files


TASK_CODE = ("envs/tasks/{task}.py", "envs/rewards/{task}/__init__.py", "envs/backends/{backend}.py")
REWARD_CODE = ("envs/rewards/{task}/{reward}.py",)
COMMON = ("pipeline/__init__.py", "pipeline/config.py", "pipeline/common.py")
# The modules that implement each algorithm: a PPO run does not depend on DrQ-v2's code, nor a
# DrQ-v2 run on the SB3 wrappers. algos/__init__.py (load_policy, env_settings) is shared by all.
ALGO_CODE = {"ppo": ("algos/sb3.py",), "sac": ("algos/sb3.py",), "her": ("algos/sb3.py",),
             "drqv2": ("algos/drqv2.py", "algos/replay.py")}
assert set(ALGO_CODE) == set(cfg.ALGOS), "every algorithm in pipeline/config.py needs its code files here"
ALGO = "{algo_code}"    # in Stage.code: stands for ALGO_CODE[algo]

RUN = "data/runs/{task}_{reward}/{algo}/seed{seed}"
EVAL = "data/eval/{task}_{reward}/{algo}"
VIDEO = "data/videos/{task}_{reward}/{algo}"

STAGES: dict[str, Stage] = {s.name: s for s in [
    Stage(
        name="sanity", module="sanity", each=(),
        args="--task {task} --backend {backend} --out {output.result}",
        params=("sanity",),
        code=COMMON + ("pipeline/sanity.py",) + TASK_CODE,
        outputs={"result": Output("data/sanity/{task}_{backend}.json")},
        resources={"mem_mb": 2000, "runtime": 10},
    ),
    Stage(
        name="train", module="train", each=("algo", "seed"),
        args="--task {task} --reward {reward} --backend {backend} --algo {algo} --seed {seed} "
             "--sanity {input.sanity} --out {output.run} --threads {threads}",
        params=("env", "{algo}", "checkpoint_every", "train"),
        code=COMMON + ("pipeline/train.py", "algos/__init__.py", ALGO) + TASK_CODE + REWARD_CODE,
        inputs={"sanity": Input("data/sanity/{task}_{backend}.json")},
        outputs={"run": Output(RUN, directory=True)},
        resources={"mem_mb": 6000, "runtime": 180},
    ),
    Stage(
        name="evaluate", module="evaluate", each=("algo",),
        args="--task {task} --reward {reward} --backend {backend} --algo {algo} --runs {input.runs} --out {output.episodes} "
             "--metrics {output.metrics} --curve {output.curve} --provenance {output.provenance} --threads {threads}",
        params=("env", "evaluation"),
        code=COMMON + ("pipeline/evaluate.py", "algos/__init__.py", ALGO) + TASK_CODE + REWARD_CODE,
        inputs={"runs": Input(RUN, over="seed")},
        outputs={"episodes": Output(EVAL + ".parquet"),
                 "metrics": Output(EVAL + ".json", kind="metric"),
                 "curve": Output(EVAL + "_curve.tsv", kind="plot"),
                 "provenance": Output(EVAL + "_provenance.json")},
        resources={"mem_mb": 3000, "runtime": 60},
    ),
    Stage(
        name="render", module="render", each=("algo",),
        args="--task {task} --reward {reward} --backend {backend} --algo {algo} --runs {input.runs} "
             "--video {output.video} --sheet {output.sheet} --still {output.still} --info {output.info} "
             "--threads {threads}",
        params=("env", "render"),
        code=COMMON + ("pipeline/render.py", "algos/__init__.py", ALGO) + TASK_CODE + REWARD_CODE,
        inputs={"runs": Input(RUN, over="seed")},
        outputs={"video": Output(VIDEO + ".mp4"), "sheet": Output(VIDEO + "_sheet.png"),
                 "still": Output(VIDEO + ".png"), "info": Output(VIDEO + "_render.json")},
        resources={"mem_mb": 3000, "runtime": 30},
    ),
    Stage(
        name="report", module="report", each=(),
        args="--task {task} --reward {reward} --sanity {input.sanity} --episodes {input.episodes} "
             "--metrics {input.metrics} --provenance {input.provenance} --videos {input.videos} --stills {input.stills} "
             "--sheets {input.sheets} --renders {input.renders} "
             "--out {output.report} --figures {output.figures}",
        params=("report",),
        code=COMMON + ("pipeline/report.py",),
        inputs={"sanity": Input("data/sanity/{task}_{backend}.json"),
                "episodes": Input(EVAL + ".parquet", over="algo"), "metrics": Input(EVAL + ".json", over="algo"),
                "provenance": Input(EVAL + "_provenance.json", over="algo"),
                "videos": Input(VIDEO + ".mp4", over="algo"), "stills": Input(VIDEO + ".png", over="algo"),
                "sheets": Input(VIDEO + "_sheet.png", over="algo"), "renders": Input(VIDEO + "_render.json", over="algo")},
        outputs={"report": Output("reports/{task}_{reward}.md", cache=False),
                 "figures": Output("reports/{task}_{reward}", directory=True, cache=False)},
        resources={"mem_mb": 2000, "runtime": 10},
    ),
]}


# --- parameters as command-line flags -----------------------------------------------------------

def expand_key(key: str, algo: str | None, params: dict) -> list[str]:
    """A registry params entry as dotted params.yaml keys: a block expands to its fields (the
    optional ones, drqv2's overrides, where params sets them)."""
    key = key.format(algo=algo)
    return [f"{key}.{name}" for name in cfg.block_keys(key, params)] if key in cfg.BLOCKS else [key]


def param_keys(stage: Stage, params: dict, algo: str | None = None) -> list[str]:
    """The dotted params.yaml keys a stage (instance) passes on its command line."""
    return [k for entry in stage.params for k in expand_key(entry, algo, params)]


def _lookup(params: dict, key: str):
    value = params
    for part in key.split("."):
        value = value[part]
    return value


def _quote(key: str, text: str) -> str:
    """Values of patterned fields (drqv2.stddev_schedule: linear(...)) hold shell characters."""
    return f"'{text}'" if cfg.field(key).quoted else text


def format_flags(keys: list[str], params: dict) -> str:
    return " ".join(f"--{k} {_quote(k, cfg.format_value(_lookup(params, k)))}" for k in keys)


def flags(stage: Stage, params: dict, algo: str | None = None) -> str:
    """`--key value ...` for every params key of the stage, with values from params."""
    return format_flags(param_keys(stage, params, algo), params)


def dvc_flags(stage: Stage, params: dict, algo: str | None = None) -> str:
    """The same flags with DVC `${key}` placeholders, which DVC fills from params.yaml."""
    return " ".join(f"--{k} {_quote(k, '${' + k + '}')}" for k in param_keys(stage, params, algo))


# --- DVC -------------------------------------------------------------------------------------------

def _dvc_path(template: str, algo=None, seed=None) -> str:
    return template.format(task="${task}", reward="${reward}", backend="${backend}", algo=algo, seed=seed)


def _expand(inp: Input, params: dict, algo=None, seed=None) -> list[str]:
    if inp.over == "seed":
        return [_dvc_path(inp.path, algo, s) for s in params["seeds"]]
    if inp.over == "algo":
        return [_dvc_path(inp.path, a, seed) for a in params["algos"]]
    return [_dvc_path(inp.path, algo, seed)]


def dvc_stage(stage: Stage, params: dict, algo=None, seed=None) -> dict:
    ins = {k: _expand(i, params, algo, seed) for k, i in stage.inputs.items()}
    outs = {k: _dvc_path(o.path, algo, seed) for k, o in stage.outputs.items()}
    args = stage.args.format(
        task="${task}", reward="${reward}", backend="${backend}", algo=algo, seed=seed, threads=stage.threads,
        input=_Attr({k: " ".join(v) for k, v in ins.items()}), output=_Attr(outs))
    cmd = f"python -m pipeline.{stage.module} {args} {dvc_flags(stage, params, algo)}".strip()
    code = code_files(stage, lambda c: _dvc_path(c, algo, seed))
    deps = code + [p for paths in ins.values() for p in paths]
    # Identity params are recorded where they name a file the stage reads or writes or appear in cmd.
    used = " ".join([cmd] + deps + list(outs.values()))
    identity = [k for k in IDENTITY if "${" + k + "}" in used]
    out: dict = {"cmd": cmd, "deps": deps, "params": identity + param_keys(stage, params, algo)}
    for key, o in stage.outputs.items():
        entry = outs[key] if o.cache else {outs[key]: {"cache": False}}
        if o.kind == "plot":     # `dvc plots show`: success rate over env steps
            entry = {outs[key]: {"x": "step", "y": "success_rate"}}
        out.setdefault({"out": "outs", "metric": "metrics", "plot": "plots"}[o.kind], []).append(entry)
    return out


def dvc_pipeline(params: dict) -> dict:
    """All DVC stages for the algos and seeds listed in params (the DAG's shape)."""
    stages = {}
    for stage in STAGES.values():
        algos = params["algos"] if "algo" in stage.each else [None]
        seeds = params["seeds"] if "seed" in stage.each else [None]
        for algo in algos:
            for seed in seeds:
                stages[stage.dvc_name(algo, seed)] = dvc_stage(stage, params, algo, seed)
    return {"stages": stages}


class _Attr(dict):
    """Lets str.format reach {input.runs} / {output.video} in a plain dict."""
    __getattr__ = dict.__getitem__


# --- Snakemake ----------------------------------------------------------------------------------
# The Snakefile calls these; identity and fan-out come in as wildcards, values as params.

def smk_wildcard_constraints() -> dict:
    # Tasks are an explicit alternation so that "pick_place_staged" splits into pick_place + staged.
    tasks = cfg._rewards_module().tasks()
    return {"task": "|".join(sorted(tasks, key=len, reverse=True)), "reward": "[A-Za-z0-9_-]+",
            "backend": "|".join(cfg.BACKENDS), "algo": "|".join(cfg.ALGOS), "seed": "[0-9]+"}


def smk_outputs(name: str, directory) -> dict:
    """Named outputs; `directory` is snakemake's marker, passed in so this module needs no snakemake."""
    return {k: directory(o.path) if o.directory else o.path for k, o in STAGES[name].outputs.items()}


def smk_inputs(name: str, config: dict):
    """An input function: named data inputs plus the code files the stage runs."""
    stage = STAGES[name]

    def inputs(wc) -> dict:
        w = dict(wc.items())
        w.setdefault("backend", config["backend"])
        out = {}
        for key, inp in stage.inputs.items():
            if inp.over == "seed":
                out[key] = [inp.path.format(**{**w, "seed": s}) for s in config["seeds"]]
            elif inp.over == "algo":
                out[key] = [inp.path.format(**{**w, "algo": a}) for a in config["algos"]]
            else:
                out[key] = inp.path.format(**w)
        out["code"] = code_files(stage, lambda c: c.format(**w))
        return out
    return inputs


def smk_param_name(key: str) -> str:
    return "hparams" if key == "{algo}" else key


def smk_params(name: str, config: dict) -> dict:
    """One Snakemake param per params key, its value the `--key value` flags: a change reruns the rule."""
    stage = STAGES[name]
    out = {}
    for key in stage.params:
        out[smk_param_name(key)] = (lambda wc, key=key: format_flags(expand_key(key, wc.get("algo"), config), config))
    # backend is in the command of train/evaluate/render and names the sanity file that train and
    # report read, but is not in their outputs, so it is not a wildcard there: it comes from config
    # and is recorded as a param.
    if not _backend_is_wildcard(stage) and "{backend}" in " ".join([stage.args, *(i.path for i in stage.inputs.values())]):
        out["backend"] = config["backend"]
    return out


def _backend_is_wildcard(stage: Stage) -> bool:
    return any("{backend}" in o.path for o in stage.outputs.values())


def smk_shell(name: str) -> str:
    """The shell command: the same text as DVC's cmd once both tools fill in their values."""
    stage = STAGES[name]
    args = stage.args
    for w in IDENTITY + DIMS:
        args = args.replace("{" + w + "}", "{wildcards." + w + "}")
    if not _backend_is_wildcard(stage):
        args = args.replace("{wildcards.backend}", "{params.backend}")
    flag_refs = " ".join("{params." + smk_param_name(k) + "}" for k in stage.params)
    return f"python -m pipeline.{stage.module} {args} {flag_refs} > {{log}} 2>&1"


def smk_log(name: str) -> str:
    """logs/<stage>/<the wildcards of its outputs>.log (Snakemake requires the same wildcards)."""
    stage = STAGES[name]
    parts = ["{task}_{backend}" if _backend_is_wildcard(stage) else "{task}_{reward}"]
    parts += ["{" + d + "}" for d in stage.each]
    return f"logs/{name}/" + "_".join(parts) + ".log"


def smk_benchmark(name: str) -> str:
    return smk_log(name).replace("logs/", "benchmarks/out/").replace(".log", ".tsv")


def default_target(config: dict) -> str:
    return STAGES["report"].outputs["report"].path.format(task=config["task"], reward=config["reward"])
