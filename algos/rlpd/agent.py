"""RLPD's networks and its update: a tanh-Gaussian actor, an ensemble of critics computed as one
batched network, and a learned temperature (SAC's). The policy file holds the actor and its shape.

One update (update_critic, then every actor_every-th time update_actor):
    target = r + gamma * (1 - terminated) * (min over num_min_critics random target critics of
             Q'(s', a') - alpha * log pi(a'|s')),  a' ~ pi(.|s')
    critic loss = sum over critics of the mean squared error to target
    actor loss  = alpha * log pi(a|s) - mean over critics of Q(s, a)     (critic weights frozen)
                  + actor_bc_weight * mean|Q| * mean (a - a_demo)^2 on the demonstrations' rows (0 in RLPD)
    temperature loss = -log alpha * (log pi(a|s) + target_entropy)
Randomness (action noise, the critics drawn) comes from the global torch RNG, seeded and saved by
the trainer. With bf16 the updates run under bfloat16 autocast: matrix products in bfloat16, about
1.5x faster on a CPU with native bf16 (docs/benchmarks.md); the critics' output layer, the losses,
the weights and Adam stay float32.
"""
from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

LOG_STD_MIN, LOG_STD_MAX = -20.0, 2.0


class EnsembleLinear(nn.Module):
    """n independent linear layers: weight (n, i, o) and bias (n, 1, o), applied by Critics.forward
    as one batched matmul (n, B, i) -> (n, B, o)."""

    def __init__(self, n: int, i: int, o: int):
        super().__init__()
        bound = 1.0 / math.sqrt(i)          # nn.Linear's default initialisation, per member
        self.weight = nn.Parameter(torch.empty(n, i, o).uniform_(-bound, bound))
        self.bias = nn.Parameter(torch.empty(n, 1, o).uniform_(-bound, bound))


class Critics(nn.Module):
    """n critics Q_k(s, a) -> (n, B): MLPs of depth hidden layers, LayerNorm after each if asked."""

    def __init__(self, n: int, obs_dim: int, action_dim: int, width: int, depth: int, layer_norm: bool):
        super().__init__()
        self.n, self.layer_norm = n, layer_norm
        sizes = [obs_dim + action_dim] + [width] * depth
        self.hidden = nn.ModuleList(EnsembleLinear(n, a, b) for a, b in zip(sizes, sizes[1:]))
        self.norms = nn.ParameterList()
        if layer_norm:
            for _ in range(depth):
                self.norms.append(nn.Parameter(torch.ones(n, 1, width)))
                self.norms.append(nn.Parameter(torch.zeros(n, 1, width)))
        # The output layer (one unit) as a weighted sum: a matmul with one column is slow on CPU.
        bound = 1.0 / math.sqrt(width)
        self.out_weight = nn.Parameter(torch.empty(n, 1, width).uniform_(-bound, bound))
        self.out_bias = nn.Parameter(torch.empty(n, 1).uniform_(-bound, bound))

    def forward(self, obs, action, members=None):
        """Q of every critic, (n, B); of the critics `members` (indices) alone when given."""
        def pick(p):
            return p if members is None else p[members]
        x = torch.cat([obs, action], -1).expand(self.n if members is None else len(members), -1, -1)
        for k, layer in enumerate(self.hidden):
            x = torch.baddbmm(pick(layer.bias), x, pick(layer.weight))
            if self.layer_norm:
                x = torch.addcmul(pick(self.norms[2 * k + 1]), F.layer_norm(x, x.shape[-1:]), pick(self.norms[2 * k]))
            x = F.relu_(x)
        return (x * pick(self.out_weight)).sum(-1) + pick(self.out_bias)


class Actor(nn.Module):
    """obs -> a tanh-squashed Gaussian over actions in [-1, 1]^action_dim."""

    def __init__(self, obs_dim: int, action_dim: int, width: int, depth: int):
        super().__init__()
        layers, size = [], obs_dim
        for _ in range(depth):
            layers += [nn.Linear(size, width), nn.ReLU()]
            size = width
        self.trunk = nn.Sequential(*layers)
        self.head = nn.Linear(size, 2 * action_dim)

    def forward(self, obs, deterministic: bool = False):
        """(action, log_prob): a sampled action (the mean's tanh when deterministic) and its log density."""
        mean, log_std = self.head(self.trunk(obs)).float().chunk(2, -1)    # float32 under autocast too
        if deterministic:
            return torch.tanh(mean), None
        std = log_std.clamp(LOG_STD_MIN, LOG_STD_MAX).exp()
        noise = torch.randn_like(mean)
        pre = mean + std * noise
        action = torch.tanh(pre)
        # Gaussian log density, then the tanh's change of variables (the stable form SB3 and RLPD use).
        log_prob = (-0.5 * noise.pow(2) - std.log() - 0.5 * math.log(2 * math.pi)).sum(-1)
        log_prob = log_prob - (2 * (math.log(2) - pre - F.softplus(-2 * pre))).sum(-1)
        return action, log_prob


def use_bf16(setting: str) -> bool:
    """on | off | auto: on where the CPU computes bfloat16 natively."""
    return setting == "on" or (setting == "auto" and torch.ops.mkldnn._is_mkldnn_bf16_supported())


class Agent:
    def __init__(self, obs_dim: int, action_dim: int, hp: dict, zero_actor: bool = False):
        self.hp, self.shape = hp, {"obs_dim": obs_dim, "action_dim": action_dim,
                                   "width": hp["net_width"], "depth": hp["net_depth"]}
        if hp["num_min_critics"] > hp["num_critics"]:
            raise ValueError(f"rlpd.num_min_critics ({hp['num_min_critics']}) exceeds rlpd.num_critics "
                             f"({hp['num_critics']})")
        self.actor = Actor(**self.shape)
        if zero_actor:      # a residual learner: the first policy's mean is 0, the base alone
            nn.init.zeros_(self.actor.head.weight)
            nn.init.zeros_(self.actor.head.bias)
        critic_args = (hp["num_critics"], obs_dim, action_dim, hp["net_width"], hp["net_depth"], hp["critic_layer_norm"])
        self.critics, self.target = Critics(*critic_args), Critics(*critic_args)
        self.target.load_state_dict(self.critics.state_dict())
        self.target.requires_grad_(False)
        self.log_alpha = torch.tensor(math.log(hp["init_temperature"]), requires_grad=True)
        self.target_entropy = -float(action_dim) if hp["target_entropy"] == "auto" else float(hp["target_entropy"])
        lr = hp["learning_rate"]
        self.actor_opt = torch.optim.Adam(self.actor.parameters(), lr=lr, fused=True)
        self.critic_opt = torch.optim.Adam(self.critics.parameters(), lr=lr, fused=True)
        self.alpha_opt = torch.optim.Adam([self.log_alpha], lr=lr, fused=True)
        self.bf16 = use_bf16(hp["bf16"])

    def autocast(self):
        return torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.bf16)

    @torch.no_grad()
    def act(self, obs, deterministic: bool = False):
        action, _ = self.actor(torch.as_tensor(obs, dtype=torch.float32), deterministic)
        return action.numpy()

    def update_critic(self, obs, action, reward, next_obs, terminated) -> dict:
        alpha = self.log_alpha.detach().exp()
        with torch.no_grad(), self.autocast():
            next_action, next_log_prob = self.actor(next_obs)
            n, m = self.hp["num_critics"], self.hp["num_min_critics"]
            drawn = torch.randperm(n)[:m] if m < n else None      # only the drawn critics are evaluated
            next_q = self.target(next_obs, next_action, drawn).min(0).values - alpha * next_log_prob
        target = reward + self.hp["gamma"] * (1.0 - terminated) * next_q.float()
        with self.autocast():
            q = self.critics(obs, action).float()
        loss = (q - target).pow(2).mean(1).sum()
        self.critic_opt.zero_grad(set_to_none=True)
        loss.backward()
        self.critic_opt.step()
        with torch.no_grad():
            tau = self.hp["tau"]
            for p, tp in zip(self.critics.parameters(), self.target.parameters()):
                tp.lerp_(p, tau)
        return {"critic_loss": loss.item(), "q": q.mean().item()}

    def update_actor(self, obs, demo_actions=None) -> dict:
        """demo_actions: the demonstrated actions of the batch's first rows (with actor_bc_weight > 0)."""
        self.critics.requires_grad_(False)      # the actor's gradient only: no critic weight grads
        with self.autocast():
            action, log_prob = self.actor(obs)
            q = self.critics(obs, action).mean(0)
        self.critics.requires_grad_(True)
        log_prob, q = log_prob.float(), q.float()
        alpha = self.log_alpha.detach().exp()
        loss = (alpha * log_prob - q).mean()
        bc = torch.zeros(())
        if demo_actions is not None and self.hp["actor_bc_weight"] > 0:
            # On the demonstrations' rows: the squared distance of the policy's sampled action to
            # the demonstrated one, scaled by the Q magnitude as TD3+BC does (weight free of reward scale).
            bc = (action[:len(demo_actions)].float() - demo_actions).pow(2).mean()
            loss = loss + self.hp["actor_bc_weight"] * q.abs().mean().detach() * bc
        self.actor_opt.zero_grad(set_to_none=True)
        loss.backward()
        self.actor_opt.step()
        alpha_loss = -(self.log_alpha * (log_prob.detach() + self.target_entropy)).mean()
        self.alpha_opt.zero_grad(set_to_none=True)
        alpha_loss.backward()
        self.alpha_opt.step()
        return {"actor_loss": loss.item(), "alpha": alpha.item(), "entropy": -log_prob.mean().item(), "bc": bc.item()}

    # ---- save and load, side by side
    def save_actor(self, path) -> None:
        torch.save({"shape": self.shape, "actor": self.actor.state_dict()}, path)

    def state_dict(self) -> dict:
        return {"actor": self.actor.state_dict(), "critics": self.critics.state_dict(),
                "target": self.target.state_dict(), "log_alpha": self.log_alpha.detach().clone(),
                "actor_opt": self.actor_opt.state_dict(), "critic_opt": self.critic_opt.state_dict(),
                "alpha_opt": self.alpha_opt.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        self.actor.load_state_dict(state["actor"])
        self.critics.load_state_dict(state["critics"])
        self.target.load_state_dict(state["target"])
        with torch.no_grad():
            self.log_alpha.copy_(state["log_alpha"])
        self.actor_opt.load_state_dict(state["actor_opt"])
        self.critic_opt.load_state_dict(state["critic_opt"])
        self.alpha_opt.load_state_dict(state["alpha_opt"])


class Policy:
    def __init__(self, actor: Actor, deterministic: bool):
        self.actor, self.deterministic = actor, deterministic

    @torch.no_grad()
    def act(self, obs):
        action, _ = self.actor(torch.as_tensor(obs, dtype=torch.float32)[None], self.deterministic)
        return action[0].numpy()


def load_actor(path, deterministic: bool = True) -> Policy:
    saved = torch.load(path, weights_only=False)
    actor = Actor(**saved["shape"])
    actor.load_state_dict(saved["actor"])
    return Policy(actor.eval(), deterministic)
