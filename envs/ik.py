"""Closed-form inverse kinematics for the SO-101 with its gripper pointing straight down.

The arm is a pan joint followed by a planar chain (shoulder_lift, elbow_flex, wrist_flex) and a
roll about the gripper axis. The grasp site lies on that axis, so for a top-down grasp:
  pan   = direction of the target seen from the base,
  lift, elbow, wrist = two-link IK to the wrist point (target raised by the gripper length),
  roll  = aligns the jaws' closing direction with a face of the cube.
Used by the curriculum (to place the gripper above or around the cube by writing state) and by
the scripted controller. Link lengths are those of envs/assets/so101.xml.
"""
import numpy as np

PAN_HEIGHT = 0.0624      # shoulder_lift axis above the table (base 0.03 + offset 0.0324)
SHOULDER_FORWARD = 0.0388
UPPER_ARM = 0.1126
FOREARM = 0.1349
GRIPPER = 0.0611 + 0.075  # wrist_flex axis -> wrist_roll frame -> grasp site


JOINT_LIMITS = np.array([[-1.92, 1.92], [-1.75, 1.75], [-1.69, 1.69], [-1.66, 1.66], [-2.74, 2.84]])


def top_down_ik(target, yaw=0.0):
    """Joint angles (pan, lift, elbow, wrist_flex, roll) putting the grasp site at target (x, y, z)
    with the gripper pointing down (tilted towards the base, up to ~45 deg, where the wrist
    cannot reach vertical) and the jaws closing along the horizontal direction `yaw` (mod pi/2,
    since a cube has four faces). Raises ValueError when no such pose is within joint limits."""
    x, y, z = target
    pan = np.arctan2(y, x)
    # With the gripper pointing down, rolling by +rho turns the jaws' closing axis by -rho about z;
    # at roll 0 it is perpendicular to the pan direction.
    roll = (pan + np.pi / 2 - yaw + np.pi / 4) % (np.pi / 2) - np.pi / 4  # nearest face, |roll| <= 45 deg
    for pitch in np.linspace(np.pi / 2, np.pi / 4, 10):   # pitch: gripper angle below horizontal
        planar = _planar_ik(np.hypot(x, y) - SHOULDER_FORWARD, z - PAN_HEIGHT, pitch)
        if planar is not None:
            q = np.array([pan, *planar, roll])
            if np.all((q >= JOINT_LIMITS[:, 0]) & (q <= JOINT_LIMITS[:, 1])):
                return q
    raise ValueError(f"target {np.round(target, 3).tolist()} is out of the arm's top-down reach")


def _planar_ik(r, z, pitch):
    """lift, elbow, wrist for the grasp site at (r, z) from the shoulder axis, gripper `pitch`
    below horizontal; None if unreachable. Elbow-up solution."""
    wr, wz = r - GRIPPER * np.cos(pitch), z + GRIPPER * np.sin(pitch)   # wrist point
    dist = np.hypot(wr, wz)
    if not abs(UPPER_ARM - FOREARM) < dist < UPPER_ARM + FOREARM:
        return None
    beta = np.arccos((UPPER_ARM**2 + dist**2 - FOREARM**2) / (2 * UPPER_ARM * dist))
    up_angle = np.arctan2(wz, wr) + beta                 # upper arm, above horizontal
    ex, ez = UPPER_ARM * np.cos(up_angle), UPPER_ARM * np.sin(up_angle)
    fore_angle = np.arctan2(wz - ez, wr - ex)            # forearm, above horizontal
    lift = np.pi / 2 - up_angle
    elbow = -fore_angle - lift
    wrist = pitch + fore_angle
    return lift, elbow, wrist
