"""SingleEnv: one env as a plain gymnasium.Env, for evaluation episodes, videos and gymnasium.make.

It is a BatchedEnv of one env without autoreset, so it runs exactly the same task, physics and
reward code as training, and a finished episode stays on screen until reset() (a video ends on the
episode's real last frame). Being its own world, it renders one arm and one cube (devlog 000's
video of 16 cubes cannot happen).

A finished episode's statistics (the vector env's final_info for it: return, episode_len, success,
the task's metrics, reward components) are in info["episode_stats"]. info["episode"] is left to the
ecosystem's recorders, which write {"r", "l", "t"} there: Gymnasium's RecordEpisodeStatistics (which
refuses an env that wrote it) and Stable-Baselines3's Monitor (whose ep_info_buffer reads it).

Through gymnasium.make, which returns the env itself (no wrapper: envs/__init__.py), every env setting
is a keyword argument except max_episode_steps, which Gymnasium keeps for its own TimeLimit wrapper
(around the env, so a GoalEnv's compute_reward is then on .unwrapped); the env's time limit (where it
reports the episode's statistics) is then the task's default (200; paper_square's config_defaults:
400). Use make_env(..., max_episode_steps=n). The reward defaults to the task's default for the
obs_mode (Task.default_reward_for).
"""
import gymnasium
import numpy as np

from envs.vector import BatchedEnv, episode_stats


class SingleEnv(gymnasium.Env):
    metadata = {"render_modes": ["rgb_array"], "render_fps": 50}

    def __init__(self, task="lift", reward=None, render_mode=None, render_size=(240, 320), **env_kwargs):
        self.vec = BatchedEnv(task=task, reward=reward, num_envs=1, autoreset=False, render_sizes=[render_size],
                              **env_kwargs)
        self.observation_space = self.vec.single_observation_space
        self.action_space = self.vec.single_action_space
        self.render_mode = render_mode
        self.render_size = tuple(render_size)
        self.metadata = {**self.metadata, "render_fps": self.vec.cfg.control_hz}

    @property
    def task(self):
        return self.vec.task

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        obs, _ = self.vec.reset(seed=seed, options=options)
        return _first(obs), {}

    def step(self, action):
        action = np.asarray(action)
        if action.shape != self.action_space.shape:
            raise ValueError(f"action must have shape {self.action_space.shape} ({self.task.action_help}), "
                             f"got {action.shape}")
        obs, reward, terminated, truncated, infos = self.vec.step(action[None])
        info = {"is_success": bool(infos["success"][0])}
        if "final_info" in infos:   # the episode's statistics, as the vector env reports them
            info["episode_stats"] = episode_stats(infos, 0)
        return _first(obs), float(reward[0]), bool(terminated[0]), bool(truncated[0]), info

    def render_frames(self):
        """{camera: HxWx3 uint8} images of the current state from the task's cameras (arm: front, wrist)."""
        h, w = self.render_size
        return {cam: self.vec.render_env(0, cam, h, w) for cam in self.task.cameras}

    def render(self):
        if self.render_mode == "rgb_array":
            return np.concatenate(list(self.render_frames().values()), axis=1)
        return None

    def close(self):
        self.vec.close()


class GoalEnv(SingleEnv):
    """obs_mode="goal": the goal-conditioned form (a compute_reward is what marks a GoalEnv to SB3)."""

    def compute_reward(self, achieved_goal, desired_goal, info):
        return self.vec.compute_reward(achieved_goal, desired_goal, info)


def _first(obs):
    return {k: v[0] for k, v in obs.items()} if isinstance(obs, dict) else obs[0]


def make_env(task="lift", reward=None, **kwargs):
    """One env of `task` (reward None: the task's default for the obs_mode); GoalEnv for obs_mode "goal"."""
    cls = GoalEnv if kwargs.get("obs_mode") == "goal" else SingleEnv
    return cls(task=task, reward=reward, **kwargs)
