"""Gymnasium's and Stable-Baselines3's own checkers, and SB3 actually training through our adapter."""
import gymnasium
import numpy as np
import pytest
import torch
from gymnasium.utils.env_checker import check_env as gym_check_env
from stable_baselines3 import PPO, SAC, HerReplayBuffer
from stable_baselines3.common.env_checker import check_env as sb3_check_env

import envs

torch.set_num_threads(1)


@pytest.mark.parametrize("task,reward,obs_mode", [("lift", "v19", "state"), ("lift", "v11", "pixels"),
                                                  ("pick_place", "staged", "state+pixels"),
                                                  ("pick_place", "sparse", "goal")])
def test_gymnasium_and_sb3_checkers_pass(task, reward, obs_mode):
    env = envs.make_env(task, reward, obs_mode=obs_mode, max_episode_steps=20)
    gym_check_env(env, skip_render_check=True)
    sb3_check_env(envs.make_env(task, reward, obs_mode=obs_mode, max_episode_steps=20), warn=True)


def test_gymnasium_make_with_kwargs():
    env = gymnasium.make("SO101Lift-v0", reward="v11", curriculum_stage=2, hold_steps=4)
    env.reset(seed=0)
    env.action_space.seed(0)    # random actions knock the cube off the table now and then (a termination)
    task = env.unwrapped.task
    assert task.reward_version == "v11" and task.cfg.curriculum_stage == 2 and task.cfg.hold_steps == 4
    for _ in range(200):
        *_, terminated, truncated, info = env.step(env.action_space.sample())
    assert truncated and info["episode_stats"]["episode_len"] == 200
    goal_env = gymnasium.make("SO101PickPlaceGoal-v0", reward="sparse")
    assert set(goal_env.observation_space.spaces) == {"observation", "achieved_goal", "desired_goal"}


def test_single_env_renders_one_clean_scene():
    env = envs.make_env("lift", "v19", render_mode="rgb_array", render_size=(120, 160))
    env.reset(seed=0)
    frame = env.render()
    assert frame.shape == (120, 320, 3) and frame.std() > 5


def test_sb3_adapter_reports_whole_episodes_and_success():
    vec = envs.SB3VecEnv(envs.make_vec_env("lift", "v19", num_envs=4, max_episode_steps=50))
    vec.seed(0)
    vec.reset()
    model = PPO("MlpPolicy", vec, n_steps=32, batch_size=64, n_epochs=1, seed=0, device="cpu")
    model.learn(512)   # 4 rollouts of 32 steps per env; episodes of 50 span rollout boundaries
    assert len(model.ep_info_buffer) == 8   # 128 steps per env: two whole episodes each
    assert all(ep["l"] == 50 for ep in model.ep_info_buffer)
    assert len(model.ep_success_buffer) == len(model.ep_info_buffer)


def test_sac_with_her_trains_on_goal_env():
    vec = envs.SB3VecEnv(envs.make_vec_env("pick_place", "sparse", num_envs=2, obs_mode="goal",
                                           max_episode_steps=20))
    model = SAC("MultiInputPolicy", vec, replay_buffer_class=HerReplayBuffer, learning_starts=40,
                batch_size=32, seed=0, device="cpu",
                replay_buffer_kwargs={"n_sampled_goal": 4, "goal_selection_strategy": "future"})
    model.learn(120)
    relabelled = vec.env_method("compute_reward", np.zeros((5, 3)), np.zeros((5, 3)), None, indices=[0])[0]
    assert relabelled.shape == (5,) and (relabelled == 0).all()
    assert model.num_timesteps == 120


def test_reward_scale_changes_what_the_learner_sees_not_the_statistics():
    """ppo.reward_scale (walk learns on reward x dt): the rewards SB3 gets are scaled, the episode's
    return in final_info (Parquet, reports) stays in the reward version's units."""
    plain, scaled = (envs.SB3VecEnv(envs.make_vec_env("lift", "v19", num_envs=2, max_episode_steps=10), reward_scale=s)
                     for s in (1.0, 0.02))
    rewards, finals = {}, {}
    for name, vec in (("plain", plain), ("scaled", scaled)):
        vec.seed(0)
        vec.reset()
        got = []
        for _ in range(10):
            vec.step_async(np.full((2, 6), 0.3))
            _, r, dones, infos = vec.step_wait()
            got.append(r)
        rewards[name], finals[name] = np.array(got), [i["final_info"]["return"] for i in infos]
    assert np.abs(rewards["plain"]).max() > 0
    np.testing.assert_allclose(rewards["scaled"], 0.02 * rewards["plain"], rtol=1e-6)
    assert dones.all() and finals["scaled"] == finals["plain"]
    np.testing.assert_allclose(finals["plain"], rewards["plain"].sum(axis=0), rtol=1e-5)
