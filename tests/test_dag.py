"""The two DAG tools run the same pipeline, and each reruns exactly what a change affects.

Uses the real Snakemake and DVC on the real Snakefile, dvc.yaml and params.yaml in a throwaway
copy, with fake stages (tests/dagtools.py) so the whole file runs in about a minute.
"""
import subprocess
import sys
import time

import pytest
import yaml

import dagtools as d
from pipeline.dag import params as cfg

SNAKEMAKE = [str(d.VENV_BIN / "snakemake"), "--cores", "1"]
DVC = str(d.VENV_BIN / "dvc")
ALGO_CHAIN = ["train-ppo-seed0", "train-sac-seed0", "evaluate-ppo", "evaluate-sac", "render-ppo", "render-sac",
              "report"]


def at(reward, names):
    return sorted(f"{n}@{reward}" for n in names)


def agreeing_dags(tmp_path, overrides: dict | None = None, **params) -> tuple:
    """A fake workspace with these params set (key__name for key.name; overrides: merged in, for
    keys params.yaml leaves out), dvc.yaml generated for them by the real code (the workspace's stage
    modules are fakes), and both tools' DAGs checked equal: (workspace, DVC's DAG)."""
    ws = d.make_workspace(tmp_path / "ws")
    for key, value in params.items():
        d.set_param(ws, key.replace("__", "."), value)
    if overrides:
        merged = cfg.merge(cfg.load(ws / "params.yaml"), overrides)
        (ws / "params.yaml").write_text(yaml.safe_dump(merged, sort_keys=False))
    if params or overrides:      # without, the committed dvc.yaml
        d.run([sys.executable, "-m", "pipeline.dag.dvcgen", "--params", str(ws / "params.yaml"), "--out",
               str(ws / "dvc.yaml")], d.ROOT)
    d.git_init(ws)
    smk, dvc = d.snakemake_dag(ws), d.dvc_dag(ws)
    assert sorted(smk) == sorted(dvc)
    for name in smk:
        for field in ("cmd", "deps", "outs", "params", "upstream"):
            assert smk[name][field] == dvc[name][field], f"{name}.{field} differs"
    return ws, dvc


def reruns_after_edit(ws, key: str, value: str, edited: str) -> tuple[list, list]:
    """What Snakemake, then DVC, reruns when key goes from value to edited after a full run."""
    out = []
    for cmd in (SNAKEMAKE, [DVC, "repro", "-q"]):
        d.set_param(ws, key, value)
        d.run(cmd, ws)
        d.ran(ws)
        d.set_param(ws, key, edited)
        d.run(cmd, ws)
        out.append(d.ran(ws))
    return tuple(out)


def test_dvc_yaml_is_fresh():
    """dvc.yaml is generated from pipeline/dag/registry.py and params.yaml; it must be regenerated and
    committed whenever either changes (`make dvc.yaml`)."""
    proc = subprocess.run([sys.executable, "-m", "pipeline.dag.dvcgen", "--check"], cwd=d.ROOT,
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


def test_snakemake_lint_is_clean():
    proc = d.run([str(d.VENV_BIN / "snakemake"), "--lint"], d.ROOT, check=False)
    assert proc.returncode == 0 and "Congratulations" in proc.stdout + proc.stderr, proc.stdout + proc.stderr


def test_dags_agree(tmp_path):
    """Same stage instances, commands, deps, outs, params and edges, as each tool reports them."""
    _, dvc = agreeing_dags(tmp_path)
    # and the shape is the one the design asks for
    assert dvc["sanity"]["upstream"] == []
    assert dvc["train-ppo-seed0"]["upstream"] == ["sanity"]
    assert "envs/rewards/lift/v19.py" in dvc["train-ppo-seed0"]["deps"]
    assert not any("rewards/lift/v" in p for p in dvc["sanity"]["deps"]), "sanity runs no reward version"
    assert not any("rewards/lift/v" in p for p in dvc["report"]["deps"]), "the report runs no reward"
    assert "data/runs/lift_v19_mujoco/ppo/seed0" in dvc["train-ppo-seed0"]["outs"], "the backend names the run"


def test_snakemake_granularity(tmp_path):
    ws = d.make_workspace(tmp_path / "ws")
    both = ["reports/lift_v19.md", "reports/lift_v11.md"]

    def snake(*targets):
        d.run(SNAKEMAKE + list(targets), ws)
        return d.ran(ws)

    first = snake()
    assert first == sorted(["sanity"] + at("v19", ALGO_CHAIN)), first
    assert snake() == [], "a no-op rerun must run nothing"

    d.set_param(ws, "reward", "v11")
    assert snake() == at("v11", ALGO_CHAIN), "changing reward must not rerun sanity"
    assert snake(*both) == []

    (ws / "envs/rewards/lift/v19.py").write_text((ws / "envs/rewards/lift/v19.py").read_text() + "\n# edited\n")
    assert snake(*both) == at("v19", ALGO_CHAIN), "editing v19 reruns only v19's runs"

    d.set_param(ws, "evaluation.episodes", "21")
    assert snake() == at("v11", ["evaluate-ppo", "evaluate-sac", "report"])

    d.set_param(ws, "ppo.learning_rate", "1.0e-3")
    assert snake() == at("v11", ["train-ppo-seed0", "evaluate-ppo", "render-ppo", "report"])

    d.set_param(ws, "render.fps", "30")
    assert snake() == at("v11", ["render-ppo", "render-sac", "report"])


def test_editing_the_sanity_check_or_a_controller_retrains_nothing(tmp_path):
    """The check and the controllers sit above the tasks: an edit reruns the sanity stage (and, in
    Snakemake, the report that shows its figures), never a training, in both tools."""
    ws = d.make_workspace(tmp_path / "ws")
    d.git_init(ws)
    trains = set(at("v19", [n for n in ALGO_CHAIN if n.startswith(("train", "evaluate", "render"))]))
    for cmd in (SNAKEMAKE, [DVC, "repro", "-q"]):
        d.run(cmd, ws)
        assert trains <= set(d.ran(ws))
        for edited in ("envs/sanity.py", "envs/controllers/picker.py"):
            time.sleep(1)      # Snakemake compares modification times, to the second here
            (ws / edited).write_text((ws / edited).read_text() + "\n# edited\n")
            d.run(cmd, ws)
            again = d.ran(ws)
            assert "sanity" in again and not set(again) & trains, (cmd[0], edited, again)


@pytest.mark.slow     # ~60 s; dvc.yaml's deps and params equal Snakemake's (test_dags_agree), whose granularity is tested
def test_dvc_granularity(tmp_path):
    ws = d.make_workspace(tmp_path / "ws")
    d.git_init(ws)

    def repro():
        d.run([DVC, "repro", "-q"], ws)
        return d.ran(ws)

    assert repro() == sorted(["sanity"] + at("v19", ALGO_CHAIN))
    assert repro() == [], "a no-op rerun must run nothing"

    d.set_param(ws, "reward", "v11")
    assert repro() == at("v11", ALGO_CHAIN), "changing reward must not rerun sanity"

    (ws / "envs/rewards/lift/v19.py").write_text((ws / "envs/rewards/lift/v19.py").read_text() + "\n# edited\n")
    assert repro() == [], "editing v19 must not touch v11's runs"
    (ws / "envs/rewards/lift/v11.py").write_text((ws / "envs/rewards/lift/v11.py").read_text() + "\n# edited\n")
    assert repro() == at("v11", ALGO_CHAIN)

    d.set_param(ws, "evaluation.episodes", "21")
    assert repro() == at("v11", ["evaluate-ppo", "evaluate-sac", "report"])

    d.set_param(ws, "ppo.learning_rate", "1.0e-3")
    assert repro() == at("v11", ["train-ppo-seed0", "evaluate-ppo", "render-ppo", "report"])

    d.set_param(ws, "render.fps", "30")
    assert repro() == at("v11", ["render-ppo", "render-sac", "report"])


@pytest.mark.parametrize("key,value,needle", [
    ("reward", "v99", "valid: v11, v19"),
    ("task", "stack", "valid: lift, paper_square, pick_place, walk"),
    ("algos", "[ppo, dqn]", "valid: ppo, sac, tqc, her"),
    ("ppo.learning_rate", "3e-4", "ppo.learning_rate"),
])
def test_snakemake_stops_on_bad_params(tmp_path, key, value, needle):
    ws = d.make_workspace(tmp_path / "ws")
    d.set_param(ws, key, value)
    proc = d.run(SNAKEMAKE, ws, check=False)
    assert proc.returncode != 0
    assert needle in proc.stdout + proc.stderr
    assert d.ran(ws) == [], "nothing may run on invalid params"


def test_snakemake_takes_seeds_from_its_command_line(tmp_path):
    """`snakemake --config 'seeds=[0,1,2]'` (the README's) passes the seeds as text: the DAG has a
    run of every algorithm for each of the three seeds, and text that is no seed is refused."""
    ws = d.make_workspace(tmp_path / "ws")
    proc = d.run(SNAKEMAKE + ["-n", "--config", "seeds=[0,1,2]"], ws)
    for algo in ("ppo", "sac"):
        for seed in (0, 1, 2):
            assert f"data/runs/lift_v19_mujoco/{algo}/seed{seed}" in proc.stdout
    bad = d.run(SNAKEMAKE + ["-n", "--config", "seeds=[0,x]"], ws, check=False)
    assert bad.returncode != 0 and "seeds: expected a non-empty list of distinct integers >= 0; got [0, 'x']" in bad.stdout + bad.stderr


@pytest.mark.parametrize("setting,needle", [
    ("reward=v99", "reward: unknown reward version 'v99' for task lift; valid: v11, v19"),
    ("task=lfit", "task: unknown task 'lfit'; valid: lift, paper_square, pick_place, walk"),
])
def test_dvc_stops_before_any_stage_on_bad_params(tmp_path, setting, needle):
    """DVC's first stage checks params: `dvc exp run -S reward=v99` (or an unknown task) stops
    before any other stage runs, naming the valid values, and loses nothing written before. DVC
    leaves the -S value in params.yaml: the error says so and how to restore the file."""
    ws = d.make_workspace(tmp_path / "ws")
    d.git_init(ws)
    d.run([DVC, "repro"], ws)
    d.ran(ws)
    before = (ws / "reports/lift_v19.md").read_text()
    params = (ws / "params.yaml").read_text()
    proc = d.run([DVC, "exp", "run", "-S", setting], ws, check=False)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert needle in out, out
    assert d.ran(ws) == [], "nothing may run on invalid params"
    assert (ws / "reports/lift_v19.md").read_text() == before
    key, value = setting.split("=")
    was = {"reward": "v19", "task": "lift"}[key]
    assert (f"params.yaml now holds {key}: {value} (was {was}), against the last commit" in out
            and "Restore both with `git checkout params.yaml && dvc checkout`" in out), out
    d.run(["bash", "-c", "git checkout params.yaml && dvc checkout"], ws)       # the restore it names
    assert (ws / "params.yaml").read_text() == params
    assert "Data and pipelines are up to date" in d.run([DVC, "status"], ws).stdout


@pytest.mark.parametrize("damage", ["torn", "deleted"])
def test_dvc_restores_a_damaged_or_deleted_run_from_its_cache(tmp_path, damage):
    """The recovery a damaged checkpoint's error names (pipeline/run/finished.py) for DVC:
    `dvc repro` puts the run back from its cache, with or without the run folder deleted first,
    and reruns nothing (Snakemake's half, a retrain, is in tests/e2e/smoke.py)."""
    ws = d.make_workspace(tmp_path / "ws")
    d.git_init(ws)
    d.run([DVC, "repro"], ws)
    d.ran(ws)
    run = ws / "data/runs/lift_v19_mujoco/ppo/seed0"
    before = (run / "result.txt").read_text()
    if damage == "torn":
        (run / "result.txt").write_text(before[:10])
    else:
        import shutil
        shutil.rmtree(run)
    out = d.run([DVC, "repro"], ws).stdout
    assert "Stage 'train-ppo-seed0' is cached - skipping run, checking out outputs" in out
    assert (run / "result.txt").read_text() == before and d.ran(ws) == []


@pytest.mark.parametrize("target,needle", [
    ("reports/lift_v99.md", "unknown reward version 'v99' for task lift; valid: v11, v19"),
    ("data/runs/lift_v99_mujoco/ppo/seed0", "unknown reward version 'v99' for task lift; valid: v11, v19"),
    ("reports/stack_v19.md", "task: unknown task 'stack'; valid: lift, paper_square, pick_place, walk"),
    ("reports/lfit_compare.md", "task: unknown task 'lfit'; valid: lift, paper_square, pick_place, walk"),
    ("data/runs/lfit_v19_mujoco/ppo/seed0", "task: unknown task 'lfit'; valid: lift, paper_square, pick_place, walk"),
    ("data/sanity/lfit_mujoco.json", "task: unknown task 'lfit'; valid: lift, paper_square, pick_place, walk"),
])
def test_snakemake_stops_on_an_unknown_target(tmp_path, target, needle):
    """A target naming an unknown task or reward version stops while the DAG is built, naming the
    valid ones (an unknown task through rule unknown_task: no other rule matches it)."""
    ws = d.make_workspace(tmp_path / "ws")
    proc = d.run(SNAKEMAKE + [target], ws, check=False)
    assert proc.returncode != 0
    assert needle in proc.stdout + proc.stderr, proc.stdout + proc.stderr
    assert d.ran(ws) == [], "nothing may run for an unknown target"


def test_compare_target_builds_its_variants_and_reruns_only_what_changed(tmp_path):
    """reports/{task}_compare.md declares every compared variant's evaluation outputs: editing one
    compared reward version plans only that version's chain and the comparison; adding a variant
    plans only its chain; the experiment's own report is not involved."""
    ws = d.make_workspace(tmp_path / "ws")

    def snake(*args):
        d.run(SNAKEMAKE + list(args) + ["reports/lift_compare.md"], ws)
        return d.ran(ws)

    chain = ["train-ppo-seed0", "evaluate-ppo"]
    assert snake() == sorted(["compare", "sanity"] + at("v11", chain) + at("v19", chain))
    assert snake() == []
    (ws / "envs/rewards/lift/v11.py").write_text((ws / "envs/rewards/lift/v11.py").read_text() + "\n# edited\n")
    assert snake() == sorted(["compare"] + at("v11", chain)), "editing v11 reruns v11's chain and the comparison"
    d.set_param(ws, "compare.algos", "[ppo, sac]")
    assert snake() == sorted(["compare"] + at("v11", ["train-sac-seed0", "evaluate-sac"])
                             + at("v19", ["train-sac-seed0", "evaluate-sac"])), "a new variant plans only its chain"
    params = ws / "params.yaml"         # compare.pairs is optional: params.yaml leaves it out
    params.write_text(params.read_text().replace("compare:\n", "compare:\n  pairs: [v11/sac, v19/ppo]\n"))
    assert snake() == ["compare"], "pairs of variants already built plan the comparison alone"


def test_walk_v2_depends_on_the_reward_code_it_imports(tmp_path):
    """walk v2's runs depend on the walk rewards' shared terms, which v2 imports, and not on v1;
    editing the shared terms reruns v2's runs (both tools list the same deps: test_dags_agree)."""
    from pipeline.dag.registry import STAGES, code_files
    deps = code_files(STAGES["train"], {"task": "walk", "reward": "v2", "backend": "genesis", "algo": "ppo"})
    assert {"envs/rewards/walk/v2.py", "envs/rewards/walk/__init__.py", "envs/tasks/walk.py",
            "envs/backends/genesis.py"} <= set(deps)
    assert "envs/rewards/walk/v1.py" not in deps
    assert not any(p.startswith("envs/tasks/lift") for p in deps)


def test_drqv2_in_both_dags(tmp_path):
    """With `algos: [ppo, drqv2]` both tools agree on every stage (DrQ-v2's quoted schedule flag
    included); DrQ-v2's stages depend on algos/drqv2/ and an SB3 run's do not,
    so editing one algorithm's module reruns that algorithm's stages only."""
    ws, dvc = agreeing_dags(tmp_path, algos="[ppo, drqv2]")
    assert "train-drqv2-seed0" in dvc
    assert "--drqv2.stddev_schedule 'linear(1.0,0.1,30000)'" in dvc["train-drqv2-seed0"]["cmd"]
    for stage in ("train-drqv2-seed0", "evaluate-drqv2", "render-drqv2"):
        assert {"algos/drqv2/agent.py", "algos/drqv2/replay.py"} <= set(dvc[stage]["deps"])
        assert "algos/sb3.py" not in dvc[stage]["deps"]
    for stage in ("train-ppo-seed0", "evaluate-ppo", "render-ppo"):
        assert {"algos/sb3.py", "algos/ppo.py"} <= set(dvc[stage]["deps"])
        assert not any(p.startswith(("algos/drqv2", "algos/sac")) for p in dvc[stage]["deps"])

    d.run(SNAKEMAKE, ws)
    d.ran(ws)
    for module, algo, train in (("drqv2/agent", "drqv2", "train-drqv2-seed0"), ("sb3", "ppo", "train-ppo-seed0")):
        path = ws / "algos" / f"{module}.py"
        path.write_text(path.read_text() + "\n# edited\n")
        d.run(SNAKEMAKE, ws)
        assert d.ran(ws) == at("v19", [train, f"evaluate-{algo}", f"render-{algo}", "report"]), module


def test_demonstrations_are_a_dag_edge_in_both_tools(tmp_path):
    """`algos: [bc, ppo]`: bc learns from the demos stage's dataset. Both tools agree; the demos
    stage runs no reward code and takes no reward param, its path carries its identity, and the
    dataset is an input of bc's runs only. Editing a reward version relabels and retrains but never
    reruns the controller; editing the controller reruns the demonstrations and bc's chain after
    them, never ppo's training: in Snakemake and in DVC."""
    ws, dvc = agreeing_dags(tmp_path, algos="[bc, ppo]")
    dataset = "data/demos/lift_mujoco/picker/stage1_n100_seed0"
    demos = dvc["demos"]
    assert demos["outs"] == [dataset, dataset + ".json"] and demos["upstream"] == []
    assert "envs/controllers/picker.py" in demos["deps"]
    assert not any(p.startswith("envs/rewards/lift/") for p in demos["deps"]), "demos run no reward code"
    assert "reward" not in demos["params"] and "env.curriculum_from" not in demos["params"]
    assert {"demos.episodes", "demos.seed", "demos.controller", "env.curriculum_stage"} <= set(demos["params"])
    assert dvc["train-bc-seed0"]["upstream"] == ["demos", "sanity"] and dataset in dvc["train-bc-seed0"]["deps"]
    assert "demos.episodes" in dvc["train-bc-seed0"]["params"]
    assert dataset not in dvc["train-ppo-seed0"]["deps"] and "demos.episodes" not in dvc["train-ppo-seed0"]["params"]

    chains = at("v19", ["train-bc-seed0", "train-ppo-seed0", "evaluate-bc", "evaluate-ppo", "render-bc",
                        "render-ppo", "report"])
    for cmd in (SNAKEMAKE, [DVC, "repro", "-q"]):
        d.run(cmd, ws)
        assert "demos" in d.ran(ws)
        for edited, expected in (("envs/rewards/lift/v19.py", chains),
                                 ("envs/controllers/picker.py", sorted(["demos", "sanity"] + at("v19", [
                                     "train-bc-seed0", "evaluate-bc", "render-bc", "report"])))):
            time.sleep(1)      # Snakemake compares modification times, to the second here
            (ws / edited).write_text((ws / edited).read_text() + "\n# edited\n")
            d.run(cmd, ws)
            assert d.ran(ws) == expected, (cmd[0], edited)


def test_a_demo_ratio_decides_whether_a_run_reads_the_demonstrations(tmp_path):
    """rlpd and drqv2 learn from demonstrations where their block's demo_ratio is > 0, and only
    there is the dataset an input of their runs, in both tools (Snakemake's DAG, dvc.yaml): drqv2
    at 0.5 (from wrist frames: demos.pixels true) reads it and rlpd at 0 neither reads it nor takes
    the demos block's params; swapped, rlpd at 0.5 reads it and drqv2 (its preset's 0) does not;
    with both at 0 there is no demos stage."""
    dataset = "data/demos/lift_mujoco/picker/stage1_n100_seed0"
    for reader, other, overrides in (("drqv2", "rlpd", {"drqv2": {"demo_ratio": 0.5}, "rlpd": {"demo_ratio": 0.0},
                                                       "demos": {"pixels": True}}),
                                     ("rlpd", "drqv2", {"rlpd": {"demo_ratio": 0.5}})):
        _, dvc = agreeing_dags(tmp_path / reader, {"algos": ["rlpd", "drqv2"], **overrides})
        assert dvc[f"train-{reader}-seed0"]["upstream"] == ["demos", "sanity"]
        assert dataset in dvc[f"train-{reader}-seed0"]["deps"] and "demos.pixels" in dvc[f"train-{reader}-seed0"]["params"]
        assert dvc[f"train-{other}-seed0"]["upstream"] == ["sanity"] and dataset not in dvc[f"train-{other}-seed0"]["deps"]
        assert not any(k.startswith("demos.") for k in dvc[f"train-{other}-seed0"]["params"])
        assert dvc["demos"]["outs"] == [dataset, dataset + ".json"]
    from pipeline.dag.registry import dvc_pipeline
    neither = cfg.merge(cfg.load(), {"algos": ["rlpd", "drqv2"], "rlpd": {"demo_ratio": 0.0}})
    assert "demos" not in dvc_pipeline(neither)["stages"]


@pytest.mark.parametrize("reverse", [True, False])
def test_reverse_curriculum_makes_the_demonstrations_an_input_of_any_algorithm(tmp_path, reverse):
    """`algos: [ppo]` with env.reverse_curriculum: ppo's training episodes start from the demos
    stage's states, so the dataset is an input of its train job, with the demos block among its
    params, in Snakemake (its DAG and a dry run) and in the generated dvc.yaml; without it, neither
    the demos stage nor the edge."""
    ws, dvc = agreeing_dags(tmp_path, algos="[ppo]", env__curriculum_stage="0",
                            env__reverse_curriculum="true" if reverse else "false")
    dataset = "data/demos/lift_mujoco/picker/stage0_n100_seed0"
    train = dvc["train-ppo-seed0"]
    assert ("demos" in dvc) == reverse and (dataset in train["deps"]) == reverse
    assert train["upstream"] == (["demos", "sanity"] if reverse else ["sanity"])
    assert ("demos.episodes" in train["params"]) == reverse
    dry = d.run(SNAKEMAKE + ["-n", "-p", "data/runs/lift_v19_mujoco/ppo/seed0"], ws).stdout
    assert ("rule demos:" in dry) == reverse and (f"--out {dataset} " in dry) == reverse
    assert ("--demos.controller picker" in dry) == reverse, "the train command names the dataset's block"


@pytest.mark.slow     # ~30 s; make test runs a residual DAG (the paper_square smoke) and the trained-base test below
def test_residual_learners_in_both_dags(tmp_path):
    """`algos: [scripted, ppo+scripted, ppo]`: the base alone, PPO learning a residual on it, and PPO
    alone. Both tools agree; the residual run has its own path and the `residual` block among its
    params, so a change of residual.alpha retrains the residual learner only, in both tools."""
    ws, dvc = agreeing_dags(tmp_path, algos="[scripted, ppo+scripted, ppo]")
    assert "train-ppo-on-scripted-seed0" in dvc
    residual = dvc["train-ppo-on-scripted-seed0"]
    assert "data/runs/lift_v19_mujoco/ppo+scripted/seed0" in residual["outs"]
    assert {"residual.alpha", "residual.penalty", "ppo.learning_rate"} <= set(residual["params"])
    assert not any(p.startswith("residual.") for p in dvc["train-ppo-seed0"]["params"])
    assert "algos/scripted.py" in dvc["train-scripted-seed0"]["deps"] and "envs/residual.py" in residual["deps"]

    chain = ["train-ppo+scripted-seed0", "evaluate-ppo+scripted", "render-ppo+scripted", "report"]
    assert reruns_after_edit(ws, "residual.alpha", "0.7", "0.5") == (at("v19", chain),) * 2, \
        "residual.alpha retrains the residual learner only"


def test_a_trained_base_is_a_declared_input_of_its_residual_learner(tmp_path):
    """`algos: [sac, ppo+sac]`: PPO learns a residual on the final sac policy of the same seed. The
    sac run is an input of the residual's train, evaluate and render stages, so a change to the sac
    run's params retrains the base and then the residual, in both tools."""
    ws, dvc = agreeing_dags(tmp_path, algos="[sac, ppo+sac]")
    for name in ("train-ppo-on-sac-seed0", "evaluate-ppo-on-sac", "render-ppo-on-sac"):
        assert "data/runs/lift_v19_mujoco/sac/seed0" in dvc[name]["deps"] and "algos/sac.py" in dvc[name]["deps"]
    assert "train-sac-seed0" in dvc["train-ppo-on-sac-seed0"]["upstream"]

    both = ["train-sac-seed0", "evaluate-sac", "render-sac", "train-ppo+sac-seed0", "evaluate-ppo+sac",
            "render-ppo+sac", "report"]
    assert reruns_after_edit(ws, "sac.learning_rate", "3.0e-4", "1.0e-3") == (at("v19", both),) * 2, \
        "a retrained base retrains its residual learner"


def test_render_of_the_best_checkpoint_runs_after_evaluate(tmp_path):
    """render.checkpoint best: render reads the evaluate stage's pick, a declared input in both tools."""
    ws, dvc = agreeing_dags(tmp_path, render__checkpoint="best")
    assert "evaluate-ppo" in dvc["render-ppo"]["upstream"] and "data/eval/lift_v19_mujoco/ppo.json" in dvc["render-ppo"]["deps"]
