"""lift v19: the reward that took image-based DrQ-v2 to 100% success (devlog 001).

Differs from v11 in a stronger grasp bonus (1.5 vs 0.25) and lift coefficient (4.0 vs 2.0), a
bonus growing with the hold count, and a reach term that also pulls the moving finger to the cube
(so the policy learns to bring the moving jaw around the cube, not only the fixed one).

reach  1 - tanh(10 * mean(|grasp point - cube|, |moving finger - cube|))
grasp  1.5 while both jaws touch the cube
lift   4.0 * min(cube height / lift_height, 1) while grasped
hold   0.5 * hold_count (consecutive steps held above lift_height, capped at hold_steps)
"""
import numpy as np


def compute(s):
    d_grasp = np.linalg.norm(s.cube_pos - s.grasp_pos, axis=1)
    d_finger = np.linalg.norm(s.cube_pos - s.moving_finger_pos, axis=1)
    reach = 1.0 - np.tanh(10.0 * 0.5 * (d_grasp + d_finger))
    grasp = 1.5 * s.grasped
    lift = 4.0 * np.clip(s.cube_height / s.lift_height, 0.0, 1.0) * s.grasped
    hold = 0.5 * np.minimum(s.hold_count, s.hold_steps)
    components = {"reach": reach, "grasp": grasp, "lift": lift, "hold": hold}
    return sum(components.values()), components
