"""Reward versions of the walk task (Go2 velocity tracking, envs/tasks/walk.py; devlog 002), and the
terms they share. A version imports shared terms from here, never from another version, so that a
run depends on its own version's file and this one only.
"""
import numpy as np

TRACKING_SIGMA = 0.25
# Weight of velocity tracking: on par with v2's height term (2.5), so that following the command pays
# as much as holding the posture (docs/walk.md).
TRACKING_WEIGHT = 2.5


def tracking(s):
    """tracking_lin_vel: TRACKING_WEIGHT * exp(-|command_xy - base velocity_xy (body frame)|^2 / 0.25);
    tracking_ang_vel: 0.2 * exp(-(command_yaw - base yaw rate)^2 / 0.25)."""
    lin_err = np.sum((s.command[:, :2] - s.lin_vel[:, :2]) ** 2, axis=1)
    yaw_err = (s.command[:, 2] - s.ang_vel[:, 2]) ** 2
    return {"tracking_lin_vel": TRACKING_WEIGHT * np.exp(-lin_err / TRACKING_SIGMA),
            "tracking_ang_vel": 0.2 * np.exp(-yaw_err / TRACKING_SIGMA)}


def action_rate(s):
    """-0.005 * |action - last action|^2"""
    return -0.005 * np.sum((s.action - s.last_action) ** 2, axis=1)
