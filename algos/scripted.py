"""The task's scripted controller alone (envs/controllers/), as an algorithm that learns
nothing: the baseline row of a residual experiment (`algos: [scripted, ppo+scripted, ppo]`). Its
run is one checkpoint at step 0; evaluating it runs the controller with a zero residual.
"""
from pathlib import Path

from algos.base import Trainer
from envs.settings import count

PARAMS = {"num_envs": count(doc="envs the controller runs together")}


def env_settings(env_params: dict, hp: dict) -> dict:
    return {**env_params, "residual": {"base": "scripted", "alpha": 1.0, "penalty": 0.0}}


class NoLearning(Trainer):
    policy_suffix = ".policy"      # JSON; not .json, the suffix of checkpoint metadata
    total_timesteps = 0

    def __init__(self, vec_env):
        self.vec_env, self.num_envs, self.episodes = vec_env, vec_env.num_envs, []
        self.action_dim = vec_env.single_action_space.shape[0]

    @property
    def global_step(self) -> int:
        return 0

    def train_until(self, step, should_stop):
        raise RuntimeError("the scripted controller trains for 0 steps")

    def save_policy(self, path: Path) -> None:
        Path(path).write_text(f'{{"action_dim": {self.action_dim}}}\n')

    def save(self, state_dir: Path) -> None:
        Path(state_dir).mkdir(parents=True, exist_ok=True)

    def load(self, state_dir: Path) -> None:
        pass

    def named_parameters(self):
        return []

    def close(self) -> None:
        self.vec_env.close()


def make_trainer(vec_env, hp, seed, threads, log_dir):
    return NoLearning(vec_env)


class ZeroResidual:
    def __init__(self, action_dim: int):
        self.action_dim = action_dim

    def act(self, obs):
        import numpy as np
        return np.zeros(self.action_dim, dtype=np.float32)


def load_policy(path, deterministic=True, step=0):
    import json
    return ZeroResidual(json.loads(Path(path).read_text())["action_dim"])


def read_weights(path) -> dict:
    """The scripted controller has no weights."""
    return {}
