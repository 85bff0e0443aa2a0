"""The stage CLIs keep their contracts: provenance, refusal, early failure on bad input
(resume and crash tests: test_resume.py).

Tiny real trainings (a few hundred env steps, one thread); the whole smoke DAG is `slow`.
"""
import json
import shlex
import subprocess
import sys

import pandas as pd
import pytest

from pipeline.dag import params as cfg
from pipeline.dag.registry import STAGES, flags
from pipeline.run import checkpoints, provenance

from conftest import PPO_TOTAL
from stagetools import PARAMS, checkpoint_steps, stage, train_args


def test_checkpoints_carry_provenance(ppo_run):
    found = checkpoints.intact(ppo_run)
    assert [m["global_step"] for _, m in found] == checkpoint_steps("ppo", PPO_TOTAL) == [0, 256, 512]
    meta = found[-1][1]
    assert meta["task"] == "lift" and meta["reward"] == "v19" and meta["algo"] == "ppo" and meta["seed"] == 0
    assert meta["reward_fingerprint"] == provenance.reward_fingerprint("lift", "v19")
    assert meta["hparams"]["total_timesteps"] == PPO_TOTAL and meta["env"]["max_episode_steps"] == 50
    assert {"torch", "stable-baselines3", "mujoco", "gymnasium"} <= set(meta["versions"])
    assert "git_commit" in meta
    log = pd.read_parquet(ppo_run / "train_log.parquet")
    # 4 envs x 128 steps / 50-step episodes: every finished episode whole, each with its success flag
    assert len(log) > 0 and (log.episode_len == 50).all()
    assert {"return", "success_once", "max_cube_z", "grasp_steps"} <= set(log.columns)
    assert any(c.startswith("reward/") for c in log.columns)
    assert (ppo_run / "tb").is_dir()


def eval_args(run, tmp, reward="v19", episodes=2, algo="ppo", final_episodes=3):
    p = cfg.merge(PARAMS, {"evaluation": {"episodes": episodes, "final_episodes": final_episodes}})
    return ["--task", "lift", "--reward", reward, "--algo", algo, "--runs", run, "--out", tmp / "e.parquet",
            "--metrics", tmp / "e.json", "--curve", tmp / "e.tsv", "--provenance", tmp / "p.json",
            *shlex.split(flags(STAGES["evaluate"], p))]


def test_evaluate_rows_and_metrics(ppo_run, tmp_path):
    stage("evaluate", *eval_args(ppo_run, tmp_path))
    df = pd.read_parquet(tmp_path / "e.parquet")
    assert len(df) == 2 * 2 + 3      # 2 episodes at the first two checkpoints, final_episodes at the last
    assert list(df.columns[:5]) == ["algo", "seed", "step", "episode", "reset_seed"]
    assert list(df[df.step == PPO_TOTAL].reset_seed) == [1000, 1001, 1002], "episode i reset with seed + i"
    assert list(df[df.step == 0].reset_seed) == [1000, 1001]
    m = json.loads((tmp_path / "e.json").read_text())
    seed0 = m["per_seed"]["0"]
    assert seed0["episodes"] == 3 and seed0["successes"] == round(3 * seed0["success_rate"])
    assert seed0["success_low"] <= seed0["success_rate"] <= seed0["success_high"]
    assert m["across_seeds"]["success_rate"]["n"] == 1 and m["across_seeds"]["success_rate"]["ci_low"] is None
    assert {"mean_return", "std_return", "success_rate", "max_cube_z", "grasp_steps", "terminated_rate"} <= set(m)
    assert m["task_metrics"] == ["max_cube_z", "grasp_steps"]
    assert [c["chunk"] for c in m["train_chunks"]["0"]] == list(range(1, len(m["train_chunks"]["0"]) + 1))
    assert m["final_step"] == PPO_TOTAL
    curve = pd.read_csv(tmp_path / "e.tsv", sep="\t")
    assert list(curve.step) == [0, 256, 512]
    prov = json.loads((tmp_path / "p.json").read_text())
    assert prov["git_commits"] == {"0": prov["git_commit"]}, "the commit each seed trained at"
    assert prov["eval_reset_seeds"] == {"final_checkpoint": [1000, 1001, 1002], "other_checkpoints": [1000, 1001]}
    assert prov["evaluation"]["final_episodes"] == 3


def test_evaluate_refuses_other_reward(ppo_run, tmp_path):
    proc = stage("evaluate", *eval_args(ppo_run, tmp_path, reward="v11"), check=False)
    assert proc.returncode == 2
    assert "refusing checkpoint" in proc.stderr and "'v19', asked for 'v11'" in proc.stderr
    assert not (tmp_path / "e.parquet").exists()


def test_evaluate_refuses_changed_reward_code(ppo_run, tmp_path):
    meta_path = sorted((ppo_run / "checkpoints").glob("step_*.json"))[0]
    original = meta_path.read_text()
    meta = json.loads(original)
    meta["reward_fingerprint"] = "0" * 64
    meta_path.write_text(json.dumps(meta))
    try:
        proc = stage("evaluate", *eval_args(ppo_run, tmp_path), check=False)
    finally:
        meta_path.write_text(original)
    assert proc.returncode == 2 and "code changed since training" in proc.stderr


def render_args(run, tmp, algo="ppo"):
    out = [tmp / n for n in ("v.mp4", "s.png", "still.png", "r.json")]
    return ["--task", "lift", "--reward", "v19", "--algo", algo, "--runs", run, "--video", out[0], "--sheet", out[1],
            "--still", out[2], "--info", out[3], *shlex.split(flags(STAGES["render"], PARAMS, algo))]


def tear(run, how):
    """Damage a finished run's checkpoints as a crash, a full disk or a stray command would."""
    zips = sorted((run / "checkpoints").glob("step_*.zip"))
    if how == "torn newest":
        zips[-1].write_bytes(zips[-1].read_bytes()[:1000])
        return f"{zips[-1]} does not match its recorded sha256 (torn or corrupted)"
    if how == "torn middle":
        zips[1].write_bytes(zips[1].read_bytes()[:-10])
        return f"{zips[1]} does not match its recorded sha256"
    if how == "newest removed":
        zips[-1].unlink()
        zips[-1].with_suffix(".json").unlink()
        return "no checkpoint of step 512"
    if how == "newest metadata torn":
        zips[-1].with_suffix(".json").write_text('{"global_step": 5')
        return f"{zips[-1].with_suffix('.json')} is unreadable"


@pytest.mark.parametrize("how", ["torn newest", "torn middle", "newest removed", "newest metadata torn"])
def test_evaluate_and_render_stop_on_a_damaged_checkpoint(ppo_run, tmp_path, how):
    """Issue 25: a truncated newest checkpoint made evaluate skip it with a warning, exit 0 and
    report final step 256 for a run trained to 512. A finished run's checkpoints must all be whole:
    evaluate and render stop, naming the file and the command that recovers it."""
    import shutil
    run = tmp_path / "run"
    shutil.copytree(ppo_run, run)
    needle = tear(run, how)
    for module, args in (("evaluate", eval_args(run, tmp_path)), ("render", render_args(run, tmp_path))):
        proc = stage(module, *args, check=False)
        assert proc.returncode == 2, proc.stdout + proc.stderr
        assert f"damaged checkpoint in {run}: {needle}" in proc.stderr, proc.stderr
        assert ("its learning curve would miss them" if how == "torn middle" else
                "The run trained to step 512; its newest intact checkpoint is step 256") in proc.stderr
        assert f"rerun your snakemake command with `--forcerun {run}`" in proc.stderr and "`dvc repro`" in proc.stderr
    assert not any((tmp_path / n).exists() for n in ("e.parquet", "e.json", "v.mp4", "r.json"))


def test_train_rejects_unknown_reward_before_training(tmp_path, sanity):
    out = tmp_path / "run"
    proc = stage("train", *train_args(out, sanity, reward="v99"), check=False)
    assert proc.returncode == 2
    assert "valid: v11, v19" in proc.stderr
    assert not out.exists()


def test_train_refuses_broken_env(tmp_path):
    bad = tmp_path / "sanity.json"
    bad.write_text(json.dumps({"ok": False, "problems": ["observations contain NaN"]}))
    proc = stage("train", *train_args(tmp_path / "run", bad), check=False)
    assert proc.returncode == 2 and "observations contain NaN" in proc.stderr


@pytest.mark.slow
def test_smoke_pipeline_both_tools():
    """The whole DAG on config/smoke.yaml with Snakemake and with DVC (what `make test` runs)."""
    proc = subprocess.run([sys.executable, "-m", "tests.e2e.smoke"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout[-5000:] + proc.stderr[-5000:]


# --- DrQ-v2 through the same stage CLIs (not in the default algos, so not in the smoke DAG) -------------

@pytest.fixture(scope="module")
def drqv2_run(tmp_path_factory, sanity):
    out = tmp_path_factory.mktemp("drqv2") / "seed0"
    stage("train", *train_args(out, sanity, algo="drqv2"))
    return out


def test_drqv2_checkpoints_carry_provenance(drqv2_run):
    """Same metadata as an SB3 run, plus the env it trained on: pixels with its own frame stack,
    whatever the env block says."""
    found = checkpoints.intact(drqv2_run)
    assert [m["global_step"] for _, m in found] == checkpoint_steps("drqv2", 256) == [0, 128, 256]
    assert all(path.suffix == ".pt" and path.exists() for path, _ in found)
    meta = found[-1][1]
    assert meta["task"] == "lift" and meta["reward"] == "v19" and meta["algo"] == "drqv2" and meta["seed"] == 0
    assert meta["reward_fingerprint"] == provenance.reward_fingerprint("lift", "v19")
    assert meta["hparams"]["total_timesteps"] == 256 and meta["hparams"]["preset"] == "cpu"
    assert meta["env"]["obs_mode"] == "state" and meta["env"]["frame_stack"] == 1      # the env block as given
    assert meta["obs_mode"] == "pixels"
    assert meta["trained_env"]["obs_mode"] == "pixels" and meta["trained_env"]["frame_stack"] == 3
    assert meta["drqv2_config"]["batch_size"] == 16 and meta["num_updates"] > 0
    assert {"torch", "mujoco", "gymnasium"} <= set(meta["versions"]) and "git_commit" in meta
    from algos.drqv2 import DrQV2Agent
    agent = DrQV2Agent.from_checkpoint(found[-1][0], device="cpu")
    assert agent.obs_shape == (9, 84, 84) and agent.action_dim == 6
    # per-episode log with the SB3 runs' columns, every finished episode whole
    log = pd.read_parquet(drqv2_run / "train_log.parquet")
    assert len(log) > 0 and (log.episode_len == 50).all() and (log.algo == "drqv2").all()
    assert {"global_step", "env", "return", "success_once", "max_cube_z", "grasp_steps"} <= set(log.columns)
    assert any(c.startswith("reward/") for c in log.columns)
    assert (drqv2_run / "tb").is_dir() and json.loads((drqv2_run / "run.json").read_text())["global_step"] == 256
    assert not (drqv2_run / "trainer").exists(), "a finished run keeps no resume state (replay) in its output"


def test_drqv2_evaluate_and_render(drqv2_run, tmp_path):
    stage("evaluate", *eval_args(drqv2_run, tmp_path, algo="drqv2"))
    df = pd.read_parquet(tmp_path / "e.parquet")
    assert len(df) == 2 * 2 + 3 and (df.algo == "drqv2").all() and sorted(set(df.step)) == [0, 128, 256]
    assert {"return", "episode_len", "success_once", "success_at_end", "max_cube_z", "grasp_steps"} <= set(df.columns)
    assert json.loads((tmp_path / "e.json").read_text())["final_step"] == 256
    out = [tmp_path / n for n in ("v.mp4", "s.png", "still.png", "r.json")]
    p = cfg.merge(PARAMS, {})
    stage("render", "--task", "lift", "--reward", "v19", "--algo", "drqv2", "--runs", drqv2_run,
          "--video", out[0], "--sheet", out[1], "--still", out[2], "--info", out[3],
          *shlex.split(flags(STAGES["render"], p, "drqv2")))
    assert out[0].stat().st_size > 1000
    from PIL import Image
    h, w = p["render"]["height"], p["render"]["width"]
    # front and wrist cameras, then what the agent sees: its 3 stacked frames in a column
    assert Image.open(out[2]).size == (2 * w + h // 3, h)
    assert json.loads(out[3].read_text())["episode"]["checkpoint_step"] == 256


def test_drqv2_evaluate_refuses_changed_reward_code(drqv2_run, tmp_path):
    meta_path = sorted((drqv2_run / "checkpoints").glob("step_*.json"))[-1]
    original = meta_path.read_text()
    meta = json.loads(original)
    meta["reward_fingerprint"] = "0" * 64
    meta_path.write_text(json.dumps(meta))
    try:
        proc = stage("evaluate", *eval_args(drqv2_run, tmp_path, algo="drqv2"), check=False)
    finally:
        meta_path.write_text(original)
    assert proc.returncode == 2 and "code changed since training" in proc.stderr
    assert not (tmp_path / "e.parquet").exists()


def test_drqv2_rejects_bad_params_before_training(tmp_path, sanity):
    out = tmp_path / "run"
    args = [str(a) for a in train_args(out, sanity, algo="drqv2")]
    i = args.index("--drqv2.stddev_schedule")
    args[i + 1] = "exp(1.0)"
    proc = stage("train", *args, check=False)
    assert proc.returncode == 2 and "linear(init,final,duration)" in proc.stderr
    assert not out.exists() and not (tmp_path / "run.partial").exists()
