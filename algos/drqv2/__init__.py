"""DrQ-v2 (Yarats et al. 2021), our own, from the wrist camera's pixels.

    agent.py    the hyperparameters (CPU and GPU presets), networks, agent and trainer
    replay.py   the replay buffer: single frames, stacked when sampled, saved in chunks

This file is what the pipeline reads (algos/base.py): its params block, the env it trains on
(obs_mode pixels with its own frame stack, whatever env.obs_mode says), its trainer and policy.
`preset` picks the base (cpu: DrQV2Config's defaults, gpu: the paper's values) and every other key
but total_timesteps and num_envs is an optional override of it. torch is imported only when a
trainer or policy is made.
"""
from envs.settings import Field, count

LOOP_KEYS = ("total_timesteps", "num_envs")      # drive the training loop, not DrQV2Config

_NUMBER = r"[0-9]+(\.[0-9]*)?([eE][-+]?[0-9]+)?"
# The exploration noise: a constant or linear(init,final,duration), as agent.schedule reads it.
SCHEDULE = rf"{_NUMBER}|linear\({_NUMBER},{_NUMBER},{_NUMBER}\)"


def _opt(kind, **kw):
    return Field(kind, optional=True, **kw)


PARAMS = {
    "preset": Field("str", choices=("cpu", "gpu")), "total_timesteps": count(), "num_envs": count(),
    "lr": _opt("float", min=0.0), "batch_size": _opt("int", min=1), "feature_dim": _opt("int", min=1),
    "hidden_dim": _opt("int", min=1), "nstep": _opt("int", min=1), "discount": _opt("float", min=0.0, max=1.0),
    "critic_target_tau": _opt("float", min=0.0, max=1.0), "update_every_steps": _opt("int", min=1),
    "num_expl_steps": _opt("int", min=0), "num_seed_steps": _opt("int", min=0),
    "stddev_schedule": _opt("str", pattern=SCHEDULE,
                            hint="a constant like 0.2 or linear(init,final,duration), e.g. linear(1.0,0.1,100000)"),
    "stddev_env_ratio": _opt("float", min=0.0, max=1.0),
    "stddev_clip": _opt("float", min=0.0), "actor_bc_weight": _opt("float", min=0.0), "aug_pad": _opt("int", min=0), "frame_stack": _opt("int", min=1),
    "replay_memory_bytes": _opt("int", min=1), "device": _opt("str"),
    "encoder_bf16": _opt("str", choices=("auto", "on", "off")),
}


def config(hp: dict, seed: int = 0, threads: int = 0):
    """DrQV2Config from a params.yaml drqv2 block (its preset plus overrides), seed and threads;
    a bad override raises ValueError."""
    from algos.drqv2.agent import DrQV2Config
    block = {k: v for k, v in hp.items() if k not in LOOP_KEYS}
    return DrQV2Config.from_params({**block, "seed": seed, "torch_threads": threads})


def env_settings(env_params: dict, hp: dict) -> dict:
    return {**env_params, "obs_mode": "pixels", "frame_stack": config(hp).frame_stack}


def make_trainer(vec_env, hp, seed, threads, log_dir):
    from algos.drqv2.agent import DrQV2Trainer
    return DrQV2Trainer(vec_env, config(hp, seed, threads))


class DrQV2Policy:
    """deterministic: the actor's mean (the paper's evaluation). Otherwise the behaviour policy of
    training at the checkpoint's step: scheduled exploration noise, or uniform random actions before
    num_expl_steps."""

    def __init__(self, agent, deterministic: bool = True, step: int = 0):
        self.agent, self.deterministic, self.step = agent, deterministic, step
        agent.train(False)

    def act(self, obs):
        import numpy as np
        return self.agent.act(np.asarray(obs)[None], step=self.step, eval_mode=self.deterministic)[0]


def load_policy(path, deterministic=True, step=0):
    from algos.drqv2.agent import DrQV2Agent
    return DrQV2Policy(DrQV2Agent.from_checkpoint(path, device="cpu"), deterministic, step)


def __getattr__(name):
    """`from algos.drqv2 import DrQV2Trainer` and the other names of agent.py, loaded on first use."""
    import importlib
    agent = importlib.import_module("algos.drqv2.agent")
    try:
        return getattr(agent, name)
    except AttributeError:
        raise AttributeError(f"module 'algos.drqv2' has no attribute {name!r}") from None
