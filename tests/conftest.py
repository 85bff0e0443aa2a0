"""Fixtures shared by the stage tests (test_pipeline.py, test_resume.py)."""
import json

import pytest

from stagetools import stage, train_args

PPO_TOTAL = 512   # two rollouts of 4 envs x 64 steps: checkpoints 0, 256, 512


@pytest.fixture(scope="session")
def sanity(tmp_path_factory):
    path = tmp_path_factory.mktemp("sanity") / "lift_mujoco.json"
    path.write_text(json.dumps({"ok": True, "problems": []}))   # the env's own tests cover run_sanity
    return path


@pytest.fixture(scope="session")
def ppo_run(tmp_path_factory, sanity):
    out = tmp_path_factory.mktemp("runs") / "seed0"
    stage("train", *train_args(out, sanity, total=PPO_TOTAL))
    return out
