"""walk v2: devlog 002's redesign, which stopped the Go2 lying down ("Reward Function Redesign").

From the devlog, exactly: below 0.15 m base height a severe -10.0 height reward; above it
exp(-5 * |z - 0.27|); the height term weighted 2.5 (v1: 0.3). So a lying robot gets -25 per step,
one standing at 0.27 m +2.5.
The devlog names a "leg extension reward encouraging proper leg posture" without its formula or
weight: ours (our choice) is 0.5 * the mean over the four legs of exp(-4 * (calf angle - default
calf angle)^2), i.e. 0.5 with the knees at the standing pose, ~0.01 with the knees folded flat
(calf at its -2.72 rad limit, as when lying on the belly).
The 20-step grace period lives in the env's termination (envs/tasks/walk.py reads the constants below):
termination height 0.08 m during the first 20 steps of an episode, 0.12 m afterwards (devlog).

tracking_lin_vel  2.5 * exp(-|command_xy - base velocity_xy (body frame)|^2 / 0.25)     (as v1)
tracking_ang_vel  0.2 * exp(-(command_yaw - base yaw rate)^2 / 0.25)                    (as v1)
height            2.5 * (-10 if z < 0.15 m else exp(-5 * |z - 0.27|))                   (devlog)
leg_extension     0.5 * mean_legs exp(-4 * (calf - calf_default)^2)                     (our choice)
action_rate       -0.005 * |action - last action|^2                                     (as v1)
"""
import numpy as np

from envs.rewards.walk import action_rate, tracking

TERMINATION_HEIGHT = 0.12   # m, after the grace period
GRACE_STEPS = 20            # steps of an episode with the relaxed height
GRACE_HEIGHT = 0.08         # m
CALF = np.array([2, 5, 8, 11])   # calf joints in envs.tasks.walk.JOINT_NAMES order


def compute(s):
    z = s.base_height
    height = 2.5 * np.where(z < 0.15, -10.0, np.exp(-5.0 * np.abs(z - 0.27)))
    calf_err = s.dof_pos[:, CALF] - s.default_dof_pos[CALF]
    leg_extension = 0.5 * np.mean(np.exp(-4.0 * calf_err ** 2), axis=1)
    components = {**tracking(s), "height": height, "leg_extension": leg_extension, "action_rate": action_rate(s)}
    return sum(components.values()), components
