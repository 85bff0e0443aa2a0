"""pick_place: carry the cube to a goal position (on the table or up to 8 cm above it).

obs_mode="goal" gives the goal-conditioned form Stable-Baselines3's HerReplayBuffer relabels:
observation / achieved_goal (cube position) / desired_goal, with a vectorised compute_reward
provided by reward versions that can be computed from goals alone (`sparse`).
"""
import numpy as np

from envs.tasks.base import CUBE_HALF, TabletopTask


class PickPlaceTask(TabletopTask):
    name = "pick_place"
    default_reward = "staged"
    goal_conditioned = True
    default_goal_reward = "sparse"      # obs_mode "goal": computable from goals alone, so HER can relabel
    goal_layout = [("goal_pos", 3, -1.5, 1.5), ("goal_minus_cube", 3, -3.0, 3.0)]
    show_goal = True

    def init_goal(self, rng, cube_spawn):
        # Half the goals on the table, half in the air (as in FetchPickAndPlace), at least 6 cm away
        # from the cube so that success needs a carry.
        while True:
            xy = rng.uniform([0.16, -0.1], [0.26, 0.1])
            if np.linalg.norm(xy - cube_spawn[:2]) >= 0.06:
                break
        z = CUBE_HALF + (rng.uniform(0.0, 0.08) if rng.uniform() < 0.5 else 0.0)
        return np.array([*xy, z])

    def evaluate(self, state):
        return np.linalg.norm(state.cube_pos - state.goal_pos, axis=1) < self.cfg.goal_tolerance

    def goal_observation(self, state):
        return [state.goal_pos, state.goal_pos - state.cube_pos]
