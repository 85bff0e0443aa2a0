"""lift v11: the dense reward tuned for state-based SAC (devlog 001).

reach  1 - tanh(10 * |grasp point - cube|)
grasp  0.25 while both jaws touch the cube
lift   2.0 * min(cube height / lift_height, 1) while grasped
"""
import numpy as np


def compute(s):
    reach = 1.0 - np.tanh(10.0 * np.linalg.norm(s.cube_pos - s.grasp_pos, axis=1))
    grasp = 0.25 * s.grasped
    lift = 2.0 * np.clip(s.cube_height / s.lift_height, 0.0, 1.0) * s.grasped
    components = {"reach": reach, "grasp": grasp, "lift": lift}
    return sum(components.values()), components
