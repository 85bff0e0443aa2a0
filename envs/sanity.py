"""The env sanity check (the pipeline's first stage): does the env behave before anyone trains on it?

Generic checks, each recorded in the report with what was measured:
  spaces       reset observations lie in the observation space; actions have the documented shape
  determinism  reset(seed) twice -> identical observations; identical actions -> identical trajectory
  random       random-action rollouts: no NaN/inf, nothing outside the space bounds (explosions)
  render       the task's first and last cameras give images that are not blank, and the last one
               changes under the task's probe_action
then the task's own, from its controller's module (envs/controllers/, TASK_CONTROLLERS): arm tasks,
`scripted` (the scripted picker succeeds in >= min_success of seeded episodes) and, on a backend
other than MuJoCo, `parity` (the same picker on MuJoCo from the same seeds: picker.py);
paper_square, `scripted` (the dragger moves the sheet: dragger.py); walk, `stand` (stand.py).
Returns a JSON-able dict with "ok" and the list of "problems" in words.
"""
import time

import numpy as np

from envs import controllers
from envs.backends import BACKENDS
from envs.tasks import get_task
from envs.tasks.base import NO_REWARD
from envs.vector import BatchedEnv, episode_stats


def run_scripted(env, episodes, seed=0):
    """Run the task's controller (envs/controllers/) for `episodes` episodes on a BatchedEnv; returns
    their final_info rows."""
    controller = controllers.make(env)
    env.reset(seed=seed)
    controller.reset()
    rows = []
    while len(rows) < episodes:
        _, _, _, _, infos = env.step(controller.act())
        if "final_info" in infos:
            done = np.flatnonzero(infos["_final_info"])
            rows += [episode_stats(infos, i) for i in done]
            controller.reset(done)
    return rows[:episodes]


def run_sanity(task, backend="mujoco", episodes=20, seed=0, num_envs=4, random_steps=400,
               min_success=0.9, **env_kwargs):
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; valid backends: {list(BACKENDS)}")
    started = time.time()
    task_class = get_task(task)
    # The task and physics are checked, not a reward version: a reward's edits never rerun sanity.
    reward = env_kwargs.pop("reward", NO_REWARD)
    report = {"task": task, "backend": backend, "checks": {}, "problems": []}
    problems = report["problems"]

    def make(**overrides):
        return BatchedEnv(task=task, reward=reward, num_envs=num_envs, **{**env_kwargs, "backend": backend, **overrides})

    env = make(render_sizes=[(84, 84)])
    n_act = env.single_action_space.shape[0]
    obs, _ = env.reset(seed=seed)
    in_space = bool(all(env.single_observation_space.contains(o) for o in obs))
    report["checks"]["spaces"] = {"obs_shape": list(env.single_observation_space.shape),
                                  "action_shape": list(env.single_action_space.shape), "reset_obs_in_space": in_space}
    if not in_space:
        problems.append("a reset observation lies outside the observation space")

    # Determinism: the same seed and actions give the same trajectory, bit for bit.
    rng = np.random.default_rng(seed)
    actions = rng.uniform(-1, 1, (50, num_envs, n_act))
    trajectories = []
    for _ in range(2):
        o, _ = env.reset(seed=seed)
        steps = [o]
        for a in actions:
            steps.append(env.step(a)[0])
        trajectories.append(np.stack(steps))
    deterministic = bool(np.array_equal(trajectories[0], trajectories[1]))
    report["checks"]["determinism"] = {"steps": len(actions), "identical": deterministic}
    if not deterministic:
        problems.append("two rollouts with the same seed and actions differ")

    # Random actions: values stay finite and inside the bounds.
    env.reset(seed=seed + 1)
    low, high = env.single_observation_space.low, env.single_observation_space.high
    worst, outside, blowups = 0.0, 0, 0
    try:
        for _ in range(random_steps):
            o, _, _, _, infos = env.step(rng.uniform(-1, 1, (num_envs, n_act)))
            worst = max(worst, float(np.abs(o).max()))
            outside += int(((o < low) | (o > high)).any(axis=1).sum())
            if "final_info" in infos:      # training survives a blow-up (envs/vector.py); the check does not
                blowups += int((infos["final_info"]["unstable"] & infos["_final_info"]).sum())
        finite = True
    except FloatingPointError as err:
        finite = False
        problems.append(f"random rollout: {err}")
    report["checks"]["random"] = {"steps": random_steps * num_envs, "finite": finite, "blowups": blowups,
                                  "max_abs_obs": round(worst, 4), "obs_outside_bounds": outside}
    if outside:
        problems.append(f"{outside} random-rollout observations left the observation space (exploding values?)")
    if blowups:
        problems.append(f"{blowups} random-rollout episodes ended in a simulation blow-up (unstable contacts?)")

    # Rendering: not blank, and the last camera's view changes when the robot moves.
    env.reset(seed=seed)
    first, last = env.task.cameras[0], env.task.cameras[-1]
    front, moving0 = env.render_env(0, first, 84, 84), env.render_env(0, last, 84, 84)
    for _ in range(15):
        env.step(np.tile(np.asarray(task_class.probe_action, dtype=float), (num_envs, 1)))
    moving1 = env.render_env(0, last, 84, 84)
    render = {f"{first}_std": round(float(front.std()), 2), f"{last}_std": round(float(moving0.std()), 2),
              f"{last}_change": round(float(np.abs(moving1.astype(float) - moving0).mean()), 2)}
    report["checks"]["render"] = render
    if render[f"{first}_std"] < 5 or render[f"{last}_std"] < 5:
        problems.append(f"a camera image is blank (pixel std {render})")
    if render[f"{last}_change"] < 1:
        problems.append(f"the {last} camera image does not change when the robot moves")
    env.close()

    controller = controllers.controller_of(task)
    if controller is not None:
        checks, task_problems = controllers.sanity_checks(controller)(
            make, run_scripted, backend=backend, seed=seed, episodes=episodes, min_success=min_success)
        report["checks"].update(checks)
        problems.extend(task_problems)
    report["ok"] = not problems
    report["seconds"] = round(time.time() - started, 2)
    return report
