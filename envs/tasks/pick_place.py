"""pick_place: carry the cube to a goal position (on the table or up to 8 cm above it).

obs_mode="goal" gives the goal-conditioned form Stable-Baselines3's HerReplayBuffer relabels:
observation / achieved_goal (cube position) / desired_goal, with a vectorised compute_reward
provided by reward versions that can be computed from goals alone (`sparse`).
"""
import numpy as np

from envs.tasks.base import CUBE_HALF, Metric, TabletopTask

MOVED = 0.01       # m: the cube's centre left its spawn point by more than this on the table plane
OFF_TABLE = 0.01   # m: the cube's bottom above the table by more than this (lifted, or thrown)


class PickPlaceTask(TabletopTask):
    name = "pick_place"
    default_reward = "staged"
    goal_conditioned = True
    default_goal_reward = "sparse"      # obs_mode "goal": computable from goals alone, so HER can relabel
    goal_layout = [("goal_pos", 3, -1.5, 1.5), ("goal_minus_cube", 3, -3.0, 3.0)]
    show_goal = True
    # Pushing tells itself from lifting: an episode that moved the cube but never had it off the
    # table pushed it (devlog 004's dense reward taught exactly that).
    episode_metrics = {**TabletopTask.episode_metrics,
                       "cube_travel": Metric("max", "Cube Travel (m)", "{:.3f}"),
                       "cube_moved": Metric("last", "Cube Moved", "{:.0%}"),
                       "cube_lifted": Metric("last", "Cube Lifted", "{:.0%}"),
                       "pushed_only": Metric("last", "Pushed, Never Lifted", "{:.0%}")}
    _STATE = TabletopTask._STATE + ("max_travel", "ever_lifted")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.max_travel = np.zeros(self.num_envs)
        self.ever_lifted = np.zeros(self.num_envs, dtype=bool)

    def reset(self, env_ids, rngs):
        super().reset(env_ids, rngs)
        self.max_travel[env_ids] = 0.0
        self.ever_lifted[env_ids] = False

    def step_state(self):
        state = super().step_state()
        self.max_travel = np.maximum(self.max_travel, self.travel(state))
        self.ever_lifted |= state.cube_height > OFF_TABLE
        return state

    def travel(self, state):
        return np.linalg.norm(state.cube_pos[:, :2] - self.cube_spawn[:, :2], axis=1)

    def metric_values(self, state):
        moved = self.max_travel > MOVED
        return {**super().metric_values(state), "cube_travel": self.travel(state), "cube_moved": moved,
                "cube_lifted": self.ever_lifted.copy(), "pushed_only": moved & ~self.ever_lifted}

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
