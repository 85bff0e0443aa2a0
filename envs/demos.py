"""Demonstrations: a scripted controller (envs/controllers/) run for whole episodes, each recorded
step by step: observations, actions as the env applied them, the step state its reward would be
computed from, and success.

    episodes = record("lift", "picker", episodes=100, seed=0, curriculum_stage=1)

Rules:
- Episode k starts from reset seed `seed + k` (its cube pose and randomisation), whichever env of
  the batch runs it. The batch size is fixed (MAX_ENVS, or fewer episodes), so the same arguments
  record the same bytes: a MuJoCo env carries solver warm starts from one episode into the next, so
  another batch size changes later episodes by ~1e-15.
- The env has no reward version (NO_REWARD): the step states let any reward version score the
  episodes afterwards (pipeline/run/relabel.py), so editing a reward never reruns the controller.
- A step state (StepState, PaperState, WalkState) is split into the fields that hold one row per
  env, recorded per step, and the rest (lift_height, hold_steps; walk's default_dof_pos), recorded
  once. A batch has at most MAX_ENVS envs, fewer than any constant array's length, so the two never mix.
- Failed episodes are kept, with the env's own final_info (success_once False) for them.
- For a task that can start episodes from recorded states (Task.restorable: lift, pick_place),
  each step also keeps the task's snapshot (Task.snapshot: configuration, actuator targets, what the
  task counts across steps), which reverse-curriculum starts restore (envs/reverse.py).
"""
from __future__ import annotations

import dataclasses

import numpy as np

from envs import controllers
from envs.tasks.base import NO_REWARD
from envs.vector import BatchedEnv, episode_stats

MAX_ENVS = 8


@dataclasses.dataclass
class Episode:
    """One recorded episode. Per-step lists have T + 1 entries (index 0: after reset), actions T."""
    seed: int
    state_obs: list
    frames: list | None           # (H, W, 3) uint8 wrist-camera images, where recorded
    actions: list                 # (action_dim,) float64, clipped to [-1, 1]: what the env applied
    rewards: list                 # what the env paid per step (0 without a reward version)
    states: dict                  # step-state field -> list of per-step rows
    success: list                 # the task's success test at each step
    starts: dict = dataclasses.field(default_factory=dict)   # snapshot field -> per-step rows (restorable tasks)
    terminated: bool = False
    truncated: bool = False
    stats: dict = dataclasses.field(default_factory=dict)   # the env's final_info for this episode


def state_rows(state, n: int) -> tuple[dict, dict]:
    """(per-env fields, constants) of a batched step state of n envs, as plain arrays."""
    per_env, constants = {}, {}
    for f in dataclasses.fields(state):
        value = getattr(state, f.name)
        if isinstance(value, np.ndarray) and value.ndim >= 1 and value.shape[0] == n:
            per_env[f.name] = value
        else:
            constants[f.name] = value.tolist() if isinstance(value, np.ndarray) else value
    return per_env, constants


@dataclasses.dataclass
class Recording:
    episodes: list[Episode]       # in order: episode k started from reset seed `seed + k`
    state_type: str               # "module:Class" of the task's step state
    constants: dict               # the step state's fields that are not per env
    state_space: object           # gymnasium Box of the state observation
    action_space: object          # gymnasium Box of the actions, [-1, 1]^action_dim


def record(task: str, controller: str, episodes: int, seed: int, pixels: bool = False,
           num_envs: int = MAX_ENVS, reward: str = NO_REWARD, **env_settings) -> Recording:
    """Run `controller` for `episodes` whole episodes of `task` (env settings as make_vec_env takes
    them; with pixels, the wrist camera's frames too). The demos stage runs no reward version; a
    test passes one to see that relabelling pays what the env pays."""
    n = max(1, min(num_envs, MAX_ENVS, episodes))
    settings = {**env_settings, "obs_mode": "state+pixels" if pixels else "state", "frame_stack": 1,
                "curriculum_from": -1}
    env = BatchedEnv(task=task, reward=reward, num_envs=n, autoreset=False, **settings)
    latest = _record_step_states(env.task)
    act = controllers.get(controller)(env)
    running = [None] * n        # the episode each env runs (None: a spare one, not recorded)
    recorded, started = {}, 0

    def observe(obs, i):
        state = obs["state"] if pixels else obs
        return state[i].copy(), (obs["pixels"][i].transpose(1, 2, 0).copy() if pixels else None)

    def add_step(ep, obs, rows, starts, i):
        state_obs, frame = observe(obs, i)
        ep.state_obs.append(state_obs)
        if pixels:
            ep.frames.append(frame)
        for name, values in rows.items():
            ep.states.setdefault(name, []).append(np.array(values[i]))
        ep.success.append(bool(rows["success"][i]))
        for name, values in starts.items():
            ep.starts.setdefault(name, []).append(np.array(values[i]))

    def start(ids):
        nonlocal started
        seeds = [0] * n
        for i in ids:
            running[i] = started if started < episodes else None
            seeds[i] = seed + started
            started += 1
        obs, _ = env.reset(seed=seeds, options={"reset_mask": np.isin(np.arange(n), ids)})
        act.reset(np.asarray(ids))
        rows, _ = state_rows(env.task.read_state(), n)
        starts = snapshot(env.task)
        for i in ids:
            if running[i] is not None:
                recorded[running[i]] = Episode(seed=seeds[i], state_obs=[], frames=[] if pixels else None,
                                               actions=[], rewards=[], states={}, success=[])
                add_step(recorded[running[i]], obs, rows, starts, i)

    start(list(range(n)))
    finished = 0
    while finished < episodes:
        actions = np.clip(np.asarray(act.act(), dtype=np.float64), -1.0, 1.0)
        obs, rewards, terminated, truncated, infos = env.step(actions)
        rows, _ = state_rows(latest[0], n)
        starts = snapshot(env.task)
        done = np.flatnonzero(terminated | truncated)
        for i, k in enumerate(running):
            if k is None:
                continue
            ep = recorded[k]
            ep.actions.append(actions[i].copy())
            ep.rewards.append(float(rewards[i]))
            add_step(ep, obs, rows, starts, i)
            if i in done:
                ep.terminated, ep.truncated = bool(terminated[i]), bool(truncated[i])
                ep.stats = episode_stats(infos, i)
                finished += 1
        if len(done):
            start(list(done))
    _, constants = state_rows(latest[0], n)
    kind = type(latest[0])
    space = env.single_observation_space
    env.close()
    return Recording([recorded[k] for k in range(episodes)], f"{kind.__module__}:{kind.__qualname__}", constants,
                     space["state"] if pixels else space, env.single_action_space)


def snapshot(task) -> dict:
    """What restoring each env's current step needs (Task.snapshot), for a task that can; else {}."""
    return task.snapshot() if task.restorable else {}


def _record_step_states(task) -> list:
    """A one-item list that always holds the step state of the env's latest step: the very state
    the env computes the step's reward, termination and success from."""
    latest = [None]
    step_state = task.step_state

    def recording():
        latest[0] = step_state()
        return latest[0]
    task.step_state = recording
    return latest


def serves(controller: str, task: str) -> bool:
    """Whether `controller` is a controller of `task` (envs/controllers: TASK_CONTROLLERS)."""
    return controllers.TASK_CONTROLLERS.get(task) == controller
