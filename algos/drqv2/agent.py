"""The DrQ-v2 agent (Yarats et al. 2021, arXiv:2107.09645): acting, and the update of section 3.

The update, as in the paper and facebookresearch/drqv2:
  - obs and next_obs are augmented independently with random shifts (pad 4, bilinear);
  - the critic is trained on n-step targets r_t + ... + gamma^n min(Q1', Q2')(h_{t+n}, a'),
    a' = mu(h_{t+n}) + clip(eps, -c, c), with a target critic updated by Polyak averaging;
  - the encoder is trained only through the critic loss; the actor sees detached features;
  - the actor maximises min(Q1, Q2)(h, mu(h) + clipped noise); exploration noise follows a schedule.

    agent = DrQV2Agent(obs_shape, action_dim, DrQV2Config())
    actions = agent.act(obs_batch_uint8, step, eval_mode=False)
    metrics = agent.update(replay.sample(batch_size), step)
    agent = DrQV2Agent.from_checkpoint(policy_file)          # for evaluation and videos
"""
import dataclasses
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from algos.drqv2 import DrQV2Config, schedule
from algos.drqv2.networks import Actor, Critic, Encoder, RandomShiftsAug

STATE_FILE = "trainer.pt"       # a trainer state folder's commit point (DrQV2Trainer.save)


def resolve_device(device):
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def use_encoder_bf16(setting, device):
    if setting == "auto":
        return device.type == "cpu" and torch.ops.mkldnn._is_mkldnn_bf16_supported()
    return setting == "on"


def env_noise_scales(ratio, num_envs):
    """Each env's factor on the exploration stddev: geometric from ratio (env 0) to 1 (the last)."""
    if num_envs == 1:
        return np.ones(1)
    return ratio ** (1.0 - np.arange(num_envs) / (num_envs - 1))


def soft_update_params(net, target_net, tau):
    """target <- (1 - tau) target + tau net, parameter by parameter (Polyak averaging)."""
    with torch.no_grad():
        for p, tp in zip(net.parameters(), target_net.parameters()):
            tp.data.lerp_(p.data, tau)


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
        soft_update_params(self.critic, self.critic_target, self.config.critic_target_tau)   # its trunk too
        return metrics

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

    # ---- save and load: everything an update depends on, so that a round trip is exact.
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
        """The agent of a policy file (DrQV2Trainer.save_policy) or of a trainer state (a folder
        DrQV2Trainer.save wrote, or its STATE_FILE): both hold the agent's state dict as "agent"."""
        path = Path(path)
        if path.is_dir():
            path = path / STATE_FILE
        state = torch.load(path, map_location="cpu", weights_only=False)
        return cls._from_state(state["agent"], device)
