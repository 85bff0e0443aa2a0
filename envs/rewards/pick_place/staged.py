"""pick_place staged: the five-stage reward of devlog 004, so that pushing earns nothing.

reach   -|grasp point - cube|
grasp   +1.0 while both jaws touch the cube
lift    +2.0 + 10 * cube height while grasped and off the table (> 1 cm)
place   -2 * |cube - goal| only while lifted (pushing the cube towards the goal is not rewarded)
success +10 while the cube is within the goal tolerance
"""
import numpy as np


def compute(s):
    lifted = s.grasped & (s.cube_height > 0.01)
    components = {
        "reach": -np.linalg.norm(s.cube_pos - s.grasp_pos, axis=1),
        "grasp": 1.0 * s.grasped,
        "lift": np.where(lifted, 2.0 + 10.0 * s.cube_height, 0.0),
        "place": np.where(lifted, -2.0 * np.linalg.norm(s.cube_pos - s.goal_pos, axis=1), 0.0),
        "success": 10.0 * s.success,
    }
    return sum(components.values()), components
