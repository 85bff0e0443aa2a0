"""Residual control (envs/residual.py): applied = clip(base + alpha * residual), the L2 penalty as a
reward component, the residual magnitude per episode, and exact resume with a stateful base."""
import numpy as np
import pytest

from envs.sanity import run_scripted
from envs.vector import BatchedEnv

ENV = dict(task="lift", reward="v19", num_envs=2, max_episode_steps=60, curriculum_stage=1)


def make(**residual):
    return BatchedEnv(seed=3, residual=residual or None, **ENV)


def test_blend_adds_the_scaled_residual_to_the_base_and_clips():
    env = make(base="scripted", alpha=0.5, penalty=0.0)
    obs, _ = env.reset(seed=3)
    rng = np.random.default_rng(0)
    clipped = 0
    for _ in range(30):
        residual = rng.uniform(-1, 1, (2, 6))
        saved = env.residual.get_state()
        base = env.residual.base.act(obs)              # what the base will do this step
        env.residual.set_state(saved)
        obs, *_ = env.step(residual)
        applied = env.task.read_state().action
        np.testing.assert_array_equal(applied, np.clip(base + 0.5 * residual, -1, 1))
        clipped += int((np.abs(base + 0.5 * residual) > 1).sum())
    assert clipped > 0, "some blended actions left [-1, 1], so clipping was exercised"


def test_penalty_is_a_reward_component_and_the_magnitude_an_episode_metric():
    plain, res = BatchedEnv(seed=3, **ENV), make(base="zero", alpha=1.0, penalty=0.001)
    plain.reset(seed=3)
    res.reset(seed=3)
    rng = np.random.default_rng(1)
    norms = []
    for _ in range(ENV["max_episode_steps"]):
        a = rng.uniform(-1, 1, (2, 6))
        _, r_plain, *_ = plain.step(a)
        _, r_res, _, _, infos = res.step(a)
        np.testing.assert_allclose(r_res, r_plain - 0.001 * np.sum(a ** 2, axis=1), rtol=0, atol=1e-12)
        norms.append(np.linalg.norm(a, axis=1))
    info = infos["final_info"]
    np.testing.assert_allclose(info["residual_l2"], np.mean(norms, axis=0), rtol=1e-12)
    np.testing.assert_allclose(info["reward/residual_penalty"], -0.001 * np.sum(np.square(norms), axis=0), rtol=1e-9)
    assert "residual_l2" not in plain.episode_stats_so_far(), "a plain env reports no residual"


def test_zero_residual_on_the_scripted_base_is_the_scripted_controller():
    """The base alone (residual 0) is exactly the task's scripted controller: its baseline row."""
    long = {**ENV, "max_episode_steps": 200}
    alone = run_scripted(BatchedEnv(seed=3, **long), episodes=4, seed=3)
    env = BatchedEnv(seed=3, residual=dict(base="scripted", alpha=0.7, penalty=0.001), **long)
    env.reset(seed=3)
    rows = []
    while len(rows) < 4:
        *_, infos = env.step(np.zeros((2, 6)))
        if "final_info" in infos:
            rows += [{k: infos["final_info"][k][i] for k in ("return", "success_once")}
                     for i in np.flatnonzero(infos["_final_info"])]
    assert [r["success_once"] for r in rows[:4]] == [r["success_once"] for r in alone]
    np.testing.assert_allclose([r["return"] for r in rows[:4]], [r["return"] for r in alone])
    assert np.mean([r["success_once"] for r in alone]) > 0.5, "the lift scripted base mostly succeeds"


def test_resume_restores_the_base_state_exactly():
    env = make(base="scripted", alpha=0.7, penalty=0.001)
    env.reset(seed=3)
    rng = np.random.default_rng(2)
    for _ in range(25):
        env.step(rng.uniform(-1, 1, (2, 6)) * 0.2)
    state = env.get_state()
    actions = rng.uniform(-1, 1, (40, 2, 6)) * 0.2
    first = [env.step(a)[:2] for a in actions]
    other = make(base="scripted", alpha=0.7, penalty=0.001)
    other.reset(seed=99)
    other.set_state(state)
    again = [other.step(a)[:2] for a in actions]
    for (o1, r1), (o2, r2) in zip(first, again):
        np.testing.assert_array_equal(o1, o2)
        np.testing.assert_array_equal(r1, r2)


def test_unknown_base_names_the_valid_ones():
    with pytest.raises(ValueError, match="unknown base policy 'gr00t'; valid: zero, scripted"):
        make(base="gr00t", alpha=0.7, penalty=0.001)
    with pytest.raises(ValueError, match="alpha must be > 0"):
        make(base="zero", alpha=0.0, penalty=0.001)


def test_evaluation_rebuilds_the_residual_env_the_run_trained_on():
    """evaluate and render build their env from the checkpoint: a residual run's base and blending."""
    from pipeline.run import checkpoints
    meta = {"algo": "ppo+scripted", "hparams": {}, "residual": {"base": "scripted", "alpha": 0.3, "penalty": 0.01}}
    settings = checkpoints.policy_env("ppo+scripted", {"obs_mode": "state"}, [(None, meta)])
    assert settings["residual"] == {"base": "scripted", "alpha": 0.3, "penalty": 0.01}
    base_alone = checkpoints.policy_env("scripted", {"obs_mode": "state"}, [(None, {**meta, "algo": "scripted", "residual": None})])
    assert base_alone["residual"] == {"base": "scripted", "alpha": 1.0, "penalty": 0.0}
    assert "residual" not in checkpoints.policy_env("ppo", {"obs_mode": "state"}, [(None, {**meta, "algo": "ppo", "residual": None})])


def test_a_trained_base_is_the_run_of_the_same_seed_beside_the_learner(tmp_path):
    from pipeline.run import bases, cli
    run = tmp_path / "data/runs/lift_v19_mujoco/ppo+sac/seed2"
    assert bases.base_run(str(run) + ".partial", "sac") == tmp_path / "data/runs/lift_v19_mujoco/sac/seed2"
    settings = {"obs_mode": "state", "image_size": 84, "frame_stack": 1,
                "residual": {"base": "sac", "alpha": 0.7, "penalty": 0.001}}
    with pytest.raises(cli.StageError, match="sac/seed2: the trained base of ppo\\+sac is missing"):
        bases.with_trained_base(settings, run, "lift", "v19")
    plain = {**settings, "residual": {**settings["residual"], "base": "scripted"}}
    assert bases.with_trained_base(plain, run, "lift", "v19") is plain, "a named base needs no run"


def test_a_policy_base_acts_env_by_env():
    from envs.residual import PolicyBase

    class Half:
        def act(self, obs):
            return obs[:6] * 0.5
    obs = np.arange(24, dtype=np.float32).reshape(2, 12)
    np.testing.assert_array_equal(PolicyBase(Half()).act(obs), obs[:, :6] * 0.5)


def test_an_off_policy_residual_starts_as_the_base_and_warms_its_critics_first():
    """rlpd on a base (Silver et al. 2018): the actor's output starts at zero, so its first
    deterministic policy is the base alone; during critic_warmup the run acts with zero residuals and
    only the critics learn; after it the actor learns too. Demonstrations are refused (they hold
    whole actions, not residuals)."""
    import torch

    from algos import rlpd
    torch.set_num_threads(1)
    hp = {k: f.default for k, f in rlpd.PARAMS.items()}
    hp.update(num_envs=2, learning_starts=0, critic_warmup=60, batch_size=32, net_width=32, num_critics=2,
              demo_ratio=0.0, bf16="off")
    trainer = rlpd.make_trainer(make(base="scripted", alpha=0.7, penalty=0.001), hp, 0, 1, None)
    obs = np.random.default_rng(0).normal(size=(5, trainer.env.single_observation_space.shape[0]))
    assert (trainer.agent.act(obs, deterministic=True) == 0).all()
    actor = {k: v.clone() for k, v in trainer.agent.actor.state_dict().items()}
    critics = {k: v.clone() for k, v in trainer.agent.critics.state_dict().items()}
    trainer.train_until(60, lambda: False)
    assert (trainer.replay.action[:60] == 0).all(), "the warm-up acts with the base alone"
    assert all(torch.equal(v, trainer.agent.actor.state_dict()[k]) for k, v in actor.items())
    assert not all(torch.equal(v, trainer.agent.critics.state_dict()[k]) for k, v in critics.items())
    trainer.train_until(80, lambda: False)
    assert not all(torch.equal(v, trainer.agent.actor.state_dict()[k]) for k, v in actor.items())
    assert (trainer.replay.action[60:80] != 0).any()
    with pytest.raises(ValueError, match="residual rlpd learner takes rlpd.demo_ratio: 0"):
        rlpd.make_trainer(make(base="scripted", alpha=0.7, penalty=0.001), {**hp, "demo_ratio": 0.5}, 0, 1, None)
