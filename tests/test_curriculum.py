"""The automatic curriculum (envs/vector.py): training starts at an easy stage and moves one stage
harder each time the success rate of the last episodes at the current stage reaches the bar; the
stage is part of the env's state (exact resume); evaluation always runs at env.curriculum_stage."""
import numpy as np
import pytest

import envs
from envs.controllers.picker import ScriptedPicker
from pipeline.run import checkpoints
from stagetools import final_weights, same_weights, stage, train_args

CURRICULUM = dict(curriculum_stage=0, curriculum_from=3, curriculum_bar=0.75, curriculum_window=4)


def test_moves_one_stage_at_the_bar_and_never_skips():
    env = envs.make_vec_env("lift", "v19", num_envs=4, seed=0, max_episode_steps=5, **CURRICULUM)
    env.reset(seed=0)
    assert env.cfg.curriculum_stage == 3

    def finish(successes, stage):
        env._episode_stage[:] = stage
        env._advance_curriculum(np.arange(len(successes)), np.array(successes, dtype=bool))
        return env.cfg.curriculum_stage

    assert finish([True, True, False], 3) == 3, "3 episodes: the window of 4 is not full"
    assert finish([False], 3) == 3, "T, T, F, F: 50% is under the bar"
    assert finish([True, True], 3) == 3, "F, F, T, T: the window slides, still 50%"
    assert finish([True], 3) == 2, "F, T, T, T: 75% reaches the bar"
    assert finish([True, True, True, True], 3) == 2, "episodes begun at the previous stage do not count"
    assert finish([True, True, True], 2) == 2, "a fresh window at every stage: 3 successes are not 4"
    assert finish([True], 2) == 1
    assert finish([True] * 4, 1) == 0
    assert finish([True] * 8, 0) == 0, "never past curriculum_stage"


def test_training_episodes_report_their_stage_and_move_down_in_order():
    """The scripted picker solves every stage: the stage of successive episodes steps 3, 2, 1, 0."""
    env = envs.make_vec_env("lift", "v19", num_envs=2, seed=0, max_episode_steps=200, **CURRICULUM)
    picker = ScriptedPicker(env)
    env.reset(seed=0)
    picker.reset()
    stages = []
    while len(stages) < 24:
        *_, infos = env.step(picker.act())
        if "final_info" in infos:
            done = np.flatnonzero(infos["_final_info"])
            stages += [int(infos["final_info"]["curriculum_stage"][i]) for i in done]
            picker.reset(done)
    assert stages[0] == 3 and stages[-1] == 0, stages
    assert all(b in (a, a - 1) for a, b in zip(stages, stages[1:])), f"a skipped or reversed stage: {stages}"


def test_mixed_starts_come_from_passed_stages_and_do_not_count_for_the_bar():
    """With curriculum_mix, some episodes start at an easier stage the curriculum has passed (never at
    a harder one, never when there is none), and only episodes at the current stage fill the window."""
    env = envs.make_vec_env("lift", "v19", num_envs=8, seed=0, max_episode_steps=2,
                            **{**CURRICULUM, "curriculum_mix": 0.5})
    env.reset(seed=0)
    assert (env._episode_stage == 3).all(), "at the first stage no easier stage is passed yet"
    env.cfg.curriculum_stage = 1
    seen = []
    for _ in range(40):
        env.step(np.zeros((8, 6)))
        *_, infos = env.step(np.zeros((8, 6)))
        seen += infos["final_info"]["curriculum_stage"].astype(int).tolist()
        assert env.cfg.curriculum_stage == 1 or env.cfg.curriculum_stage == 0
        if env.cfg.curriculum_stage == 0:
            break
    counts = np.bincount(seen, minlength=4)
    assert counts[0] == 0 and counts[1] > 0 and counts[2] > 0 and counts[3] > 0, counts
    assert 0.3 < counts[1] / counts.sum() < 0.7, f"about half at the current stage: {counts}"
    # Each env's start pose is the one of the stage it reports: stage 1 leaves the jaws open above
    # the cube (6 cm up), stage 3 with the jaws on it.
    env.reset(seed=1)
    z = env.task.read_state().grasp_pos[:, 2] - env.task.read_state().cube_pos[:, 2]
    for stage, height in zip(env._episode_stage, z):
        assert (height > 0.04) == (stage == 1), (stage, height)


def test_mixed_starts_keep_their_own_window():
    env = envs.make_vec_env("lift", "v19", num_envs=4, seed=0, max_episode_steps=5,
                            **{**CURRICULUM, "curriculum_mix": 0.5})
    env.reset(seed=0)
    env.cfg.curriculum_stage = 2
    env._episode_stage[:] = [2, 3, 3, 3]
    env._advance_curriculum(np.arange(4), np.ones(4, dtype=bool))
    assert env._window == [True], "the stage-3 starts did not count"


@pytest.mark.parametrize("mix", [0.0, 0.5])
def test_resume_restores_the_stage(mix):
    """The restored env continues bit for bit, its mixed starts included (10-step episodes)."""
    settings = {**CURRICULUM, "curriculum_mix": mix}
    env = envs.make_vec_env("lift", "v19", num_envs=2, seed=0, max_episode_steps=10, **settings)
    env.cfg.curriculum_stage, env._window = 2, [True, False]
    env.reset(seed=0)
    state = env.get_state()
    other = envs.make_vec_env("lift", "v19", num_envs=2, seed=5, max_episode_steps=10, **settings)
    other.reset(seed=5)
    other.set_state(state)
    assert other.cfg.curriculum_stage == 2 and other._window == [True, False]
    rng = np.random.default_rng(0)
    for a in rng.uniform(-1, 1, (30, 2, 6)):
        np.testing.assert_array_equal(env.step(a)[0], other.step(a)[0])
    np.testing.assert_array_equal(env._episode_stage, other._episode_stage)


def test_evaluation_runs_at_the_final_stage_without_a_curriculum():
    meta = {"algo": "ppo", "hparams": {}}
    settings = checkpoints.policy_env("ppo", {"obs_mode": "state", **CURRICULUM}, [(None, meta)])
    env = envs.make_vec_env("lift", "v19", num_envs=3, seed=0, max_episode_steps=5, **settings)
    env.reset(seed=0)
    assert not env.curriculum and env.cfg.curriculum_stage == 0
    rest = env.task.rest_qpos[:5]
    assert np.allclose(env.task.physics.qpos[:, env.task.arm_qpos[:5]], rest, atol=0.06), "stage 0: the arm at rest"


@pytest.mark.parametrize("algo", ["ppo"])
def test_chunked_curriculum_run_ends_with_the_uninterrupted_weights(tmp_path, sanity, algo):
    """The stage moves during the run (bar 5% over 2 episodes at stage 3), and a run cut into chunks,
    each a fresh process restoring the env's stage, ends with the same weights."""
    extra = ["--env.curriculum_from", "3", "--env.curriculum_stage", "0", "--env.curriculum_bar", "0.05",
             "--env.curriculum_window", "2"]
    whole = tmp_path / "whole" / "seed0"
    stage("train", *train_args(whole, sanity, algo=algo, total=2048), *extra)
    cut = tmp_path / "cut" / "seed0"
    stage("train", *train_args(cut, sanity, algo=algo, total=2048, chunk_steps=1024), *extra)
    import pandas as pd
    log = pd.read_parquet(whole / "train_log.parquet")
    assert log["curriculum_stage"].max() == 3 and log["curriculum_stage"].min() < 3, "the stage moved in training"
    assert log["curriculum_stage"].is_monotonic_decreasing
    pd.testing.assert_series_equal(log["curriculum_stage"], pd.read_parquet(cut / "train_log.parquet")["curriculum_stage"])
    assert same_weights(final_weights(whole), final_weights(cut))
