"""Reverse-curriculum starts (envs/reverse.py): training episodes start at states along successful
demonstrations, restored as recorded (at rest); each demonstration's start pointer moves back at the
bar and not before; finished pointers hand their episodes to the real start distribution; the
pointers are env state (exact resume); evaluation never starts from demonstrations. The DAG side
(the dataset an input of any algorithm's runs with env.reverse_curriculum) is in tests/test_dag.py.
"""
import shlex
import subprocess
import sys

import numpy as np
import pytest

import envs
from envs.demos import record
from envs.settings import ENV
from envs.tasks.base import STATE_LAYOUT
from pipeline.dag.params import merge
from pipeline.dag.registry import ROOT, STAGES, flags
from pipeline.run import checkpoints, cli, demos, settings, transitions
from stagetools import ENV as STAGE_ENV, PARAMS

# From the rest pose (stage 0) the picker succeeds at about step 105 (held 10 steps above lift_height).
RECORDED = {"max_episode_steps": 130, "curriculum_stage": 0}
REVERSE = {"curriculum_stage": 0, "reverse_curriculum": True, "curriculum_bar": 0.75, "curriculum_window": 4}
JOINT_VEL = slice(6, 12)      # joint velocities in the state observation (STATE_LAYOUT)
assert STATE_LAYOUT[1][:2] == ("joint_vel", 6)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    """3 picker demonstrations of lift from the rest pose, written as the demos stage writes them:
    (folder, the env settings they were recorded with)."""
    path = tmp_path_factory.mktemp("reverse") / "d"
    env = {**{k: ENV[k].default for k in settings.DEMOS_ENV}, **RECORDED}
    demos.write(path, record("lift", "picker", episodes=3, seed=0, **RECORDED),
                {"task": "lift", "backend": "mujoco", "controller": "picker", "env": env})
    return path, {**env, "backend": "mujoco"}


@pytest.fixture(scope="module")
def starts(dataset):
    path, env = dataset
    return transitions.start_states(path, "lift", env)


def reverse_env(starts, num_envs=3, seed=0, **overrides):
    return envs.make_vec_env("lift", "v19", num_envs=num_envs, seed=seed, max_episode_steps=10,
                             start_states=starts, **{**REVERSE, **overrides})


def test_start_states_end_at_each_demonstration_s_first_success(dataset, starts):
    path, _ = dataset
    episodes = list(demos.load(path).iterate_episodes())
    assert len(starts) == 3 and set(starts[0]) == {"qpos", "ctrl", "hold_count", "goal", "cube_spawn"}
    for ep, demo in zip(episodes, starts):
        first = int(np.flatnonzero(ep.infos["success"])[0])
        assert len(demo["qpos"]) == first + 1 and 90 < first < 120
        assert demo["hold_count"][-1] == ENV["hold_steps"].default, "the last start is the success state"


def test_a_start_from_a_demonstration_state_reproduces_it(dataset, starts):
    """Env i started at step t of a demonstration has its recorded configuration (arm joints, gripper,
    cube pose), targets and hold count, and observes what the demonstration observed at step t, but
    for the joint velocities, which are zero (the system is put at rest)."""
    path, _ = dataset
    episodes = list(demos.load(path).iterate_episodes())
    env = reverse_env(starts, seed=1)
    steps = [40, 80, len(starts[2]["qpos"]) - 1]        # reaching, grasping, the success state
    env.reverse.pointers[:] = steps
    obs, _ = env.reset(seed=1)
    task = env.task
    for i, (k, t) in enumerate(zip(env.reverse.episode_demo, env.reverse.episode_start)):
        assert t == steps[k]
        recorded = episodes[k]
        np.testing.assert_array_equal(task.physics.qpos[i], starts[k]["qpos"][t])
        np.testing.assert_array_equal(task.physics.qpos[i, task.arm_qpos], recorded.infos["start"]["qpos"][t][task.arm_qpos])
        np.testing.assert_array_equal(task.read_state().cube_pos[i], recorded.infos["state"]["cube_pos"][t])
        np.testing.assert_array_equal(task.target[i], starts[k]["ctrl"][t])
        assert task.hold_count[i] == recorded.infos["state"]["hold_count"][t]
        np.testing.assert_array_equal(task.physics.qvel[i], 0.0)
        moving = np.ones(obs.shape[1], dtype=bool)
        moving[JOINT_VEL] = False
        np.testing.assert_array_equal(obs[i, moving], recorded.observations[t][moving])
    assert set(env.reverse.episode_demo) == {0, 1, 2}, "seed 1 picks every demonstration once"


def test_pick_place_starts_restore_the_goal_too():
    """pick_place's start carries its goal (observed, and drawn as the goal marker) and the carried cube."""
    rec = record("pick_place", "picker", episodes=1, seed=2, max_episode_steps=130, curriculum_stage=0)
    ep = rec.episodes[0]
    t = ep.success.index(True) - 20        # carrying the cube towards the goal
    starts = [{k: np.asarray(v)[:t + 1] for k, v in ep.starts.items()}]
    env = envs.make_vec_env("pick_place", num_envs=1, seed=0, max_episode_steps=10, start_states=starts,
                            **REVERSE)
    obs, _ = env.reset(seed=0)
    moving = np.ones(obs.shape[1], dtype=bool)
    moving[JOINT_VEL] = False
    np.testing.assert_array_equal(obs[0, moving], ep.state_obs[t][moving])
    np.testing.assert_array_equal(env.task.physics.site_xpos[0, env.task.sites["goal"]], ep.starts["goal"][t])


def test_the_success_state_start_succeeds_when_the_policy_holds_still(starts):
    env = reverse_env(starts, num_envs=2)
    env.reset(seed=0)
    success_states = [len(starts[k]["qpos"]) - 1 for k in env.reverse.episode_demo]
    for _ in range(10):
        *_, infos = env.step(np.zeros((2, 6)))
    assert infos["final_info"]["success_once"].all()
    assert infos["final_info"]["start_step"].tolist() == success_states, "episodes report the step they started at"


def test_the_pointer_moves_back_at_the_bar_and_not_before(starts):
    env = reverse_env(starts, num_envs=4, reverse_step=30)
    rc = env.reverse
    end = len(starts[0]["qpos"]) - 1

    def finish(successes, step, demo=0):
        """Episodes on demonstration `demo` started at `step` end with these successes; its pointer."""
        rc.episode_demo[:len(successes)], rc.episode_start[:len(successes)] = demo, step
        rc.finish(np.arange(len(successes)), np.array(successes, dtype=bool))
        return int(rc.pointers[demo])

    end1 = len(starts[1]["qpos"]) - 1
    assert finish([True, True, True], end1, demo=1) == end1, "3 successes: the window of 4 is not full"
    assert finish([True, True, False], end) == end
    assert finish([False], end) == end, "T, T, F, F: 50% is under the bar"
    assert finish([True, True], end) == end, "F, F, T, T: the window slides, still 50%"
    assert finish([True], end) == end - 30, "F, T, T, T: 75% reaches the bar; back reverse_step steps"
    assert finish([True, True, True], end) == end - 30, "episodes begun at the old pointer do not count"
    assert finish([True, True, True], end - 30) == end - 30, "a fresh window at every pointer"
    assert finish([True], end - 30) == end - 60
    assert list(rc.pointers[1:]) == [end1, len(starts[2]["qpos"]) - 1], "each demonstration its own pointer"
    assert finish([True] * 4, end - 60) == end - 90
    assert finish([True] * 4, end - 90) == 0, "never below 0"
    assert finish([True] * 4, 0) == 0


def test_finished_pointers_start_from_the_real_start_distribution(starts):
    """A demonstration whose pointer is at 0 is done: an episode that picks it starts where reset puts
    it, curriculum_stage's start; with every pointer at 0, every episode does, as without the curriculum."""
    env = reverse_env(starts, num_envs=8)
    env.reverse.pointers[:] = [0, 50, 0]
    env.reset(seed=4)
    on_demo = env.reverse.episode_demo == 1
    assert on_demo.any() and not on_demo.all(), "seed 4: some envs pick demonstration 1, some a finished one"
    assert (env.reverse.episode_start == np.where(on_demo, 50, 0)).all()
    plain = envs.make_vec_env("lift", "v19", num_envs=8, seed=4, max_episode_steps=10, curriculum_stage=0)
    plain.reset(seed=4)
    np.testing.assert_array_equal(env.task.physics.qpos[~on_demo], plain.task.physics.qpos[~on_demo])
    env.reverse.pointers[:] = 0
    obs, _ = env.reset(seed=4)
    np.testing.assert_array_equal(obs, plain.reset(seed=4)[0])
    assert (env.reverse.episode_demo == -1).all() and (env.reverse.episode_start == 0).all()


def test_a_restored_env_continues_mid_curriculum_bit_for_bit(starts):
    """get_state/set_state mid-curriculum: pointers, windows and where each episode started travel
    with the env, which then starts and ends the same episodes from the same states (bar 0: every
    pointer moves back after each 2 episodes started at it, so they move during the comparison)."""
    moving = {"reverse_step": 25, "curriculum_bar": 0.0, "curriculum_window": 2}
    env = reverse_env(starts, **moving)
    env.reset(seed=0)
    rng = np.random.default_rng(0)
    for a in rng.uniform(-1, 1, (35, 3, 6)):
        env.step(a)
    assert (env.reverse.pointers < [len(s["qpos"]) - 1 for s in starts]).any(), "the pointers moved"
    state = env.get_state()
    other = reverse_env(starts, seed=7, **moving)
    other.reset(seed=7)
    other.set_state(state)
    starts_seen = []
    for a in rng.uniform(-1, 1, (100, 3, 6)):
        mine, theirs = env.step(a), other.step(a)
        np.testing.assert_array_equal(mine[0], theirs[0])
        np.testing.assert_array_equal(mine[1], theirs[1])
        if "final_info" in mine[4]:
            np.testing.assert_array_equal(mine[4]["final_info"]["start_step"], theirs[4]["final_info"]["start_step"])
            starts_seen += mine[4]["final_info"]["start_step"].tolist()
    np.testing.assert_array_equal(env.reverse.pointers, other.reverse.pointers)
    assert env.reverse.windows == other.reverse.windows
    assert len(set(starts_seen)) > 3 and 0 in starts_seen, f"demonstration starts moving back, then real starts: {starts_seen}"


def test_evaluation_never_starts_from_demonstrations():
    meta = {"algo": "ppo", "hparams": {}}
    settings_ = checkpoints.policy_env("ppo", {"obs_mode": "state", **REVERSE}, [(None, meta)])
    assert settings_["reverse_curriculum"] is False
    env = envs.make_vec_env("lift", "v19", num_envs=2, seed=0, max_episode_steps=5, **settings_)
    assert env.reverse is None


def test_refusals(starts, dataset):
    with pytest.raises(ValueError, match="no start states"):
        envs.make_vec_env("lift", "v19", num_envs=1, **REVERSE)
    with pytest.raises(ValueError, match="start_states given, but reverse_curriculum is off"):
        envs.make_vec_env("lift", "v19", num_envs=1, start_states=starts)
    with pytest.raises(ValueError, match="the reverse curriculum replaces the stage curriculum"):
        reverse_env(starts, curriculum_from=3)
    with pytest.raises(ValueError, match=r"task 'paper_square' cannot start .*valid tasks: \['lift', 'pick_place'\]"):
        envs.make_vec_env("paper_square", num_envs=1, reverse_curriculum=True, start_states=starts)
    path, env = dataset
    with pytest.raises(cli.StageError, match="env.max_episode_steps is 130, the run's 200"):
        transitions.start_states(path, "lift", {**env, "max_episode_steps": 200})


def test_params_refuse_what_the_reverse_curriculum_cannot_do():
    from stagetools import params_errors

    def walk(p):
        p["task"], p["reward"], p["env"]["reverse_curriculum"] = "walk", "v2", True

    def with_stages(p):
        p["env"].update(reverse_curriculum=True, curriculum_stage=0, curriculum_from=3)
    assert "env.reverse_curriculum: task walk cannot start episodes from recorded states; valid tasks: lift, " \
           "pick_place" in params_errors(walk)
    assert "set env.curriculum_from to -1 (got 3)" in params_errors(with_stages)


def test_any_algorithm_reads_the_demonstrations_with_a_reverse_curriculum():
    """The one rule of the DAG edges and the train command line: an algorithm learning from
    demonstrations, or any algorithm with env.reverse_curriculum."""
    assert not settings.reads_demos("ppo", {}, {"reverse_curriculum": False})
    assert settings.reads_demos("ppo", {}, {"reverse_curriculum": True}) and settings.reads_demos("bc", {}, {})
    assert settings.algo_blocks("ppo", {}, {"reverse_curriculum": True}) == ["ppo", "demos"]
    assert settings.algo_blocks("ppo", {}, {"reverse_curriculum": False}) == ["ppo"]


def run_stage(module, args, cwd):
    proc = subprocess.run([sys.executable, "-m", f"pipeline.{module}", *map(str, args)], cwd=cwd,
                          capture_output=True, text=True, env={**STAGE_ENV, "PYTHONPATH": str(ROOT)})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc


def test_a_chunked_ppo_run_with_reverse_starts_ends_with_the_uninterrupted_weights(tmp_path, sanity):
    """The train stage reads the start states from the demos stage's dataset (its sha256 in the run's
    identity), the pointers move during the run (bar 0: after every episode started at them), and a
    run cut into chunks, each a fresh process restoring the env's pointers, ends with the same weights."""
    import pandas as pd
    p = merge(PARAMS, {"env": {**RECORDED, "reverse_curriculum": True, "curriculum_bar": 0.0, "curriculum_window": 1,
                               "reverse_step": 30},
                       "demos": {"episodes": 3}, "ppo": {"total_timesteps": 1536}, "checkpoint_every": 256})
    path = demos.dataset_path("lift", "mujoco", p["demos"], 0)
    run_stage("demos", ["--task", "lift", "--backend", "mujoco", "--out", path, "--summary", demos.summary_path(path),
                        *shlex.split(flags(STAGES["demos"], p))], tmp_path)
    for name, chunk in (("whole", 0), ("cut", 768)):
        q = merge(p, {"train": {"chunk_steps": chunk}})
        assert "--demos.episodes 3" in flags(STAGES["train"], q, "ppo"), "ppo's run takes the demos block"
        run_stage("train", ["--task", "lift", "--reward", "v19", "--backend", "mujoco", "--algo", "ppo", "--seed", 0,
                            "--sanity", sanity, "--out", name, "--threads", 1,
                            *shlex.split(flags(STAGES["train"], q, "ppo"))], tmp_path)
    log = pd.read_parquet(tmp_path / "whole" / "train_log.parquet")
    assert log["start_step"].iloc[0] > 100 and log["start_step"].min() < 90, "the starts moved back in training"
    pd.testing.assert_series_equal(log["start_step"], pd.read_parquet(tmp_path / "cut" / "train_log.parquet")["start_step"])
    meta = checkpoints.intact(tmp_path / "whole")[-1][1]
    assert meta["demos"]["sha256"] == demos.fingerprint(tmp_path / path)
    assert meta["trained_env"]["reverse_curriculum"] is True
    assert checkpoints.same_weights(checkpoints.final_weights(tmp_path / "whole"), checkpoints.final_weights(tmp_path / "cut"))
