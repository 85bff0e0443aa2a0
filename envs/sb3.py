"""SB3VecEnv: a BatchedEnv as a Stable-Baselines3 VecEnv (no subprocesses, no Monitor needed).

SB3 conventions it fills in for every finished episode: infos[i]["terminal_observation"],
["TimeLimit.truncated"] (so SAC bootstraps through time limits), ["episode"] = {"r", "l", "t"}
(SB3's rollout/ep_rew_mean and ep_len_mean, now whole episodes), ["is_success"] (SB3's
success_rate; success_once, the devlog's success definition) and ["final_info"] with every
episode statistic and reward component.
"""
import time

import numpy as np
from stable_baselines3.common.vec_env import VecEnv

from envs.vector import episode_stats


class SB3VecEnv(VecEnv):
    def __init__(self, env, reward_scale=1.0):
        """reward_scale multiplies the rewards the learner sees, not the episode statistics (which
        stay in the reward version's own units): walk's PPO learns on rewards x dt, as Genesis's go2
        example does, so its value targets stay small (docs/walk.md)."""
        self.env = env
        self.reward_scale = float(reward_scale)
        self._actions = None
        self._start = time.time()
        super().__init__(env.num_envs, env.single_observation_space, env.single_action_space)

    def reset(self):
        seed = self._seeds[0]
        obs, _ = self.env.reset(seed=seed) if seed is not None else self.env.reset()
        self._reset_seeds()
        self._reset_options()
        return obs

    def step_async(self, actions):
        self._actions = actions

    def step_wait(self):
        obs, reward, terminated, truncated, infos = self.env.step(self._actions)
        dones = terminated | truncated
        out = [{} for _ in range(self.num_envs)]
        for i in np.flatnonzero(dones):
            stats = episode_stats(infos, i)
            out[i] = {"terminal_observation": infos["final_obs"][i],
                      "TimeLimit.truncated": bool(truncated[i] and not terminated[i]),
                      "episode": {"r": stats["return"], "l": stats["episode_len"],
                                  "t": round(time.time() - self._start, 6)},
                      "is_success": self.is_success(stats),
                      "final_info": stats}
        return obs, (reward * self.reward_scale).astype(np.float32), dones, out

    @staticmethod
    def is_success(stats):
        """SB3's success of an episode: the devlog's definition, success at any step."""
        return bool(stats["success_once"])

    def close(self):
        self.env.close()

    def get_attr(self, attr_name, indices=None):
        return [getattr(self.env, attr_name)] * len(self._get_indices(indices))

    def set_attr(self, attr_name, value, indices=None):
        setattr(self.env, attr_name, value)

    def env_method(self, method_name, *method_args, indices=None, **method_kwargs):
        # The batched env's methods are vectorised (compute_reward for HER): call once, share.
        result = getattr(self.env, method_name)(*method_args, **method_kwargs)
        return [result] * len(self._get_indices(indices))

    def env_is_wrapped(self, wrapper_class, indices=None):
        return [False] * len(self._get_indices(indices))
