"""RLPD (Ball et al. 2023, "Efficient Online Reinforcement Learning with Offline Data"): SAC that
learns from prior data, here the demos stage's scripted demonstrations. Our own torch code, on state
observations:

- symmetric sampling: each batch draws demo_ratio of its transitions from the demonstrations (their
  rewards relabelled for the run's reward version) and the rest from the run's own replay;
- an ensemble of num_critics critics with LayerNorm, evaluated as one batched network; the target
  is the minimum over num_min_critics of them drawn at random per update, the actor maximises their
  mean;
- utd_ratio critic updates per env step (all envs together), one actor and temperature update per
  round(utd_ratio) critic updates;
- optionally (actor_bc_weight > 0; not RLPD's) a behaviour-cloning term on the demonstrations'
  rows of the actor's batch, scaled by the critics' mean |Q| as in TD3+BC (0.4 is TD3+BC's 2.5),
  which keeps the first policies near the demonstrations while the critics learn.

As a residual learner on a base (rlpd+scripted: envs/residual.py), Silver et al. (2018)'s way: the
actor's output layer starts at zero, so the first policy is the base alone, and for critic_warmup
env steps the run acts with zero residuals (the base's own transitions) and trains the critics only,
before the actor moves. Demonstrations hold the controller's whole actions, not residuals: a
residual learner takes demo_ratio 0.

With demo_ratio 0, num_critics 2, num_min_critics 2 and utd_ratio 1 it is plain SAC, and the one
SAC the results use: benchmarks/offpolicy_speed.py measures it against Stable-Baselines3's SAC at
the same settings (docs/benchmarks.md).

    agent.py     the actor, the critic ensemble, one update; save and load side by side
    trainer.py   the replay, the env loop, checkpoints
"""
from __future__ import annotations

from envs.settings import Field, count

PARAMS = {
    "total_timesteps": count(default=200000, doc="env steps of all envs together"),
    "num_envs": count(default=4, doc="envs stepped together in one process"),
    "learning_rate": Field("float", min=0.0, default=3.0e-4, doc="Adam's step size (actor, critics, temperature)"),
    "batch_size": count(default=256, doc="transitions per gradient step, demonstrations and online together"),
    "gamma": Field("float", min=0.0, max=1.0, default=0.99, doc="discount"),
    "tau": Field("float", min=0.0, max=1.0, default=0.005, doc="target critics' Polyak factor"),
    "buffer_size": count(default=1000000, doc="online replay capacity, transitions"),
    "learning_starts": count(0, default=5000, doc="env steps of uniform random actions before learning"),
    "critic_warmup": count(0, default=0, doc="env steps at the start acting with zero actions (a residual learner: "
                           "the base alone) while only the critics learn"),
    "utd_ratio": Field("float", min=0.01, default=1.0, doc="critic updates per env step (update-to-data ratio)"),
    "num_critics": count(2, default=10, doc="critics in the ensemble (SAC: 2; RLPD: 10)"),
    "num_min_critics": count(1, default=2, doc="critics drawn per update whose minimum is the target (RLPD: 2)"),
    "critic_layer_norm": Field("bool", default=True, doc="LayerNorm after each hidden layer of the critics"),
    "net_width": count(default=256, doc="units per hidden layer (actor and critics)"),
    "net_depth": count(default=2, doc="hidden layers (actor and critics)"),
    "demo_ratio": Field("float", min=0.0, max=1.0, default=0.5,
                        doc="share of each batch drawn from the demonstrations (0: online data only)"),
    "actor_bc_weight": Field("float", min=0.0, default=0.0,
                       doc="behaviour-cloning term on the demonstrations' rows, times the mean |Q| (TD3+BC); 0: RLPD's pure RL"),
    "target_entropy": Field("float|auto", default="auto", doc="the temperature's entropy target; auto: -action_dim"),
    "init_temperature": Field("float", min=0.0, default=1.0, doc="the entropy coefficient at the start"),
    "bf16": Field("str", choices=("auto", "on", "off"), default="auto",
                  doc="updates' matrix products in bfloat16 (weights, losses and Adam stay float32); auto: on CPUs with native bf16"),
}


def uses_demos(hp: dict) -> bool:
    """A run learns from the demos stage's dataset (an input of it in the DAG) where demo_ratio > 0."""
    return hp.get("demo_ratio", PARAMS["demo_ratio"].default) > 0


def env_settings(env_params: dict, hp: dict) -> dict:
    """RLPD acts on state observations, the ones the demonstrations store for every experiment."""
    return {**env_params, "obs_mode": "state"}


def make_trainer(vec_env, hp, seed, threads, log_dir, demos=None):
    from algos.rlpd.trainer import RLPDTrainer
    if getattr(vec_env, "residual", None) is not None and hp["demo_ratio"] > 0:
        raise ValueError("a residual rlpd learner takes rlpd.demo_ratio: 0 (demonstrations hold the controller's "
                         f"whole actions, not residuals); got {hp['demo_ratio']}")
    if demos is None and hp["demo_ratio"] > 0:
        raise ValueError("rlpd with demo_ratio > 0 learns from demonstrations: make_trainer needs demos= "
                         "(pipeline/run/transitions.py)")
    return RLPDTrainer(vec_env, hp, seed, demos if hp["demo_ratio"] > 0 else None)


def load_policy(path, deterministic=True, step=0):
    from algos.rlpd.agent import load_actor
    return load_actor(path, deterministic)


def read_weights(path) -> dict:
    """Every tensor of a policy file: the actor's weights."""
    import torch
    return dict(torch.load(path, weights_only=False)["actor"])
