"""What PPO, SAC and HER (algos/ppo.py, sac.py, her.py) share: Stable-Baselines3 as a Trainer.

`hp` is the algorithm's params.yaml block, with SB3's own argument names, plus the keys of
LOOP_KEYS, which this module reads instead of passing them to the constructor:
  total_timesteps, num_envs   the training loop and the env
  net_width, net_depth        the MLP: [net_width] * net_depth for actor and critic
  log_std_init, activation    (PPO) the Gaussian policy's initial log std; tanh | relu | elu
  reward_scale                (PPO) factor on the rewards PPO learns from (statistics stay unscaled)
Stable-Baselines3 is imported inside the functions: reading an algorithm's PARAMS stays cheap.
"""
from __future__ import annotations

import pickle
import random
from pathlib import Path

import numpy as np

from algos.base import Trainer
from envs.settings import Field, count

LOOP_KEYS = ("total_timesteps", "num_envs", "net_width", "net_depth", "log_std_init", "activation", "reward_scale")


def common_params() -> dict[str, Field]:
    """What every SB3 learner's block holds (SB3's own argument names, plus the MLP's shape)."""
    return {"total_timesteps": count(doc="env steps of all envs together"),
            "num_envs": count(doc="envs stepped together in one process"),
            "learning_rate": Field("float", min=0.0, doc="Adam's step size"),
            "batch_size": count(doc="transitions per gradient step"),
            "gamma": Field("float", min=0.0, max=1.0, doc="discount"),
            "net_width": count(doc="units per hidden layer (actor and critic)"),
            "net_depth": count(doc="hidden layers (actor and critic)")}


def off_policy_params() -> dict[str, Field]:
    """SAC's block (and TQC's and HER's), on top of common_params."""
    return {**common_params(), "buffer_size": count(doc="replay capacity, transitions"),
            "learning_starts": count(0, doc="env steps of random actions before learning"),
            "tau": Field("float", min=0.0, max=1.0, doc="target networks' Polyak factor"),
            "train_freq": count(doc="env steps (per env) between updates"),
            "gradient_steps": count(doc="gradient steps per update"),
            "ent_coef": Field("float|auto", min=0.0, doc="entropy coefficient; auto: tuned to a target entropy")}


def net(hp: dict) -> list[int]:
    return [hp["net_width"]] * hp["net_depth"]


def ctor_args(hp: dict) -> dict:
    """The block's keys that are SB3 constructor arguments."""
    return {k: v for k, v in hp.items() if k not in LOOP_KEYS}


def make_vec(vec_env, hp: dict):
    """Our batched env as SB3's VecEnv, with PPO's reward scale (1 for the others)."""
    from envs.sb3 import SB3VecEnv
    return SB3VecEnv(vec_env, reward_scale=hp.get("reward_scale", 1.0))


class StopTraining(Exception):
    """Raised from the callback to leave learn() at a consistent point."""


# Besides the model and the replay buffer, what an SB3 run carries between rollouts: with these
# and every RNG, a loaded run continues bit for bit.
LOOP_ATTRS = ("_last_obs", "_last_episode_starts", "_last_original_obs", "_episode_num",
              "ep_info_buffer", "ep_success_buffer")
MODEL, LOOP, REPLAY = "model.zip", "loop.pkl", "replay.pkl"


class SB3Trainer(Trainer):
    """model.learn() driven up to a step: learn() is always asked for the whole run (so SB3's
    progress, and with it any schedule, is the same however the run is cut), and a callback stops
    it at the first rollout start at or past the step, just after an update."""

    def __init__(self, model, model_class, vec, total: int, replay: bool, log_dir: Path):
        self.model, self.model_class, self.vec, self.total, self.replay = model, model_class, vec, total, replay
        self.episodes: list[dict] = []
        self.log_dir = log_dir
        self.num_envs = vec.num_envs
        # One TensorBoard writer per process: learn() is called once per checkpoint interval.
        self.model.set_logger(self._logger())

    @property
    def global_step(self) -> int:
        return self.model.num_timesteps

    def train_until(self, step, should_stop):
        remaining = self.total - self.model.num_timesteps
        if self.model.num_timesteps >= step or remaining <= 0:
            return
        try:
            # reset_num_timesteps=False keeps the global step and the envs' episodes in flight.
            self.model.learn(total_timesteps=remaining, callback=self._callback(step, should_stop),
                             reset_num_timesteps=False, progress_bar=False)
        except StopTraining:
            pass

    def _callback(self, step, should_stop):
        from stable_baselines3.common.callbacks import BaseCallback
        trainer = self

        class Stop(BaseCallback):
            def _on_rollout_start(self):
                # Between rollouts (PPO) or env steps (SAC, HER), just after an update: weights,
                # optimiser, replay buffer, envs and RNGs agree here.
                if self.num_timesteps >= step or should_stop():
                    raise StopTraining

            def _on_step(self) -> bool:
                for env_id, info in enumerate(self.locals["infos"]):
                    if "final_info" in info:
                        trainer.episodes.append({"global_step": self.num_timesteps, "env": env_id, **info["final_info"]})
                return True
        return Stop()

    def save_policy(self, path):
        self.model.save(str(path))

    def save(self, state_dir):
        state_dir = Path(state_dir)
        state_dir.mkdir(parents=True, exist_ok=True)
        self.model.save(str(state_dir / MODEL))
        (state_dir / LOOP).write_bytes(pickle.dumps(self._loop_state()))
        if self.replay:
            self.model.save_replay_buffer(str(state_dir / REPLAY))

    def load(self, state_dir):
        state_dir = Path(state_dir)
        self.model = self.model_class.load(str(state_dir / MODEL), env=self.vec, device="cpu")
        self.model.set_logger(self._logger())
        if self.replay:
            self.model.load_replay_buffer(str(state_dir / REPLAY))
        # After load (which reseeds every RNG from the model's seed): the state of the moment it was saved.
        self._restore_loop_state(pickle.loads((state_dir / LOOP).read_bytes()))

    def _logger(self):
        from stable_baselines3.common.logger import configure
        return configure(str(self.log_dir), ["tensorboard"])

    def _loop_state(self) -> dict:
        import torch
        m = self.model
        return {"env": self.vec.env.get_state(), "loop": {k: getattr(m, k, None) for k in LOOP_ATTRS},
                "episodes": self.episodes,
                "rng": {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate(),
                        "action_space": m.action_space.np_random.bit_generator.state}}

    def _restore_loop_state(self, state: dict) -> None:
        import torch
        self.vec.env.set_state(state["env"])
        self.episodes = list(state["episodes"])
        for k, v in state["loop"].items():
            setattr(self.model, k, v)
        torch.set_rng_state(state["rng"]["torch"])
        np.random.set_state(state["rng"]["numpy"])
        random.setstate(state["rng"]["python"])
        self.model.action_space.np_random.bit_generator.state = state["rng"]["action_space"]

    def named_parameters(self):
        return self.model.policy.named_parameters()

    def info(self):
        return {"n_updates": int(getattr(self.model, "_n_updates", 0))}

    def close(self):
        self.vec.close()


# Loading for inference (env=None): a one-slot plain replay buffer instead of the saved one, which
# would allocate buffer_size transitions and, for HER, demand an env to relabel goals with.
INFERENCE_ONLY = {"buffer_size": 1, "replay_buffer_class": None, "replay_buffer_kwargs": {}}


class SB3Policy:
    def __init__(self, model, deterministic: bool = True):
        self.model, self.deterministic = model, deterministic

    def act(self, obs):
        action, _ = self.model.predict(obs, deterministic=self.deterministic)
        return action


def load_policy(model_class, path, deterministic: bool, replay: bool) -> SB3Policy:
    custom = INFERENCE_ONLY if replay else None
    return SB3Policy(model_class.load(str(path), env=None, device="cpu", custom_objects=custom), deterministic)


def read_weights(path) -> dict:
    """Every network weight in an SB3 policy file: the policy.pth inside its zip."""
    import io
    import zipfile

    import torch
    with zipfile.ZipFile(path) as z:
        return torch.load(io.BytesIO(z.read("policy.pth")), weights_only=True)
