"""RLPD's replay, its env loop and its checkpoints.

The loop, per vector step of num_envs envs: act (zero actions for the first critic_warmup env steps,
then uniform random up to learning_starts, then the policy), step, store each env's transition (the
episode's final observation where it ended, and `terminated` apart from a time-limit truncation),
then owe num_envs * utd_ratio critic updates, each
on a batch of which demo_ratio comes from the demonstrations (symmetric sampling: RLPD's 0.5), and
an actor update every round(utd_ratio) of them once critic_warmup is past.
A checkpoint holds everything a resume needs: the agent with its optimisers, the replay, the envs'
episodes in flight and every RNG, so a resumed run ends with the weights of one that never stopped.
"""
from __future__ import annotations

import os
import random
from pathlib import Path

import numpy as np
import torch

from algos.base import Trainer
from algos.rlpd.agent import Agent
from envs.vector import episode_stats

STATE_FILE = "trainer.pt"


class Replay:
    """The run's own transitions, a ring of `capacity` (obs, action, reward, next_obs, terminated)."""

    def __init__(self, capacity: int, obs_dim: int, action_dim: int):
        self.capacity, self.size, self.next = capacity, 0, 0
        self.obs = np.zeros((capacity, obs_dim), np.float32)
        self.action = np.zeros((capacity, action_dim), np.float32)
        self.reward = np.zeros(capacity, np.float32)
        self.next_obs = np.zeros((capacity, obs_dim), np.float32)
        self.terminated = np.zeros(capacity, np.float32)

    def add(self, obs, action, reward, next_obs, terminated) -> None:
        for k in range(len(obs)):
            i = self.next
            self.obs[i], self.action[i], self.reward[i] = obs[k], action[k], reward[k]
            self.next_obs[i], self.terminated[i] = next_obs[k], terminated[k]
            self.next = (i + 1) % self.capacity
            self.size = min(self.size + 1, self.capacity)

    def state_dict(self) -> dict:
        n = self.size
        return {"size": n, "next": self.next, "obs": self.obs[:n].copy(), "action": self.action[:n].copy(),
                "reward": self.reward[:n].copy(), "next_obs": self.next_obs[:n].copy(),
                "terminated": self.terminated[:n].copy()}

    def load_state_dict(self, state: dict) -> None:
        n = self.size = state["size"]
        self.next = state["next"]
        for key in ("obs", "action", "reward", "next_obs", "terminated"):
            getattr(self, key)[:n] = state[key]


class Batches:
    """Batches of batch_size transitions, round(demo_ratio * batch_size) of them from the
    demonstrations and the rest from the replay, each part drawn uniformly with replacement."""

    def __init__(self, replay: Replay, demos, batch_size: int, demo_ratio: float, rng: np.random.Generator):
        self.replay, self.rng, self.batch_size = replay, rng, batch_size
        self.n_demo = round(demo_ratio * batch_size) if demos is not None else 0
        if demos is not None:
            self.demo = [np.asarray(a, np.float32) for a in
                         (demos.obs, demos.actions, demos.rewards, demos.next_obs, demos.terminations)]

    def sample(self):
        """(obs, action, reward, next_obs, terminated) tensors, demonstrations first."""
        online = self.rng.integers(self.replay.size, size=self.batch_size - self.n_demo)
        r = self.replay
        parts = [r.obs[online], r.action[online], r.reward[online], r.next_obs[online], r.terminated[online]]
        if self.n_demo:
            demo = self.rng.integers(len(self.demo[0]), size=self.n_demo)
            parts = [np.concatenate([d[demo], p]) for d, p in zip(self.demo, parts)]
        return [torch.from_numpy(p) for p in parts]


class RLPDTrainer(Trainer):
    policy_suffix = ".pt"

    def __init__(self, vec_env, hp: dict, seed: int, demos):
        self.env, self.hp, self.seed = vec_env, hp, seed
        self.num_envs = vec_env.num_envs
        obs_dim = vec_env.single_observation_space.shape[0]
        action_dim = vec_env.single_action_space.shape[0]
        space = vec_env.single_action_space
        if not (np.allclose(space.low, -1) and np.allclose(space.high, 1)):
            raise ValueError("rlpd's tanh actor expects actions in [-1, 1]")
        if demos is not None and (demos.obs.shape[1] != obs_dim or demos.actions.shape[1] != action_dim):
            raise ValueError(f"{demos.path}: demonstrations of {demos.obs.shape[1]} observation and "
                             f"{demos.actions.shape[1]} action values; the env has {obs_dim} and {action_dim}")
        torch.manual_seed(seed)
        self.agent = Agent(obs_dim, action_dim, hp, zero_actor=getattr(vec_env, "residual", None) is not None)
        self.rng = np.random.default_rng(seed)
        self.replay = Replay(hp["buffer_size"], obs_dim, action_dim)
        self.batches = Batches(self.replay, demos, hp["batch_size"], hp["demo_ratio"], self.rng)
        self.actor_every = max(1, round(hp["utd_ratio"]))
        self.demo_transitions = len(demos.actions) if demos is not None else 0
        self.steps, self.updates, self.credit = 0, 0, 0.0
        self.obs, self.episodes, self.metrics = None, [], {}

    @property
    def global_step(self) -> int:
        return self.steps

    def train_until(self, step, should_stop):
        hp = self.hp
        if self.obs is None:
            self.obs, _ = self.env.reset(seed=self.seed)
        while self.steps < min(step, hp["total_timesteps"]) and not should_stop():
            warming_up = self.steps < hp["critic_warmup"]
            if warming_up:
                action = np.zeros((self.num_envs, self.agent.shape["action_dim"]), np.float32)
            elif self.steps < hp["learning_starts"]:
                action = self.rng.uniform(-1.0, 1.0, (self.num_envs, self.agent.shape["action_dim"])).astype(np.float32)
            else:
                action = self.agent.act(self.obs)
            next_obs, reward, terminated, truncated, infos = self.env.step(action)
            done = np.asarray(terminated) | np.asarray(truncated)
            stored_next = np.array(next_obs, np.float32)
            for i in np.flatnonzero(done):
                stored_next[i] = infos["final_obs"][i]
                self.episodes.append({"global_step": self.steps + self.num_envs, "env": int(i),
                                      **episode_stats(infos, i)})
            self.replay.add(self.obs, action, reward, stored_next, terminated)
            self.obs = next_obs
            self.steps += self.num_envs
            if self.steps >= hp["learning_starts"]:
                self.credit += self.num_envs * hp["utd_ratio"]
                while self.credit >= 1.0:
                    self.credit -= 1.0
                    self._update(train_actor=not warming_up)

    def _update(self, train_actor: bool):
        obs, action, reward, next_obs, terminated = self.batches.sample()
        self.metrics.update(self.agent.update_critic(obs, action, reward, next_obs, terminated))
        self.updates += 1
        if self.updates % self.actor_every == 0 and train_actor:
            self.metrics.update(self.agent.update_actor(obs, action[:self.batches.n_demo]))

    # ---- checkpoints: the policy file, and the resume state (save and load side by side)
    def save_policy(self, path: Path) -> None:
        self.agent.save_actor(path)

    def save(self, state_dir: Path) -> None:
        """Write trainer.pt through a temporary name: a save killed half-way leaves the old one."""
        state_dir = Path(state_dir)
        state_dir.mkdir(parents=True, exist_ok=True)
        state = {"agent": self.agent.state_dict(), "replay": self.replay.state_dict(),
                 "steps": self.steps, "updates": self.updates, "credit": self.credit,
                 "episodes": list(self.episodes), "metrics": dict(self.metrics),
                 "envs": None if self.obs is None else {"state": self.env.get_state(), "obs": self.obs},
                 "rng": {"numpy": self.rng.bit_generator.state, "torch": torch.get_rng_state(),
                         "np_global": np.random.get_state(), "python": random.getstate()}}
        tmp = state_dir / (STATE_FILE + ".tmp")
        torch.save(state, tmp)
        os.replace(tmp, state_dir / STATE_FILE)

    def load(self, state_dir: Path) -> None:
        state = torch.load(Path(state_dir) / STATE_FILE, weights_only=False)
        self.agent.load_state_dict(state["agent"])
        self.replay.load_state_dict(state["replay"])
        self.steps, self.updates, self.credit = state["steps"], state["updates"], state["credit"]
        self.episodes, self.metrics = list(state["episodes"]), dict(state["metrics"])
        if state["envs"] is not None:
            self.env.set_state(state["envs"]["state"])
            self.obs = state["envs"]["obs"]
        rng = state["rng"]
        self.rng.bit_generator.state = rng["numpy"]
        torch.set_rng_state(rng["torch"])
        np.random.set_state(rng["np_global"])
        random.setstate(rng["python"])

    def named_parameters(self):
        yield from (("actor." + k, v) for k, v in self.agent.actor.named_parameters())
        yield from (("critics." + k, v) for k, v in self.agent.critics.named_parameters())

    def losses(self) -> dict:
        return dict(self.metrics)

    def info(self) -> dict:
        return {"n_updates": self.updates, "demo_transitions": self.demo_transitions}

    def close(self) -> None:
        self.env.close()
