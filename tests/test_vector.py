"""The batched vector env's guarantees: the devlog bugs as regression tests."""
import numpy as np
import pytest

import envs


def rollout(env, actions_fn, steps, log):
    """A training loop's rollout: `steps` steps, episodes that end appended to `log`."""
    for _ in range(steps):
        _, reward, term, trunc, infos = env.step(actions_fn())
        log["rewards"].append(reward.copy())
        if "final_info" in infos:
            for i in np.flatnonzero(infos["_final_info"]):
                log["episodes"].append((i, {k: v[i] for k, v in infos["final_info"].items() if not k.startswith("_")}))


def test_episode_spanning_rollouts_is_counted_whole():
    # Devlog 000: 300-step episodes collected in rollouts of 128 were reported as 44-step fragments.
    env = envs.make_vec_env("lift", "v19", num_envs=3, seed=0, max_episode_steps=300)
    env.reset(seed=0)
    rng = np.random.default_rng(0)
    log = {"rewards": [], "episodes": []}
    for _ in range(3):   # 384 steps: every env finishes exactly one episode inside the third rollout
        rollout(env, lambda: rng.uniform(-1, 1, (3, 6)), 128, log)
    assert len(log["episodes"]) == 3
    rewards = np.stack(log["rewards"])
    for i, stats in log["episodes"]:
        assert stats["episode_len"] == 300
        assert stats["return"] == pytest.approx(rewards[:300, i].sum())


def test_partial_reset_leaves_other_envs_bit_identical():
    # Devlog 000: resetting the done envs stepped (or reset) every env.
    a = envs.make_vec_env("lift", "v19", num_envs=4, seed=0, curriculum_stage=1)
    b = envs.make_vec_env("lift", "v19", num_envs=4, seed=0, curriculum_stage=1)
    a.reset(seed=0)
    b.reset(seed=0)
    rng = np.random.default_rng(1)
    for t in range(40):
        actions = rng.uniform(-1, 1, (4, 6))
        a.step(actions)
        b.step(actions)
        if t == 20:
            obs, _ = b.reset(options={"reset_mask": np.array([True, False, True, False])})
    for i in (1, 3):   # untouched envs: same physics state, bit for bit
        assert np.array_equal(a.task.physics.qpos[i], b.task.physics.qpos[i])
        assert np.array_equal(a.task.physics.qvel[i], b.task.physics.qvel[i])
    assert not np.array_equal(a.task.physics.qpos[0], b.task.physics.qpos[0])


def test_autoreset_of_one_env_leaves_the_others_alone():
    # Env 0 hits its time limit (different seeds give no different lengths, so use a mask-free check):
    # compare a 2-env batch with single envs stepped alone; the autoreset of env 0 must not move env 1.
    pair = envs.make_vec_env("lift", "v19", num_envs=2, seed=0, max_episode_steps=10)
    pair.reset(seed=[0, 1])
    alone = envs.make_vec_env("lift", "v19", num_envs=1, seed=1, max_episode_steps=10)
    alone.reset(seed=1)
    rng = np.random.default_rng(2)
    for _ in range(25):
        actions = rng.uniform(-1, 1, (2, 6))
        pair.step(actions)
        alone.step(actions[1:])
    assert np.array_equal(pair.task.physics.qpos[1], alone.task.physics.qpos[0])


def test_final_info_reports_every_statistic_and_success():
    # Devlog 001: success was missing from final_info, so training logged 0% success.
    env = envs.make_vec_env("lift", "v19", num_envs=2, seed=0, max_episode_steps=120)
    from envs.sanity import run_scripted
    rows = run_scripted(env, 2, seed=0)
    for row in rows:
        for key in ("return", "episode_len", "success_once", "success_at_end", "max_cube_z", "grasp_steps",
                    "reward/reach", "reward/grasp", "reward/lift", "reward/hold"):
            assert key in row
        assert row["success_once"] and row["grasp_steps"] > 0 and row["max_cube_z"] > 0.06
        components = sum(v for k, v in row.items() if k.startswith("reward/"))
        assert components == pytest.approx(row["return"])


def test_reward_components_sum_to_reward_each_step():
    for task, reward in [("lift", "v11"), ("lift", "v19"), ("pick_place", "staged"), ("pick_place", "sparse")]:
        env = envs.make_vec_env(task, reward, num_envs=2, seed=0, curriculum_stage=3)
        env.reset(seed=0)
        for _ in range(5):
            env.step(np.zeros((2, 6)))
            total, parts = env.task.reward_fn.compute(env.task.read_state())
            np.testing.assert_allclose(sum(parts.values()), total)


def test_same_seed_same_trajectory():
    trajectories = []
    for _ in range(2):
        env = envs.make_vec_env("pick_place", "staged", num_envs=2, seed=3)
        obs, _ = env.reset(seed=3)
        rng = np.random.default_rng(0)
        steps = [obs]
        for _ in range(60):
            steps.append(env.step(rng.uniform(-1, 1, (2, 6)))[0])
        trajectories.append(np.stack(steps))
    assert np.array_equal(*trajectories)
    other = envs.make_vec_env("pick_place", "staged", num_envs=2)
    assert not np.array_equal(other.reset(seed=4)[0], trajectories[0][0])


def test_bad_actions_and_versions_fail_clearly():
    env = envs.make_vec_env("lift", "v19", num_envs=2, seed=0)
    env.reset(seed=0)
    with pytest.raises(ValueError, match=r"shape \(2, 6\)"):
        env.step(np.zeros((2, 5)))
    with pytest.raises(ValueError, match="non-finite action for env"):
        env.step(np.array([[0, 0, 0, 0, 0, 0], [0, np.nan, 0, 0, 0, 0]]))
    with pytest.raises(ValueError, match=r"unknown reward version 'v12'.*\['v11', 'v19'\]"):
        envs.make_vec_env("lift", "v12", num_envs=1)
    with pytest.raises(ValueError, match=r"unknown task 'stack'.*\['lift', 'paper_square', 'pick_place', 'walk'\]"):
        envs.make_vec_env("stack", "v19", num_envs=1)
    with pytest.raises(TypeError, match="unknown env setting"):
        envs.make_vec_env("lift", "v19", num_envs=1, max_steps=10)
    with pytest.raises(ValueError, match="obs_mode 'goal' needs a reward computable from goals.*sparse"):
        envs.make_vec_env("pick_place", "staged", num_envs=1, obs_mode="goal")


def test_a_simulation_blow_up_ends_that_episode_only():
    """A blown-up simulation in env 1 ends env 1's episode there (terminated, `unstable`, reward 0
    for the step, the episode's own statistics) and restarts it; env 0 goes on bit-identical."""
    env, twin = (envs.make_vec_env("lift", "v19", num_envs=2, seed=0) for _ in range(2))
    env.reset(seed=0)
    twin.reset(seed=0)
    for _ in range(5):
        env.step(np.full((2, 6), 0.3))
        twin.step(np.full((2, 6), 0.3))
    before = {k: v.copy() for k, v in env.episode_stats_so_far().items()}
    env.task.physics.datas[1].qvel[0] = np.nan   # a blown-up simulation in env 1
    obs, reward, terminated, truncated, infos = env.step(np.full((2, 6), 0.3))
    t_obs, t_reward, *_ = twin.step(np.full((2, 6), 0.3))
    assert terminated.tolist() == [False, True] and not truncated.any() and reward[1] == 0.0
    info = {k: v[1] for k, v in infos["final_info"].items()}
    assert info["unstable"] and info["terminated"] and info["episode_len"] == 6
    assert info["return"] == before["return"][1] and info["max_cube_z"] == before["max_cube_z"][1]
    assert np.isfinite(obs).all() and env.episode_stats_so_far()["episode_len"].tolist() == [6, 0]
    np.testing.assert_array_equal(obs[0], t_obs[0])
    assert reward[0] == t_reward[0]
    assert not infos["final_info"]["unstable"][0] or not infos["_final_info"][0]


def test_pixel_observations_stack_frames_and_restart_stack_on_reset():
    env = envs.make_vec_env("lift", "v19", num_envs=2, seed=0, obs_mode="pixels", frame_stack=3,
                            max_episode_steps=5)
    obs, _ = env.reset(seed=0)
    assert obs.shape == (2, 9, 84, 84) and obs.dtype == np.uint8
    assert np.array_equal(obs[:, :3], obs[:, 6:])           # at reset: the first frame, repeated
    move = np.tile([0.0, -1.0, 1.0, 0.0, 1.0, 0.0], (2, 1))
    for _ in range(4):
        obs, *_ = env.step(move)
    assert not np.array_equal(obs[:, 3:6], obs[:, 6:])      # frames differ while the arm moves
    obs, _, _, trunc, infos = env.step(move)                 # 5th step: time limit, autoreset
    assert trunc.all()
    assert np.array_equal(obs[:, :3], obs[:, 6:])            # the new episode's stack holds no old frame
    assert not np.array_equal(infos["final_obs"][0], obs[0])


def test_cube_leaving_the_table_terminates_the_episode():
    # A cube knocked off the table can't be recovered; it used to fall onto the floor and, once,
    # bounce to z = 198 m. Now the episode terminates (no bootstrapping) the step it leaves the top.
    env = envs.make_vec_env("lift", "v19", num_envs=2, seed=0)
    env.reset(seed=0)
    d = env.task.physics.datas[1]
    d.qpos[env.task.cube_qpos:env.task.cube_qpos + 3] = [0.62, 0.0, 0.0125]   # past the table edge (0.60)
    _, _, terminated, truncated, infos = env.step(np.zeros((2, 6)))
    assert terminated.tolist() == [False, True] and not truncated.any()
    assert infos["final_info"]["episode_len"][1] == 1
