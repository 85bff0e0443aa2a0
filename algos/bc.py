"""Behaviour cloning (bc): an MLP policy regressed on the demos stage's (observation, action) pairs,
from state observations. It takes no env steps: its global step counts gradient steps, so its
checkpoints (checkpoint_every) and evaluation curve are over updates.

Policy: the observation, normalised by the demonstrations' mean and std, through net_depth ReLU
layers of net_width units and a tanh, trained by mean squared error to the demonstrated action with
Adam, on minibatches drawn from the run's own generator (seeded by its seed). With successful_only
it learns from the controller's successful episodes alone (its failed ones are in the dataset, marked).
"""
from __future__ import annotations

from pathlib import Path

from algos.base import Trainer
from envs.settings import Field, count

USES_DEMOS = True       # the DAG makes the demos stage's dataset an input of bc's runs

PARAMS = {
    "gradient_steps": count(default=10000, doc="gradient steps on the demonstrations (bc's global step counts them)"),
    "batch_size": count(default=256, doc="(observation, action) pairs per gradient step"),
    "learning_rate": Field("float", min=0.0, default=1.0e-3, doc="Adam's step size"),
    "net_width": count(default=256, doc="units per hidden layer"),
    "net_depth": count(default=2, doc="hidden layers"),
    "successful_only": Field("bool", default=True,
                             doc="learn from the successful demonstrations only (false: all, failed ones included)"),
}
STATE_FILE = "trainer.pt"


def env_settings(env_params: dict, hp: dict) -> dict:
    """bc acts on state observations, the ones the demonstrations store for every experiment."""
    return {**env_params, "obs_mode": "state"}


def total_steps(hp: dict) -> int:
    return hp["gradient_steps"]


def make_policy(obs_dim: int, action_dim: int, width: int, depth: int):
    import torch
    from torch import nn

    class Policy(nn.Module):
        """(obs - mean) / std -> MLP -> tanh: an action in [-1, 1]^action_dim."""

        def __init__(self):
            super().__init__()
            self.register_buffer("obs_mean", torch.zeros(obs_dim))
            self.register_buffer("obs_std", torch.ones(obs_dim))
            layers, size = [], obs_dim
            for _ in range(depth):
                layers += [nn.Linear(size, width), nn.ReLU()]
                size = width
            self.net = nn.Sequential(*layers, nn.Linear(size, action_dim), nn.Tanh())

        def forward(self, obs):
            return self.net((obs - self.obs_mean) / self.obs_std)
    return Policy()


class BCTrainer(Trainer):
    policy_suffix = ".pt"
    num_envs = 1            # the loop's progress grain: updates, one at a time

    def __init__(self, vec_env, hp: dict, seed: int, demos):
        import numpy as np
        import torch
        self.vec_env, self.hp, self.episodes = vec_env, hp, []
        keep = demos.success if hp["successful_only"] else np.ones(len(demos.actions), dtype=bool)
        if not keep.any():
            raise ValueError(f"{demos.path}: no successful demonstrations to learn from "
                             "(bc.successful_only: true); record more, or set it false")
        obs_dim = vec_env.single_observation_space.shape[0]
        if demos.obs.shape[1] != obs_dim:
            raise ValueError(f"{demos.path}: observations of {demos.obs.shape[1]} values, the env's have {obs_dim}")
        self.obs = torch.as_tensor(demos.obs[keep], dtype=torch.float32)
        self.actions = torch.as_tensor(demos.actions[keep], dtype=torch.float32)
        torch.manual_seed(seed)
        self.policy = make_policy(obs_dim, self.actions.shape[1], hp["net_width"], hp["net_depth"])
        self.policy.obs_mean.copy_(self.obs.mean(0))
        self.policy.obs_std.copy_(self.obs.std(0).clamp_min(1e-3))   # constant entries (a flag) stay finite
        self.optimizer = torch.optim.Adam(self.policy.parameters(), lr=hp["learning_rate"])
        self.generator = torch.Generator().manual_seed(seed)
        self.updates, self.loss = 0, float("nan")

    @property
    def global_step(self) -> int:
        return self.updates

    def train_until(self, step, should_stop):
        import torch
        while self.updates < min(step, self.hp["gradient_steps"]) and not should_stop():
            idx = torch.randint(len(self.actions), (self.hp["batch_size"],), generator=self.generator)
            loss = torch.nn.functional.mse_loss(self.policy(self.obs[idx]), self.actions[idx])
            self.optimizer.zero_grad()
            loss.backward()
            self.optimizer.step()
            self.updates += 1
            self.loss = loss.item()

    def save_policy(self, path: Path) -> None:
        import torch
        torch.save({"config": self._config(), "policy": self.policy.state_dict()}, path)

    def _config(self) -> dict:
        return {"obs_dim": self.obs.shape[1], "action_dim": self.actions.shape[1],
                "width": self.hp["net_width"], "depth": self.hp["net_depth"]}

    def save(self, state_dir: Path) -> None:
        import torch
        Path(state_dir).mkdir(parents=True, exist_ok=True)
        torch.save({"policy": self.policy.state_dict(), "optimizer": self.optimizer.state_dict(),
                    "generator": self.generator.get_state(), "updates": self.updates, "loss": self.loss},
                   Path(state_dir) / STATE_FILE)

    def load(self, state_dir: Path) -> None:
        import torch
        state = torch.load(Path(state_dir) / STATE_FILE, weights_only=False)
        self.policy.load_state_dict(state["policy"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.generator.set_state(state["generator"])
        self.updates, self.loss = state["updates"], state["loss"]

    def named_parameters(self):
        return self.policy.named_parameters()

    def losses(self) -> dict:
        return {"bc_loss": self.loss}

    def info(self) -> dict:
        return {"n_updates": self.updates, "bc_loss": self.loss, "demo_transitions": len(self.actions)}

    def close(self) -> None:
        self.vec_env.close()


def make_trainer(vec_env, hp, seed, threads, log_dir, demos=None):
    if demos is None:
        raise ValueError("bc learns from demonstrations: make_trainer needs demos= (pipeline/run/transitions.py)")
    return BCTrainer(vec_env, hp, seed, demos)


class BCPolicy:
    def __init__(self, policy):
        self.policy = policy

    def act(self, obs):
        import torch
        with torch.no_grad():
            return self.policy(torch.as_tensor(obs, dtype=torch.float32)[None])[0].numpy()


def load_policy(path, deterministic=True, step=0):
    """The policy of a checkpoint; bc's is deterministic either way."""
    import torch
    saved = torch.load(path, weights_only=False)
    policy = make_policy(**saved["config"])
    policy.load_state_dict(saved["policy"])
    return BCPolicy(policy.eval())


def read_weights(path) -> dict:
    """Every tensor of a policy file: the MLP's weights and the observation normaliser."""
    import torch
    return dict(torch.load(path, weights_only=False)["policy"])
