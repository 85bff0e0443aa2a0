"""walk v1: the first reward of devlog 002, the one that taught the Go2 to lie down and crawl.

The devlog shows only v1's height term ("Before: weak height penalty allowed laying down"):
`height_reward = -1.0 if z < 0.1` (else 0), weighted 0.3. The other terms are not in the devlog; ours
are Genesis's go2 locomotion example's tracking terms (per step, not multiplied by dt; the linear one
weighted 2.5 instead of 1.0) and a small action-rate penalty, shared unchanged with v2
(envs/rewards/walk/__init__.py) so that v1 -> v2 changes exactly what the devlog changed.

tracking_lin_vel  2.5 * exp(-|command_xy - base velocity_xy (body frame)|^2 / 0.25)
tracking_ang_vel  0.2 * exp(-(command_yaw - base yaw rate)^2 / 0.25)
height            0.3 * (-1 if base height < 0.10 m else 0)       (devlog)
action_rate       -0.005 * |action - last action|^2

Termination (read by envs/tasks/walk.py): base height below 0.12 m from the first step (no grace period),
or the body tilted more than 60 degrees.
"""
import numpy as np

from envs.rewards.walk import action_rate, tracking

TERMINATION_HEIGHT = 0.12   # m
GRACE_STEPS = 0             # v1 had no grace period
GRACE_HEIGHT = 0.12
def compute(s):
    height = 0.3 * np.where(s.base_height < 0.1, -1.0, 0.0)
    components = {**tracking(s), "height": height, "action_rate": action_rate(s)}
    return sum(components.values()), components
