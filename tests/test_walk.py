"""The Go2 walking task (envs/tasks/walk.py, rewards envs/rewards/walk/v1.py and v2.py) on Genesis gs.cpu,
as a BatchedEnv like every task (envs.make_vec_env("walk", ...)).

Genesis is installed by make setup (requirements-genesis.txt); without it these tests fail. One scene of
4 envs is built for the module: the first build in a fresh kernel cache compiles (~55 s measured on our
2-core machine under load), later ones load the cache.
"""
import types

import numpy as np
import pytest


import envs  # noqa: E402
from envs import rewards  # noqa: E402
from envs.tasks.walk import DEFAULT_POSE, INIT_HEIGHT  # noqa: E402

N = 4


@pytest.fixture(scope="module")
def env():
    vec = envs.make_vec_env("walk", "v2", N, seed=0, backend="genesis")
    yield vec
    vec.close()


def _physics(env):
    st = env.get_state()["task"]
    return st["qpos"], st["vel"]


def test_partial_reset_leaves_other_envs_bit_identical(env):
    env.reset(seed=1)
    rng = np.random.default_rng(0)
    for _ in range(15):
        env.step(rng.uniform(-1, 1, (N, 12)))
    qpos, vel = _physics(env)
    obs_before, elapsed_before = env._state_obs.copy(), env._elapsed.copy()
    ret_before = env._stats["return"].copy()
    assert np.abs(vel).max() > 1e-3, "the envs must be moving for the test to mean anything"

    mask = np.array([False, True, False, False])
    obs, _ = env.reset(options={"reset_mask": mask})
    qpos2, vel2 = _physics(env)
    others = ~mask
    np.testing.assert_array_equal(qpos2[others], qpos[others])
    np.testing.assert_array_equal(vel2[others], vel[others])
    np.testing.assert_array_equal(obs[others], obs_before[others])
    np.testing.assert_array_equal(env._elapsed[others], elapsed_before[others])
    np.testing.assert_array_equal(env._stats["return"][others], ret_before[others])
    # The reset env is at its start: base at INIT_HEIGHT, upright, at rest, joints near the default pose.
    s = env.task.read_state()
    np.testing.assert_allclose(s.base_pos[1], [0.0, 0.0, INIT_HEIGHT], atol=1e-12)
    np.testing.assert_allclose(s.base_quat[1], [1.0, 0.0, 0.0, 0.0], atol=1e-12)
    assert not vel2[1].any()
    assert np.abs(s.dof_pos[1] - DEFAULT_POSE).max() <= env.task.init_noise + 1e-12
    assert env._elapsed[1] == 0 and env._stats["return"][1] == 0


def test_final_info_reports_whole_episodes_with_their_stats(env):
    saved = env.cfg.max_episode_steps
    env.cfg.max_episode_steps = 40
    try:
        env.reset(seed=2)
        ret = np.zeros(N)
        finished = []
        for t in range(1, 101):
            obs, r, term, trunc, infos = env.step(np.zeros((N, 12)))     # stand still: no env falls
            ret += r
            if "final_info" in infos:
                fi, mask = infos["final_info"], infos["_final_info"]
                for i in np.flatnonzero(mask):
                    finished.append((t, i, {k: v[i] for k, v in fi.items() if not k.startswith("_")}, ret[i]))
                    ret[i] = 0.0
                assert (obs[mask, 9:21] ** 2).sum(1).max() <= 12 * env.task.init_noise ** 2 + 1e-9, \
                    "SAME_STEP autoreset: a finished env's returned obs is its reset obs"
                assert all(infos["final_obs"][i] is not None for i in np.flatnonzero(mask))
        assert [t for t, *_ in finished] == [40] * N + [80] * N
        for t, i, stats, summed in finished:
            assert stats["episode_len"] == 40
            assert not stats["terminated"] and not stats["success_once"]
            np.testing.assert_allclose(stats["return"], summed, rtol=1e-12)
            parts = [v for k, v in stats.items() if k.startswith("reward/")]
            assert len(parts) == 5
            np.testing.assert_allclose(sum(parts), stats["return"], rtol=1e-9)
            assert 0.22 < stats["mean_base_height"] < 0.32
            assert abs(stats["distance_x"]) < 0.3 and abs(stats["mean_forward_vel"]) < 0.5
            assert stats["reward/height"] > 0.5 * 2.5 * 40    # standing near 0.27 m
    finally:
        env.cfg.max_episode_steps = saved


def test_reward_components_sum_to_the_reward(env):
    env.reset(seed=3)
    rng = np.random.default_rng(1)
    for _ in range(5):
        env.step(rng.uniform(-1, 1, (N, 12)))
    s = env.task.read_state()
    s.action = rng.uniform(-1, 1, (N, 12))
    for version in ("v1", "v2"):
        reward, comps = rewards.get("walk", version).compute(s)
        assert reward.shape == (N,) and all(np.shape(c) == (N,) for c in comps.values())
        np.testing.assert_allclose(sum(comps.values()), reward, rtol=0, atol=1e-12)
        assert comps["action_rate"].min() < 0


def test_v2_punishes_lying_down_v1_does_not(env):
    env.reset(seed=4)
    lying = DEFAULT_POSE.copy()
    lying[[2, 5, 8, 11]] = -2.7      # knees folded flat
    env.task.place([0], (0.0, 0.0, 0.27))                       # standing
    env.task.place([1], (0.0, 0.0, 0.10), dof_pos=lying)        # lying on the belly
    s = env.task.read_state()
    v1, _ = rewards.get("walk", "v1").compute(s)
    v2, c2 = rewards.get("walk", "v2").compute(s)
    assert v2[1] < v2[0] - 20.0, (v2[0], v2[1])            # -25 severe height penalty vs +2.5
    assert v1[1] >= v1[0] - 1e-9, (v1[0], v1[1])           # the devlog's failure: lying costs nothing in v1
    assert c2["leg_extension"][0] > 10 * c2["leg_extension"][1]
    # The grace period (v2): at 0.10 m, not terminated during the first 20 steps, terminated after.
    s.step[:] = 5
    assert not env.task.terminated(s)[1]
    s.step[:] = 25
    assert env.task.terminated(s)[1] and not env.task.terminated(s)[0]


def test_get_state_set_state_continues_the_episodes(env):
    env.reset(seed=5)
    rng = np.random.default_rng(2)
    for _ in range(10):
        env.step(rng.uniform(-1, 1, (N, 12)))
    snap = env.get_state()
    actions = rng.uniform(-1, 1, (20, N, 12))
    first = [env.step(a)[:2] for a in actions]
    q1 = env.get_state()["task"]["qpos"]
    env.set_state(snap)
    second = [env.step(a)[:2] for a in actions]
    q2 = env.get_state()["task"]["qpos"]
    np.testing.assert_allclose(q2, q1, rtol=0, atol=1e-9)
    np.testing.assert_allclose(np.array([r for _, r in second]), np.array([r for _, r in first]), rtol=0, atol=1e-9)


def test_non_finite_reward_or_observation_raises_naming_the_env(env, monkeypatch):
    env.reset(seed=6)
    real = env.task.reward_fn

    def nan_reward(s):
        r, c = real.compute(s)
        r = r.copy()
        r[2] = np.nan
        return r, c

    monkeypatch.setattr(env.task, "reward_fn", types.SimpleNamespace(compute=nan_reward))
    with pytest.raises(FloatingPointError, match="non-finite reward in env 2 at episode step 1"):
        env.step(np.zeros((N, 12)))
    monkeypatch.setattr(env.task, "reward_fn", real)

    env.reset(seed=6)
    real_obs = env.task.observe_state

    def nan_obs(s):
        o = real_obs(s)
        o[3, 0] = np.inf
        return o

    monkeypatch.setattr(env.task, "observe_state", nan_obs)
    with pytest.raises(FloatingPointError, match="non-finite observation in env 3"):
        env.step(np.zeros((N, 12)))


def test_walk_refuses_settings_it_does_not_support():
    for bad, valid in ((dict(backend="mujoco"), "genesis"), (dict(backend="genesis", obs_mode="pixels"), "state"),
                       (dict(backend="genesis", domain_randomization=True), "False")):
        with pytest.raises(ValueError, match=f"task walk: .*valid: \\[.?{valid}"):
            envs.make_vec_env("walk", "v2", 1, **bad)


def test_success_is_half_the_commanded_distance(env):
    env.reset(seed=7)
    s = env.task.read_state()
    assert env.task.success_distance == pytest.approx(0.5 * 0.5 * env.cfg.max_episode_steps / env.cfg.control_hz)
    assert not s.success.any()
    env.task.place([2], (env.task.success_distance + 0.01, 0.0, 0.27))    # carried forward past the mark
    s = env.task.read_state()
    assert s.success.tolist() == [False, False, True, False]


def test_standing_still_passes_the_stand_check():
    """walk's sanity check (envs/controllers/stand.py): under its controller, StandStill, no Go2 falls
    in a 200-step episode and the bases stay at standing height."""
    from envs.controllers.stand import sanity_checks
    from envs.sanity import run_scripted
    checks, problems = sanity_checks(lambda **kw: envs.make_vec_env("walk", "v2", 2, backend="genesis", **kw),
                                     run_scripted, backend="genesis", seed=0, episodes=2, min_success=0.9)
    assert not problems, problems
    assert checks["stand"]["steps"] == 200 and checks["stand"]["fell"] == 0
    assert checks["stand"]["min_base_height"] > 0.2
