"""The stage registry: the one place that says what each stage runs, reads, writes and depends on.

Both DAG tools are rendered from STAGES:
- `python -m pipeline.dag.dvcgen` writes dvc.yaml (committed; tests/test_dag.py fails when it is stale);
- the Snakefile builds each rule's input/output/params/shell from the functions at the bottom.

Templates use {task}, {reward}, {backend} (the experiment's identity: `${...}` params in DVC,
wildcards in Snakemake), {algo} and {seed} (one DVC stage per algorithm/seed, wildcards in Snakemake);
the demonstrations' path also names their controller, start stage, count and seed (DEMOS_KEYS:
`${...}` params in DVC, the config's values in Snakemake).
Every value a stage uses goes on its command line, as `--block.key value` for each field of a
params block, so both tools see every change and a stage can be rerun by hand from its log.
"""
from __future__ import annotations

from dataclasses import dataclass, field as dc_field

from typing import Callable

import algos
from pipeline.dag import codedeps
from pipeline.dag import params as cfg
from pipeline.run import demos, settings

ROOT = str(codedeps.ROOT)
IDENTITY = ("task", "reward", "backend")    # scalar params that name outputs
DIMS = ("algo", "seed")                     # fan-out dimensions, listed by params `algos`, `seeds`


@dataclass(frozen=True)
class Input:
    path: str
    # "algo" or "seed": one path per listed value; "variant": one per (reward, algo, backend) of the
    # compare block; "base": a residual learner's trained base, the run of the same seed(s) (none
    # for other algorithms); "best": the path where render.checkpoint is best (else none); "demos":
    # the demonstrations, for a run that reads them (settings.reads_demos: it learns from them as its
    # block says, or env.reverse_curriculum; else none); "demos_any": the demonstrations where any
    # listed algorithm's runs read them. Passed space-separated.
    over: str | None = None


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
    code: tuple[str, ...]               # the stage's entry module
    plugs: tuple[str, ...]              # registry-named code it runs: PLUGS, "controller" (the task's
                                        # scripted controller), "demos_controller" (the demos block's),
                                        # "algorithms" (every registered one); "algo" follows from `each`
    inputs: dict[str, Input] = dc_field(default_factory=dict)
    outputs: dict[str, Output] = dc_field(default_factory=dict)
    threads: int = 1
    resources: dict = dc_field(default_factory=dict)
    # The DAG tools that run it. compare puts side by side variants that DVC keeps in separate
    # experiments (`dvc exp show` compares those), so it is Snakemake's alone.
    tools: tuple[str, ...] = ("snakemake", "dvc")
    # Whether dvc.yaml holds it for these params: `dvc repro` runs every stage it lists, while
    # Snakemake runs a rule only for a target that needs it (demos: for a run that reads them).
    wanted: Callable[[dict], bool] = lambda params: True

    def dvc_name(self, algo: str | None = None, seed: int | None = None) -> str:
        # DVC stage names take no "+": train-ppo-on-scripted-seed0 for ppo+scripted
        parts = ([self.name] + ([algo.replace("+", "-on-")] if "algo" in self.each else [])
                 + ([f"seed{seed}"] if "seed" in self.each else []))
        return "-".join(parts)


# --- code dependencies -------------------------------------------------------------------------
# Code deps follow imports (pipeline/dag/codedeps.py): a stage depends on its entry module, the code
# it names by registry (PLUGS) and everything those import. The plugs are written as templates, so
# that dvc.yaml keeps `${task}`/`${reward}`/`${backend}` and `dvc exp run -S reward=v11` needs no
# regeneration; a plug may therefore import only shared code, never another task, reward version
# or backend (code_files raises, naming the import).

PLUGS = {
    "task": "envs/tasks/{task}.py",
    "reward": "envs/rewards/{task}/{reward}.py",
    "task_rewards": "envs/rewards/{task}/__init__.py",     # a task's shared reward terms
    "backend": "envs/backends/{backend}.py",
}


def code_files(stage: "Stage", ident: dict, template: dict | None = None) -> list[str]:
    """A stage instance's code deps for identity values `ident` (task, reward, backend, algo).
    With `template` (the identity as DVC placeholders), plug files are written as templates."""
    entries = list(stage.code) + [PLUGS[k].format(**ident) for k in stage.plugs if k in PLUGS]
    if "controller" in stage.plugs:
        entries += controller_file(ident["task"])
    if "algorithms" in stage.plugs:     # every registered algorithm (the params check reads each block)
        entries += [_relative(codedeps.module_file(module)) for module in algos.ALGOS.values()]
    if "demos_controller" in stage.plugs:     # the controller the demos block names
        from envs import controllers
        entries.append(_relative(codedeps.module_file(controllers.module(ident["controller"]))))
    if "algo" in stage.each:     # the learner's module, and a trained base's (loaded to act)
        for name in filter(None, (algos.learner(ident["algo"]), algos.trained_base(ident["algo"]))):
            entries.append(_relative(codedeps.module_file(algos.ALGOS[name])))
        if "scripted" in (algos.learner(ident["algo"]), algos.base_policy(ident["algo"])):
            entries += controller_file(ident["task"])     # the scripted controller acts in its env
    files = codedeps.closure(entries)
    if template is None:
        return files
    concrete = {PLUGS[k].format(**ident): PLUGS[k].format(**{**ident, **template})
                for k in (*stage.plugs, "task_rewards") if k in PLUGS}
    out = []
    for f in files:
        if f in concrete:
            f = concrete[f]
        elif f.startswith(("envs/tasks/", "envs/rewards/", "envs/backends/")) and _is_plug_file(f):
            raise ValueError(f"{stage.name}: {f} is imported by the code of {ident}, but it belongs to "
                             "another task, reward version or backend; move what is shared into "
                             "envs/tasks/base.py, envs/rewards/<task>/__init__.py or envs/backends/__init__.py")
        out.append(f)
    return sorted(set(out))


def controller_file(task: str) -> list[str]:
    """The module of the task's scripted controller (envs/controllers/), which runs in the sanity
    stage and as the `scripted` residual base; none for a task without one. Written concrete in
    dvc.yaml, as the task's controller, so a change of task needs `make dvc.yaml` (as its header says)."""
    from envs import controllers
    name = controllers.TASK_CONTROLLERS.get(task)
    return [] if name is None else [_relative(codedeps.module_file(controllers.module(name)))]


def _relative(path) -> str:
    return str(path.relative_to(codedeps.ROOT))


def _is_plug_file(path: str) -> bool:
    parts = path.split("/")
    if parts[1] == "tasks":
        return parts[2] not in ("__init__.py", "base.py")
    if parts[1] == "rewards":
        return len(parts) == 4 and parts[3] != "__init__.py"
    return parts[2] not in ("__init__.py", "mujoco.py")     # every backend builds on MuJoCo's model


IDENTITY_TEMPLATE = {"task": "${task}", "reward": "${reward}", "backend": "${backend}"}

RUN = "data/runs/{task}_{reward}_{backend}/{algo}/seed{seed}"
DEMOS = demos.PATH      # data/demos/{task}_{backend}/{controller}/stage{stage}_n{episodes}_seed{demos_seed}
# Where its values come from: the demos block and the start stage (DVC: `${...}` params).
DEMOS_KEYS = {"controller": "demos.controller", "stage": "env.curriculum_stage", "episodes": "demos.episodes",
              "demos_seed": "demos.seed"}
DEMOS_ENV_PARAMS = tuple(f"env.{k}" for k in settings.DEMOS_ENV)
EVAL = "data/eval/{task}_{reward}_{backend}/{algo}"
VIDEO = "data/videos/{task}_{reward}_{backend}/{algo}"

# DVC runs stages in order and stops at the first that fails, so invalid params (an unknown reward
# version) are refused by a first stage, `params`, that every other follows. Its output never
# changes, so it reruns nothing. Snakemake checks the same while it builds its DAG (Snakefile:
# cfg.validate and the `code` input functions), before any job.
PARAMS_CHECK = "data/params_ok.json"
HEADLINE, HEADLINE_PLOTS = "metrics.json", "plots"     # DVC's stable paths (dvc_headline)

STAGES: dict[str, Stage] = {s.name: s for s in [
    Stage(
        name="params", module="dag.params", each=(),
        args="{input.params} --out {output.ok}",
        params=(),
        # The tasks and reward versions on disk are what an unknown task or version is checked
        # against: whole folders, never envs/tasks/${task}.py, whose absence DVC would report as
        # "[Errno 2] No such file" before this check could name the valid tasks. base.py brings
        # the shared code a task module imports; every algorithm's block is read.
        code=("pipeline/dag/params.py", "envs/tasks/base.py"), plugs=("algorithms",),
        inputs={"params": Input("params.yaml"), "rewards": Input("envs/rewards"), "tasks": Input("envs/tasks")},
        outputs={"ok": Output(PARAMS_CHECK)},
        resources={"mem_mb": 1000, "runtime": 5},
        tools=("dvc",),
    ),
    Stage(
        name="sanity", module="sanity", each=(),
        args="--task {task} --backend {backend} --out {output.result}",
        params=("sanity",),
        code=("pipeline/sanity.py",), plugs=("task", "backend", "controller"),
        outputs={"result": Output("data/sanity/{task}_{backend}.json")},
        resources={"mem_mb": 2000, "runtime": 10},
    ),
    Stage(
        name="demos", module="demos", each=(),
        args="--task {task} --backend {backend} --out {output.dataset} --summary {output.summary}",
        params=(*DEMOS_ENV_PARAMS, "demos"),
        code=("pipeline/demos.py",), plugs=("task", "backend", "demos_controller"),
        outputs={"dataset": Output(DEMOS, directory=True), "summary": Output(demos.summary_path(DEMOS), kind="metric")},
        resources={"mem_mb": 2000, "runtime": 30},
        wanted=lambda params: bool(settings.demo_algos(params)),
    ),
    Stage(
        name="train", module="train", each=("algo", "seed"),
        args="--task {task} --reward {reward} --backend {backend} --algo {algo} --seed {seed} "
             "--sanity {input.sanity} --out {output.run} --threads {threads}",
        params=("env", "{algo}", "checkpoint_every", "train"),
        code=("pipeline/train.py",), plugs=("task", "reward", "backend"),
        inputs={"sanity": Input("data/sanity/{task}_{backend}.json"), "base": Input(RUN, over="base"),
                "demos": Input(DEMOS, over="demos")},
        outputs={"run": Output(RUN, directory=True)},
        resources={"mem_mb": 6000, "runtime": 180},
    ),
    Stage(
        name="evaluate", module="evaluate", each=("algo",),
        args="--task {task} --reward {reward} --backend {backend} --algo {algo} --runs {input.runs} --out {output.episodes} "
             "--metrics {output.metrics} --curve {output.curve} --provenance {output.provenance} --threads {threads}",
        params=("env", "evaluation"),
        code=("pipeline/evaluate.py",), plugs=("task", "reward", "backend"),
        inputs={"runs": Input(RUN, over="seed"), "base": Input(RUN, over="base")},
        outputs={"episodes": Output(EVAL + ".parquet"),
                 "metrics": Output(EVAL + ".json"),
                 "curve": Output(EVAL + "_curve.tsv"),
                 "provenance": Output(EVAL + "_provenance.json")},
        resources={"mem_mb": 3000, "runtime": 60},
    ),
    Stage(
        name="render", module="render", each=("algo",),
        args="--task {task} --reward {reward} --backend {backend} --algo {algo} --runs {input.runs} "
             "--video {output.video} --sheet {output.sheet} --still {output.still} --info {output.info} "
             "--best {input.best} --threads {threads}",
        params=("env", "render"),
        code=("pipeline/render.py",), plugs=("task", "reward", "backend"),
        inputs={"runs": Input(RUN, over="seed"), "base": Input(RUN, over="base"),
                "best": Input(EVAL + ".json", over="best")},
        outputs={"video": Output(VIDEO + ".mp4"), "sheet": Output(VIDEO + "_sheet.png"),
                 "still": Output(VIDEO + ".png"), "info": Output(VIDEO + "_render.json")},
        resources={"mem_mb": 3000, "runtime": 30},
    ),
    Stage(
        name="report", module="report", each=(),
        args="--task {task} --reward {reward} --sanity {input.sanity} --episodes {input.episodes} "
             "--metrics {input.metrics} --provenance {input.provenance} --videos {input.videos} --stills {input.stills} "
             "--sheets {input.sheets} --renders {input.renders} --demos {input.demos} "
             "--out {output.report} --figures {output.figures}",
        params=("report",),
        code=("pipeline/report.py",), plugs=("task",),
        inputs={"sanity": Input("data/sanity/{task}_{backend}.json"),
                "episodes": Input(EVAL + ".parquet", over="algo"), "metrics": Input(EVAL + ".json", over="algo"),
                "provenance": Input(EVAL + "_provenance.json", over="algo"),
                "videos": Input(VIDEO + ".mp4", over="algo"), "stills": Input(VIDEO + ".png", over="algo"),
                "sheets": Input(VIDEO + "_sheet.png", over="algo"), "renders": Input(VIDEO + "_render.json", over="algo"),
                "demos": Input(demos.summary_path(DEMOS), over="demos_any")},
        outputs={"report": Output("reports/{task}_{reward}.md", cache=False),
                 "figures": Output("reports/{task}_{reward}", directory=True, cache=False)},
        resources={"mem_mb": 2000, "runtime": 10},
    ),
    Stage(
        name="compare", module="compare", each=(),
        args="--task {task} --metrics {input.metrics} --provenance {input.provenance} --episodes {input.episodes} "
             "--out {output.report} --figures {output.figures}",
        params=("compare", "report"),
        code=("pipeline/compare.py",), plugs=("task",),
        inputs={"metrics": Input(EVAL + ".json", over="variant"),
                "provenance": Input(EVAL + "_provenance.json", over="variant"),
                "episodes": Input(EVAL + ".parquet", over="variant")},
        outputs={"report": Output("reports/{task}_compare.md", cache=False),
                 "figures": Output("reports/{task}_compare", directory=True, cache=False)},
        resources={"mem_mb": 2000, "runtime": 10},
        tools=("snakemake",),
    ),
]}


# --- parameters as command-line flags -----------------------------------------------------------

def expand_key(key: str, algo: str | None, params: dict) -> list[str]:
    """A registry params entry as dotted params.yaml keys: a block expands to its fields (the
    optional ones, drqv2's overrides, where params sets them)."""
    key = key.format(algo=algo)
    if key == algo and algo is not None:    # "{algo}": its run's blocks (`residual`, `demos` where it reads them)
        blocks = settings.algo_blocks(algo, settings.algo_block(params, algo), params["env"])
        return [f"{b}.{name}" for b in blocks for name in settings.block_keys(b, params)]
    return [f"{key}.{name}" for name in settings.block_keys(key, params)] if key in settings.BLOCKS else [key]


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
    return f"'{text}'" if settings.field(key).quoted else text


def format_flags(keys: list[str], params: dict) -> str:
    return " ".join(f"--{k} {_quote(k, settings.format_value(_lookup(params, k)))}" for k in keys)


def flags(stage: Stage, params: dict, algo: str | None = None) -> str:
    """`--key value ...` for every params key of the stage, with values from params."""
    return format_flags(param_keys(stage, params, algo), params)


def dvc_flags(stage: Stage, params: dict, algo: str | None = None) -> str:
    """The same flags with DVC `${key}` placeholders, which DVC fills from params.yaml."""
    return " ".join(f"--{k} {_quote(k, '${' + k + '}')}" for k in param_keys(stage, params, algo))


# --- DVC -------------------------------------------------------------------------------------------

def _dvc_path(template: str, algo=None, seed=None) -> str:
    return template.format(task="${task}", reward="${reward}", backend="${backend}", algo=algo, seed=seed,
                           **{k: "${" + key + "}" for k, key in DEMOS_KEYS.items()})


def base_runs(algo: str, seed, seeds: list) -> list[tuple[str, object]]:
    """(algo, seed) of the trained base runs a stage of residual learner `algo` reads: the base's run
    of `seed`, or of every seed (evaluate, render); none for other algorithms."""
    base = algos.trained_base(algo)
    return [] if base is None else [(base, s) for s in ([seed] if seed is not None else seeds)]


def _expand(inp: Input, params: dict, algo=None, seed=None) -> list[str]:
    if inp.over == "base":
        return [_dvc_path(inp.path, a, s) for a, s in base_runs(algo, seed, params["seeds"])]
    if inp.over == "best":
        return [_dvc_path(inp.path, algo, seed)] if params["render"]["checkpoint"] == "best" else []
    if inp.over == "demos":
        return [_dvc_path(inp.path, algo, seed)] if reads_demos(params, algo) else []
    if inp.over == "demos_any":
        return [_dvc_path(inp.path)] if settings.demo_algos(params) else []
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
    ident = {"task": params["task"], "reward": params["reward"], "backend": params["backend"], "algo": algo,
             "controller": params["demos"]["controller"]}
    code = code_files(stage, ident, IDENTITY_TEMPLATE)
    deps = code + [p for paths in ins.values() for p in paths] + ([] if ins else [PARAMS_CHECK])
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
    for stage in (s for s in STAGES.values() if "dvc" in s.tools and s.wanted(params)):
        algos = params["algos"] if "algo" in stage.each else [None]
        seeds = params["seeds"] if "seed" in stage.each else [None]
        for algo in algos:
            for seed in seeds:
                stages[stage.dvc_name(algo, seed)] = dvc_stage(stage, params, algo, seed)
    stages["headline"] = dvc_headline(params)
    return {"stages": stages}


def dvc_headline(params: dict) -> dict:
    """DVC's last stage: the headline numbers at stable paths (pipeline/dag/headline.py)."""
    metrics = [_dvc_path(EVAL + ".json", a) for a in params["algos"]]
    curves = [_dvc_path(EVAL + "_curve.tsv", a) for a in params["algos"]]
    return {"cmd": "python -m pipeline.dag.headline --task ${task} --reward ${reward} --backend ${backend} "
                   f"--metrics {' '.join(metrics)} --curves {' '.join(curves)} --out {HEADLINE} --plots {HEADLINE_PLOTS}",
            "deps": codedeps.closure(["pipeline/dag/headline.py"]) + metrics + curves,
            "params": ["task", "reward", "backend"],
            "metrics": [{HEADLINE: {"cache": False}}],
            "plots": [{f"{HEADLINE_PLOTS}/{a}.tsv": {"x": "step", "y": "success_rate", "cache": False}}
                      for a in params["algos"]]}


class _Attr(dict):
    """Lets str.format reach {input.runs} / {output.video} in a plain dict."""
    __getattr__ = dict.__getitem__


# --- Snakemake ----------------------------------------------------------------------------------
# The Snakefile calls these; identity and fan-out come in as wildcards, values as params.

def smk_wildcard_constraints() -> dict:
    # Tasks are an explicit alternation so that "pick_place_staged" splits into pick_place + staged.
    from envs import rewards
    tasks = rewards.tasks()
    # reports/{task}_compare.md is the comparison, not the report of a reward version "compare".
    return {"task": "|".join(sorted(tasks, key=len, reverse=True)), "reward": r"(?!compare\b)[A-Za-z0-9_-]+",
            "backend": "|".join(settings.BACKENDS), "seed": "[0-9]+",
            "algo": f"(?:{'|'.join(settings.ALGOS)})(?:\\+(?:{'|'.join(algos.BASES + algos.TRAINED_BASES)}))?"}


# Where the DAG writes files named after a task: a target there whose name starts with no known
# task matches no rule (their {task} is an alternation of the known tasks), so the Snakefile's last
# rule, unknown_task, takes it and stops the DAG naming the valid tasks.
TASK_FOLDERS = ("reports", "data/sanity", "data/runs", "data/eval", "data/videos")


def smk_unknown_task_constraints() -> dict:
    """The wildcard constraints of rule unknown_task: a folder of TASK_FOLDERS, then a name that
    does not start with a known task and an underscore."""
    known = smk_wildcard_constraints()["task"]
    return {"folder": "|".join(TASK_FOLDERS), "name": f"(?!(?:{known})_)[^/]+(?:/.+)?"}


def smk_unknown_task(wc) -> list[str]:
    """An input function that always raises: the unknown task of a target, with the valid tasks,
    as for an unknown task in params.yaml. The task is read as the name up to its reward version
    and backend ({task}_{reward}_{backend}, {task}_{backend}, {task}_{reward}, {task}_compare)."""
    from envs import rewards
    stem = wc.name.split("/")[0].removesuffix(".md").removesuffix(".json")
    for suffix in ("_compare", *(f"_{b}" for b in settings.BACKENDS)):
        if stem.endswith(suffix):
            stem = stem.removesuffix(suffix)
            break
    if wc.folder != "data/sanity" and not wc.name.startswith(f"{stem}_compare"):
        stem = stem.rpartition("_")[0] or stem          # the reward version
    problems = settings.task_reward_problems(stem, None) if stem not in rewards.tasks() else []
    raise ValueError(problems[0] if problems else
                     f"task: no task in {wc.folder}/{wc.name} (expected <task>_...); valid: {', '.join(rewards.tasks())}")


def smk_code(name: str, config: dict):
    """An input function: the code files a stage runs for a job's wildcards. A target naming an
    unknown task or reward version stops the DAG here, before any job runs, naming the valid ones."""
    stage = STAGES[name]

    def code(wc) -> list[str]:
        w = {"backend": config["backend"], "controller": config["demos"]["controller"], **dict(wc.items())}
        problems = settings.task_reward_problems(w["task"], w.get("reward", config["reward"]), config["algos"])
        if problems:
            raise ValueError("; ".join(problems))
        return code_files(stage, w)
    return code


def smk_flags(keys, config: dict):
    """A params function: the `--key value` flags of one registry params entry (or of several);
    being a param, a change of any of its values reruns the rule."""
    keys = (keys,) if isinstance(keys, str) else keys
    return lambda wc: format_flags([k for key in keys for k in expand_key(key, wc.get("algo"), config)], config)


def smk_gpu(config: dict):
    """A resource function: the GPUs a train job asks a cluster for, as its algorithm declares them
    from its params block (algos: gpus)."""
    return lambda wc: algos.gpus(wc.algo, config.get(algos.learner(wc.algo), {}))


def smk_base_runs(path: str, config: dict):
    """An input function: a residual learner's trained base runs (the same seed, or every seed)."""
    return lambda wc: [path.format(**{**dict(wc.items()), "algo": a, "seed": s})
                       for a, s in base_runs(wc.algo, wc.get("seed"), config["seeds"])]


def smk_best(path: str, config: dict):
    """An input function: the evaluation metrics naming the best checkpoint, where
    render.checkpoint is best (none otherwise)."""
    return lambda wc: ([path.format(**{"backend": config["backend"], **dict(wc.items())})]
                       if config["render"]["checkpoint"] == "best" else [])


def smk_demos_path(config: dict) -> str:
    """The demos rule's output: the dataset the demos block and start stage describe, for any
    task and backend (wildcards)."""
    return DEMOS.format(task="{task}", backend="{backend}",
                        **{k: _lookup(config, key) for k, key in DEMOS_KEYS.items()})


def smk_demos_summary(config: dict):
    """An input function: the demos stage's summary, where a listed algorithm's runs read demonstrations."""
    path = demos.summary_path(smk_demos_path(config))
    return lambda wc: ([path.format(**{"backend": config["backend"], **dict(wc.items())})]
                       if settings.demo_algos(config) else [])


def reads_demos(params: dict, algo: str) -> bool:
    """Whether the runs of `algo` in this experiment read the demonstrations (settings.reads_demos)."""
    return settings.reads_demos(algo, settings.algo_block(params, algo), params["env"])


def smk_demos(config: dict):
    """An input function: the demonstrations of a run that reads them (settings.reads_demos; else none)."""
    return lambda wc: ([smk_demos_path(config).format(**{"backend": config["backend"], **dict(wc.items())})]
                       if reads_demos(config, wc.algo) else [])


def smk_variants(path: str, config: dict):
    """An input function: path for every (reward, algo, backend) of the compare block."""
    keys = cfg.compare_variants(config["compare"])
    return lambda wc: [path.format(task=wc.task, reward=r, algo=a, backend=b) for r, a, b in keys]


def smk_over(path: str, dim: str, config: dict):
    """An input function: path for every algo or seed the experiment lists, or for its backend
    (where the backend is not a wildcard)."""
    values = {"algo": config["algos"], "seed": config["seeds"], "backend": [config["backend"]]}[dim]
    return lambda wc: [path.format(**{"backend": config["backend"], **dict(wc.items()), dim: v}) for v in values]


def default_target(config: dict) -> str:
    return STAGES["report"].outputs["report"].path.format(task=config["task"], reward=config["reward"])
