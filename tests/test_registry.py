"""Every Gymnasium id this project registers: it makes with its defaults, passes Gymnasium's and
Stable-Baselines3's checkers, and trains through SB3's own vector envs and Gymnasium's wrappers."""
import inspect
import subprocess
import sys

import gymnasium
import pytest
import torch
from gymnasium.utils.env_checker import check_env as gym_check_env
from gymnasium.wrappers import RecordEpisodeStatistics
from stable_baselines3 import PPO
from stable_baselines3.common.env_checker import check_env as sb3_check_env
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.vec_env import DummyVecEnv

import envs  # registers the ids
import envs.tasks

torch.set_num_threads(1)

# The ids whose entry point is this project's code (envs.single:make_env), whoever lists them.
IDS = sorted(i for i, spec in gymnasium.registry.items() if str(spec.entry_point).startswith("envs."))


def test_the_project_registers_ids():
    assert {"SO101Lift-v0", "SO101PickPlace-v0", "SO101PickPlaceGoal-v0"} <= set(IDS)


@pytest.mark.parametrize("env_id", IDS)
def test_registered_id_makes_with_its_defaults_and_passes_the_checkers(env_id):
    """On exactly what gymnasium.make returns, as users call them (SB3's calls a goal env's
    compute_reward on it)."""
    gym_check_env(gymnasium.make(env_id), skip_render_check=True)
    sb3_check_env(gymnasium.make(env_id), warn=True)


def _policy(env_id):
    space = gymnasium.spec(env_id).kwargs.get("obs_mode", "state")
    return "MlpPolicy" if space == "state" else "MultiInputPolicy"


def _episode_steps(env_id):
    """The env's own time limit with its defaults (a truncation): TaskConfig's 200, or what the task's
    config_defaults say (paper_square: 400)."""
    from envs.tasks.base import TaskConfig
    task = envs.tasks.get_task(gymnasium.spec(env_id).kwargs["task"])
    return task.config_defaults.get("max_episode_steps", TaskConfig.max_episode_steps)


VEC_ENVS = {
    # SB3's DummyVecEnv on the bare env: SB3 reads info["episode"] as {"r", "l", "t"} when present.
    "DummyVecEnv": lambda env_id: DummyVecEnv([lambda: gymnasium.make(env_id)]),
    # Gymnasium's RecordEpisodeStatistics owns info["episode"] and refuses an env that already wrote it.
    "DummyVecEnv+RecordEpisodeStatistics": lambda env_id: DummyVecEnv(
        [lambda: RecordEpisodeStatistics(gymnasium.make(env_id))]),
    # SB3's make_vec_env: DummyVecEnv of Monitor-wrapped envs.
    "make_vec_env": lambda env_id: make_vec_env(env_id, n_envs=1, seed=0),
}


@pytest.mark.parametrize("how", list(VEC_ENVS))
@pytest.mark.parametrize("env_id", IDS)
def test_ppo_trains_on_registered_id_through_sb3_vec_envs(env_id, how):
    # Enough rollouts of 64 steps to finish exactly one episode (200 steps: 256; 400 steps: 448).
    steps = _episode_steps(env_id)
    total = 64 * (steps // 64 + 1)
    vec = VEC_ENVS[how](env_id)
    model = PPO(_policy(env_id), vec, n_steps=64, batch_size=64, n_epochs=1, seed=0, device="cpu")
    model.learn(total)
    assert model.num_timesteps == total
    if how == "DummyVecEnv":
        return      # no episode recorder in the stack: SB3 logs nothing (and must not crash)
    assert len(model.ep_info_buffer) == 1
    episode = model.ep_info_buffer[0]
    assert {"r", "l", "t"} <= set(episode) and episode["l"] == steps


# --- the task registry (envs/tasks/__init__.py) ----------------------------------------------------

def test_registered_ids_are_those_on_the_registry_lines():
    on_lines = {i for entry in envs.tasks.TASKS.values() for i in entry.gym_ids}
    assert set(IDS) == on_lines


@pytest.mark.parametrize("name", sorted(envs.tasks.TASKS))
def test_every_task_declares_the_task_interface(name):
    from envs import rewards
    from envs.settings import ENV
    from envs.tasks.base import Task
    from envs.vector import AGGREGATE
    cls = envs.tasks.get_task(name)
    assert issubclass(cls, Task) and not inspect.isabstract(cls) and cls.name == name
    assert cls.default_reward in rewards.available(name)
    assert isinstance(cls.goal_conditioned, bool)
    if cls.goal_conditioned:
        assert hasattr(rewards.get(name, cls.default_goal_reward), "goal_reward")
    assert len(cls.probe_action) == cls.action_dim and cls.cameras
    assert cls.pixel_camera is None or cls.pixel_camera in cls.cameras
    assert cls.episode_metrics and all(m.aggregate in AGGREGATE and m.label for m in cls.episode_metrics.values())
    for mode in envs.tasks.TASKS[name].gym_ids.values():
        assert mode in ENV["obs_mode"].choices and (mode != "goal" or cls.goal_conditioned)


def test_unknown_task_names_the_valid_ones():
    valid = r"\['lift', 'paper_square', 'pick_place', 'walk'\]"
    with pytest.raises(ValueError, match=r"unknown task 'lfit'; valid tasks: " + valid):
        envs.tasks.get_task("lfit")


def _imported_after(statement):
    code = f"import sys; {statement}; print(' '.join(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    return set(out.split())


@pytest.mark.parametrize("name", sorted(envs.tasks.TASKS))
def test_importing_a_task_imports_no_other_task_nor_the_learning_stack(name):
    module = envs.tasks.TASKS[name].task_class.split(":")[0]
    loaded = _imported_after(f"import {module}")
    others = {e.task_class.split(":")[0] for t, e in envs.tasks.TASKS.items() if t != name}
    assert not loaded & others
    assert not loaded & {"stable_baselines3", "torch", "genesis", "envs.backends.genesis", "envs.vector"}


def test_registering_the_gymnasium_ids_imports_no_task():
    loaded = _imported_after("import envs")
    assert not loaded & {e.task_class.split(":")[0] for e in envs.tasks.TASKS.values()}
