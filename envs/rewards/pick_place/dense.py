"""pick_place dense: devlog 004's first reward, which taught the arm to push the cube, not carry it.

The gripper's distance to the cube plus the cube's distance to the goal, and nothing that asks for
a grasp: sliding the cube along the table lowers the second term as well as carrying it would.

reach  -|grasp point - cube|
place  -|cube - goal|
"""
import numpy as np


def compute(s):
    components = {"reach": -np.linalg.norm(s.cube_pos - s.grasp_pos, axis=1),
                  "place": -np.linalg.norm(s.cube_pos - s.goal_pos, axis=1)}
    return sum(components.values()), components
