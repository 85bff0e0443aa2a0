"""The env sanity check (the pipeline's first stage): does the env behave before anyone trains on it?

Checks, each recorded in the report with what was measured:
  spaces       reset observations lie in the observation space; actions have the documented shape
  determinism  reset(seed) twice -> identical observations; identical actions -> identical trajectory
  random       random-action rollouts: no NaN/inf, nothing outside the space bounds (explosions)
  render       the task's first and last cameras (arm: front, wrist; walk: front, side) give images
               that are not blank, and the last one changes when the robot moves
  scripted     (arm tasks) the scripted picker succeeds in >= min_success of seeded episodes (task
               solvable, success test right)
  stand        (walk) holding the default pose, no robot falls in 200 steps and the base stays
               near its standing height (the model, the PD gains and the termination agree)
  parity       (backend other than mujoco) the scripted picker on this backend and on MuJoCo from
               the same seeds: success rates within 10 points, and how far the cube and gripper
               trajectories drift apart over the first steps
Returns a JSON-able dict with "ok" and the list of "problems" in words.
"""
import time

import numpy as np

from envs.scripted import ScriptedPicker, run_scripted
from envs.tasks.base import BACKENDS
from envs.vector import BatchedEnv

DEFAULT_REWARD = {"lift": "v19", "pick_place": "staged", "walk": "v2"}
# An action that moves what the last camera sees (arm: the wrist camera swings; walk: the legs bend).
PROBE_ACTION = {"walk": np.full(12, 0.5)}
ARM_PROBE_ACTION = np.array([0.0, -1.0, 1.0, 0.0, 1.0, 0.0])


def run_sanity(task, backend="mujoco", episodes=20, seed=0, num_envs=4, random_steps=400,
               min_success=0.9, **env_kwargs):
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; valid backends: {list(BACKENDS)}")
    started = time.time()
    reward = env_kwargs.pop("reward", DEFAULT_REWARD[task] if task in DEFAULT_REWARD else "")
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
    worst, outside = 0.0, 0
    try:
        for _ in range(random_steps):
            o = env.step(rng.uniform(-1, 1, (num_envs, n_act)))[0]
            worst = max(worst, float(np.abs(o).max()))
            outside += int(((o < low) | (o > high)).any(axis=1).sum())
        finite = True
    except FloatingPointError as err:
        finite = False
        problems.append(f"random rollout: {err}")
    report["checks"]["random"] = {"steps": random_steps * num_envs, "finite": finite,
                                  "max_abs_obs": round(worst, 4), "obs_outside_bounds": outside}
    if outside:
        problems.append(f"{outside} random-rollout observations left the observation space (exploding values?)")

    # Rendering: not blank, and the last camera's view changes when the robot moves.
    env.reset(seed=seed)
    first, last = env.task.cameras[0], env.task.cameras[-1]
    front, moving0 = env.render_env(0, first, 84, 84), env.render_env(0, last, 84, 84)
    for _ in range(15):
        env.step(np.tile(PROBE_ACTION.get(task, ARM_PROBE_ACTION), (num_envs, 1)))
    moving1 = env.render_env(0, last, 84, 84)
    render = {f"{first}_std": round(float(front.std()), 2), f"{last}_std": round(float(moving0.std()), 2),
              f"{last}_change": round(float(np.abs(moving1.astype(float) - moving0).mean()), 2)}
    report["checks"]["render"] = render
    if render[f"{first}_std"] < 5 or render[f"{last}_std"] < 5:
        problems.append(f"a camera image is blank (pixel std {render})")
    if render[f"{last}_change"] < 1:
        problems.append(f"the {last} camera image does not change when the robot moves")
    env.close()

    if task == "walk":
        report["checks"]["stand"] = stand(make(max_episode_steps=200), seed)
        if report["checks"]["stand"]["fell"] or report["checks"]["stand"]["min_base_height"] < 0.2:
            problems.append(f"holding the default pose, the Go2 fell or sagged: {report['checks']['stand']}")
        return _finish(report, started)

    # The scripted controller: the task is solvable and success is measured right.
    scripted_env = make()
    rows = run_scripted(scripted_env, episodes, seed=seed)
    scripted_env.close()
    rate = float(np.mean([r["success_once"] for r in rows]))
    report["checks"]["scripted"] = {
        "episodes": episodes, "success_rate": rate,
        "success_at_end_rate": float(np.mean([r["success_at_end"] for r in rows])),
        "mean_return": round(float(np.mean([r["return"] for r in rows])), 3),
        "mean_max_cube_z": round(float(np.mean([r["max_cube_z"] for r in rows])), 4)}
    if rate < min_success:
        problems.append(f"scripted controller succeeded in {rate:.0%} of episodes (< {min_success:.0%}): "
                        "the task is unsolvable or its success test is wrong")
    if backend != "mujoco":
        report["checks"]["parity"] = parity(make, rate, episodes, seed)
        if report["checks"]["parity"]["success_rate_gap"] > 0.10:
            problems.append(f"scripted success on {backend} ({rate:.0%}) and on mujoco "
                            f"({report['checks']['parity']['mujoco_success_rate']:.0%}) differ by more than 10 points")
    return _finish(report, started)


def _finish(report, started):
    report["ok"] = not report["problems"]
    report["seconds"] = round(time.time() - started, 2)
    return report


def stand(env, seed):
    """Zero actions (joint targets at the default pose) for one 200-step episode of every env."""
    env.reset(seed=seed)
    heights = []
    for _ in range(env.cfg.max_episode_steps):
        _, _, terminated, _, infos = env.step(np.zeros((env.num_envs, env.single_action_space.shape[0])))
        heights.append(env.task.read_state().base_height.copy())
        if terminated.any():
            break
    env.close()
    heights = np.array(heights)
    return {"episodes": env.num_envs, "steps": len(heights), "fell": int(terminated.sum()),
            "mean_base_height": round(float(heights.mean()), 4), "min_base_height": round(float(heights.min()), 4)}


def parity(make, rate, episodes, seed, steps=100):
    """Compare this backend with MuJoCo: scripted success over the same seeded episodes, and the
    distance between the two backends' cube and gripper positions, step by step, over the first
    `steps` steps of the scripted controller from the same initial state (env 0)."""
    env_mj = make(backend="mujoco")
    rows = run_scripted(env_mj, episodes, seed=seed)
    env_mj.close()
    paths = {}
    for backend in ("mujoco", None):
        env = make(backend="mujoco") if backend else make()
        picker = ScriptedPicker(env)
        env.reset(seed=seed)
        picker.reset()
        cube, grip = [], []
        for _ in range(steps):
            env.step(picker.act())
            state = env.task.read_state()
            cube.append(state.cube_pos[0].copy())
            grip.append(state.grasp_pos[0].copy())
        env.close()
        paths[backend] = np.array(cube), np.array(grip)
    d_cube = np.linalg.norm(paths["mujoco"][0] - paths[None][0], axis=1)
    d_grip = np.linalg.norm(paths["mujoco"][1] - paths[None][1], axis=1)
    mj_rate = float(np.mean([r["success_once"] for r in rows]))
    return {"mujoco_success_rate": mj_rate, "success_rate": rate, "success_rate_gap": round(abs(rate - mj_rate), 4),
            "steps": steps, "cube_divergence_mean_m": round(float(d_cube.mean()), 5),
            "cube_divergence_max_m": round(float(d_cube.max()), 5),
            "gripper_divergence_mean_m": round(float(d_grip.mean()), 5),
            "gripper_divergence_max_m": round(float(d_grip.max()), 5)}
