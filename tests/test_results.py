"""The results page (docs/results/README.md) is generated from the committed results, and marks a
result stale when the code it recorded has changed (pipeline/results.py)."""
import hashlib
import json
import shutil

import pytest

from pipeline import results


@pytest.fixture
def tree(tmp_path, monkeypatch):
    """A project root with one code file and a results folder, which pipeline.results reads."""
    (tmp_path / "algos").mkdir()
    (tmp_path / "algos" / "ppo.py").write_text("LEARNING_RATE = 3e-4\n")
    folder = tmp_path / "docs" / "results"
    monkeypatch.setattr(results, "ROOT", tmp_path)
    monkeypatch.setattr(results, "RESULTS", folder)
    monkeypatch.setattr(results, "PAGE", folder / "README.md")
    return tmp_path


def write_result(tree, name, rates, success=0.9, episodes=50):
    folder = tree / "docs" / "results" / name
    (folder / "lift_v19_mujoco").mkdir(parents=True)
    (folder / "result.json").write_text(json.dumps({"command": f"snakemake --cores 2 reports/lift_v19.md --configfile "
                                                               f"config/{name}.yaml", "what": name, "success": success}))
    code = {"algos/ppo.py": hashlib.sha256((tree / "algos" / "ppo.py").read_bytes()).hexdigest()}
    per_seed = {str(s): {"success_rate": r, "successes": round(r * episodes), "episodes": episodes}
                for s, r in enumerate(rates)}
    prov = {"task": "lift", "reward": "v19", "algo": "ppo", "seeds": list(range(len(rates))),
            "env": {"curriculum_stage": 1, "backend": "mujoco"}, "train_wall_s": {s: 600.0 for s in per_seed},
            "code_sha256": code}
    (folder / "lift_v19_mujoco" / "ppo_provenance.json").write_text(json.dumps(prov))
    (folder / "lift_v19_mujoco" / "ppo.json").write_text(json.dumps({"per_seed": per_seed}))


def test_a_row_per_result_with_seeds_target_and_a_current_mark(tree):
    write_result(tree, "five", [0.9, 0.94, 0.96, 0.88, 1.0])
    write_result(tree, "three", [0.7, 0.8, 0.96])
    page = results.render()
    five = next(line for line in page.splitlines() if line.startswith("| [five]"))
    assert "| lift | 1 | v19 | ppo |  | 5 |" in five and "95% t-interval" in five and "| met |" in five
    assert "0: 90% (45/50, " in five and five.endswith("| current |")
    three = next(line for line in page.splitlines() if line.startswith("| [three]"))
    assert "range 70-96%" in three and "| not met |" in three and "t-interval" not in three


def test_a_code_change_marks_the_result_stale_naming_the_file(tree):
    write_result(tree, "five", [0.9, 0.94, 0.96, 0.88, 1.0])
    (tree / "algos" / "ppo.py").write_text("LEARNING_RATE = 1e-3\n")
    assert "stale: `algos/ppo.py` changed" in results.render()


def test_an_experiment_without_a_result_is_listed_with_its_command(tree):
    folder = tree / "docs" / "results" / "later"
    folder.mkdir(parents=True)
    (folder / "result.json").write_text(json.dumps({"command": "snakemake --cores 2 reports/x.md", "what": "x"}))
    page = results.render()
    assert "## Experiments without a result on record" in page and "`snakemake --cores 2 reports/x.md`" in page


def test_the_committed_page_is_the_generated_one():
    """Regenerate it after committing a result or changing code (`python -m pipeline.results`): a
    stale result then shows as stale."""
    assert results.PAGE.read_text() == results.render(), "docs/results/README.md is stale: python -m pipeline.results"


def test_adding_a_comparison_keeps_every_variant_with_its_provenance(tree):
    """`add` with a compare report among the targets copies each compared variant's evaluation
    outputs (its provenance JSON included: each becomes a row); without one, the experiment's own."""
    (tree / "config").mkdir()
    (tree / "config" / "x.yaml").write_text("algos: [ppo]\ncompare:\n  rewards: [v11, v19]\n  algos: [ppo]\n"
                                            "  backends: [mujoco]\n")
    for reward in ("v11", "v19"):
        ev = tree / "data" / "eval" / f"lift_{reward}_mujoco"
        ev.mkdir(parents=True)
        (ev / "ppo.json").write_text("{}")
        (ev / "ppo_provenance.json").write_text("{}")
    (tree / "reports" / "lift_compare").mkdir(parents=True)
    for report in ("lift_v19.md", "lift_compare.md", "lift_compare/curves.png"):
        (tree / "reports" / report).write_text(report)
    results.add("both", ["config/x.yaml"], ["reports/lift_v19.md", "reports/lift_compare.md"], 0.9, "x")
    got = tree / "docs" / "results" / "both"
    assert sorted(p.relative_to(got).as_posix() for p in got.rglob("*_provenance.json")) == [
        "lift_v11_mujoco/ppo_provenance.json", "lift_v19_mujoco/ppo_provenance.json"]
    assert (got / "lift_compare.md").exists() and (got / "lift_compare" / "curves.png").exists()
    results.add("own", ["config/x.yaml"], ["reports/lift_v19.md"], 0.9, "x")
    assert [p.parent.name for p in (tree / "docs" / "results" / "own").rglob("*_provenance.json")] == ["lift_v19_mujoco"]


def demos_experiment(tree, episodes, *more):
    """config/x.yaml (bc and sac, 20 demonstrations) and the files after it, its lift report, and
    the demos summary of the dataset of `episodes` demonstrations: what `add` reads."""
    (tree / "config").mkdir()
    (tree / "config" / "x.yaml").write_text("algos: [bc, sac]\ndemos:\n  episodes: 20\n")
    for name, text in more:
        (tree / "config" / name).write_text(text)
    (tree / "reports").mkdir()
    (tree / "reports" / "lift_v19.md").write_text("report")
    summary = tree / "data" / "demos" / "lift_mujoco" / "picker" / f"stage1_n{episodes}_seed0.json"
    summary.parent.mkdir(parents=True)
    summary.write_text('{"dataset_sha256": "abc", "success_rate": 1.0}')


def test_a_result_records_how_many_demonstrations_each_algorithm_read(tree):
    """`add` records the demos count of each algorithm that reads the dataset (bc here) and none for
    one that does not (sac), the later experiment file winning, and keeps the dataset's summary (its
    sha256, the controller's success); the page shows the count, and the command names every
    experiment file in Snakemake's order."""
    demos_experiment(tree, 5, ("y.yaml", "demos:\n  episodes: 5\n"))
    results.add("sweep", ["config/x.yaml", "config/y.yaml"], ["reports/lift_v19.md"], 0.9, "x")
    got = tree / "docs" / "results" / "sweep"
    spec = json.loads((got / "result.json").read_text())
    assert spec["demos"] == {"bc": 5}
    assert json.loads((got / "demos.json").read_text())["dataset_sha256"] == "abc"
    assert spec["command"].endswith("--configfile config/x.yaml config/y.yaml")
    write_result(tree, "sweep", [0.9, 0.94, 0.96, 0.88, 1.0])
    spec["command"] = "x"
    spec["demos"] = {"ppo": 5}
    (tree / "docs" / "results" / "sweep" / "result.json").write_text(json.dumps(spec))
    assert "| lift | 1 | v19 | ppo | 5 | 5 |" in results.render()


def test_a_change_to_the_controller_that_recorded_the_demonstrations_marks_their_learners_stale(tree):
    """The runs' provenance holds the train and evaluate stages' code; `add` records the demos
    stage's (the controller among it), so editing the controller marks stale the rows of the
    algorithms that read its demonstrations, and only those."""
    demos_experiment(tree, 20)
    picker = tree / "envs" / "controllers" / "picker.py"
    picker.parent.mkdir(parents=True)
    picker.write_text("CLOSE_AT = 0.01\n")
    results.add("x", ["config/x.yaml"], ["reports/lift_v19.md"], 0.9, "x")
    spec_path = tree / "docs" / "results" / "x" / "result.json"
    spec = json.loads(spec_path.read_text())
    assert "envs/controllers/picker.py" in spec["demos_code_sha256"]
    write_result(tree, "x", [0.9] * 5)    # a ppo row, its train and evaluate code current
    spec_path.write_text(json.dumps(spec | {"command": "x", "demos": {"ppo": 20}}))
    assert results.render().count("| current |") == 1
    picker.write_text("CLOSE_AT = 0.02\n")
    assert "stale: `envs/controllers/picker.py` changed" in results.render()
    spec_path.write_text(json.dumps(spec | {"command": "x", "demos": {"bc": 20}}))
    assert "| current |" in results.render()   # ppo read no demonstrations here


def test_points_of_a_demonstration_sweep_form_a_table_by_count(tree):
    """Results of one experiment file and the files that modify it, with the algorithm on different
    demonstration counts, become one table of success by count (0 where it read none); a lone count,
    or another experiment file's result, makes no sweep."""
    for name, configfile, demos, rates in [("full", "config/a.yaml", {"ppo": 100}, [1.0] * 5),
                                           ("five", "config/a.yaml config/a_n5.yaml", {"ppo": 5}, [0.5] * 5),
                                           ("none", "config/a.yaml config/a_n0.yaml", {}, [0.0] * 5),
                                           ("other", "config/b.yaml", {"ppo": 20}, [0.7] * 5)]:
        write_result(tree, name, rates)
        spec_path = tree / "docs" / "results" / name / "result.json"
        spec = json.loads(spec_path.read_text()) | {"configfile": configfile, "demos": demos}
        spec_path.write_text(json.dumps(spec))
    page = results.render()
    table = page.split("## Demonstration-count sweeps", 1)[1]
    assert "### lift, start 1, v19: `config/a.yaml` and its demonstration counts" in table
    lines = [line for line in table.splitlines() if line.startswith("| ") and "demos" not in line]
    assert [line.split(" | ")[0] for line in lines] == ["| 0", "| 5", "| 100"]
    assert "mean 50%" in lines[1] and "[five](five/)" in lines[1] and "[other]" not in table
    for name in ("five", "none"):
        shutil.rmtree(tree / "docs" / "results" / name)
    assert "## Demonstration-count sweeps" not in results.render()
