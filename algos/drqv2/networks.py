"""DrQ-v2's networks (Yarats et al. 2021, section 3): random-shift augmentation, the conv encoder,
the actor and the twin critic, with the reference's orthogonal init (facebookresearch/drqv2).
"""
import torch
import torch.nn as nn
import torch.nn.functional as F


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
