"""pick_place staged_v2: devlog 004's staged reward with its lift term no longer paying against the goal.

In `staged` a held cube earns 2 + 10 * height per step and carrying it to the goal at most
2 * (distance covered): holding the cube high pays more than placing it, and a goal on the table
(half of them) costs the whole lift term to reach. Here the lift term is flat and the place term five
times stronger, so a held cube earns more the nearer it is to the goal, whatever the goal's height.

reach   -|grasp point - cube|
grasp   +1.0 while both jaws touch the cube
lift    +2.0 while grasped and off the table (> 1 cm)
place   -10 * |cube - goal| while grasped (pushing the cube towards the goal is not rewarded)
success +10 while the cube is within the goal tolerance
"""
import numpy as np


def compute(s):
    lifted = s.grasped & (s.cube_height > 0.01)
    components = {
        "reach": -np.linalg.norm(s.cube_pos - s.grasp_pos, axis=1),
        "grasp": 1.0 * s.grasped,
        "lift": 2.0 * lifted,
        "place": np.where(s.grasped, -10.0 * np.linalg.norm(s.cube_pos - s.goal_pos, axis=1), 0.0),
        "success": 10.0 * s.success,
    }
    return sum(components.values()), components
