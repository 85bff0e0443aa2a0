"""The trained base of a residual learner ("ppo+sac": the final policy of this experiment's sac run
of the same seed, envs/residual.py), loaded for the stages that run the learner's env: train,
evaluate and render. The DAG declares the base run as their input (pipeline/dag/registry.py)."""
from __future__ import annotations

from pathlib import Path

import algos
from pipeline.run import checkpoints, cli


def base_run(run_dir, base: str) -> Path:
    """The base's run beside a residual learner's: data/runs/<task>_<reward>_<backend>/<base>/seed<n>."""
    run_dir = Path(str(run_dir).removesuffix(".partial"))
    return run_dir.parent.parent / base / run_dir.name


def with_trained_base(env_cfg: dict, run_dir, task: str, reward: str) -> dict:
    """Env settings whose residual base, where it names a trained algorithm, is that run's final
    policy (a PolicyBase); unchanged otherwise. The base must have been trained on this task and
    reward version, on the observations the learner gets."""
    residual = env_cfg.get("residual")
    if not residual or residual["base"] not in algos.TRAINED_BASES:
        return env_cfg
    from envs.residual import PolicyBase
    folder = base_run(run_dir, residual["base"])
    if not folder.is_dir():
        raise cli.StageError(f"{folder}: the trained base of {Path(run_dir).parent.name} is missing "
                                f"(the DAG builds it first: train {residual['base']})")
    path, meta = checkpoints.intact(folder)[-1]
    checkpoints.check_checkpoint(meta, path, task, reward, {k: env_cfg[k] for k in checkpoints.OBS_KEYS})
    policy = algos.load_policy(residual["base"], path, True, meta["global_step"])
    return {**env_cfg, "residual": {**residual, "base": PolicyBase(policy)}}
