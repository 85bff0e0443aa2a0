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

from pipeline.run import cli, files, provenance

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
            raise cli.StageError(f"non-finite weights in {name} at global step {step}; "
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
    resume = [] if trainer.keeps_one_state else sorted(p for p in state.rglob("*") if p.is_file())
    files.write_json(meta_path(run_dir, step), {
        **metadata, "global_step": step, "model_file": policy.name, "model_sha256": files.sha256_file(policy),
        "resume_state": state.name, "one_state": trainer.keeps_one_state,
        "resume_files": {str(p.relative_to(run_dir)): files.sha256_file(p) for p in resume}})
    for old in sorted(Path(run_dir, CHECKPOINTS).glob("step_*.state"))[:-KEEP_STATES]:
        shutil.rmtree(old)


def drop_resume_state(run_dir) -> None:
    shutil.rmtree(Path(run_dir) / ONE_STATE, ignore_errors=True)
    for folder in Path(run_dir, CHECKPOINTS).glob("step_*.state"):
        shutil.rmtree(folder)


def intact(run_dir, quiet: bool = False) -> list[tuple[Path, dict]]:
    """(policy file, metadata) of every intact checkpoint in a run folder, by global step."""
    found = []
    warn = (lambda message: None) if quiet else cli.warn
    for path in sorted(Path(run_dir, CHECKPOINTS).glob("step_*.json")):
        try:
            meta = files.read_json(path)
        except (OSError, ValueError) as err:
            warn(f"skipping checkpoint {path}: unreadable metadata ({err})")
            continue
        policy = path.parent / meta["model_file"]
        if not policy.exists():
            warn(f"skipping checkpoint {path}: its model file {policy.name} is missing")
            continue
        if files.sha256_file(policy) != meta["model_sha256"]:
            warn(f"skipping checkpoint {path}: {policy.name} does not match its recorded sha256 (torn or corrupted)")
            continue
        found.append((policy, meta))
    if not found:
        raise cli.StageError(f"{run_dir}: no checkpoints (expected {CHECKPOINTS}/step_*.json and the "
                                "policy file beside it, written by the train stage)")
    return sorted(found, key=lambda pair: pair[1]["global_step"])


def damaged_state(run_dir, meta: dict) -> list[str]:
    """The resume files of a checkpoint that are missing or differ from their recorded sha256."""
    return [f for f, sha in meta["resume_files"].items()
            if not Path(run_dir, f).exists() or files.sha256_file(Path(run_dir, f)) != sha]


def resumable(run_dir, identity: dict, quiet: bool = False):
    """The latest checkpoint a run of this identity can continue from exactly, as
    (policy file, metadata, state folder), or None: start clean."""
    try:
        found = intact(run_dir, quiet=quiet)
    except cli.StageError:
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
            cli.warn(f"cannot resume from {path.name}: {', '.join(bad)} missing or corrupt; trying the one before")
    return None


def final_weights(run_dir) -> dict:
    """name -> tensor of every network weight of a run's latest checkpoint, as its algorithm reads
    them (algos: read_weights), to compare two runs bit for bit."""
    import algos
    path, meta = intact(run_dir, quiet=True)[-1]
    return algos.read_weights(meta["algo"], path)


def same_weights(a: dict, b: dict) -> bool:
    import torch
    return a.keys() == b.keys() and len(a) > 0 and all(torch.equal(a[k], b[k]) for k in a)


# Env settings that change what the policy sees: a checkpoint must match them exactly.
OBS_KEYS = ("obs_mode", "image_size", "frame_stack")

def policy_env(algo: str, env_params: dict, found: list[tuple[Path, dict]]) -> dict:
    """The env settings to evaluate or render a run's checkpoints on: the env block with what the
    algorithm imposes (HER: goal observations; DrQ-v2: pixels with the frame stack of its block; a
    residual learner: its base and blending; all read from the checkpoint), without a curriculum
    (neither the stage curriculum nor reverse-curriculum starts). Check each checkpoint against them
    with check_checkpoint."""
    import algos
    path, meta = found[-1]
    if meta["algo"] != algo:
        raise cli.StageError(f"refusing checkpoint {path}: algorithm is {meta['algo']!r}, asked for {algo!r}")
    # Evaluation runs at env.curriculum_stage: a training curriculum never applies, nor do starts
    # from demonstration states.
    residual = meta.get("residual")      # a residual learner's blending, as it trained
    residual = {k: v for k, v in residual.items() if k != "base"} if residual else None
    return {**algos.env_settings(algo, env_params, meta["hparams"], residual), "curriculum_from": -1,
            "reverse_curriculum": False}

def check_checkpoint(meta: dict, path, task: str, reward: str, obs_env: dict) -> None:
    """Refuse a checkpoint made for another task, reward version or reward code (devlog 001's
    silent v11-for-v19 mix-up), or one whose observations differ from the env we build."""
    fingerprint = provenance.reward_fingerprint(task, reward)
    problems = []
    if meta["task"] != task:
        problems.append(f"task is {meta['task']!r}, asked for {task!r}")
    if meta["reward"] != reward:
        problems.append(f"reward version is {meta['reward']!r}, asked for {reward!r}")
    elif meta["reward_fingerprint"] != fingerprint:
        problems.append(f"reward {reward} code changed since training (fingerprint {meta['reward_fingerprint'][:12]} "
                        f"in checkpoint, {fingerprint[:12]} now): retrain")
    # The env the policy was trained on: HER on goal obs and DrQ-v2 on its frame stack, whatever the
    # env block says (metadata older than trained_env recorded only the obs_mode).
    trained = meta.get("trained_env") or {**meta["env"], "obs_mode": meta["obs_mode"]}
    for key, value in obs_env.items():
        if trained.get(key) != value:
            problems.append(f"env.{key} is {trained.get(key)!r} in checkpoint, {value!r} here")
    if problems:
        raise cli.StageError(f"refusing checkpoint {path}: " + "; ".join(problems))
