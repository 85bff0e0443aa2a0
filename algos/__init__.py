"""The algorithms: one module (or package) each, listed here by one line.

What each provides is in algos/base.py (PARAMS, env_settings, make_trainer, load_policy). The
pipeline reads this registry alone: the params schema (pipeline/dag/params.py), the stages' code
dependencies (pipeline/dag/registry.py, from the module's imports) and the train, evaluate and render
stages. Modules are imported by name, so a run imports only its own algorithm's code.
"""
import importlib

ALGOS = {
    "ppo": "algos.ppo",         # Stable-Baselines3 PPO
    "sac": "algos.sac",         # Stable-Baselines3 SAC
    "tqc": "algos.tqc",         # sb3-contrib TQC: SAC with truncated quantile critics
    "her": "algos.her",         # SAC + Hindsight Experience Replay, on goal-conditioned tasks
    "drqv2": "algos.drqv2",     # DrQ-v2, our own, from the wrist camera's pixels
    "scripted": "algos.scripted",   # the task's scripted controller alone: learns nothing (a baseline)
    "bc": "algos.bc",           # behaviour cloning of the demos stage's scripted demonstrations
    "rlpd": "algos.rlpd",       # our own SAC with prior data: demonstrations in every batch, critic ensemble
}

# Residual learning (envs/residual.py): "ppo+scripted" is PPO learning a residual on top of the
# scripted controller, its actions blended as the params block `residual` says. Bases by name, and
# trained bases: "ppo+sac" learns on top of the final policy of this experiment's sac run of the
# same seed (a declared input, so a change to that run retrains the residual). A trained base acts
# on the learner's observations, so it is a state-observation algorithm.
BASES = ("zero", "scripted")
TRAINED_BASES = ("ppo", "sac")


def learner(name: str) -> str:
    """"ppo+scripted" -> "ppo"; "ppo" -> "ppo"."""
    return name.split("+", 1)[0]


def base_policy(name: str) -> str | None:
    """"ppo+scripted" -> "scripted"; "ppo" -> None."""
    return name.split("+", 1)[1] if "+" in name else None


def problem(name: str) -> str | None:
    """Why name is not an algorithm of the registry (a learner, or learner+base), or None."""
    if learner(name) not in ALGOS or (base_policy(name) is not None and base_policy(name) not in BASES + TRAINED_BASES):
        return (f"unknown algorithm {name!r}; valid: {', '.join(ALGOS)}, or a residual learner on a base "
                f"as <algorithm>+<base> with base {', '.join(BASES)} or a trained run of "
                f"{' or '.join(TRAINED_BASES)} (e.g. ppo+scripted, ppo+sac)")
    if base_policy(name) is not None and learner(name) == "scripted":
        return f"{name!r}: the scripted controller learns nothing, so it takes no base"
    return None


def trained_base(name: str) -> str | None:
    """The algorithm whose trained run is the base of residual learner `name` ("ppo+sac" -> "sac")."""
    return base_policy(name) if base_policy(name) in TRAINED_BASES else None


def get(name: str):
    """The (learner's) module; an unknown name raises ValueError naming the valid ones."""
    if problem(name):
        raise ValueError(problem(name))
    return importlib.import_module(ALGOS[learner(name)])


def env_settings(name: str, env_params: dict, hp: dict, residual: dict | None = None) -> dict:
    """The env block an algorithm trains and is evaluated on (HER: goal observations; DrQ-v2:
    pixels with its own frame stack; a residual learner: residual actions on its base, blended as
    `residual` ({"alpha", "penalty"}) says)."""
    settings = get(name).env_settings(env_params, hp)
    if base_policy(name) is not None:
        settings["residual"] = {"base": base_policy(name), **residual}
    return settings


def gpus(name: str, hp: dict) -> int:
    """GPUs a training job of `name` asks a cluster for, with params block hp (0 unless the
    algorithm declares otherwise)."""
    module = get(name)
    return module.gpus(hp) if hasattr(module, "gpus") else 0


def uses_demos(name: str, hp: dict) -> bool:
    """Whether a run of algorithm `name` with params block hp learns from the demos stage's
    demonstrations: its module's uses_demos(hp) where it defines one (rlpd, drqv2: demo_ratio > 0),
    else its USES_DEMOS (bc: always), else never. The one place the pipeline asks: the DAG makes the
    dataset an input of such a run only, and the train stage loads it for such a run only."""
    module = get(name)
    if hasattr(module, "uses_demos"):
        return bool(module.uses_demos(hp))
    return getattr(module, "USES_DEMOS", False)


def total_steps(name: str, hp: dict) -> int:
    """The global step a run of `name` ends at, with params block hp: its total_timesteps, or what the
    algorithm counts instead (an offline learner: gradient steps); 0 for one that learns nothing."""
    module = get(name)
    return module.total_steps(hp) if hasattr(module, "total_steps") else hp.get("total_timesteps", 0)


def read_weights(name: str, path) -> dict:
    """name -> tensor of every network weight in a policy file of `name` (to compare runs bit for bit)."""
    return get(name).read_weights(path)


def load_policy(name: str, path, deterministic: bool = True, step: int = 0):
    """A checkpoint's policy, on the CPU: policy.act(obs) -> action, for one env."""
    return get(name).load_policy(path, deterministic, step)
