# The experiment DAG for Snakemake:  snakemake --cores 2            (default target: the report)
#                                   snakemake --cores 2 reports/lift_v11.md
#                                   snakemake --cores 2 --configfile config/smoke.yaml
# Every rule is rendered from the stage registry in pipeline/stages.py, the same source as dvc.yaml:
# rule inputs include the exact code files a stage runs, and every config value a stage uses is in
# its params (as the `--key value` flags its command receives), so any change reruns just that rule.
from pipeline import config as cfg, stages

configfile: "params.yaml"

# Stop before building the DAG when params are invalid, naming the key and the valid values.
cfg.validate(config)

wildcard_constraints:
    **stages.smk_wildcard_constraints(),


rule all:
    input:
        stages.default_target(config),
    default_target: True


rule sanity:
    input:
        unpack(stages.smk_inputs("sanity", config)),
    output:
        **stages.smk_outputs("sanity", directory),
    params:
        **stages.smk_params("sanity", config),
    log:
        stages.smk_log("sanity"),
    benchmark:
        stages.smk_benchmark("sanity")
    conda:
        "config/conda.yaml"
    threads: stages.STAGES["sanity"].threads
    resources:
        **stages.STAGES["sanity"].resources,
    shell:
        stages.smk_shell("sanity")


rule train:
    input:
        unpack(stages.smk_inputs("train", config)),
    output:
        **stages.smk_outputs("train", directory),
    params:
        **stages.smk_params("train", config),
    log:
        stages.smk_log("train"),
    benchmark:
        stages.smk_benchmark("train")
    conda:
        "config/conda.yaml"
    threads: stages.STAGES["train"].threads
    resources:
        **stages.STAGES["train"].resources,
    shell:
        stages.smk_shell("train")


rule evaluate:
    input:
        unpack(stages.smk_inputs("evaluate", config)),
    output:
        **stages.smk_outputs("evaluate", directory),
    params:
        **stages.smk_params("evaluate", config),
    log:
        stages.smk_log("evaluate"),
    benchmark:
        stages.smk_benchmark("evaluate")
    conda:
        "config/conda.yaml"
    threads: stages.STAGES["evaluate"].threads
    resources:
        **stages.STAGES["evaluate"].resources,
    shell:
        stages.smk_shell("evaluate")


rule render:
    input:
        unpack(stages.smk_inputs("render", config)),
    output:
        **stages.smk_outputs("render", directory),
    params:
        **stages.smk_params("render", config),
    log:
        stages.smk_log("render"),
    benchmark:
        stages.smk_benchmark("render")
    conda:
        "config/conda.yaml"
    threads: stages.STAGES["render"].threads
    resources:
        **stages.STAGES["render"].resources,
    shell:
        stages.smk_shell("render")


rule report:
    input:
        unpack(stages.smk_inputs("report", config)),
    output:
        **stages.smk_outputs("report", directory),
    params:
        **stages.smk_params("report", config),
    log:
        stages.smk_log("report"),
    benchmark:
        stages.smk_benchmark("report")
    conda:
        "config/conda.yaml"
    threads: stages.STAGES["report"].threads
    resources:
        **stages.STAGES["report"].resources,
    shell:
        stages.smk_shell("report")
