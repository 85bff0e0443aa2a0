"""A finished run's checkpoints as evaluate and render read them: every one intact, the newest at
the step the run trained to (run.json's global_step), or a stop that names the damage and the fix.

Training skips a torn checkpoint and resumes from the one before (pipeline/run/checkpoints.py),
which is right for a run in progress. A stage that reads a finished run must not: without its
torn newest checkpoint, evaluate would report final step 256 for a run trained to 512, beside a
video of another policy, and exit 0. A finished run keeps no resume state (runs.py drops it), so
what brings a damaged checkpoint back is the run itself: retrained (on CPU, to the same weights) or
restored from DVC's cache. This module is separate from checkpoints.py so that the
train stage, which imports that one, does not depend on it.
"""
from __future__ import annotations

from pathlib import Path

from pipeline.run import checkpoints as ckpt
from pipeline.run import cli, files


def checkpoints(run_dir) -> list[tuple[Path, dict]]:
    """(policy file, metadata) of every checkpoint of a finished run, by global step; StageError
    when one is torn, corrupt or missing, naming the files and the command that recovers them."""
    run_dir = Path(run_dir)
    try:
        found = ckpt.intact(run_dir, quiet=True)
    except cli.StageError:
        found = []
    steps = {ckpt.meta_path(run_dir, meta["global_step"]) for _, meta in found}
    damaged = [_damage(p) for p in sorted((run_dir / ckpt.CHECKPOINTS).glob("step_*.json")) if p not in steps]
    summary = run_dir / "run.json"
    if not summary.exists():
        raise cli.StageError(f"{summary} is missing: the run did not finish (the train stage writes it last)"
                             + recovery(run_dir))
    trained = files.read_json(summary)["global_step"]
    newest = found[-1][1]["global_step"] if found else None
    if damaged or newest != trained:
        what = "; ".join(damaged) if damaged else f"no checkpoint of step {trained}"
        why = ("its learning curve would miss them" if newest == trained else
               f"The run trained to step {trained}; its newest intact checkpoint is "
               f"{'none' if newest is None else f'step {newest}'}: its final numbers would be another policy's")
        raise cli.StageError(f"damaged checkpoint in {run_dir}: {what}. {why}" + recovery(run_dir))
    return found


def _damage(meta_path: Path) -> str:
    """What is wrong with a checkpoint that intact() skipped, naming the file."""
    try:
        meta = files.read_json(meta_path)
        policy = meta_path.parent / meta["model_file"]
    except (OSError, ValueError, KeyError):
        return f"{meta_path} is unreadable"
    if not policy.exists():
        return f"{policy} is missing"
    return f"{policy} does not match its recorded sha256 (torn or corrupted)"


def recovery(run_dir) -> str:
    """The commands that bring the run back. Not `rm -r` and a plain rerun: Snakemake does not
    rebuild missing intermediate files while the report downstream of them is up to date."""
    return (f". To recover, retrain the run: rerun your snakemake command with `--forcerun {run_dir}` "
            "(Snakemake retrains this run alone, then what reads it), or run `dvc repro` (DVC restores the "
            "run from its cache)")
