"""DrQ-v2 (Yarats et al. 2021, arXiv:2107.09645), our own, from the wrist camera's pixels.

    __init__.py   what the pipeline reads (algos/base.py): the settings (PARAMS), the presets
                  (PRESETS), DrQV2Config built from them, and the algorithm's interface functions
    networks.py   random-shift augmentation, encoder, actor, critic
    agent.py      the agent: act() and the update of the paper, with its state dict
    trainer.py    the training loop on a vector env, its checkpoints, and evaluate()
    replay.py     the replay buffer: single frames, stacked when sampled, saved in chunks; and the
                  demonstrations' buffer, sampled the same way (DemoBuffer)

The env it trains on has obs_mode pixels with its own frame stack, whatever env.obs_mode says. With
demo_ratio > 0 it learns from the demos stage's demonstrations too (their wrist frames), that share
of every batch (uses_demos: the DAG makes the dataset an input of such a run only). This
file imports only the standard library and envs.settings; torch is imported when a trainer or policy
is made, or weights are read.
"""
import dataclasses
import re

from envs.settings import Field, count, number

LOOP_KEYS = ("total_timesteps", "num_envs")      # drive the training loop, not DrQV2Config

_NUMBER = r"[0-9]+(\.[0-9]*)?([eE][-+]?[0-9]+)?"
# The exploration noise: a constant or linear(init,final,duration), as schedule() below reads it.
SCHEDULE = rf"{_NUMBER}|linear\({_NUMBER},{_NUMBER},{_NUMBER}\)"

# The params.yaml drqv2 block. `preset` picks the base (PRESETS below); every other key but the loop
# keys is an optional override of it. Field.default: None for an override, which has no default of
# its own (left out, it takes the chosen preset's value; calling the cpu value its default would
# misstate a gpu run); "cpu" for `preset`, the preset DrQV2Config() gives code outside the pipeline.
PARAMS = {
    "preset": Field("str", choices=("cpu", "gpu"), default="cpu",
                    doc="the base every other key overrides: cpu (hours on 2 CPU cores) or gpu (the paper)"),
    "total_timesteps": count(doc="env steps of the run, all envs together"),
    "num_envs": count(doc="envs stepped together; one vector step of N envs is N env steps"),
    "lr": number(0.0, optional=True, doc="Adam learning rate of encoder, actor and critic"),
    "batch_size": count(1, optional=True, doc="transitions per gradient update"),
    "feature_dim": count(1, optional=True, doc="width of the LayerNorm + tanh trunk over the encoder's output"),
    "hidden_dim": count(1, optional=True, doc="units of the two hidden layers of the actor and of each Q"),
    "nstep": count(1, optional=True, doc="steps of the n-step TD target"),
    "discount": number(0.0, 1.0, optional=True, doc="gamma"),
    "critic_target_tau": number(0.0, 1.0, optional=True, doc="Polyak rate of the target critic"),
    "update_every_steps": count(1, optional=True, doc="env steps (all envs together) per gradient update"),
    "num_expl_steps": count(0, optional=True, doc="env steps of uniform random actions at the start"),
    "num_seed_steps": count(0, optional=True, doc="env steps stored before the first update"),
    "stddev_schedule": Field("str", optional=True, pattern=SCHEDULE, doc="exploration noise stddev over env steps",
                             hint="a constant like 0.2 or linear(init,final,duration), e.g. linear(1.0,0.1,100000)"),
    "stddev_env_ratio": number(0.0, 1.0, optional=True,
                               doc="env i of N explores at the schedule's stddev x ratio^(1 - i/(N-1)); "
                                   "1.0: all alike"),
    "stddev_clip": number(0.0, optional=True, doc="clip of the target policy's smoothing noise (as TD3)"),
    "actor_bc_weight": number(0.0, optional=True, doc="> 0: TD3+BC's behaviour-cloning term in the actor loss "
                              "(toward the batch's actions: the replay's, and the demonstrated ones on its demo part)"),
    "demo_ratio": number(0.0, 1.0, optional=True,
                         doc="share of each batch drawn from the demonstrations' wrist frames (0: none; "
                             "> 0 needs demos.pixels: true)"),
    "aug_pad": count(0, optional=True, doc="pixels of the random-shift augmentation: pad, then crop back"),
    "frame_stack": count(1, optional=True, doc="frames per observation, stacked by the env"),
    "replay_memory_bytes": count(1, optional=True,
                                 doc="replay buffer memory (single frames); its capacity follows"),
    "device": Field("str", optional=True, doc="auto (cuda if available, else cpu), cpu or cuda"),
    "encoder_bf16": Field("str", choices=("auto", "on", "off"), optional=True,
                          doc="conv encoder under bfloat16 autocast; auto: on CPUs with native bf16"),
}

# Every override, per preset. gpu: the paper's values (its Table 1 and facebookresearch/drqv2
# cfgs/config.yaml, medium tasks). Steps are env steps of our env, which has no action repeat: the
# paper counts agent steps (action repeat 2), so num_expl_steps, num_seed_steps and the schedule
# keep their numbers. cpu: learns in hours on 2 CPU cores; each change from the paper says why
# (times: one update, one core; docs/drqv2.md). Everything else is the paper's.
PRESETS = {
    "cpu": {
        "lr": 1.0e-4,
        # paper 256: the conv encoder dominates an update and scales with the batch (0.57 s at 64
        # with hidden_dim 256, float32, against 3.6 s at the paper's settings)
        "batch_size": 64,
        "feature_dim": 50,
        # paper 1024: ~20 % off an update at batch 64 (0.55 -> 0.46 s); ample for 6-D actions
        "hidden_dim": 256,
        "nstep": 3,
        "discount": 0.99,
        "critic_target_tau": 0.01,
        # paper 2: half the updates per env step, for >= 30k env frames/hour (costs sample efficiency)
        "update_every_steps": 4,
        "num_expl_steps": 2000,
        "num_seed_steps": 2000,
        # paper 500000 (100000 on easy tasks: the first ~20 % of its budget): anneals in the first
        # ~40 % of an 80k-step budget; a run with 100000 was still at 0.6 noise at 40k
        "stddev_schedule": "linear(1.0,0.1,30000)",
        "stddev_env_ratio": 1.0,
        "stddev_clip": 0.3,
        # paper 0: without it the actor runs to the action limits on a critic that has not learned
        # yet and drops a cube it already lifts (docs/drqv2.md, "The stage-3 regression")
        "actor_bc_weight": 0.4,
        "demo_ratio": 0.0,            # the paper learns from its own data alone
        "aug_pad": 4,
        "frame_stack": 3,
        # paper 1M frames: 2 GiB holds ~100k, more than a CPU run collects
        "replay_memory_bytes": 2 * 1024 ** 3,
        "device": "auto",
        # paper float32: the convs in bf16 where the CPU has it natively, 0.36 s an update, not 0.57 s
        "encoder_bf16": "auto",
    },
    "gpu": {
        "lr": 1.0e-4,
        "batch_size": 256,
        "feature_dim": 50,
        "hidden_dim": 1024,
        "nstep": 3,
        "discount": 0.99,
        "critic_target_tau": 0.01,
        "update_every_steps": 2,
        "num_expl_steps": 2000,
        "num_seed_steps": 2000,                       # 4000 seed frames = 2000 agent steps
        "stddev_schedule": "linear(1.0,0.1,500000)",
        "stddev_env_ratio": 1.0,
        "stddev_clip": 0.3,
        "actor_bc_weight": 0.0,                       # the actor loss -min(Q1, Q2) alone
        "demo_ratio": 0.0,
        "aug_pad": 4,
        "frame_stack": 3,
        "replay_memory_bytes": 21_300_000_000,        # 1M single 3x84x84 frames + actions: ~21.2 GB
        "device": "auto",
        "encoder_bf16": "off",
    },
}

_TYPES = {"int": int, "float": float, "str": str}
# DrQV2Config's fields: one per override of PARAMS, defaulting to the cpu preset, and two that the
# pipeline passes itself (its seed, and --threads: > 0 makes the trainer call torch.set_num_threads).
_FIELDS = [(key, _TYPES[PARAMS[key].type], dataclasses.field(default=value))
           for key, value in PRESETS["cpu"].items()]
_FIELDS += [("seed", int, dataclasses.field(default=0)), ("torch_threads", int, dataclasses.field(default=0))]


class DrQV2Config(dataclasses.make_dataclass("DrQV2Fields", _FIELDS)):
    """The settings the agent and trainer read. DrQV2Config() is the cpu preset; gpu_preset() the
    paper's; from_params() a params.yaml block."""

    @classmethod
    def gpu_preset(cls, **overrides):
        return cls(**{**PRESETS["gpu"], **overrides})

    @classmethod
    def from_params(cls, block, preset="cpu"):
        """A config from a params.yaml `drqv2:` block over a preset ("cpu" or "gpu"; a `preset` key
        in the block wins).

        Unknown keys are an error (a typo must not silently train with a default). Numbers written
        as strings are converted: PyYAML (YAML 1.1) reads `3e-4` as the string "3e-4".
        """
        block = dict(block)
        preset = block.pop("preset", preset)
        if preset not in tuple(PRESETS):
            raise ValueError(f"drqv2.preset must be 'cpu' or 'gpu', got {preset!r}")
        kinds = {f.name: f.type for f in dataclasses.fields(cls)}
        unknown = sorted(set(block) - set(kinds))
        if unknown:
            raise ValueError(f"unknown drqv2 parameter(s): {', '.join(unknown)}")
        values = dict(PRESETS[preset])
        for key, value in block.items():
            if kinds[key] is str:
                values[key] = str(value)
                if key == "stddev_schedule":
                    schedule(value, 0)        # raises on a malformed schedule
            else:
                as_number = float(value)
                if kinds[key] is int and as_number != int(as_number):
                    raise ValueError(f"drqv2.{key} must be an integer, got {value!r}")
                values[key] = kinds[key](as_number)
        return cls(**values)


def schedule(spec, step):
    """Exploration stddev at a step: a constant ("0.2") or "linear(init, final, duration)"."""
    try:
        return float(spec)
    except ValueError:
        pass
    match = re.fullmatch(r"\s*linear\((.+),(.+),(.+)\)\s*", str(spec))
    if match is None:
        raise ValueError(f"unknown schedule {spec!r}")
    init, final, duration = (float(g) for g in match.groups())
    mix = min(max(step / duration, 0.0), 1.0)
    return (1.0 - mix) * init + mix * final


# ----------------------------------------------------------------- the interface (algos/base.py)

def config(hp: dict, seed: int = 0, threads: int = 0) -> DrQV2Config:
    """DrQV2Config from a params.yaml drqv2 block (its preset plus overrides), seed and threads;
    a bad override raises ValueError."""
    block = {k: v for k, v in hp.items() if k not in LOOP_KEYS}
    return DrQV2Config.from_params({**block, "seed": seed, "torch_threads": threads})


def setting(hp: dict, key: str):
    """A setting of a params block as the run takes it: the block's override, else its preset's."""
    return hp.get(key, PRESETS[hp.get("preset", PARAMS["preset"].default)][key])


def uses_demos(hp: dict) -> bool:
    """A run learns from the demos stage's wrist frames (an input of it in the DAG) where demo_ratio > 0."""
    return setting(hp, "demo_ratio") > 0


def env_settings(env_params: dict, hp: dict) -> dict:
    return {**env_params, "obs_mode": "pixels", "frame_stack": config(hp).frame_stack}


def make_trainer(vec_env, hp, seed, threads, log_dir, demos=None):
    """demos: the demonstrations with their wrist frames (pipeline/run/transitions.py), for a run with
    demo_ratio > 0."""
    from algos.drqv2.trainer import DrQV2Trainer
    cfg = config(hp, seed, threads)
    if cfg.demo_ratio > 0 and (demos is None or demos.frames is None):
        raise ValueError("drqv2 with demo_ratio > 0 learns from the demonstrations' wrist frames: make_trainer "
                         "needs demos= with frames (pipeline/run/transitions.py, pixels=True)")
    return DrQV2Trainer(vec_env, cfg, demos=demos if cfg.demo_ratio > 0 else None)


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


def read_weights(path) -> dict:
    """Every network weight of a policy file (DrQV2Trainer.save_policy), as "part.name": the encoder,
    actor, critic and target critic. The optimisers' state and the config are not weights."""
    import torch
    agent = torch.load(path, weights_only=False)["agent"]
    return {f"{part}.{k}": v for part, sd in agent.items() if isinstance(sd, dict)
            for k, v in sd.items() if torch.is_tensor(v)}


def gpus(hp: dict) -> int:
    """GPUs a training job asks a cluster for: 1 on device cuda (the block's, else its preset's)."""
    return 1 if setting(hp, "device") == "cuda" else 0


# The learning code's public names, for `from algos.drqv2 import DrQV2Trainer`: imported on first use,
# so that reading PARAMS does not import torch.
_LAZY = {"DrQV2Agent": "agent", "DrQV2Trainer": "trainer", "evaluate": "trainer"}


def __getattr__(name):
    if name not in _LAZY:
        raise AttributeError(f"module 'algos.drqv2' has no attribute {name!r}")
    import importlib
    return getattr(importlib.import_module(f"algos.drqv2.{_LAZY[name]}"), name)
