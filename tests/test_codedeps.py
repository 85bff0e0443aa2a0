"""Code dependencies and reward fingerprints follow what the code imports (pipeline/dag/codedeps.py).

The smoke DAG (`make test`) also checks, for every stage it runs, that the project modules the
stage really loaded are among its declared deps (tests/e2e/smoke.py check_imports).
"""
import shutil

import pytest

from envs import rewards
from pipeline.dag import codedeps
from pipeline.dag.registry import STAGES, code_files
from pipeline.run import provenance


@pytest.fixture
def tree(tmp_path, monkeypatch):
    """A copy of the project's code whose files a test may edit; codedeps reads it."""
    for package in codedeps.PACKAGES:
        shutil.copytree(codedeps.ROOT / package, tmp_path / package,
                        ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(codedeps, "ROOT", tmp_path)
    monkeypatch.setattr(codedeps, "ASSETS", tmp_path / "envs" / "assets")
    monkeypatch.setattr(provenance, "ROOT", tmp_path)
    codedeps.direct_imports.cache_clear()
    yield tmp_path
    codedeps.direct_imports.cache_clear()


@pytest.mark.parametrize("task", rewards.tasks())
def test_editing_any_reward_code_a_version_imports_changes_its_fingerprint(tree, task):
    for version in rewards.available(task):
        for rel in codedeps.closure([f"envs/rewards/{task}/{version}.py"]):
            if not rel.startswith(f"envs/rewards/{task}/"):
                continue
            before = provenance.reward_fingerprint(task, version)
            path = tree / rel
            original = path.read_text()
            path.write_text(original + "\n# edited\n")
            assert provenance.reward_fingerprint(task, version) != before, f"{task} {version}: editing {rel}"
            path.write_text(original)


def test_a_reward_version_that_imports_another_is_refused(tree):
    """dvc.yaml names a run's reward code by template, so a version may import shared terms only."""
    v2 = tree / "envs/rewards/walk/v2.py"
    v2.write_text(v2.read_text() + "\nfrom envs.rewards.walk.v1 import compute as _v1\n")
    with pytest.raises(ValueError, match="envs/rewards/walk/v1.py is imported"):
        code_files(STAGES["train"], {"task": "walk", "reward": "v2", "backend": "genesis", "algo": "ppo"},
                   {"task": "${task}", "reward": "${reward}", "backend": "${backend}"})


def test_imports_inside_functions_and_model_files_are_deps():
    deps = code_files(STAGES["train"], {"task": "lift", "reward": "v19", "backend": "mujoco", "algo": "drqv2"})
    assert {"algos/drqv2/agent.py", "algos/drqv2/replay.py", "envs/assets/tabletop.xml",
            "envs/assets/so101.xml", "pipeline/run/checkpoints.py"} <= set(deps)
    assert not any(p in deps for p in ("algos/ppo.py", "algos/sb3.py", "envs/backends/genesis.py",
                                       "envs/tasks/walk.py", "envs/rewards/lift/v11.py"))
