"""The algorithms: one module (or package) each, listed here by one line.

What each provides is in algos/base.py (PARAMS, env_settings, make_trainer, load_policy). The
pipeline reads this registry alone: the params schema (pipeline/config.py), the stages' code
dependencies (pipeline/stages.py, from the module's imports) and the train, evaluate and render
stages. Modules are imported by name, so a run imports only its own algorithm's code.
"""
import importlib

ALGOS = {
    "ppo": "algos.ppo",         # Stable-Baselines3 PPO
    "sac": "algos.sac",         # Stable-Baselines3 SAC
    "her": "algos.her",         # SAC + Hindsight Experience Replay, on goal-conditioned tasks
    "drqv2": "algos.drqv2",     # DrQ-v2, our own, from the wrist camera's pixels
}


def get(name: str):
    """The algorithm's module; an unknown name raises ValueError naming the valid ones."""
    if name not in ALGOS:
        raise ValueError(f"unknown algorithm {name!r}; valid: {', '.join(ALGOS)}")
    return importlib.import_module(ALGOS[name])


def env_settings(name: str, env_params: dict, hp: dict) -> dict:
    """The env block an algorithm trains and is evaluated on (HER: goal observations; DrQ-v2:
    pixels with its own frame stack)."""
    return get(name).env_settings(env_params, hp)


def load_policy(name: str, path, deterministic: bool = True, step: int = 0):
    """A checkpoint's policy, on the CPU: policy.act(obs) -> action, for one env."""
    return get(name).load_policy(path, deterministic, step)
