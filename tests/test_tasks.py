"""Tasks, inverse kinematics, curriculum and the scripted controller (is each task solvable?)."""
import mujoco
import numpy as np
import pytest

import envs
from envs import rewards
from envs.ik import top_down_ik
from envs.sanity import run_scripted
from pipeline.run import provenance


@pytest.mark.parametrize("target,yaw", [((0.2, 0.0, 0.0125), 0.0), ((0.18, 0.06, 0.05), 0.4),
                                        ((0.25, -0.08, 0.09), -0.7)])
def test_ik_puts_grasp_site_on_target_pointing_down(target, yaw):
    env = envs.make_vec_env("lift", "v19", num_envs=1)
    p = env.task.physics
    m, d = p.models[0], p.datas[0]
    d.qpos[:5] = top_down_ik(np.array(target), yaw)
    mujoco.mj_kinematics(m, d)
    site = p.site_id("grasp")
    np.testing.assert_allclose(d.site_xpos[site], target, atol=1e-9)
    gripper_axis = d.site_xmat[site].reshape(3, 3)[:, 0]
    assert gripper_axis[2] < -0.7                         # pointing down (up to 45 deg of tilt)
    closing = d.site_xmat[site].reshape(3, 3)[:, 1]
    face_angle = (np.arctan2(closing[1], closing[0]) - yaw) % (np.pi / 2)
    assert min(face_angle, np.pi / 2 - face_angle) < 0.05  # jaws close across a cube face


@pytest.mark.parametrize("dr", [False, True])
def test_scripted_controller_lifts_the_cube(dr):
    env = envs.make_vec_env("lift", "v19", num_envs=5, domain_randomization=dr)
    rows = run_scripted(env, 20, seed=11)
    assert np.mean([r["success_once"] for r in rows]) >= 0.9
    assert np.mean([r["max_cube_z"] for r in rows]) > 0.06


def test_scripted_controller_places_the_cube():
    env = envs.make_vec_env("pick_place", "staged", num_envs=5)
    rows = run_scripted(env, 10, seed=3)
    assert np.mean([r["success_at_end"] for r in rows]) >= 0.9


def test_without_a_grasp_there_is_no_success():
    # The success test must need the grasp: an arm that never closes its jaws never succeeds.
    env = envs.make_vec_env("lift", "v19", num_envs=4, curriculum_stage=2, max_episode_steps=60)
    env.reset(seed=0)
    for _ in range(60):
        _, _, _, trunc, infos = env.step(np.tile([0, -0.5, 0, 0, 0, 1.0], (4, 1)))
    assert trunc.all() and not infos["final_info"]["success_once"].any()
    assert (infos["final_info"]["grasp_steps"] == 0).all()


@pytest.mark.parametrize("stage", [0, 1, 2, 3])
def test_every_reset_env_starts_at_its_curriculum_stage(stage):
    env = envs.make_vec_env("lift", "v19", num_envs=3, curriculum_stage=stage, max_episode_steps=5)
    env.reset(seed=0)
    for _ in range(5):   # run into the time limit: the autoreset envs must start at the stage too
        env.step(np.zeros((3, 6)))
    s = env.task.read_state()
    distance = np.linalg.norm(s.grasp_pos - s.cube_pos, axis=1)
    vertical = s.grasp_pos[:, 2] - s.cube_pos[:, 2]
    if stage == 0:
        assert (distance > 0.05).all()
    elif stage == 1:
        np.testing.assert_allclose(vertical, 0.06, atol=0.01)
    else:
        assert (distance < 0.01).all()
    if stage == 3:   # the jaws start at the cube, closing: grasped within a few steps
        env = envs.make_vec_env("lift", "v19", num_envs=3, curriculum_stage=3)
        env.reset(seed=0)
        for _ in range(10):
            env.step(np.zeros((3, 6)))
        assert env.task.read_state().grasped.all()


def test_reward_versions_are_listed_from_files():
    for task in ("lift", "pick_place"):
        on_disk = sorted(p.stem for p in (rewards.HERE / task).glob("*.py") if p.stem != "__init__")
        assert rewards.available(task) == on_disk
    assert rewards.available("lift") == ["v11", "v19"]
    assert provenance.reward_fingerprint("lift", "v11") != provenance.reward_fingerprint("lift", "v19")
    assert rewards.module_path("lift", "v19").name == "v19.py"


def test_v19_rewards_the_grasp_more_than_v11():
    env = envs.make_vec_env("lift", "v19", num_envs=1, curriculum_stage=3)
    env.reset(seed=0)
    for _ in range(10):
        env.step(np.zeros((1, 6)))
    s = env.task.read_state()
    assert s.grasped.all()
    _, v11 = rewards.get("lift", "v11").compute(s)
    _, v19 = rewards.get("lift", "v19").compute(s)
    assert v11["grasp"][0] == 0.25 and v19["grasp"][0] == 1.5


def test_sanity_check_passes_and_catches_a_broken_success_test(monkeypatch):
    report = envs.run_sanity("lift", episodes=8, num_envs=4, random_steps=50)
    assert report["ok"], report["problems"]
    assert report["checks"]["determinism"]["identical"] and report["checks"]["scripted"]["success_rate"] >= 0.9
    from envs.tasks.lift import LiftTask
    monkeypatch.setattr(LiftTask, "evaluate", lambda self, s: s.hold_count >= 10 ** 6)
    broken = envs.run_sanity("lift", episodes=4, num_envs=4, random_steps=10)
    assert not broken["ok"] and "scripted controller succeeded in 0%" in broken["problems"][0]
