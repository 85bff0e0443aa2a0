"""pick_place sparse: -1 until the cube is within the goal tolerance, then 0 (for HER, devlog 004).

The reward depends on the goals only, so HerReplayBuffer can recompute it for relabelled goals
through goal_reward. Success here uses the same test as the task (distance < goal_tolerance).
"""
import numpy as np


def goal_reward(achieved_goal, desired_goal, tolerance):
    distance = np.linalg.norm(np.asarray(achieved_goal) - np.asarray(desired_goal), axis=-1)
    return -(distance >= tolerance).astype(np.float64)


def compute(s):
    components = {"sparse": -(~s.success).astype(np.float64)}
    return components["sparse"], components
