"""The chunk supervisor: a training run as a series of fresh child processes.

With train.chunk_steps > 0 the train stage only supervises: each chunk of training runs in a child
(`python -m pipeline.train ... --stop-at N`) that resumes from the last checkpoint and saves one at
its end. A child's leaked memory dies with it; a child that dies (a signal, exit 139) is rerun from
the last checkpoint up to train.chunk_retries times in a row; the peak memory of every chunk is
logged in chunks.json, so a leak shows as growth from chunk to chunk.
"""
from __future__ import annotations

import collections
import os
import signal
import subprocess
import sys
import time

from pipeline.run import cli, files


def train_in_chunks(args, argv, run, resumable) -> int:
    """Run the training as a series of child processes, each resuming from the last checkpoint and
    stopping at the next multiple of chunk_steps. A child's leaked memory dies with it, and a child
    that dies (segfault, exit 139, OOM kill) costs at most one checkpoint interval: it is rerun from
    the last checkpoint, up to chunk_retries times in a row."""
    train_cfg = cli.block(args, "train")
    size, retries = train_cfg["chunk_steps"], train_cfg["chunk_retries"]
    log_path = run.out / "chunks.json"
    rows = files.read_json(log_path) if resumable() and log_path.exists() else []
    interrupted = []
    signal.signal(signal.SIGINT, lambda *_: interrupted.append(1))   # the child saves; we wait for it
    failures = 0
    while True:
        resume = resumable()
        start = resume[1]["global_step"] if resume else 0
        stop_at = min(run.total, (start // size + 1) * size)
        chunk = start // size + 1
        print(f"chunk {chunk} of {-(-run.total // size)}: global steps {start} -> {stop_at} in a fresh process"
              + (f" (retry {failures} of {retries})" if failures else ""), flush=True)
        t0 = time.time()
        code, peak_mb, tail = run_child([sys.executable, "-m", "pipeline.train", *argv, "--stop-at", str(stop_at)])
        rows.append({"chunk": chunk, "attempt": failures + 1, "start_step": start, "stop_at": stop_at,
                     "exit_code": code, "peak_rss_mb": peak_mb, "wall_s": round(time.time() - t0, 1)})
        done = code == 0 and stop_at >= run.total
        files.write_json((run.final if done else run.out) / "chunks.json", rows)
        report_memory(rows)
        if code == 0:
            failures = 0
            if done:
                return 0
            continue
        if code == 130 or interrupted:
            return 130
        if code == 2:     # the child's own clear error (bad input, NaN): rerunning cannot help
            return 2
        failures += 1
        if failures > retries:
            raise cli.StageError(f"chunk {chunk} (global steps {start} -> {stop_at}) died {failures} times, "
                                    f"last with {describe_exit(code)}; its last output:\n{tail}")
        cli.warn(f"chunk {chunk} died with {describe_exit(code)}; rerunning it from the last checkpoint")


def run_child(cmd: list[str]) -> tuple[int, float, str]:
    """Run cmd, passing its output through; return its exit code (-N: killed by signal N), its own
    peak RSS in MB (from wait4, so per child, not the maximum over all children) and its last lines."""
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    tail = collections.deque(maxlen=64)
    for block in iter(lambda: proc.stdout.read1(1 << 16), b""):
        sys.stdout.buffer.write(block)
        sys.stdout.buffer.flush()
        tail.append(block)
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)   # reaped here; keep Popen from waiting again
    text = b"".join(tail).decode(errors="replace").replace("\r", "\n")
    return proc.returncode, round(usage.ru_maxrss / 1024, 1), "\n".join(text.strip().splitlines()[-20:])


def describe_exit(code: int) -> str:
    if code < 0:
        return f"signal {signal.Signals(-code).name} (shell exit code {128 - code})"
    return f"exit code {code}" + (" (SIGSEGV)" if code == 139 else "")


def report_memory(rows: list[dict]) -> None:
    """Print the last chunk's peak memory next to the first full chunk's (chunk 1 pays for warm-up)."""
    ok = [r for r in rows if r["exit_code"] == 0]
    if not ok:
        return
    base = ok[1] if len(ok) > 1 else ok[0]
    growth = 100.0 * (ok[-1]["peak_rss_mb"] / base["peak_rss_mb"] - 1.0)
    print(f"chunk {ok[-1]['chunk']}: peak RSS {ok[-1]['peak_rss_mb']:.0f} MB "
          f"({growth:+.1f}% vs chunk {base['chunk']})", flush=True)
