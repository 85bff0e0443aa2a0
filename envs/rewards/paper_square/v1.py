"""paper_square v1: the devlog's dense reward, per step, in the devlog's component names.

distance   -2.0 * |target - sheet centre| on the table plane (m): ~ -0.26 at the start
alignment  -0.5 * yaw error modulo 90 deg (rad, in [0, pi/4]): at most ~ -0.39
reach      -0.5 * |sheet centre - grasp site| (m): small shaping towards the sheet
success    +2.0 while the task's success test holds (centre within 2 cm, yaw within 10 deg)
lost       -200 on the step the sheet leaves the table or is lifted or flipped (the episode ends
           there): more than the other terms can cost in a whole episode, so ending early never pays
"""
import numpy as np


def compute(s):
    components = {"distance": -2.0 * s.distance,
                  "alignment": -0.5 * s.yaw_error,
                  "reach": -0.5 * np.linalg.norm(s.paper_pos - s.grasp_pos, axis=1),
                  "success": 2.0 * s.success,
                  "lost": -200.0 * s.lost}
    return sum(components.values()), components
