"""A tiny pixel task for testing DrQ-v2 fast: steer a red dot onto a green target.

Batched in numpy as a gymnasium 1.x VectorEnv with autoreset mode SAME_STEP and the project env's
pixel-observation conventions, so the trainer is exercised on the same interface as on `lift`:
  - obs: uint8 (num_envs, 3 * frame_stack, size, size), newest frame last; at reset the stack is
    filled with the first frame;
  - when env i finishes, step() returns its reset obs; the finished episode's last obs is
    infos["final_obs"][i] and its stats are in infos["final_info"] (mask infos["_final_info"]).

Task: positions in [0, 1]^2, dot and target drawn at random each episode; the action (first two of
`action_dim` components in [-1, 1]) moves the dot by up to `speed`. Reward -distance each step; the
episode terminates (success) when the dot is within `success_radius`, and is truncated after
`max_steps`. Both objects are visible, so the task needs vision, but the mapping is simple.
"""
import gymnasium as gym
import numpy as np
from gymnasium.vector import AutoresetMode


class ToyReachVecEnv(gym.vector.VectorEnv):
    metadata = {"autoreset_mode": AutoresetMode.SAME_STEP}

    def __init__(self, num_envs=4, size=32, frame_stack=3, action_dim=2, max_steps=20, speed=0.15,
                 success_radius=0.1, fixed_target=None, seed=None):
        self.num_envs = num_envs
        self.size, self.frame_stack, self.max_steps = size, frame_stack, max_steps
        self.speed, self.success_radius = speed, success_radius
        self.fixed_target = None if fixed_target is None else np.asarray(fixed_target, dtype=np.float64)
        self.single_observation_space = gym.spaces.Box(0, 255, (3 * frame_stack, size, size), np.uint8)
        self.single_action_space = gym.spaces.Box(-1.0, 1.0, (action_dim,), np.float32)
        self.observation_space = gym.vector.utils.batch_space(self.single_observation_space, num_envs)
        self.action_space = gym.vector.utils.batch_space(self.single_action_space, num_envs)
        self.rng = np.random.default_rng(seed)
        self.dot = np.zeros((num_envs, 2))
        self.target = np.zeros((num_envs, 2))
        self.t = np.zeros(num_envs, dtype=np.int64)
        self.stack = np.zeros((num_envs, frame_stack, 3, size, size), np.uint8)

    def _render(self, i):
        img = np.zeros((3, self.size, self.size), np.uint8)
        for channel, pos in ((1, self.target[i]), (0, self.dot[i])):
            r, c = np.clip(np.round(pos * (self.size - 1)).astype(int), 1, self.size - 2)
            img[channel, r - 1:r + 2, c - 1:c + 2] = 255
        return img

    def _reset_env(self, i):
        self.dot[i] = self.rng.uniform(0.05, 0.95, 2)
        self.target[i] = self.rng.uniform(0.05, 0.95, 2) if self.fixed_target is None else self.fixed_target
        while np.linalg.norm(self.dot[i] - self.target[i]) < 2 * self.success_radius:
            if self.fixed_target is None:
                self.target[i] = self.rng.uniform(0.05, 0.95, 2)
            else:
                self.dot[i] = self.rng.uniform(0.05, 0.95, 2)
        self.t[i] = 0
        self.stack[i] = self._render(i)          # the first frame fills the whole stack

    def _obs(self):
        return self.stack.reshape(self.num_envs, -1, self.size, self.size).copy()

    def reset(self, *, seed=None, options=None):
        if seed is not None:
            self.rng = np.random.default_rng(seed)
        for i in range(self.num_envs):
            self._reset_env(i)
        return self._obs(), {}

    def step(self, actions):
        actions = np.clip(np.asarray(actions, dtype=np.float64)[:, :2], -1.0, 1.0)
        self.dot = np.clip(self.dot + self.speed * actions, 0.0, 1.0)
        self.t += 1
        dist = np.linalg.norm(self.dot - self.target, axis=1)
        reward = -dist
        terminated = dist < self.success_radius
        truncated = ~terminated & (self.t >= self.max_steps)
        for i in range(self.num_envs):
            self.stack[i] = np.roll(self.stack[i], -1, axis=0)
            self.stack[i, -1] = self._render(i)
        infos = {}
        done = terminated | truncated
        if done.any():
            final_obs = np.full(self.num_envs, None, dtype=object)
            obs_before_reset = self._obs()
            for i in np.flatnonzero(done):
                final_obs[i] = obs_before_reset[i]
                self._reset_env(i)
            infos = {"final_obs": final_obs,
                     "final_info": {"success_once": terminated.astype(np.float64),
                                    "_success_once": done.copy()},
                     "_final_obs": done.copy(), "_final_info": done.copy()}
        return self._obs(), reward.astype(np.float32), terminated, truncated, infos
