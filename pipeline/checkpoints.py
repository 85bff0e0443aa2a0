"""The checkpoint format on disk, in one place: naming, writing, listing the intact ones, verifying,
falling back.

In a run folder:
  checkpoints/step_<step>.json    the checkpoint's metadata, written last: it makes step a checkpoint
                                  (task, reward + fingerprint, params, versions, the sha256 of every file)
  checkpoints/step_<step><suffix> the policy (.zip for SB3, .pt for DrQ-v2): what evaluate and render load
  checkpoints/step_<step>.state/  the trainer's resume state, kept for the two latest checkpoints
  trainer/                        instead, for a trainer that keeps one state (Trainer.keeps_one_state)
A checkpoint whose metadata is unreadable or whose files no longer match their sha256 (torn by a
crash, truncated) is skipped with a warning; a resume then continues from the previous intact one.
"""
from __future__ import annotations

import shutil
from pathlib import Path

from pipeline import common

CHECKPOINTS = "checkpoints"
ONE_STATE = "trainer"
KEEP_STATES = 2


def stem(run_dir, step: int) -> Path:
    return Path(run_dir) / CHECKPOINTS / f"step_{step:09d}"


def meta_path(run_dir, step: int) -> Path:
    return stem(run_dir, step).with_suffix(".json")


def state_dir(run_dir, step: int, one_state: bool) -> Path:
    """Where the trainer's resume state for checkpoint step lives."""
    return Path(run_dir) / ONE_STATE if one_state else stem(run_dir, step).with_suffix(".state")


def check_finite(trainer, step: int, run_dir) -> None:
    """Refuse to checkpoint a diverged network, naming the step, the parameter and the last good
    checkpoint (NaN in observations or rewards already stops in the env)."""
    import torch
    for name, value in trainer.named_parameters():
        if not torch.isfinite(value).all():
            last = max((int(p.stem[5:]) for p in Path(run_dir, CHECKPOINTS).glob("step_*.json")), default=None)
            raise common.StageError(f"non-finite weights in {name} at global step {step}; "
                                    f"last good checkpoint: step {last}")


def save(run_dir, trainer, metadata: dict) -> None:
    """Checkpoint the trainer at its global step. Order matters for a run killed mid-save:
    the policy, then the resume state, then the metadata, which makes it a checkpoint. Killed
    before the metadata, the previous checkpoint stays the latest."""
    step = trainer.global_step
    check_finite(trainer, step, run_dir)
    base = stem(run_dir, step)
    base.parent.mkdir(parents=True, exist_ok=True)
    policy = base.with_name(base.name + trainer.policy_suffix)
    trainer.save_policy(policy)
    state = state_dir(run_dir, step, trainer.keeps_one_state)
    if not trainer.keeps_one_state and state.exists():
        shutil.rmtree(state)
    trainer.save(state)
    # A trainer keeping one state commits it itself; a per-checkpoint state is verified by sha256.
    files = [] if trainer.keeps_one_state else sorted(p for p in state.rglob("*") if p.is_file())
    common.write_json(meta_path(run_dir, step), {
        **metadata, "global_step": step, "model_file": policy.name, "model_sha256": common.sha256_file(policy),
        "resume_state": state.name, "one_state": trainer.keeps_one_state,
        "resume_files": {str(p.relative_to(run_dir)): common.sha256_file(p) for p in files}})
    for old in sorted(Path(run_dir, CHECKPOINTS).glob("step_*.state"))[:-KEEP_STATES]:
        shutil.rmtree(old)


def drop_resume_state(run_dir) -> None:
    shutil.rmtree(Path(run_dir) / ONE_STATE, ignore_errors=True)
    for folder in Path(run_dir, CHECKPOINTS).glob("step_*.state"):
        shutil.rmtree(folder)


def intact(run_dir, quiet: bool = False) -> list[tuple[Path, dict]]:
    """(policy file, metadata) of every intact checkpoint in a run folder, by global step."""
    found = []
    warn = (lambda message: None) if quiet else common.warn
    for path in sorted(Path(run_dir, CHECKPOINTS).glob("step_*.json")):
        try:
            meta = common.read_json(path)
        except (OSError, ValueError) as err:
            warn(f"skipping checkpoint {path}: unreadable metadata ({err})")
            continue
        policy = path.parent / meta["model_file"]
        if not policy.exists():
            warn(f"skipping checkpoint {path}: its model file {policy.name} is missing")
            continue
        if common.sha256_file(policy) != meta["model_sha256"]:
            warn(f"skipping checkpoint {path}: {policy.name} does not match its recorded sha256 (torn or corrupted)")
            continue
        found.append((policy, meta))
    if not found:
        raise common.StageError(f"{run_dir}: no checkpoints (expected {CHECKPOINTS}/step_*.json and the "
                                "policy file beside it, written by the train stage)")
    return sorted(found, key=lambda pair: pair[1]["global_step"])


def damaged_state(run_dir, meta: dict) -> list[str]:
    """The resume files of a checkpoint that are missing or differ from their recorded sha256."""
    return [f for f, sha in meta["resume_files"].items()
            if not Path(run_dir, f).exists() or common.sha256_file(Path(run_dir, f)) != sha]


def resumable(run_dir, identity: dict, quiet: bool = False):
    """The latest checkpoint a run of this identity can continue from exactly, as
    (policy file, metadata, state folder), or None: start clean."""
    try:
        found = intact(run_dir, quiet=quiet)
    except common.StageError:
        return None
    if not all(found[-1][1].get(k) == v for k, v in identity.items()):
        return None
    if found[-1][1]["one_state"]:
        folder = state_dir(run_dir, 0, one_state=True)
        return (*found[-1], folder) if folder.exists() else None
    for path, meta in reversed(found):
        bad = damaged_state(run_dir, meta)
        if not bad:
            return path, meta, state_dir(run_dir, meta["global_step"], one_state=False)
        if not quiet:
            common.warn(f"cannot resume from {path.name}: {', '.join(bad)} missing or corrupt; trying the one before")
    return None


def final_weights(run_dir) -> dict:
    """name -> tensor of every network weight of a run's latest checkpoint (SB3's policy.pth in its
    zip, or DrQ-v2's agent), to compare two runs bit for bit."""
    import io
    import zipfile

    import torch
    path, _ = intact(run_dir, quiet=True)[-1]
    if path.suffix == ".zip":
        with zipfile.ZipFile(path) as z:
            return torch.load(io.BytesIO(z.read("policy.pth")), weights_only=True)
    agent = torch.load(path, weights_only=False)["agent"]
    return {f"{part}.{k}": v for part, sd in agent.items() if isinstance(sd, dict)
            for k, v in sd.items() if torch.is_tensor(v)}


def same_weights(a: dict, b: dict) -> bool:
    import torch
    return a.keys() == b.keys() and len(a) > 0 and all(torch.equal(a[k], b[k]) for k in a)
