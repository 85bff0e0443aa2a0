"""The stage CLIs keep their contracts: provenance, refusal, resume, early failure on bad input.

Tiny real trainings (a few hundred env steps, one thread); the whole smoke DAG is `slow`.
"""
import json
import shlex
import subprocess
import sys

import pandas as pd
import pytest

from pipeline import common
from pipeline import config as cfg
from pipeline.stages import STAGES, flags

PARAMS = cfg.merge(cfg.load(), cfg.load(cfg.PARAMS_FILE.parent / "config" / "smoke.yaml"))


def stage(module, *args, check=True):
    proc = subprocess.run([sys.executable, "-m", f"pipeline.{module}", *map(str, args)],
                          capture_output=True, text=True, env={"OMP_NUM_THREADS": "1", "PATH": ""})
    if check and proc.returncode != 0:
        raise AssertionError(proc.stdout + proc.stderr)
    return proc


def train_args(out, sanity, algo="ppo", reward="v19", seed=0, every=128, total=256):
    p = cfg.merge(PARAMS, {algo: {"total_timesteps": total}, "checkpoint_every": every})
    return ["--task", "lift", "--reward", reward, "--algo", algo, "--seed", seed, "--sanity", sanity,
            "--out", out, "--threads", 1, *shlex.split(flags(STAGES["train"], p, algo))]


@pytest.fixture(scope="module")
def sanity(tmp_path_factory):
    path = tmp_path_factory.mktemp("sanity") / "lift_mujoco.json"
    path.write_text(json.dumps({"ok": True, "problems": []}))   # the env's own tests cover run_sanity
    return path


PPO_TOTAL = 512   # two rollouts of 4 envs x 64 steps: checkpoints 0, 256, 512


@pytest.fixture(scope="module")
def ppo_run(tmp_path_factory, sanity):
    out = tmp_path_factory.mktemp("runs") / "seed0"
    stage("train", *train_args(out, sanity, total=PPO_TOTAL))
    return out


def test_checkpoints_carry_provenance(ppo_run):
    found = common.checkpoints(ppo_run)
    assert [m["global_step"] for _, m in found] == checkpoint_steps("ppo", PPO_TOTAL) == [0, 256, 512]
    meta = found[-1][1]
    import envs
    assert meta["task"] == "lift" and meta["reward"] == "v19" and meta["algo"] == "ppo" and meta["seed"] == 0
    assert meta["reward_fingerprint"] == envs.rewards.fingerprint("lift", "v19")
    assert meta["hparams"]["total_timesteps"] == PPO_TOTAL and meta["env"]["max_episode_steps"] == 50
    assert {"torch", "stable-baselines3", "mujoco", "gymnasium"} <= set(meta["versions"])
    assert "git_commit" in meta
    log = pd.read_parquet(ppo_run / "train_log.parquet")
    # 4 envs x 128 steps / 50-step episodes: every finished episode whole, each with its success flag
    assert len(log) > 0 and (log.episode_len == 50).all()
    assert {"return", "success_once", "max_cube_z", "grasp_steps"} <= set(log.columns)
    assert any(c.startswith("reward/") for c in log.columns)
    assert (ppo_run / "tb").is_dir()


def eval_args(run, tmp, reward="v19", episodes=2, algo="ppo"):
    p = cfg.merge(PARAMS, {"evaluation": {"episodes": episodes}})
    return ["--task", "lift", "--reward", reward, "--algo", algo, "--runs", run, "--out", tmp / "e.parquet",
            "--metrics", tmp / "e.json", "--curve", tmp / "e.tsv", "--provenance", tmp / "p.json",
            *shlex.split(flags(STAGES["evaluate"], p))]


def test_evaluate_rows_and_metrics(ppo_run, tmp_path):
    stage("evaluate", *eval_args(ppo_run, tmp_path))
    df = pd.read_parquet(tmp_path / "e.parquet")
    assert len(df) == 3 * 2      # every checkpoint x every episode
    assert list(df.columns[:4]) == ["algo", "seed", "step", "episode"]
    m = json.loads((tmp_path / "e.json").read_text())
    assert {"mean_return", "std_return", "success_rate", "max_cube_z", "mean_grasp_steps"} <= set(m)
    assert m["final_step"] == PPO_TOTAL
    curve = pd.read_csv(tmp_path / "e.tsv", sep="\t")
    assert list(curve.step) == [0, 256, 512]


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


@pytest.mark.parametrize("algo,total", [("ppo", 2048), ("sac", 2048), ("drqv2", 768)])
def test_killed_run_resumes_to_the_same_step_count(tmp_path, sanity, algo, total):
    """SIGKILL a run after its first checkpoints; rerunning the same command resumes from the
    latest one (weights, optimiser, SAC's and DrQ-v2's replay buffer, global step) and ends where an
    uninterrupted run would."""
    import time
    out = tmp_path / "run"
    args = [sys.executable, "-m", "pipeline.train", *map(str, train_args(out, sanity, algo=algo, total=total))]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env={"OMP_NUM_THREADS": "1", "PATH": ""})
    deadline = time.time() + 120
    partial = tmp_path / "run.partial"      # where a run lives until it completes
    while not (partial / "checkpoints" / "step_000000256.json").exists():
        assert proc.poll() is None and time.time() < deadline, "training ended before the kill"
        time.sleep(0.05)
    proc.kill()
    proc.wait()
    assert not out.exists()
    killed_at = common.checkpoints(partial)[-1][1]["global_step"]
    assert killed_at < total
    if algo == "drqv2":
        # DrQ-v2 resumes from trainer/trainer.pt, written just before a checkpoint's metadata. Make
        # the worst case certain: the metadata of the latest checkpoint is lost (killed in between),
        # so the resume point is ahead of the latest checkpoint and must write its metadata itself.
        import torch
        killed_at = torch.load(partial / "trainer" / "trainer.pt", weights_only=False)["global_step"]
        (partial / "checkpoints" / f"step_{killed_at:09d}.json").unlink(missing_ok=True)
        assert common.checkpoints(partial)[-1][1]["global_step"] < killed_at
    resumed = stage("train", *train_args(out, sanity, algo=algo, total=total))
    assert f"resuming {algo} seed 0 from global step {killed_at}" in resumed.stdout
    steps = [m["global_step"] for _, m in common.checkpoints(out)]
    assert steps == checkpoint_steps(algo, total), steps
    assert json.loads((out / "run.json").read_text())["global_step"] == total
    assert not partial.exists()
    if algo == "drqv2":     # the episode log is whole: one row per finished episode, none twice
        log = pd.read_parquet(out / "train_log.parquet")
        assert len(log) > 0 and not log.duplicated(["global_step", "env"]).any()
        assert (log.episode_len == 50).all()


def checkpoint_steps(algo, total, every=128):
    """The checkpoint steps of an uninterrupted run: every `every` steps, except that PPO saves
    between rollouts (num_envs * n_steps steps each), at the first rollout boundary past each
    grid point, and finishes its last rollout."""
    rollout = PARAMS["ppo"]["num_envs"] * PARAMS["ppo"]["n_steps"] if algo == "ppo" else 1
    up = lambda n: -(-n // rollout) * rollout
    return sorted({0, up(total), *(up(g) for g in range(every, total + 1, every))})


def kill_after_checkpoint(tmp_path, sanity, algo, total, step):
    """Start a training run and SIGKILL it once checkpoint `step` exists; returns its .partial folder."""
    import time
    args = [sys.executable, "-m", "pipeline.train", *map(str, train_args(tmp_path / "run", sanity, algo=algo, total=total))]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env={"OMP_NUM_THREADS": "1", "PATH": ""})
    partial, deadline = tmp_path / "run.partial", time.time() + 120
    while not (partial / "checkpoints" / f"step_{step:09d}.json").exists():
        assert proc.poll() is None and time.time() < deadline, "training ended before the kill"
        time.sleep(0.05)
    proc.kill()
    proc.wait()
    return partial


@pytest.mark.parametrize("algo", ["ppo", "sac"])
def test_corrupt_latest_checkpoint_falls_back_to_the_previous(tmp_path, sanity, algo):
    """A torn newest checkpoint (truncated model file) is detected by its sha256: the rerun warns,
    resumes from the previous checkpoint (SAC with that checkpoint's replay buffer) and still ends
    at the configured step count."""
    total = 2048
    partial = kill_after_checkpoint(tmp_path, sanity, algo, total, 256)
    found = common.checkpoints(partial)
    (newest, newest_meta), (_, previous_meta) = found[-1], found[-2]
    assert newest_meta["model_sha256"] == common.sha256_file(newest)
    newest.write_bytes(newest.read_bytes()[:1000])          # torn, as by a crash or a full disk
    resumed = stage("train", *train_args(tmp_path / "run", sanity, algo=algo, total=total))
    assert "does not match its recorded sha256" in resumed.stderr
    assert f"resuming {algo} seed 0 from global step {previous_meta['global_step']}" in resumed.stdout
    steps = [m["global_step"] for _, m in common.checkpoints(tmp_path / "run")]
    assert steps == checkpoint_steps(algo, total), steps


def test_unreadable_checkpoint_metadata_is_skipped(ppo_run, tmp_path, capsys):
    import shutil
    run = tmp_path / "run"
    shutil.copytree(ppo_run, run)
    newest = sorted((run / "checkpoints").glob("step_*.json"))[-1]
    newest.write_text('{"global_step": 12')                 # torn JSON
    steps = [m["global_step"] for _, m in common.checkpoints(run)]
    assert steps == checkpoint_steps("ppo", PPO_TOTAL)[:-1]
    assert "unreadable metadata" in capsys.readouterr().err


@pytest.mark.slow
def test_smoke_pipeline_both_tools():
    """The whole DAG on config/smoke.yaml with Snakemake and with DVC (what `make test` runs)."""
    proc = subprocess.run([sys.executable, "-m", "pipeline.smoke"], capture_output=True, text=True)
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
    found = common.checkpoints(drqv2_run)
    assert [m["global_step"] for _, m in found] == checkpoint_steps("drqv2", 256) == [0, 128, 256]
    assert all(path.suffix == ".pt" and path.exists() for path, _ in found)
    meta = found[-1][1]
    import envs
    assert meta["task"] == "lift" and meta["reward"] == "v19" and meta["algo"] == "drqv2" and meta["seed"] == 0
    assert meta["reward_fingerprint"] == envs.rewards.fingerprint("lift", "v19")
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
    assert len(df) == 3 * 2 and (df.algo == "drqv2").all() and sorted(set(df.step)) == [0, 128, 256]
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


def test_nan_reward_stops_training_and_keeps_the_good_checkpoints(tmp_path, sanity, monkeypatch):
    """A NaN in the reward (a broken reward version, say) stops the run at once, naming the env and
    the step; the checkpoints written before stay intact and the run is not marked complete."""
    from envs.rewards.lift import v19
    from pipeline import train
    original = v19.compute
    calls = {"n": 0}

    def poisoned(s):
        calls["n"] += 1
        reward, parts = original(s)
        if calls["n"] > 100:          # 400 env steps in: after the checkpoints at 0 and 256
            reward = reward * float("nan")
        return reward, parts
    monkeypatch.setattr(v19, "compute", poisoned)
    out = tmp_path / "run"
    with pytest.raises(FloatingPointError, match=r"non-finite reward in env \d+ at episode step \d+"):
        train.main([str(a) for a in train_args(out, sanity, total=PPO_TOTAL)])
    assert not out.exists()
    assert [m["global_step"] for _, m in common.checkpoints(tmp_path / "run.partial")] == [0, 256]


def test_non_finite_weights_are_never_checkpointed(ppo_run, tmp_path):
    import torch
    from algos import sb3
    from pipeline import train
    model = sb3.load("ppo", common.checkpoints(ppo_run)[-1][0])
    next(model.policy.parameters()).data[0] = float("nan")
    run = types_namespace(ckpt_dir=ppo_run / "checkpoints", algo="ppo", seed=0)
    with pytest.raises(common.StageError, match=r"non-finite weights in .* at global step 768 .*last good checkpoint: step 512"):
        train.check_finite_weights(model.policy.named_parameters(), 768, run)
    assert torch.isfinite(next(sb3.load("ppo", common.checkpoints(ppo_run)[-1][0]).policy.parameters())).all()


def types_namespace(**kwargs):
    import types
    return types.SimpleNamespace(**kwargs)


@pytest.mark.parametrize("algo", ["ppo", "sac"])
def test_ctrl_c_saves_a_checkpoint_and_the_rerun_finishes(tmp_path, sanity, algo):
    import signal
    import time
    total = 2048
    args = [sys.executable, "-m", "pipeline.train", *map(str, train_args(tmp_path / "run", sanity, algo=algo, total=total))]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                            env={"OMP_NUM_THREADS": "1", "PATH": ""})
    partial, deadline = tmp_path / "run.partial", time.time() + 120
    while not (partial / "checkpoints" / "step_000000256.json").exists():
        assert proc.poll() is None and time.time() < deadline, "training ended before Ctrl-C"
        time.sleep(0.05)
    time.sleep(0.3)
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 130, out
    saved = int(out.split("checkpoint saved at global step ")[1].split(";")[0])
    assert common.checkpoints(partial)[-1][1]["global_step"] == saved
    resumed = stage("train", *train_args(tmp_path / "run", sanity, algo=algo, total=total))
    assert f"resuming {algo} seed 0 from global step {saved}" in resumed.stdout
    steps = [m["global_step"] for _, m in common.checkpoints(tmp_path / "run")]
    assert set(checkpoint_steps(algo, total)) <= set(steps) and steps[-1] == total, steps
