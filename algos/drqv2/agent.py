"""DrQ-v2: data-regularised Q-learning from pixels (Yarats et al. 2021, arXiv:2107.09645).

Read top to bottom: hyperparameters (paper values as GPU_PRESET, a CPU preset as the defaults of
DrQV2Config), the networks (random-shift augmentation, encoder, actor, twin critic), the agent
(acting and the update of section 3 of the paper), then a trainer that runs the agent on a gymnasium
1.x VectorEnv with SAME_STEP autoreset and checkpoints everything a killed run needs to resume.

The update, as in the paper and facebookresearch/drqv2:
  - obs and next_obs are augmented independently with random shifts (pad 4, bilinear);
  - the critic is trained on n-step targets r_t + ... + gamma^n min(Q1', Q2')(h_{t+n}, a'),
    a' = mu(h_{t+n}) + clip(eps, -c, c), with a target critic updated by Polyak averaging;
  - the encoder is trained only through the critic loss; the actor sees detached features;
  - the actor maximises min(Q1, Q2)(h, mu(h) + clipped noise); exploration noise follows a schedule.

Public API for the pipeline:
    cfg = DrQV2Config.from_params(params["drqv2"])   # its `preset` (cpu|gpu) + overrides
    trainer = DrQV2Trainer(vec_env, cfg)
    trainer.load(ckpt_dir)                         # optional: resume (agent, optimisers, replay, RNG)
    trainer.train_until(total_env_steps, on_checkpoint=lambda t: t.save(ckpt_dir),
                        checkpoint_every=50_000, on_episode=write_row)
    trainer.episodes                               # per-episode stats (also passed to on_episode)
    agent = DrQV2Agent.from_checkpoint(ckpt_dir)   # for evaluation / videos
    actions = agent.act(obs_batch_uint8, eval_mode=True)
"""
import dataclasses
import os
import random
import re
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from algos.base import Trainer
from algos.drqv2.replay import ReplayBuffer

# --------------------------------------------------------------------------------- hyperparameters

# The paper's settings (its Table 1 and facebookresearch/drqv2 cfgs/config.yaml, medium tasks).
# Steps are env steps of our env, which has no action repeat of its own here: the paper's counts are
# agent steps (action repeat 2), so num_expl_steps / num_seed_steps / the schedule keep their numbers.
GPU_PRESET = dict(
    lr=1.0e-4,
    batch_size=256,
    feature_dim=50,
    hidden_dim=1024,
    nstep=3,
    discount=0.99,
    critic_target_tau=0.01,
    update_every_steps=2,
    num_expl_steps=2000,
    num_seed_steps=2000,                      # paper: 4000 seed frames = 2000 agent steps
    stddev_schedule="linear(1.0,0.1,500000)",
    stddev_env_ratio=1.0,
    stddev_clip=0.3,
    actor_bc_weight=0.0,                      # the paper's actor loss: -min(Q1, Q2) alone
    # Paper: 1M transitions. 1M single 3x84x84 frames + actions is ~21.2 GB.
    replay_memory_bytes=21_300_000_000,
    device="auto",
    encoder_bf16="off",
)


@dataclass
class DrQV2Config:
    """Defaults are the CPU preset: it learns in hours on 2 CPU cores. Each change from the paper:

    - batch_size 64 (paper 256): the conv encoder's forward/backward dominates an update and scales
      with the batch. With hidden_dim 256 an update takes 0.57 s in float32 on one core of our CPU
      against 3.6 s at the paper's settings (docs/drqv2.md).
    - hidden_dim 256 (paper 1024): ~20 % off an update at batch 64 (0.55 -> 0.46 s float32, one
      core; the encoder dominates); 256 units are ample for a 6-D action and 50-D features.
    - feature_dim 50: as in the paper (it is the LayerNorm bottleneck, cheap).
    - update_every_steps 4 (paper 2): half the updates per env step, to reach >= 30k env frames/hour.
      Off-policy learning tolerates a lower replay ratio; it costs sample efficiency.
    - encoder_bf16 "auto": the conv encoder under bf16 autocast where the CPU has native bf16
      (0.36 s instead of 0.57 s an update, measured); everything else stays float32.
    - stddev_schedule linear(1.0,0.1,30000) (paper 500000 for medium tasks, 100000 for easy, i.e. the
      first ~20% of their budgets): the CPU budget is 80k env steps, so the noise anneals in its first
      ~40%. The first 80k-step run with 100000 was still at 0.6 noise when it was stopped at 40k.
    - replay_memory_bytes 2 GiB (~100k single frames, paper 1M): more than a CPU run collects.
    - actor_bc_weight 0.4 (paper: none): TD3+BC's behaviour-cloning term in the actor loss. Without
      it the actor runs to the action limits on a critic that has not learned yet and drops a cube
      it already lifts (docs/drqv2.md, "The stage-3 regression").
    Everything else (lr, n-step, gamma, tau, noise clip, exploration steps, augmentation) is the paper's.
    """
    lr: float = 1.0e-4
    batch_size: int = 64
    feature_dim: int = 50
    hidden_dim: int = 256
    nstep: int = 3
    discount: float = 0.99
    critic_target_tau: float = 0.01
    update_every_steps: int = 4               # env steps (all envs together) per gradient update
    num_expl_steps: int = 2000                # uniform random actions for the first env steps
    num_seed_steps: int = 2000                # no updates before this many env steps are stored
    stddev_schedule: str = "linear(1.0,0.1,30000)"
    # Per-env exploration (as Ape-X's per-actor epsilons): env i of N acts with the schedule's stddev
    # times ratio^(1 - i/(N-1)), from ratio x (env 0) to 1x (the last env). 1.0: all envs alike (the
    # paper). Quiet envs keep what the policy already does in the replay, loud ones find new things.
    stddev_env_ratio: float = 1.0
    stddev_clip: float = 0.3
    actor_bc_weight: float = 0.4              # > 0: TD3+BC's behaviour-cloning term in the actor loss
    aug_pad: int = 4
    frame_stack: int = 3                      # frames per observation, as stacked by the env
    replay_memory_bytes: int = 2 * 1024 ** 3
    device: str = "auto"                      # "auto": cuda if available, else cpu
    # Run the conv encoder under bfloat16 autocast (weights, optimiser and MLP heads stay float32).
    # "auto": on a CPU with native bf16 (AMX / AVX512-BF16), where it makes an update ~2.5x faster;
    # the paper trains in float32, which is what the GPU preset keeps.
    encoder_bf16: str = "auto"                # "auto" | "on" | "off"
    seed: int = 0
    torch_threads: int = 0                    # > 0: torch.set_num_threads(...) in the trainer

    @classmethod
    def gpu_preset(cls, **overrides):
        return cls(**{**GPU_PRESET, **overrides})

    @classmethod
    def from_params(cls, block, preset="cpu"):
        """A config from a params.yaml `drqv2:` block over a preset ("cpu" or "gpu"; a `preset` key
        in the block wins).

        Unknown keys are an error (a typo must not silently train with a default). Numbers written
        as strings are converted: PyYAML (YAML 1.1) reads `3e-4` as the string "3e-4".
        """
        block = dict(block)
        preset = block.pop("preset", preset)
        if preset not in ("cpu", "gpu"):
            raise ValueError(f"drqv2.preset must be 'cpu' or 'gpu', got {preset!r}")
        base = dataclasses.asdict(cls() if preset == "cpu" else cls.gpu_preset())
        fields = {f.name: f.type for f in dataclasses.fields(cls)}
        unknown = sorted(set(block) - set(fields))
        if unknown:
            raise ValueError(f"unknown drqv2 parameter(s): {', '.join(unknown)}")
        for key, value in block.items():
            kind = type(base[key])
            if kind is str:
                base[key] = str(value)
                if key == "stddev_schedule":
                    schedule(value, 0)        # raises on a malformed schedule
            else:
                number = float(value)
                if kind is int and number != int(number):
                    raise ValueError(f"drqv2.{key} must be an integer, got {value!r}")
                base[key] = kind(number)
        return cls(**base)


def resolve_device(device):
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def use_encoder_bf16(setting, device):
    if setting == "auto":
        return device.type == "cpu" and torch.ops.mkldnn._is_mkldnn_bf16_supported()
    return setting == "on"


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
    mix = float(np.clip(step / duration, 0.0, 1.0))
    return (1.0 - mix) * init + mix * final


def env_noise_scales(ratio, num_envs):
    """Each env's factor on the exploration stddev: geometric from ratio (env 0) to 1 (the last)."""
    if num_envs == 1:
        return np.ones(1)
    return ratio ** (1.0 - np.arange(num_envs) / (num_envs - 1))


# --------------------------------------------------------------------------------------- networks

class RandomShiftsAug(nn.Module):
    """Pad by `pad` pixels (replicating the border), then crop back at a random offset.

    The crop is done with bilinear grid_sample on a grid shifted by a whole number of pixels, as in the
    paper: the shifted image is the padded image sampled at integer offsets in [0, 2 * pad].
    """

    def __init__(self, pad=4):
        super().__init__()
        self.pad = pad

    def forward(self, x):
        n, _, h, w = x.shape
        assert h == w, "random shifts assume square images"
        padded = F.pad(x, (self.pad,) * 4, mode="replicate")
        size = h + 2 * self.pad
        # grid_sample coordinates are in [-1, 1] over the padded image; pixel centres (align_corners
        # False) of the first h pixels of the padded image form the unshifted crop.
        eps = 1.0 / size
        arange = torch.linspace(-1.0 + eps, 1.0 - eps, size, device=x.device, dtype=x.dtype)[:h]
        arange = arange.unsqueeze(0).repeat(h, 1).unsqueeze(2)
        base_grid = torch.cat([arange, arange.transpose(1, 0)], dim=2)   # (h, w, 2) as (x, y)
        base_grid = base_grid.unsqueeze(0).repeat(n, 1, 1, 1)
        shift = torch.randint(0, 2 * self.pad + 1, size=(n, 1, 1, 2), device=x.device, dtype=x.dtype)
        shift *= 2.0 / size                                               # pixels -> grid units
        return F.grid_sample(padded, base_grid + shift, padding_mode="zeros", align_corners=False)


def weight_init(m):
    """Orthogonal init, zero biases (as in the reference); ReLU gain for conv layers."""
    if isinstance(m, nn.Linear):
        nn.init.orthogonal_(m.weight.data)
        if m.bias is not None:
            m.bias.data.fill_(0.0)
    elif isinstance(m, nn.Conv2d):
        nn.init.orthogonal_(m.weight.data, nn.init.calculate_gain("relu"))
        if m.bias is not None:
            m.bias.data.fill_(0.0)


class Encoder(nn.Module):
    """Four 3x3 convs with 32 channels (stride 2, then 1), ReLU; 84x84 in gives 32 x 35 x 35 out."""

    def __init__(self, obs_shape):
        super().__init__()
        self.convnet = nn.Sequential(
            nn.Conv2d(obs_shape[0], 32, 3, stride=2), nn.ReLU(),
            nn.Conv2d(32, 32, 3, stride=1), nn.ReLU(),
            nn.Conv2d(32, 32, 3, stride=1), nn.ReLU(),
            nn.Conv2d(32, 32, 3, stride=1), nn.ReLU())
        with torch.no_grad():   # the flattened size, so smaller images (tests) work too
            self.repr_dim = self.convnet(torch.zeros(1, *obs_shape)).numel()
        self.apply(weight_init)

    def forward(self, obs):
        obs = obs / 255.0 - 0.5      # uint8 pixels to [-0.5, 0.5]
        h = self.convnet(obs)
        return h.reshape(h.shape[0], -1)


class TruncatedNormal(torch.distributions.Normal):
    """Normal whose samples are clamped into (-1, 1), passing gradients straight through the clamp."""

    def __init__(self, loc, scale, low=-1.0, high=1.0, eps=1e-6):
        super().__init__(loc, scale, validate_args=False)
        self.low, self.high, self.eps = low, high, eps

    def _clamp(self, x):
        clamped = torch.clamp(x, self.low + self.eps, self.high - self.eps)
        return x - x.detach() + clamped.detach()

    def sample(self, clip=None, sample_shape=torch.Size()):
        shape = self._extended_shape(sample_shape)
        eps = torch.randn(shape, dtype=self.loc.dtype, device=self.loc.device) * self.scale
        if clip is not None:
            eps = torch.clamp(eps, -clip, clip)   # clipped noise: target smoothing (as TD3)
        return self._clamp(self.loc + eps)


class Actor(nn.Module):
    """Deterministic policy mu(h) = tanh(MLP(trunk(h))); exploration adds N(0, stddev^2) noise."""

    def __init__(self, repr_dim, action_dim, feature_dim, hidden_dim):
        super().__init__()
        # LayerNorm + tanh bottleneck: keeps features bounded whatever the encoder's scale.
        self.trunk = nn.Sequential(nn.Linear(repr_dim, feature_dim), nn.LayerNorm(feature_dim),
                                   nn.Tanh())
        self.policy = nn.Sequential(nn.Linear(feature_dim, hidden_dim), nn.ReLU(inplace=True),
                                    nn.Linear(hidden_dim, hidden_dim), nn.ReLU(inplace=True),
                                    nn.Linear(hidden_dim, action_dim))
        self.apply(weight_init)

    def forward(self, h, stddev):
        mu = torch.tanh(self.policy(self.trunk(h)))
        return TruncatedNormal(mu, torch.ones_like(mu) * stddev)


class Critic(nn.Module):
    """Twin Q-functions Q1, Q2 over a shared LayerNorm + tanh trunk (clipped double Q-learning)."""

    def __init__(self, repr_dim, action_dim, feature_dim, hidden_dim):
        super().__init__()
        self.trunk = nn.Sequential(nn.Linear(repr_dim, feature_dim), nn.LayerNorm(feature_dim),
                                   nn.Tanh())

        def q_net():
            return nn.Sequential(nn.Linear(feature_dim + action_dim, hidden_dim), nn.ReLU(inplace=True),
                                 nn.Linear(hidden_dim, hidden_dim), nn.ReLU(inplace=True),
                                 nn.Linear(hidden_dim, 1))
        self.Q1 = q_net()
        self.Q2 = q_net()
        self.apply(weight_init)

    def forward(self, h, action):
        h_action = torch.cat([self.trunk(h), action], dim=-1)
        return self.Q1(h_action), self.Q2(h_action)


# ------------------------------------------------------------------------------------------ agent

class DrQV2Agent:
    def __init__(self, obs_shape, action_dim, config: DrQV2Config):
        self.config = config
        self.obs_shape = tuple(obs_shape)
        self.action_dim = action_dim
        self.device = resolve_device(config.device)
        c = config

        self.encoder = Encoder(obs_shape).to(self.device)
        self.actor = Actor(self.encoder.repr_dim, action_dim, c.feature_dim, c.hidden_dim).to(self.device)
        self.critic = Critic(self.encoder.repr_dim, action_dim, c.feature_dim, c.hidden_dim).to(self.device)
        self.critic_target = Critic(self.encoder.repr_dim, action_dim, c.feature_dim,
                                    c.hidden_dim).to(self.device)
        self.critic_target.load_state_dict(self.critic.state_dict())

        # One optimiser per module, as in the reference: the critic loss steps encoder and critic.
        self.encoder_opt = torch.optim.Adam(self.encoder.parameters(), lr=c.lr)
        self.actor_opt = torch.optim.Adam(self.actor.parameters(), lr=c.lr)
        self.critic_opt = torch.optim.Adam(self.critic.parameters(), lr=c.lr)

        self.aug = RandomShiftsAug(pad=c.aug_pad)
        self.encoder_bf16 = use_encoder_bf16(c.encoder_bf16, self.device)
        self.train(True)
        self.critic_target.train()

    def train(self, training=True):
        self.training = training
        for m in (self.encoder, self.actor, self.critic):
            m.train(training)

    def encode(self, obs):
        """Features h = f(obs) as float32 (the convs under bf16 autocast where enabled)."""
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.encoder_bf16):
            h = self.encoder(obs)
        return h.float()

    @torch.no_grad()
    def act(self, obs, step=0, eval_mode=False):
        """Actions (B, action_dim) in [-1, 1] for a batch of uint8 observations (B, C, H, W).

        eval_mode: the deterministic mean mu(h). Otherwise mu(h) plus scheduled noise (not clipped,
        as in the reference), scaled per row by env_noise_scales, or uniform random actions during
        the first num_expl_steps env steps.
        """
        obs = torch.as_tensor(np.asarray(obs), device=self.device)
        if obs.dim() == 3:
            obs = obs.unsqueeze(0)
        h = self.encode(obs.float())
        scales = torch.as_tensor(env_noise_scales(self.config.stddev_env_ratio, len(h)),
                                 dtype=h.dtype, device=self.device)[:, None]
        dist = self.actor(h, schedule(self.config.stddev_schedule, step) * scales)
        if eval_mode:
            action = dist.mean
        else:
            action = dist.sample(clip=None)
            if step < self.config.num_expl_steps:
                action.uniform_(-1.0, 1.0)
        return action.cpu().numpy()

    def update_critic(self, h, action, reward, discount, next_h, step):
        with torch.no_grad():
            dist = self.actor(next_h, schedule(self.config.stddev_schedule, step))
            next_action = dist.sample(clip=self.config.stddev_clip)
            target_Q1, target_Q2 = self.critic_target(next_h, next_action)
            target_V = torch.min(target_Q1, target_Q2)
            # discount = gamma^n, or 0 where the n-step window ended on a real termination.
            target_Q = reward + discount * target_V

        Q1, Q2 = self.critic(h, action)
        critic_loss = F.mse_loss(Q1, target_Q) + F.mse_loss(Q2, target_Q)

        # The critic loss is the only loss that reaches the encoder.
        self.encoder_opt.zero_grad(set_to_none=True)
        self.critic_opt.zero_grad(set_to_none=True)
        critic_loss.backward()
        self.critic_opt.step()
        self.encoder_opt.step()
        return {"critic_loss": critic_loss.item(), "critic_q1": Q1.mean().item(),
                "critic_target_q": target_Q.mean().item()}

    def update_actor(self, h, step, data_action):
        dist = self.actor(h, schedule(self.config.stddev_schedule, step))
        action = dist.sample(clip=self.config.stddev_clip)
        Q1, Q2 = self.critic(h, action)
        Q = torch.min(Q1, Q2)
        actor_loss = -Q.mean()
        if self.config.actor_bc_weight > 0:
            # TD3+BC's form: Q scaled to unit mean magnitude, plus the squared distance of the mean
            # action to the replay's action for the same observation.
            actor_loss = -Q.mean() / Q.abs().mean().detach().clamp(min=1e-6) \
                + self.config.actor_bc_weight * F.mse_loss(dist.mean, data_action)

        # Only the actor's parameters step: the critic's gradients from this loss are cleared before
        # its next update (zero_grad), so they never reach its optimiser.
        self.actor_opt.zero_grad(set_to_none=True)
        actor_loss.backward()
        self.actor_opt.step()
        return {"actor_loss": actor_loss.item()}

    def update(self, batch, step):
        """One gradient update from a replay batch (obs, action, reward, discount, next_obs)."""
        obs, action, reward, discount, next_obs = (torch.as_tensor(x, device=self.device) for x in batch)
        # Independent random shifts for obs and next_obs, then encode (no gradient for the target).
        obs = self.aug(obs.float())
        next_obs = self.aug(next_obs.float())
        h = self.encode(obs)
        with torch.no_grad():
            next_h = self.encode(next_obs)

        metrics = {"batch_reward": reward.mean().item()}
        metrics.update(self.update_critic(h, action, reward, discount, next_h, step))
        metrics.update(self.update_actor(h.detach(), step, action))   # the actor does not train the encoder

        # Polyak averaging of the target critic (its trunk included).
        with torch.no_grad():
            tau = self.config.critic_target_tau
            for p, tp in zip(self.critic.parameters(), self.critic_target.parameters()):
                tp.data.lerp_(p.data, tau)
        return metrics

    # ---- persistence: everything an update depends on, so a round-trip is exact.
    _MODULES = ("encoder", "actor", "critic", "critic_target", "encoder_opt", "actor_opt", "critic_opt")

    def state_dict(self):
        state = {name: getattr(self, name).state_dict() for name in self._MODULES}
        state.update(config=dataclasses.asdict(self.config), obs_shape=self.obs_shape,
                     action_dim=self.action_dim)
        return state

    def load_state_dict(self, state):
        for name in self._MODULES:
            getattr(self, name).load_state_dict(state[name])

    def save(self, path):
        torch.save(self.state_dict(), path)

    @classmethod
    def load(cls, path, device=None):
        state = torch.load(path, map_location="cpu", weights_only=False)
        return cls._from_state(state, device)

    @classmethod
    def _from_state(cls, state, device=None):
        config = DrQV2Config(**state["config"])
        if device is not None:
            config = dataclasses.replace(config, device=device)
        agent = cls(state["obs_shape"], state["action_dim"], config)
        agent.load_state_dict(state)
        return agent

    @classmethod
    def from_checkpoint(cls, path, device=None):
        """The agent from a trainer checkpoint directory (or its trainer.pt), for evaluation."""
        path = Path(path)
        if path.is_dir():
            path = path / DrQV2Trainer.STATE_FILE
        state = torch.load(path, map_location="cpu", weights_only=False)
        return cls._from_state(state["agent"], device)


# ---------------------------------------------------------------------------------------- trainer

def _newest_frame(obs, frame_stack):
    """The newest frame (last C channels) of frame-stacked observations (..., frame_stack*C, H, W)."""
    channels = obs.shape[-3] // frame_stack
    return obs[..., -channels:, :, :]


def _scalar_items(info, i):
    """Scalar entries of env i in a batched gymnasium info dict (respecting the "_key" masks)."""
    out = {}
    for key, value in info.items():
        if key.startswith("_") or isinstance(value, dict):
            continue
        mask = info.get("_" + key)
        if mask is not None and not mask[i]:
            continue
        v = np.asarray(value[i]) if hasattr(value, "__len__") else None
        if v is not None and v.ndim == 0 and v.dtype.kind in "biuf":
            out[key] = v.item()
    return out


class DrQV2Trainer(Trainer):
    """Collects with a gymnasium 1.x VectorEnv (autoreset mode SAME_STEP) and trains a DrQ-v2 agent.

    Observations: uint8 (num_envs, frame_stack * C, H, W), frame-stacked by the env, newest frame
    last. Steps are counted in env steps summed over the envs (one vector step of N envs = N frames);
    the exploration schedule, num_expl_steps, num_seed_steps and update_every_steps use that count.
    """

    STATE_FILE = "trainer.pt"
    REPLAY_DIR = "replay"
    policy_suffix = ".pt"
    # save() adds to one state folder (the replay buffer in chunks, never rewritten): a resume
    # continues from the latest checkpoint only.
    keeps_one_state = True

    def __init__(self, env, config: DrQV2Config, on_episode=None):
        if config.torch_threads > 0:
            torch.set_num_threads(config.torch_threads)
        self.env = env
        self.config = config
        self.num_envs = env.num_envs
        obs_shape = tuple(env.single_observation_space.shape)
        action_dim = int(np.prod(env.single_action_space.shape))
        if obs_shape[0] % config.frame_stack:
            raise ValueError(f"obs channels {obs_shape[0]} not a multiple of frame_stack")
        frame_shape = (obs_shape[0] // config.frame_stack, *obs_shape[1:])
        self.action_low = env.single_action_space.low
        self.action_high = env.single_action_space.high
        if not (np.allclose(self.action_low, -1) and np.allclose(self.action_high, 1)):
            raise ValueError("DrQ-v2's tanh actor expects actions in [-1, 1]")

        torch.manual_seed(config.seed)
        np.random.seed(config.seed)
        random.seed(config.seed)
        self.agent = DrQV2Agent(obs_shape, action_dim, config)
        self.replay = ReplayBuffer(self.num_envs, frame_shape, action_dim, config.frame_stack,
                                   config.nstep, config.discount, config.replay_memory_bytes,
                                   seed=config.seed)
        self._global_step = 0         # env steps, all envs together
        self.num_updates = 0
        self._update_credit = 0.0     # fractional updates owed (N envs / update_every_steps per step)
        self.episodes = []            # one dict per finished training episode
        self.metrics = {}             # last update's losses
        self.on_episode = on_episode
        self._obs = None              # current observations; None means the envs need a reset
        self._ep_return = np.zeros(self.num_envs)
        self._ep_length = np.zeros(self.num_envs, dtype=np.int64)
        self._resets = 0

    @property
    def global_step(self):
        return self._global_step

    @global_step.setter
    def global_step(self, value):
        self._global_step = value

    def _reset_envs(self):
        # A fresh seed per (re)start: a resumed run does not replay the first run's initial states.
        obs, _ = self.env.reset(seed=self.config.seed + 1_000_003 * self._resets + self.global_step)
        self._resets += 1
        self._obs = obs
        self._ep_return[:] = 0.0
        self._ep_length[:] = 0
        self.replay.add_first(_newest_frame(obs, self.config.frame_stack))

    def _record_episodes(self, done, infos):
        final_info = infos.get("final_info", {})
        mask = infos.get("_final_info", done)
        for i in np.flatnonzero(done):
            record = {"step": self.global_step, "env": int(i), "episode_return": float(self._ep_return[i]),
                      "episode_length": int(self._ep_length[i])}
            if mask[i]:
                record.update(_scalar_items(final_info, i))
            self.episodes.append(record)
            if self.on_episode is not None:
                self.on_episode(record)

    def train_until(self, total_env_steps, on_checkpoint=None, checkpoint_every=None, progress=False,
                    on_episode=None, should_stop=None):
        """Collect and train until global_step >= total_env_steps, or until should_stop() says so
        (checked between env steps, where a checkpoint is consistent: Ctrl-C).

        on_checkpoint(trainer) is called each time global_step crosses a multiple of
        checkpoint_every, and once at the end (e.g. lambda t: t.save(ckpt_dir)).
        """
        if on_episode is not None:
            self.on_episode = on_episode
        c = self.config
        if self._obs is None:
            self._reset_envs()
        t0, step0, last_print = time.time(), self.global_step, time.time()
        checkpointed = False
        while self.global_step < total_env_steps and not (should_stop is not None and should_stop()):
            action = self.agent.act(self._obs, self.global_step, eval_mode=False)
            next_obs, reward, terminated, truncated, infos = self.env.step(action)
            terminated, truncated = np.asarray(terminated), np.asarray(truncated)
            done = terminated | truncated
            self._ep_return += reward
            self._ep_length += 1

            final_frames = None
            if done.any():
                final_obs = infos["final_obs"]
                final_frames = [_newest_frame(np.asarray(final_obs[i]), c.frame_stack) if done[i] else None
                                for i in range(self.num_envs)]
            self.replay.add(action, reward, terminated, truncated,
                            _newest_frame(next_obs, c.frame_stack), final_frames)
            prev_step = self.global_step
            self.global_step += self.num_envs
            if done.any():
                self._record_episodes(done, infos)
                self._ep_return[done] = 0.0
                self._ep_length[done] = 0
            self._obs = next_obs

            # The replay ratio: one update per update_every_steps env steps, once seeded.
            if self.global_step >= c.num_seed_steps:
                self._update_credit += self.num_envs / c.update_every_steps
                while self._update_credit >= 1.0:
                    self._update_credit -= 1.0
                    self.metrics = self.agent.update(self.replay.sample(c.batch_size), self.global_step)
                    self.num_updates += 1

            if progress and time.time() - last_print > 30:
                last_print = time.time()
                self._print_progress(t0, step0)
            checkpointed = False
            if (checkpoint_every and on_checkpoint is not None
                    and self.global_step // checkpoint_every > prev_step // checkpoint_every):
                on_checkpoint(self)
                checkpointed = True
        if progress:
            self._print_progress(t0, step0)
        if on_checkpoint is not None and not checkpointed:
            on_checkpoint(self)
        return self

    def _print_progress(self, t0, step0):
        fps = (self.global_step - step0) / max(time.time() - t0, 1e-9)
        recent = self.episodes[-20:]
        ret = np.mean([e["episode_return"] for e in recent]) if recent else float("nan")
        succ = [e["success_once"] for e in recent if "success_once" in e]
        succ_s = f" success {np.mean(succ):.2f}" if succ else ""
        print(f"[drqv2] step {self.global_step} updates {self.num_updates} {fps:.1f} frames/s "
              f"episodes {len(self.episodes)} return(20) {ret:.2f}{succ_s} "
              f"critic_loss {self.metrics.get('critic_loss', float('nan')):.4f}", flush=True)

    # ------------------------------------------------------------------------------- checkpoints
    def save_policy(self, path):
        """The agent alone, in trainer.pt's layout ({"agent": ...}): DrQV2Agent.from_checkpoint reads it."""
        path = Path(path)
        tmp = path.with_name(path.name + ".tmp")
        torch.save({"agent": self.agent.state_dict(), "global_step": self.global_step,
                    "num_updates": self.num_updates}, tmp)
        os.replace(tmp, path)

    def named_parameters(self):
        for part in ("encoder", "actor", "critic"):
            for name, value in getattr(self.agent, part).named_parameters():
                yield f"{part}.{name}", value

    def info(self):
        config = {k: v for k, v in dataclasses.asdict(self.config).items() if k != "torch_threads"}
        return {"num_updates": self.num_updates, "drqv2_config": config, "device": str(self.agent.device)}

    def losses(self):
        return {**self.metrics, "num_updates": self.num_updates}

    def episode_log(self):
        """Finished episodes as the train log's rows: global_step, env and the env's final_info."""
        return [{"global_step": r["step"], "env": r["env"],
                 **{k: v for k, v in r.items() if k not in ("step", "env", "episode_return", "episode_length")}}
                for r in self.episodes]

    def close(self):
        self.env.close()

    def state_dict(self):
        return {
            "agent": self.agent.state_dict(),
            "replay": self.replay.state_dict(),
            "global_step": self.global_step,
            "num_updates": self.num_updates,
            "update_credit": self._update_credit,
            "episodes": list(self.episodes),
            "resets": self._resets,
            # The envs' episodes in flight, so a resume continues them instead of starting new ones:
            # with this, a resumed run's weights equal an uninterrupted run's (tests/test_pipeline.py).
            # (An env without get_state, like the tests' toy env, resumes with fresh episodes.)
            "envs": None if self._obs is None or not hasattr(self.env, "get_state") else {
                "state": self.env.get_state(), "obs": self._obs, "ep_return": self._ep_return,
                "ep_length": self._ep_length},
            "rng": {"torch": torch.get_rng_state(), "numpy": np.random.get_state(),
                    "python": random.getstate(),
                    "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None},
            "config": dataclasses.asdict(self.config),
        }

    def save(self, directory):
        """Checkpoint into directory: new replay chunks first, then trainer.pt (atomic rename).

        trainer.pt is the commit point: a run killed before it is renamed resumes from the previous
        checkpoint, whose replay chunks are all still there (overwritten chunks are pruned only after).
        """
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        self.replay.save(directory / self.REPLAY_DIR)
        tmp = directory / (self.STATE_FILE + ".tmp")
        torch.save(self.state_dict(), tmp)
        os.replace(tmp, directory / self.STATE_FILE)
        self.replay.prune(directory / self.REPLAY_DIR)

    def load(self, directory):
        """Resume from save(directory), the envs' episodes in flight included, so training goes on
        exactly as if it had never stopped."""
        directory = Path(directory)
        state = torch.load(directory / self.STATE_FILE, map_location="cpu", weights_only=False)
        self.agent.load_state_dict(state["agent"])
        self.replay.load(directory / self.REPLAY_DIR, state["replay"])
        self.global_step = state["global_step"]
        self.num_updates = state["num_updates"]
        self._update_credit = state["update_credit"]
        self.episodes = list(state["episodes"])
        self._resets = state["resets"]
        rng = state["rng"]
        torch.set_rng_state(rng["torch"])
        np.random.set_state(rng["numpy"])
        random.setstate(rng["python"])
        if rng["cuda"] is not None and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(rng["cuda"])
        self._obs = None
        if state.get("envs") is not None:
            envs = state["envs"]
            self.env.set_state(envs["state"])
            self._obs = envs["obs"]
            self._ep_return, self._ep_length = envs["ep_return"].copy(), envs["ep_length"].copy()
        return self


@torch.no_grad()
def evaluate(agent, env, num_episodes, seed=None):
    """Run the deterministic policy on a SAME_STEP VectorEnv; return one stats dict per episode.

    Only the first num_episodes episodes to finish are kept (envs keep stepping until then).
    """
    obs, _ = env.reset(seed=seed)
    n = env.num_envs
    ret, length = np.zeros(n), np.zeros(n, dtype=np.int64)
    out = []
    while len(out) < num_episodes:
        obs, reward, terminated, truncated, infos = env.step(agent.act(obs, eval_mode=True))
        ret += reward
        length += 1
        done = np.asarray(terminated) | np.asarray(truncated)
        mask = infos.get("_final_info", done)
        for i in np.flatnonzero(done):
            record = {"episode_return": float(ret[i]), "episode_length": int(length[i])}
            if mask[i]:
                record.update(_scalar_items(infos.get("final_info", {}), i))
            out.append(record)
        ret[done], length[done] = 0.0, 0
    return out[:num_episodes]
