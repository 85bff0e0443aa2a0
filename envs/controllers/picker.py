"""ScriptedPicker, the arm tasks' controller: a scripted top-down pick, batched,
and its sanity checks. It proves that a task is solvable and that its success test is right (the
sanity stage runs `sanity_checks` below, with the backend parity check; tests require >= 90%
success on lift); it is also the `scripted` residual base of these tasks (envs/residual.py).

Phases per env: above the cube -> down around it -> close the jaws -> lift (-> carry to the goal
for a goal-conditioned task, pick_place) -> hold. Targets come from the closed-form IK in envs/ik.py applied to the true
cube pose (privileged state), and are reached through the same delta-target actions a policy uses.
"""
import numpy as np

from envs.ik import top_down_ik
from envs.tasks.base import CUBE_HALF, GRIPPER_CLOSED, GRIPPER_OPEN

ABOVE, DESCEND, CLOSE, LIFT, CARRY = range(5)
FIXED_JAW_CLEARANCE = 0.003  # m: centre the cube slightly towards the moving jaw so the fixed jaw clears it


class ScriptedPicker:
    def __init__(self, env):
        self.env = env
        self.task = env.task
        self.phase = np.zeros(env.num_envs, dtype=int)
        self.timer = np.zeros(env.num_envs, dtype=int)
        self.lift_xy = np.zeros((env.num_envs, 2))

    def reset(self, ids=None):
        ids = np.arange(self.env.num_envs) if ids is None else ids
        self.phase[ids] = ABOVE
        self.timer[ids] = 0

    def get_state(self):
        return {k: getattr(self, k).copy() for k in ("phase", "timer", "lift_xy")}

    def set_state(self, state):
        for k, v in state.items():
            setattr(self, k, v.copy())

    def act(self):
        task, s = self.task, self.task.read_state()
        grasp_mat = task.physics.site_xmat_of(task.sites["grasp"])
        actions = np.zeros((self.env.num_envs, 6))
        for i in range(self.env.num_envs):
            cube, yaw = s.cube_pos[i], _yaw(s.cube_quat[i])
            closing_dir = grasp_mat[i][:, 1]    # from the fixed jaw towards the moving jaw
            at_cube = cube - FIXED_JAW_CLEARANCE * closing_dir
            phase = self.phase[i]
            if phase == ABOVE:
                goal, gripper = at_cube + [0, 0, 0.06], GRIPPER_OPEN
            elif phase == DESCEND:
                goal, gripper = at_cube, GRIPPER_OPEN
            elif phase == CLOSE:
                goal, gripper = at_cube, GRIPPER_CLOSED
            elif phase == LIFT:
                goal = np.array([*self.lift_xy[i], CUBE_HALF + task.cfg.lift_height + 0.03])
                gripper = GRIPPER_CLOSED
            else:  # CARRY: bring the cube (not the grasp site) to the goal
                goal, gripper = s.goal_pos[i] + (s.grasp_pos[i] - cube), GRIPPER_CLOSED
            try:
                arm = top_down_ik(goal, yaw)
            except ValueError:
                arm = task.target[i, :5]
            desired = np.array([*arm, gripper])
            actions[i] = np.clip((desired - task.target[i]) / task.cfg.action_scale, -1.0, 1.0)
            self._advance(i, s, goal, at_cube)
        return actions

    def _advance(self, i, s, goal, at_cube):
        self.timer[i] += 1
        error = np.linalg.norm(s.grasp_pos[i] - goal)
        phase, t = self.phase[i], self.timer[i]
        nxt = phase
        # Jaws already around the cube (curriculum stage 2): go down to it, not up above it first.
        around = np.linalg.norm(s.grasp_pos[i] - at_cube) < 0.01
        if phase == ABOVE and (error < 0.01 or t > 80 or around):
            nxt = DESCEND
        elif phase == DESCEND and (error < 0.005 or t > 40):
            nxt = CLOSE
        elif phase == CLOSE and ((s.grasped[i] and t > 30) or t > 45):
            nxt = LIFT
            self.lift_xy[i] = s.cube_pos[i, :2]
        elif phase == LIFT and self.task.goal_conditioned and error < 0.01:
            nxt = CARRY
        if nxt != phase:
            self.phase[i], self.timer[i] = nxt, 0


def _yaw(quat):
    w, x, y, z = quat
    return np.arctan2(2 * (w * z + x * y), 1 - 2 * (y * y + z * z))


def sanity_checks(make, run, *, backend, seed, episodes, min_success):
    """The sanity stage's checks of an arm task: the picker solves the task and measures success right
    (`scripted`); off MuJoCo, it does as well as on MuJoCo (`parity`). make(**overrides): a BatchedEnv
    of the task; run(env, episodes, seed): the final_info rows of that many episodes of the picker."""
    checks, problems = {}, []
    env = make()
    rows = run(env, episodes, seed=seed)
    env.close()
    rate = float(np.mean([r["success_once"] for r in rows]))
    checks["scripted"] = {
        "episodes": episodes, "success_rate": rate,
        "success_at_end_rate": float(np.mean([r["success_at_end"] for r in rows])),
        "mean_return": round(float(np.mean([r["return"] for r in rows])), 3),
        "mean_max_cube_z": round(float(np.mean([r["max_cube_z"] for r in rows])), 4)}
    if rate < min_success:
        problems.append(f"scripted controller succeeded in {rate:.0%} of episodes (< {min_success:.0%}): "
                        "the task is unsolvable or its success test is wrong")
    if backend != "mujoco":
        checks["parity"] = parity(make, run, rate, episodes, seed)
        if checks["parity"]["success_rate_gap"] > 0.10:
            problems.append(f"scripted success on {backend} ({rate:.0%}) and on mujoco "
                            f"({checks['parity']['mujoco_success_rate']:.0%}) differ by more than 10 points")
    return checks, problems


def parity(make, run, rate, episodes, seed, steps=100):
    """Compare this backend with MuJoCo: scripted success over the same seeded episodes, and the
    distance between the two backends' cube and gripper positions, step by step, over the first
    `steps` steps of the scripted controller from the same initial state (env 0)."""
    env_mj = make(backend="mujoco")
    rows = run(env_mj, episodes, seed=seed)
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
