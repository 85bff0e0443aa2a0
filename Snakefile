# The experiment DAG for Snakemake:  snakemake --cores 2            (default target: the report)
#                                   snakemake --cores 2 reports/lift_v11.md
#                                   snakemake --cores 2 --configfile config/smoke.yaml
#
#   sanity   data/sanity/{task}_{backend}.json
#   demos    data/demos/{task}_{backend}/{controller}/stage{stage}_n{episodes}_seed{seed}/ (Minari; + .json
#            summary), for a run that reads them: one that learns from demonstrations (bc; rlpd,
#            drqv2 with demo_ratio > 0), or any algorithm with env.reverse_curriculum (its episodes
#            start from their states)
#   train    data/runs/{task}_{reward}_{backend}/{algo}/seed{seed}/
#   evaluate data/eval/{task}_{reward}_{backend}/{algo}.parquet (+ .json metrics, curve, provenance)
#   render   data/videos/{task}_{reward}_{backend}/{algo}.mp4 (+ contact sheet, still, outcome)
#   report   reports/{task}_{reward}.md
#   compare  reports/{task}_compare.md: the compare block's variants across seeds (snakemake only)
#
# `snakemake --report report.html` gathers the outputs marked report(...): reports, figures,
# learning curves and videos, in one self-contained page.
#
# The same stages as dvc.yaml, which is generated from pipeline/dag/registry.py (tests/test_dag.py proves
# the two DAGs equal: commands, inputs, outputs, params, edges). Rules follow two rules of ours:
# - every config value a stage uses is in its `params:` (as the `--key value` flags the command
#   receives), so changing it reruns exactly the rules that use it;
# - `code` inputs are the source files the stage runs, read from their imports
#   (pipeline/dag/codedeps.py): editing reward v19 reruns v19's runs and leaves v11's alone.
from pipeline.dag import params as cfg, registry as stages

configfile: "params.yaml"

# Stop before building the DAG when params are invalid, naming the key and the valid values.
cfg.validate(config)

wildcard_constraints:
    **stages.smk_wildcard_constraints(),


def code(stage):
    """An input function: the files stage runs for these wildcards. A target naming an unknown
    task or reward version stops the DAG here, naming the valid ones."""
    return stages.smk_code(stage, config)


def flags(*keys):
    """The `--key.field value ...` flags of params.yaml blocks or keys ("{algo}": the run's algorithm)."""
    return stages.smk_flags(keys, config)


def over(path, dim):
    """path for every listed algo or seed of the experiment."""
    return stages.smk_over(path, dim, config)


def base_runs(path):
    """A residual learner's trained base: its run of the same seed (train) or of every seed."""
    return stages.smk_base_runs(path, config)


def demos():
    """The demonstrations of a run that reads them: it learns from them as its block says, or its
    episodes start from their states (env.reverse_curriculum); none for the others."""
    return stages.smk_demos(config)


def best(path):
    """The evaluation metrics naming the best checkpoint, where render.checkpoint is best."""
    return stages.smk_best(path, config)


def variants(path):
    """path for every (reward, algo, backend) of the compare block."""
    return stages.smk_variants(path, config)


rule all:
    input:
        stages.default_target(config),
    default_target: True


rule sanity:
    input:
        code=code("sanity"),
    output:
        result="data/sanity/{task}_{backend}.json",
    params:
        sanity=flags("sanity"),
    log:
        "logs/sanity/{task}_{backend}.log",
    benchmark:
        "benchmarks/out/sanity/{task}_{backend}.tsv"
    conda:
        "config/conda.yaml"
    threads: 1
    resources:
        **stages.STAGES["sanity"].resources,
    shell:
        "python -m pipeline.sanity --task {wildcards.task} --backend {wildcards.backend} --out {output.result} "
        "{params.sanity} > {log} 2>&1"


rule demos:
    input:
        code=code("demos"),
    output:
        # the demos block's values and the start stage name the dataset (registry.DEMOS_KEYS)
        dataset=directory(stages.smk_demos_path(config)),
        summary=stages.smk_demos_path(config) + ".json",
    params:
        env=flags(*stages.DEMOS_ENV_PARAMS),
        demos=flags("demos"),
    log:
        "logs/demos/{task}_{backend}.log",
    benchmark:
        "benchmarks/out/demos/{task}_{backend}.tsv"
    conda:
        "config/conda.yaml"
    threads: 1
    resources:
        **stages.STAGES["demos"].resources,
    shell:
        "python -m pipeline.demos --task {wildcards.task} --backend {wildcards.backend} --out {output.dataset} "
        "--summary {output.summary} {params.env} {params.demos} > {log} 2>&1"


rule train:
    input:
        # ancient: the sanity check gates training, but rerunning it (after an edit of the check or a
        # controller) retrains nothing; the env code it checks is train's own code input.
        sanity=ancient("data/sanity/{task}_{backend}.json"),
        base=base_runs("data/runs/{task}_{reward}_{backend}/{algo}/seed{seed}"),
        demos=demos(),
        code=code("train"),
    output:
        run=directory("data/runs/{task}_{reward}_{backend}/{algo}/seed{seed}"),
    params:
        env=flags("env"),
        hparams=flags("{algo}"),
        checkpoint_every=flags("checkpoint_every"),
        train=flags("train"),
    log:
        "logs/train/{task}_{reward}_{backend}_{algo}_{seed}.log",
    benchmark:
        "benchmarks/out/train/{task}_{reward}_{backend}_{algo}_{seed}.tsv"
    conda:
        "config/conda.yaml"
    threads: 1
    resources:
        **stages.STAGES["train"].resources,
        gpu=stages.smk_gpu(config),
    shell:
        "python -m pipeline.train --task {wildcards.task} --reward {wildcards.reward} --backend {wildcards.backend} "
        "--algo {wildcards.algo} --seed {wildcards.seed} --sanity {input.sanity} --out {output.run} --threads {threads} "
        "{params.env} {params.hparams} {params.checkpoint_every} {params.train} > {log} 2>&1"


rule evaluate:
    input:
        runs=over("data/runs/{task}_{reward}_{backend}/{algo}/seed{seed}", "seed"),
        base=base_runs("data/runs/{task}_{reward}_{backend}/{algo}/seed{seed}"),
        code=code("evaluate"),
    output:
        episodes="data/eval/{task}_{reward}_{backend}/{algo}.parquet",
        metrics="data/eval/{task}_{reward}_{backend}/{algo}.json",
        curve=report("data/eval/{task}_{reward}_{backend}/{algo}_curve.tsv", category="Learning curves",
                     subcategory="{task} {reward} {backend}", labels={"algorithm": "{algo}"}),
        provenance="data/eval/{task}_{reward}_{backend}/{algo}_provenance.json",
    params:
        env=flags("env"),
        evaluation=flags("evaluation"),
    log:
        "logs/evaluate/{task}_{reward}_{backend}_{algo}.log",
    benchmark:
        "benchmarks/out/evaluate/{task}_{reward}_{backend}_{algo}.tsv"
    conda:
        "config/conda.yaml"
    threads: 1
    resources:
        **stages.STAGES["evaluate"].resources,
    shell:
        "python -m pipeline.evaluate --task {wildcards.task} --reward {wildcards.reward} --backend {wildcards.backend} "
        "--algo {wildcards.algo} --runs {input.runs} --out {output.episodes} --metrics {output.metrics} "
        "--curve {output.curve} --provenance {output.provenance} --threads {threads} "
        "{params.env} {params.evaluation} > {log} 2>&1"


rule render:
    input:
        runs=over("data/runs/{task}_{reward}_{backend}/{algo}/seed{seed}", "seed"),
        base=base_runs("data/runs/{task}_{reward}_{backend}/{algo}/seed{seed}"),
        best=best("data/eval/{task}_{reward}_{backend}/{algo}.json"),
        code=code("render"),
    output:
        video=report("data/videos/{task}_{reward}_{backend}/{algo}.mp4", category="Videos",
                     subcategory="{task} {reward} {backend}", labels={"algorithm": "{algo}"}),
        sheet=report("data/videos/{task}_{reward}_{backend}/{algo}_sheet.png", category="Videos",
                     subcategory="{task} {reward} {backend}", labels={"algorithm": "{algo}", "figure": "contact sheet"}),
        still="data/videos/{task}_{reward}_{backend}/{algo}.png",
        info="data/videos/{task}_{reward}_{backend}/{algo}_render.json",
    params:
        env=flags("env"),
        render=flags("render"),
    log:
        "logs/render/{task}_{reward}_{backend}_{algo}.log",
    benchmark:
        "benchmarks/out/render/{task}_{reward}_{backend}_{algo}.tsv"
    conda:
        "config/conda.yaml"
    threads: 1
    resources:
        **stages.STAGES["render"].resources,
    shell:
        "python -m pipeline.render --task {wildcards.task} --reward {wildcards.reward} --backend {wildcards.backend} "
        "--algo {wildcards.algo} --runs {input.runs} --video {output.video} --sheet {output.sheet} "
        "--still {output.still} --info {output.info} --best {input.best} --threads {threads} {params.env} {params.render} "
        "> {log} 2>&1"


rule report:
    input:
        sanity=over("data/sanity/{task}_{backend}.json", "backend"),
        episodes=over("data/eval/{task}_{reward}_{backend}/{algo}.parquet", "algo"),
        metrics=over("data/eval/{task}_{reward}_{backend}/{algo}.json", "algo"),
        provenance=over("data/eval/{task}_{reward}_{backend}/{algo}_provenance.json", "algo"),
        videos=over("data/videos/{task}_{reward}_{backend}/{algo}.mp4", "algo"),
        stills=over("data/videos/{task}_{reward}_{backend}/{algo}.png", "algo"),
        sheets=over("data/videos/{task}_{reward}_{backend}/{algo}_sheet.png", "algo"),
        renders=over("data/videos/{task}_{reward}_{backend}/{algo}_render.json", "algo"),
        demos=stages.smk_demos_summary(config),
        code=code("report"),
    output:
        report=report("reports/{task}_{reward}.md", category="Reports", labels={"report": "{task} {reward}"}),
        figures=report(directory("reports/{task}_{reward}"), patterns=["{name}.png"], category="Figures",
                       subcategory="{task} {reward}", labels={"figure": "{name}"}),
    params:
        report=flags("report"),
        backend=config["backend"],
    log:
        "logs/report/{task}_{reward}.log",
    benchmark:
        "benchmarks/out/report/{task}_{reward}.tsv"
    conda:
        "config/conda.yaml"
    threads: 1
    resources:
        **stages.STAGES["report"].resources,
    shell:
        "python -m pipeline.report --task {wildcards.task} --reward {wildcards.reward} --sanity {input.sanity} "
        "--episodes {input.episodes} --metrics {input.metrics} --provenance {input.provenance} "
        "--videos {input.videos} --stills {input.stills} --sheets {input.sheets} --renders {input.renders} "
        "--demos {input.demos} "
        "--out {output.report} --figures {output.figures} {params.report} > {log} 2>&1"


rule compare:
    input:
        metrics=variants("data/eval/{task}_{reward}_{backend}/{algo}.json"),
        provenance=variants("data/eval/{task}_{reward}_{backend}/{algo}_provenance.json"),
        episodes=variants("data/eval/{task}_{reward}_{backend}/{algo}.parquet"),
        code=code("compare"),
    output:
        report=report("reports/{task}_compare.md", category="Reports", labels={"report": "{task} compare"}),
        figures=report(directory("reports/{task}_compare"), patterns=["{name}.png"], category="Figures",
                       subcategory="{task} compare", labels={"figure": "{name}"}),
    params:
        compare=flags("compare"),
        report=flags("report"),
    log:
        "logs/compare/{task}.log",
    benchmark:
        "benchmarks/out/compare/{task}.tsv"
    conda:
        "config/conda.yaml"
    threads: 1
    resources:
        **stages.STAGES["compare"].resources,
    shell:
        "python -m pipeline.compare --task {wildcards.task} --metrics {input.metrics} "
        "--provenance {input.provenance} --episodes {input.episodes} --out {output.report} "
        "--figures {output.figures} {params.compare} {params.report} > {log} 2>&1"


# Last, for a target naming a task that does not exist (reports/lfit_v19.md): no rule above matches
# it, and Snakemake would say only MissingRuleException. This rule's input function stops the DAG
# before any job, naming the valid tasks; it never runs.
rule unknown_task:
    input:
        stages.smk_unknown_task,
    output:
        "{folder}/{name}",
    wildcard_constraints:
        **stages.smk_unknown_task_constraints(),
