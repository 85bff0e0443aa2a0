"""Runs that survive: a run killed, crashed, interrupted or cut into chunks ends with exactly the
weights of a run that never stopped, at the configured step count, with one continuous log.

Why exact equality holds: every checkpoint is saved where the training loop is consistent (between
rollouts for PPO, between env steps for SAC and DrQ-v2, after the last update) and holds, besides
weights, optimisers and replay, the envs' episodes in flight (physics with warm-starts, randomised
models, per-env generators, episode statistics, frame stacks) and every RNG state. On one CPU
thread the resumed run then computes the same numbers in the same order.

Faults are injected from outside, as they happen: SIGKILL at a random moment, SIGSEGV into a chunk's
child process, SIGINT, a truncated file, a NaN reward, and a kill of the job under Snakemake and DVC.
"""
import json
import os
import random
import signal
import subprocess
import threading
import time
from pathlib import Path

import pandas as pd
import pytest

import dagtools
from conftest import PPO_TOTAL
from pipeline.run import checkpoints, cli, files
from stagetools import (checkpoint_steps, final_weights, same_weights, stage, start_training, train_args,
                        wait_for)

TOTAL = {"ppo": 4096, "sac": 1024, "tqc": 1024, "drqv2": 768}      # long enough to kill in the middle


@pytest.fixture(scope="module")
def reference(tmp_path_factory, sanity):
    """The final weights of an uninterrupted run of each algorithm (computed once, on demand)."""
    cache = {}

    def get(algo):
        if algo not in cache:
            out = tmp_path_factory.mktemp(f"reference_{algo}") / "seed0"
            stage("train", *train_args(out, sanity, algo=algo, total=TOTAL[algo]))
            cache[algo] = final_weights(out)
        return cache[algo]
    return get


def check_finished(out: Path, algo: str, reference) -> None:
    """A finished run: every grid checkpoint, the configured step count, one continuous episode log
    and TensorBoard run, and the uninterrupted run's weights."""
    steps = [m["global_step"] for _, m in checkpoints.intact(out)]
    assert set(checkpoint_steps(algo, TOTAL[algo])) <= set(steps) and steps[-1] == TOTAL[algo], steps
    assert json.loads((out / "run.json").read_text())["global_step"] == TOTAL[algo]
    assert not Path(str(out) + ".partial").exists()
    log = pd.read_parquet(out / "train_log.parquet")
    assert len(log) > 0 and not log.duplicated(["global_step", "env"]).any()
    assert log.global_step.is_monotonic_increasing and (log.episode_len == 50).all()
    assert len(list((out / "tb").iterdir())) == 1, "a resume must continue the TensorBoard run, not start one"
    assert same_weights(final_weights(out), reference(algo)), "resumed weights differ from an uninterrupted run"


def latest_step(partial: Path) -> int:
    return checkpoints.intact(partial, quiet=True)[-1][1]["global_step"]


# drqv2's kill-and-resume is in make test through the chunked segfault test below
@pytest.mark.parametrize("algo,kill_seed", [("ppo", 0), ("ppo", 1), ("sac", 0), ("tqc", 0),
                                            pytest.param("drqv2", 0, marks=pytest.mark.slow)])
def test_killed_run_resumes_to_the_same_weights(tmp_path, sanity, reference, algo, kill_seed):
    """SIGKILL at a random moment in the first half of the run (a random checkpoint, then a random
    delay); rerunning the same command resumes from the latest checkpoint and ends where, and with
    what, an uninterrupted run ends."""
    out, partial = tmp_path / "run", tmp_path / "run.partial"
    rng = random.Random(kill_seed)
    after = rng.choice([s for s in checkpoint_steps(algo, TOTAL[algo]) if 0 < s <= TOTAL[algo] // 2])
    proc = start_training(*train_args(out, sanity, algo=algo, total=TOTAL[algo]))
    wait_for(partial / "checkpoints" / f"step_{after:09d}.json", proc)
    time.sleep(rng.uniform(0.0, 0.2))
    assert proc.poll() is None, "training ended before the kill"
    proc.kill()
    proc.wait()
    assert not out.exists()
    killed_at = latest_step(partial)
    assert killed_at < TOTAL[algo]
    if algo == "drqv2":
        # DrQ-v2 resumes from its one state folder, written just before a checkpoint's metadata. Make
        # the worst case certain: the metadata of the latest checkpoint is lost (killed in between),
        # so the resume point is ahead of the latest checkpoint and must write its metadata itself.
        import torch
        from algos.drqv2 import DrQV2Trainer
        state = checkpoints.state_dir(partial, 0, one_state=True) / DrQV2Trainer.STATE_FILE
        killed_at = torch.load(state, weights_only=False)["global_step"]
        (partial / "checkpoints" / f"step_{killed_at:09d}.json").unlink(missing_ok=True)
        assert latest_step(partial) < killed_at
    resumed = stage("train", *train_args(out, sanity, algo=algo, total=TOTAL[algo]))
    assert f"resuming {algo} seed 0 from global step {killed_at}" in resumed.stdout
    check_finished(out, algo, reference)


def kill_after_checkpoint(tmp_path, sanity, algo, step):
    """Start a training run and SIGKILL it once checkpoint `step` exists; returns its .partial folder."""
    proc = start_training(*train_args(tmp_path / "run", sanity, algo=algo, total=TOTAL[algo]))
    partial = tmp_path / "run.partial"
    wait_for(partial / "checkpoints" / f"step_{step:09d}.json", proc)
    proc.kill()
    proc.wait()
    return partial


@pytest.mark.parametrize("algo", ["ppo", "sac"])
def test_corrupt_latest_checkpoint_falls_back_to_the_previous(tmp_path, sanity, reference, algo):
    """A torn newest checkpoint (truncated model file) is detected by its sha256: the rerun warns,
    resumes from the previous checkpoint (SAC with that checkpoint's replay buffer) and still ends
    with the uninterrupted run's weights."""
    partial = kill_after_checkpoint(tmp_path, sanity, algo, 256)
    found = checkpoints.intact(partial)
    (newest, newest_meta), (_, previous_meta) = found[-1], found[-2]
    assert newest_meta["model_sha256"] == files.sha256_file(newest)
    newest.write_bytes(newest.read_bytes()[:1000])          # torn, as by a crash or a full disk
    resumed = stage("train", *train_args(tmp_path / "run", sanity, algo=algo, total=TOTAL[algo]))
    assert "does not match its recorded sha256" in resumed.stderr
    assert f"resuming {algo} seed 0 from global step {previous_meta['global_step']}" in resumed.stdout
    check_finished(tmp_path / "run", algo, reference)


def test_corrupt_resume_state_falls_back_to_the_previous(tmp_path, sanity, reference):
    """The same for the files beside the model (envs in flight, RNGs): checked against their sha256."""
    partial = kill_after_checkpoint(tmp_path, sanity, "ppo", 512)
    found = checkpoints.intact(partial)
    newest, previous = found[-1][1], found[-2][1]
    state = checkpoints.state_dir(partial, newest["global_step"], one_state=False) / "loop.pkl"
    state.write_bytes(state.read_bytes()[:-100])
    resumed = stage("train", *train_args(tmp_path / "run", sanity, total=TOTAL["ppo"]))
    assert f"{state.name} missing or corrupt" in resumed.stderr
    assert f"resuming ppo seed 0 from global step {previous['global_step']}" in resumed.stdout
    check_finished(tmp_path / "run", "ppo", reference)


def test_unreadable_checkpoint_metadata_is_skipped(ppo_run, tmp_path, capsys):
    import shutil
    run = tmp_path / "run"
    shutil.copytree(ppo_run, run)
    newest = sorted((run / "checkpoints").glob("step_*.json"))[-1]
    newest.write_text('{"global_step": 12')                 # torn JSON
    steps = [m["global_step"] for _, m in checkpoints.intact(run)]
    assert steps == checkpoint_steps("ppo", PPO_TOTAL)[:-1]
    assert "unreadable metadata" in capsys.readouterr().err


@pytest.mark.parametrize("algo", ["ppo", "sac", pytest.param("drqv2", marks=pytest.mark.slow)])
def test_ctrl_c_saves_a_checkpoint_and_the_rerun_finishes(tmp_path, sanity, reference, algo):
    """Ctrl-C saves a checkpoint at the next consistent point and exits with 130; the rerun resumes
    there and ends with the uninterrupted run's weights."""
    proc = start_training(*train_args(tmp_path / "run", sanity, algo=algo, total=TOTAL[algo]), stdout=subprocess.PIPE)
    partial = tmp_path / "run.partial"
    wait_for(partial / "checkpoints" / "step_000000256.json", proc)
    time.sleep(0.3)
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=300)
    assert proc.returncode == 130, out
    saved = int(out.split("checkpoint saved at global step ")[1].split(";")[0])
    assert latest_step(partial) == saved and saved < TOTAL[algo]
    resumed = stage("train", *train_args(tmp_path / "run", sanity, algo=algo, total=TOTAL[algo]))
    assert f"resuming {algo} seed 0 from global step {saved}" in resumed.stdout
    check_finished(tmp_path / "run", algo, reference)


# --- chunks in fresh processes ------------------------------------------------------------------------

def children(pid: int) -> list[int]:
    return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


class Output:
    """Collects a process's merged output in a thread, so a test can wait for a line."""

    def __init__(self, proc):
        self.text = ""
        self.thread = threading.Thread(target=self._read, args=(proc,), daemon=True)
        self.thread.start()

    def _read(self, proc):
        for line in proc.stdout:
            self.text += line

    def wait_for(self, needle, proc, timeout=300):
        deadline = time.time() + timeout
        while needle not in self.text:
            assert proc.poll() is None and time.time() < deadline, f"no {needle!r} in:\n{self.text[-3000:]}"
            time.sleep(0.05)


# ppo's chunked resume is in make test through tests/test_curriculum.py's chunked run
@pytest.mark.parametrize("algo,chunk", [pytest.param("ppo", 512, marks=pytest.mark.slow), ("drqv2", 256)])
def test_chunked_run_survives_a_segfault_with_the_same_weights(tmp_path, sanity, reference, algo, chunk):
    """train.chunk_steps runs each chunk in a fresh child process. A child killed by SIGSEGV (what
    a native crash is, exit code 139 in a shell) is rerun from the last checkpoint; the run ends
    with the weights of an unchunked, uninterrupted run, and every chunk's peak memory is logged."""
    out = tmp_path / "run"
    proc = start_training(*train_args(out, sanity, algo=algo, total=TOTAL[algo], chunk_steps=chunk),
                          stdout=subprocess.PIPE)
    output = Output(proc)
    output.wait_for("chunk 2 of", proc)
    inside_chunk_2 = next(s for s in checkpoint_steps(algo, TOTAL[algo]) if s > chunk)
    wait_for(tmp_path / "run.partial" / "checkpoints" / f"step_{inside_chunk_2:09d}.json", proc)
    (child,) = children(proc.pid)
    os.kill(child, signal.SIGSEGV)
    assert proc.wait(timeout=600) == 0, output.text[-3000:]
    output.thread.join()
    assert "chunk 2 died with signal SIGSEGV (shell exit code 139); rerunning it from the last checkpoint" in output.text
    rows = json.loads((out / "chunks.json").read_text())
    assert [(r["chunk"], r["exit_code"]) for r in rows][:3] == [(1, 0), (2, -signal.SIGSEGV), (2, 0)]
    assert [r["chunk"] for r in rows if r["exit_code"] == 0] == list(range(1, TOTAL[algo] // chunk + 1))
    assert all(r["peak_rss_mb"] > 100 for r in rows)
    check_finished(out, algo, reference)


def test_a_chunk_that_keeps_dying_fails_the_stage_with_its_output(tmp_path, sanity):
    """After chunk_retries reruns the stage gives up, with the child's last output in its error."""
    proc = start_training(*train_args(tmp_path / "run", sanity, total=TOTAL["ppo"], chunk_steps=512, retries=1),
                          stdout=subprocess.PIPE)
    output = Output(proc)
    wait_for(tmp_path / "run.partial" / "checkpoints" / "step_000000000.json", proc)
    os.kill(children(proc.pid)[0], signal.SIGKILL)
    output.wait_for("resuming ppo seed 0 from global step 0", proc)
    os.kill(children(proc.pid)[0], signal.SIGKILL)
    assert proc.wait(timeout=300) == 2
    output.thread.join()
    error = output.text.split("error: ")[1]
    assert error.startswith("chunk 1 (global steps 0 -> 512) died 2 times, last with signal SIGKILL")
    assert "its last output:\nresuming ppo seed 0 from global step 0" in error


# --- the same through the DAG tools -------------------------------------------------------------------

def kill_job(ws: Path, tool: subprocess.Popen) -> None:
    """SIGKILL the training process a DAG tool started in workspace ws (the job crashes; the tool lives)."""
    wait_for(ws / "data/runs/lift_v19_mujoco/ppo/seed0.partial/checkpoints/step_000000256.json", tool)
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            cwd = os.readlink(f"/proc/{pid}/cwd")
        except OSError:
            continue
        if b"pipeline.train" in cmd and Path(cwd) == ws:
            os.kill(int(pid), signal.SIGKILL)
            return
    raise AssertionError("no training process found")


# Snakemake's is in make test through the SLURM smoke's scancel-and-resume check
@pytest.mark.parametrize("tool", [pytest.param("snakemake", marks=pytest.mark.slow), "dvc"])
def test_dag_rerun_after_a_killed_job_resumes_it(tmp_path, reference, tool):
    """Kill the train job under the DAG tool; the tool reports the failure, and rerunning the same
    command resumes the run and ends with the uninterrupted run's weights."""
    import yaml

    from pipeline.dag import params as cfg
    ws = dagtools.make_workspace(tmp_path / "ws", fake=False)
    # The smoke params, with the reference run's budget and grid, unchunked: one process to kill.
    params = cfg.merge(cfg.merge(cfg.load(ws / "params.yaml"), cfg.load(ws / "config/smoke.yaml")),
                       {"checkpoint_every": 128, "ppo": {"total_timesteps": TOTAL["ppo"]}, "train": {"chunk_steps": 0}})
    (ws / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    if tool == "dvc":
        dagtools.git_init(ws)
        cmd = [str(dagtools.VENV_BIN / "dvc"), "repro", "train-ppo-seed0"]
    else:
        cmd = [str(dagtools.VENV_BIN / "snakemake"), "--cores", "1", "data/runs/lift_v19_mujoco/ppo/seed0"]
    job = subprocess.Popen(cmd, cwd=ws, env=dagtools.tool_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           text=True)
    kill_job(ws, job)
    assert job.wait(timeout=300) != 0
    rerun = dagtools.run(cmd, ws)
    log = (ws / "logs/train/lift_v19_mujoco_ppo_0.log").read_text() if tool == "snakemake" else rerun.stdout
    assert "resuming ppo seed 0 from global step " in log
    check_finished(ws / "data/runs/lift_v19_mujoco/ppo/seed0", "ppo", reference)


# --- guards ---------------------------------------------------------------------------------------------

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
        train.main(train_args(out, sanity, total=PPO_TOTAL))
    assert not out.exists()
    assert [m["global_step"] for _, m in checkpoints.intact(tmp_path / "run.partial")] == [0, 256]


def test_non_finite_weights_are_never_checkpointed(ppo_run):
    import types

    import torch
    from algos import ppo
    model = ppo.load_policy(checkpoints.intact(ppo_run)[-1][0]).model
    next(model.policy.parameters()).data[0] = float("nan")
    trainer = types.SimpleNamespace(named_parameters=model.policy.named_parameters)
    with pytest.raises(cli.StageError, match=r"non-finite weights in .* at global step 768; last good checkpoint: step 512"):
        checkpoints.check_finite(trainer, 768, ppo_run)
    assert torch.isfinite(next(ppo.load_policy(checkpoints.intact(ppo_run)[-1][0]).model.policy.parameters())).all()
