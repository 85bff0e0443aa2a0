"""Demonstrations as data (issue 26): the demos stage writes a Minari dataset that Minari reads back,
any reward version relabels it exactly as the env would have paid, and bc clones it (its Trainer
checkpoints and resumes like every other algorithm's). The DAG side (what reruns when a reward or
a controller changes) is in tests/test_dag.py; the whole bc DAG runs in make test
(tests/e2e/smoke.py --experiment config/bc_lift.yaml).
"""
import json
import shlex
import subprocess
import sys

import numpy as np
import pytest

from envs import rewards
from envs.demos import record
from pipeline.dag.params import merge
from pipeline.dag.registry import ROOT, STAGES, flags
from pipeline.run import cli, demos, relabel, transitions
from stagetools import PARAMS

# From curriculum stage 1 the picker succeeds at about step 90 (held 10 steps above lift_height).
LIFT = {"env": {"max_episode_steps": 120, "curriculum_stage": 1}, "demos": {"episodes": 4, "seed": 3}}
ENV = {"OMP_NUM_THREADS": "1", "PATH": "", "PYTHONPATH": str(ROOT)}


def run_stage(module, args, cwd):
    proc = subprocess.run([sys.executable, "-m", f"pipeline.{module}", *map(str, args)], cwd=cwd,
                          capture_output=True, text=True, env=ENV)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc


def demos_stage(cwd, overrides: dict) -> tuple[str, dict]:
    """Run the demos stage in folder cwd on the smoke params with overrides; (dataset folder, params)."""
    p = merge(PARAMS, overrides)
    path = demos.dataset_path("lift", "mujoco", p["demos"], p["env"]["curriculum_stage"])
    run_stage("demos", ["--task", "lift", "--backend", "mujoco", "--out", path, "--summary", demos.summary_path(path),
                        *shlex.split(flags(STAGES["demos"], p))], cwd)
    return path, p


@pytest.fixture(scope="module")
def lift_demos(tmp_path_factory):
    """4 picker episodes on lift from stage 1, written by the demos stage: (workspace, dataset folder, params)."""
    ws = tmp_path_factory.mktemp("demos_ws")
    path, p = demos_stage(ws, LIFT)
    return ws, ws / path, p


def test_the_path_carries_the_dataset_identity(lift_demos):
    _, path, _ = lift_demos
    assert path.relative_to(path.parents[3]).as_posix() == "demos/lift_mujoco/picker/stage1_n4_seed3"


def test_dataset_round_trips_through_minari(lift_demos, monkeypatch):
    """minari.load_dataset reads what the stage wrote, from the DAG's own path: episodes, shapes,
    actions as the env took them, success flags per step and per episode, the step states."""
    import minari
    _, path, p = lift_demos
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(path))
    dataset = minari.load_dataset(demos.dataset_id("lift", "picker"))
    assert dataset.total_episodes == 4 and dataset.total_steps == 4 * 120
    assert dataset.observation_space.shape == (33,) and dataset.action_space.shape == (6,)
    summary = json.loads((path.parent / (path.name + ".json")).read_text())
    meta = demos.episode_info(dataset)
    assert [m["seed"] for m in meta] == [3, 4, 5, 6], "episode k is reset with seed demos.seed + k"
    for ep, m in zip(dataset.iterate_episodes(), meta):
        assert ep.observations.shape == (121, 33) and ep.observations.dtype == np.float32
        assert ep.actions.shape == (120, 6) and np.abs(ep.actions).max() <= 1.0
        assert ep.truncations[-1] and not ep.terminations.any()
        assert bool(m["success"]) == bool(ep.infos["success"].any()) == bool(m["success_once"])
        assert set(ep.infos["state"]) >= {"cube_pos", "grasp_pos", "grasped", "hold_count", "action"}
        assert ep.infos["state"]["cube_pos"].shape == (121, 3)
        # the state's action is the action applied (float64), the dataset's its float32 copy
        np.testing.assert_allclose(ep.infos["state"]["action"][1:], ep.actions, atol=1e-7)
    assert summary["successes"] == sum(bool(m["success"]) for m in meta) == 4
    assert summary["success_rate"] == 1.0 and summary["transitions"] == 480
    assert dataset.storage.metadata["step_state"]["constants"] == {"lift_height": p["env"]["lift_height"],
                                                                    "hold_steps": p["env"]["hold_steps"]}


def test_the_same_params_write_the_same_bytes(lift_demos, tmp_path):
    """A rerun of the stage (after an edit that changes nothing) gives a dataset with the same
    fingerprint, so nothing after it reruns in DVC."""
    _, path, _ = lift_demos
    again, _ = demos_stage(tmp_path, LIFT)
    assert demos.fingerprint(tmp_path / again) == demos.fingerprint(path)


def test_failed_episodes_stay_marked(tmp_path):
    rec = record("lift", "picker", episodes=2, seed=0, max_episode_steps=30, curriculum_stage=1)
    dataset = demos.write(tmp_path / "d", rec, {"task": "lift", "controller": "picker"})
    assert dataset.total_episodes == 2
    assert [m["success"] for m in demos.episode_info(dataset)] == [False, False]
    assert not any(ep.infos["success"].any() for ep in dataset.iterate_episodes())


def test_frames_are_stored_for_pixel_experiments(tmp_path):
    """demos.pixels: the state observation and the wrist camera's frame per step."""
    rec = record("lift", "picker", episodes=2, seed=0, pixels=True, max_episode_steps=10, curriculum_stage=1)
    dataset = demos.write(tmp_path / "d", rec, {"task": "lift", "controller": "picker"})
    ep = next(iter(demos.load(tmp_path / "d").iterate_episodes()))
    assert ep.observations["state"].shape == (11, 33)
    assert ep.observations["pixels"].shape == (11, 84, 84, 3) and ep.observations["pixels"].dtype == np.uint8
    assert ep.observations["pixels"].std() > 5, "frames hold an image"
    assert dataset.observation_space["pixels"].shape == (84, 84, 3)


CASES = [("lift", "picker", 1), ("pick_place", "picker", 0), ("paper_square", "dragger", 0)]


@pytest.mark.parametrize("task,controller,stage,reward",
                         [(t, c, s, r) for t, c, s in CASES for r in rewards.available(t)])
def test_relabelling_pays_what_the_env_pays(tmp_path, task, controller, stage, reward):
    """The demonstrations, recorded with no reward version, relabelled for a version from their
    stored step states, give the rewards the env itself pays that version for the same episodes,
    step by step, and its components' episode sums (final_info reward/<name>)."""
    kw = dict(episodes=2, seed=5, max_episode_steps=60, curriculum_stage=stage)
    dataset = demos.write(tmp_path / "d", record(task, controller, **kw), {"task": task, "controller": controller})
    paid = record(task, controller, reward=reward, **kw)
    got, parts = relabel.relabel(demos.load(tmp_path / "d"), task, reward)
    np.testing.assert_array_equal(got, np.concatenate([ep.rewards for ep in paid.episodes]))
    ends = np.cumsum([len(ep.actions) for ep in paid.episodes])
    for name, values in parts.items():
        sums = [part.sum() for part in np.split(values, ends[:-1])]
        np.testing.assert_allclose(sums, [ep.stats[f"reward/{name}"] for ep in paid.episodes], rtol=1e-12, atol=1e-12)
    assert dataset.total_steps == len(got)


def test_training_refuses_demonstrations_of_other_env_settings(lift_demos):
    _, path, p = lift_demos
    env = {**p["env"], "backend": "mujoco"}
    assert len(transitions.for_training(path, "lift", "v19", env).actions) == 480
    with pytest.raises(cli.StageError, match="env.action_scale is 0.04, the run's 0.02"):
        transitions.for_training(path, "lift", "v19", {**env, "action_scale": 0.02})


def train_command(ws, p, algo, out, **extra) -> list[str]:
    """The train stage's arguments for `algo` in workspace ws (where the demos are), on params p
    with extra settings of the algorithm's block."""
    p = merge(p, {algo: extra, "checkpoint_every": 100})
    sanity = ws / "sanity.json"
    sanity.write_text('{"ok": true}')
    return [str(a) for a in ["--task", "lift", "--reward", "v19", "--backend", "mujoco", "--algo", algo, "--seed", 0,
                             "--sanity", sanity, "--out", out, "--threads", 1,
                             *shlex.split(flags(STAGES["train"], p, algo))]]


def train(ws, p, algo, out, **extra):
    """Run the train stage (see train_command) to its end."""
    return run_stage("train", train_command(ws, p, algo, out, **extra), ws)


def test_bc_trains_through_the_train_stage_and_resumes_exactly(lift_demos):
    """bc's loss falls, its checkpoints record the dataset's hash, and a run trained in chunks (each
    a fresh process resuming from the last checkpoint) ends with the weights of one that never stopped."""
    from algos import bc
    from pipeline.run import checkpoints
    ws, path, p = lift_demos
    train(ws, merge(p, {"train": {"chunk_steps": 0}}), "bc", "whole", gradient_steps=300, successful_only=True)
    found = checkpoints.intact(ws / "whole")
    assert [m["global_step"] for _, m in found] == [0, 100, 200, 300]
    meta = found[-1][1]
    assert meta["demos"] == {"path": str(path.relative_to(ws)), "sha256": demos.fingerprint(path)}
    data = transitions.for_training(path, "lift", "v19", {**p["env"], "backend": "mujoco"})

    def loss(policy_file):      # mean squared error to the demonstrated actions, all of them
        return float(np.mean((np.stack([bc.load_policy(policy_file).act(o) for o in data.obs]) - data.actions) ** 2))
    assert loss(found[-1][0]) < loss(found[0][0]) / 2
    p2 = merge(p, {"train": {"chunk_steps": 150}})
    train(ws, p2, "bc", "chunked", gradient_steps=300, successful_only=True)
    assert checkpoints.same_weights(checkpoints.final_weights(ws / "chunked"), checkpoints.final_weights(ws / "whole"))


def test_bc_learns_to_lift_from_picker_demonstrations(tmp_path):
    """50 successful picker demonstrations from stage 1 (gripper above the cube): cloned for 4000
    gradient steps, bc lifts the cube in most evaluation episodes; the untrained policy never does."""
    import torch

    from algos import bc
    from envs.single import make_env
    from envs.vector import BatchedEnv
    torch.set_num_threads(1)
    env_kw = {"max_episode_steps": 200, "curriculum_stage": 1}
    demos.write(tmp_path / "d", record("lift", "picker", episodes=50, seed=0, **env_kw),
                {"task": "lift", "backend": "mujoco", "controller": "picker", "env": env_kw})
    data = demos.load(tmp_path / "d")
    eps = list(data.iterate_episodes())
    assert all(m["success"] for m in demos.episode_info(data))
    n = sum(len(ep.actions) for ep in eps)
    pairs = transitions.Demos(np.concatenate([ep.observations[:-1] for ep in eps]),
                              np.concatenate([ep.actions for ep in eps]), None, None, None,
                              np.zeros(n, dtype=int), np.ones(n, dtype=bool), "d", "")
    hp = {"gradient_steps": 4000, "batch_size": 256, "learning_rate": 1.0e-3, "net_width": 256, "net_depth": 2,
          "successful_only": True}
    trainer = bc.make_trainer(BatchedEnv("lift", reward="v19", **env_kw), hp, 0, 1, None, demos=pairs)

    def success_rate(episodes=10):
        trainer.save_policy(tmp_path / "p.pt")
        policy, env, wins = bc.load_policy(tmp_path / "p.pt"), make_env("lift", reward="v19", **env_kw), []
        for i in range(episodes):
            obs, _ = env.reset(seed=1000 + i)
            while True:
                obs, _, terminated, truncated, info = env.step(policy.act(obs))
                if terminated or truncated:
                    wins.append(info["episode_stats"]["success_once"])
                    break
        env.close()
        return float(np.mean(wins))
    untrained = success_rate()
    trainer.train_until(4000, lambda: False)
    trained = success_rate()
    assert untrained == 0.0 and trained >= 0.6, (untrained, trained)


def test_params_name_a_controller_of_the_task():
    """demos.controller names a controller, and, where an algorithm learns from demonstrations, one
    of the task's: the error names the valid ones, before anything runs."""
    from pipeline.dag.params import load, validate
    from pipeline.run.settings import ParamsError
    with pytest.raises(ParamsError, match="demos.controller: got 'walker'; expected one of picker, dragger, stand"):
        validate(merge(load(), {"demos": {"controller": "walker"}}))
    with pytest.raises(ParamsError, match="dragger is not a controller of task lift; valid for lift: picker"):
        validate(merge(load(), {"algos": ["bc"], "demos": {"controller": "dragger"}}))
    validate(merge(load(), {"demos": {"controller": "dragger"}}))     # recorded for no algorithm: not checked


RLPD_SMALL = {"total_timesteps": 600, "num_envs": 2, "learning_starts": 100, "batch_size": 64, "net_width": 64,
              "num_critics": 4, "utd_ratio": 2.0}


def test_symmetric_sampling_draws_the_share_it_is_asked_for():
    """Each batch holds round(demo_ratio * batch_size) demonstration transitions, the rest online
    ones, with their own rewards; without demonstrations, online ones only."""
    from algos.rlpd.trainer import Batches, Replay
    replay = Replay(100, 3, 2)
    replay.add(-np.ones((50, 3)), np.zeros((50, 2)), np.full(50, -1.0), -np.ones((50, 3)), np.zeros(50))
    n = 40
    demo = transitions.Demos(np.ones((n, 3)), np.zeros((n, 2)), np.ones((n, 3)), np.full(n, 7.0), np.zeros(n, bool),
                             np.zeros(n, int), np.ones(n, bool), "d", "")
    for ratio, expected in [(0.5, 128), (0.25, 64), (1.0, 256), (0.0, 0)]:
        obs, _, reward, _, _ = Batches(replay, demo, 256, ratio, np.random.default_rng(0)).sample()
        from_demos = obs[:, 0] == 1.0
        assert int(from_demos.sum()) == expected
        assert (reward[from_demos] == 7.0).all() and (reward[~from_demos] == -1.0).all()
    obs, *_ = Batches(replay, None, 256, 0.5, np.random.default_rng(0)).sample()
    assert (obs == -1.0).all()
    # Every stored transition can be drawn: 20 batches of 128 online rows cover all 50.
    batches = Batches(replay, demo, 256, 0.5, np.random.default_rng(1))
    replay.obs[:50, 1] = np.arange(50)
    seen = set()
    for _ in range(20):
        obs, *_ = batches.sample()
        seen |= set(obs[128:, 1].int().tolist())
    assert seen == set(range(50))


def test_a_killed_rlpd_run_resumes_bit_for_bit(lift_demos):
    """SIGKILL after the checkpoint at step 300 of a 600-step rlpd run with demonstrations (half of
    each batch, 2 critic updates per env step, a 4-critic ensemble); rerunning the same command
    resumes from it and ends with the weights of the run that never stopped. Its checkpoints record
    the dataset's hash."""
    from pipeline.run import checkpoints
    from stagetools import wait_for
    ws, path, p = lift_demos
    p = merge(p, {"train": {"chunk_steps": 0}})
    train(ws, p, "rlpd", "whole", **RLPD_SMALL)
    found = checkpoints.intact(ws / "whole")
    assert [m["global_step"] for _, m in found] == [0, 100, 200, 300, 400, 500, 600]
    assert found[-1][1]["demos"]["sha256"] == demos.fingerprint(path)
    args = train_command(ws, p, "rlpd", "killed", **RLPD_SMALL)
    proc = subprocess.Popen([sys.executable, "-m", "pipeline.train", *args], cwd=ws, env=ENV,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_for(ws / "killed.partial" / "checkpoints" / "step_000000300.json", proc)
    proc.kill()
    proc.wait()
    assert not (ws / "killed").exists()
    resumed = train(ws, p, "rlpd", "killed", **RLPD_SMALL)
    assert "resuming rlpd seed 0 from global step 300" in resumed.stdout + resumed.stderr
    assert checkpoints.same_weights(checkpoints.final_weights(ws / "killed"), checkpoints.final_weights(ws / "whole"))


# --- DrQ-v2 from pixels with the demonstrations' wrist frames in its replay --------------------------

PIXELS = {"env": {"max_episode_steps": 15, "curriculum_stage": 1}, "demos": {"episodes": 2, "seed": 3, "pixels": True}}
DRQV2_SMALL = {"total_timesteps": 128, "num_envs": 2, "batch_size": 16, "feature_dim": 16, "hidden_dim": 32,
               "num_expl_steps": 32, "num_seed_steps": 32, "update_every_steps": 4, "replay_memory_bytes": 20000000,
               "device": "cpu", "demo_ratio": 0.5}


@pytest.fixture(scope="module")
def pixel_demos(tmp_path_factory):
    """2 picker episodes of 15 steps with wrist frames, written by the demos stage: (workspace, dataset, params)."""
    ws = tmp_path_factory.mktemp("pixel_demos_ws")
    path, p = demos_stage(ws, PIXELS)
    return ws, ws / path, p


def replayed_stacks(env_settings: dict, seed: int, actions) -> set[bytes]:
    """Every observation (the final one included) a pixel env emits replaying `actions` from reset seed `seed`."""
    from envs.vector import make_vec_env
    env = make_vec_env("lift", "v19", 1, **env_settings)
    obs, _ = env.reset(seed=[seed])
    seen = {obs[0].tobytes()}
    for action in actions:
        obs, _, terminated, truncated, infos = env.step(action[None])
        seen.add((infos["final_obs"][0] if terminated[0] or truncated[0] else obs[0]).tobytes())
    env.close()
    return seen


def test_drqv2_batches_hold_the_demo_share_in_the_env_frame_stacks(pixel_demos):
    """With drqv2.demo_ratio r a batch starts with round(r * batch_size) demonstration transitions:
    their observations and next observations are frame stacks that a pixel env with the run's
    frame stack emits replaying the demonstrated episode (its first frame repeated at the start),
    their actions the demonstrated ones. The rest come from the run's own replay."""
    import algos
    from algos import drqv2
    from envs.vector import make_vec_env
    _, path, p = pixel_demos
    hp = {**DRQV2_SMALL, "num_seed_steps": 10 ** 6}          # collect, never update
    settings = algos.env_settings("drqv2", p["env"], hp)
    data = transitions.for_training(path, "lift", "v19", {**p["env"], "backend": "mujoco"}, pixels=True)
    emitted = set()
    for k, (_, actions, _, _) in enumerate(data.episodes()):     # episode k: reset seed demos.seed + k
        emitted |= replayed_stacks(settings, p["demos"]["seed"] + k, actions)
    demo_actions = {a.tobytes() for a in data.actions}
    for ratio, n_demo in ((0.5, 8), (0.25, 4)):
        trainer = drqv2.make_trainer(make_vec_env("lift", "v19", 2, seed=7, **settings), {**hp, "demo_ratio": ratio},
                                     0, 1, None, demos=data)
        trainer.train_until(20)
        obs, action, _, _, next_obs = trainer.sample()
        from_demos = [obs[i].tobytes() in emitted and next_obs[i].tobytes() in emitted
                      and action[i].tobytes() in demo_actions for i in range(len(obs))]
        assert from_demos == [i < n_demo for i in range(hp["batch_size"])]
        trainer.close()


def test_a_chunked_drqv2_run_with_demos_ends_with_the_uninterrupted_weights(pixel_demos):
    """drqv2 with demo_ratio 0.5 through the train stage: its checkpoints record the dataset and its
    transitions, and a run in chunks (each a fresh process that rebuilds the demonstrations and
    restores their sampling generator) ends with the weights of one that never stopped."""
    from pipeline.run import checkpoints
    ws, path, p = pixel_demos
    train(ws, merge(p, {"train": {"chunk_steps": 0}}), "drqv2", "whole", **DRQV2_SMALL)
    meta = checkpoints.intact(ws / "whole")[-1][1]
    assert meta["global_step"] == 128 and meta["demo_transitions"] == 30
    assert meta["demos"]["sha256"] == demos.fingerprint(path)
    train(ws, merge(p, {"train": {"chunk_steps": 64}}), "drqv2", "chunked", **DRQV2_SMALL)
    assert checkpoints.same_weights(checkpoints.final_weights(ws / "chunked"), checkpoints.final_weights(ws / "whole"))


def test_a_pixel_learner_needs_demonstrations_with_frames(lift_demos):
    """drqv2 with demo_ratio > 0 learns from wrist frames: params without demos.pixels are refused
    before anything runs, naming the fix, and so is a dataset recorded without frames or at another
    image size; drqv2 without demonstrations needs none."""
    from pipeline.dag.params import load, validate
    from pipeline.run.settings import ParamsError
    drqv2_demos = merge(load(), {"algos": ["drqv2"], "drqv2": {"demo_ratio": 0.5}})
    with pytest.raises(ParamsError, match="demos.pixels: drqv2 trains on pixels and learns from demonstrations"):
        validate(drqv2_demos)
    validate(merge(drqv2_demos, {"demos": {"pixels": True}}))
    validate(merge(load(), {"algos": ["drqv2"]}))
    _, path, p = lift_demos
    env = {**p["env"], "backend": "mujoco"}
    with pytest.raises(cli.StageError, match="recorded without wrist frames, which this run learns from"):
        transitions.for_training(path, "lift", "v19", env, pixels=True)
    with pytest.raises(cli.StageError, match="env.image_size is 84, the run's 64"):
        transitions.for_training(path, "lift", "v19", {**env, "image_size": 64})
