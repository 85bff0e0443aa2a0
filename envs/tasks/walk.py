"""WalkEnv: N Unitree Go2 quadrupeds in one batched Genesis scene, as a Gymnasium 1.x VectorEnv.

The walking task of devlog 002: track a commanded base velocity (default 0.5 m/s forward, lateral
and yaw 0) with 12 joint position targets around the default standing pose. Rewards are versioned
modules, envs/rewards/walk/<version>.py (v1: the devlog's first reward, which taught the robot to
lie down and crawl; v2: its redesign). See docs/walk.md.

Autoreset mode SAME_STEP, exactly as envs/vector.py's BatchedEnv: the step that ends env i's
episode returns env i's *reset* observation; the episode's last observation is
infos["final_obs"][i] and its statistics are in infos["final_info"] (Gymnasium's masked-dict
format: final_info["return"][i] is valid where infos["_final_info"][i]).

What this file guarantees (tests/test_walk.py):
- Episode statistics live here, per env, and are reset only when that env's episode ends: an
  episode is reported whole (return, episode_len, mean_forward_vel, distance_x, mean_base_height,
  fell, reward/<component>), however the training loop slices its rollouts (devlog 000's bug).
- Resetting env i writes env i's state only (set_qpos / control targets with envs_idx=[i];
  nothing is stepped): the other envs stay bit-identical (devlog 000's second bug).
- Non-finite observations, rewards or physics states raise FloatingPointError naming the env and
  the episode step; wrong action shapes and NaN actions raise ValueError.
- get_state()/set_state(): every env's Genesis state (qpos, dof velocities, PD targets) plus all
  bookkeeping (per-env generators, step counters, statistics, last actions, observations). Genesis
  keeps no solver warm start we can save, so a restore is exact only as far as Genesis's step is a
  function of (qpos, qvel, targets); see docs/walk.md for the measured difference.

Settings (constructor keywords, documented defaults):
- Control at 50 Hz: one rigid step of 0.02 s per control step (Newton solver), which is what Genesis's
  go2 example runs (its RigidOptions dt=0.02); `substeps` splits it if wanted.
- Action: 12 values in [-1, 1]; joint target = default pose + action_scale * action (0.25 rad, the
  example's scale), PD gains kp 20, kd 0.5 on every joint.
- Observation (45 float32): base angular velocity in the body frame (x0.25), projected gravity (3),
  command (vx, vy x2, yaw rate x0.25), joint pos - default (12), joint vel (x0.05, 12), last action (12).
- Time limit: max_episode_steps = 1000 (20 s at 50 Hz), a truncation.
- Termination: base height below the reward version's TERMINATION_HEIGHT (0.12 m; during the first
  GRACE_STEPS steps, GRACE_HEIGHT instead: v2 uses 20 steps at 0.08 m as in the devlog, v1 none), or
  the body tilted more than 60 degrees (up axis' world z below FLIP_COS = 0.5).
- Reset: default pose, base at INIT_HEIGHT (the settled standing height + 5 mm, the devlog's
  "grounding safety margin"), joints +- init_noise rad (uniform, per-env generator).
"""
import copy
import dataclasses

import numpy as np
from gymnasium import spaces
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from envs import rewards
from envs.backends.genesis import quat_to_mat
from envs.vector import envs_to_reset

# Genesis's go2 example order (legs FR, FL, RR, RL; hip, thigh, calf).
JOINT_NAMES = ("FR_hip_joint", "FR_thigh_joint", "FR_calf_joint",
               "FL_hip_joint", "FL_thigh_joint", "FL_calf_joint",
               "RR_hip_joint", "RR_thigh_joint", "RR_calf_joint",
               "RL_hip_joint", "RL_thigh_joint", "RL_calf_joint")
DEFAULT_POSE = np.array([0.0, 0.8, -1.5, 0.0, 0.8, -1.5, 0.0, 1.0, -1.5, 0.0, 1.0, -1.5])
CALF = np.array([2, 5, 8, 11])
THIGH = np.array([1, 4, 7, 10])
INIT_HEIGHT = 0.28        # m, base height at reset: settled height at the default pose (~0.275 m) + 5 mm
FLIP_COS = 0.5            # terminate when the body's up axis has world z below this (tilt > 60 deg)
OBS_SCALES = {"ang_vel": 0.25, "lin_vel": 2.0, "dof_vel": 0.05}
EPISODE_STATS = ("return", "episode_len", "mean_forward_vel", "distance_x", "mean_base_height", "fell")


def _np(t):
    return t.detach().cpu().numpy() if hasattr(t, "detach") else np.asarray(t)


@dataclasses.dataclass
class WalkState:
    """What a walk reward sees; arrays have the env index first (N, ...)."""
    base_pos: np.ndarray          # (N, 3) world
    base_quat: np.ndarray         # (N, 4) wxyz
    lin_vel: np.ndarray           # (N, 3) base linear velocity, body frame
    ang_vel: np.ndarray           # (N, 3) base angular velocity, body frame
    world_lin_vel: np.ndarray     # (N, 3)
    projected_gravity: np.ndarray  # (N, 3) gravity direction in the body frame ((0, 0, -1) upright)
    dof_pos: np.ndarray           # (N, 12) in JOINT_NAMES order
    dof_vel: np.ndarray           # (N, 12)
    default_dof_pos: np.ndarray   # (12,)
    action: np.ndarray            # (N, 12) this step's action (clipped)
    last_action: np.ndarray       # (N, 12) the previous step's
    command: np.ndarray           # (N, 3) vx, vy (body frame, m/s), yaw rate (rad/s)
    step: np.ndarray              # (N,) episode step (1 after the first step)

    @property
    def base_height(self):
        return self.base_pos[:, 2]


class WalkEnv(VectorEnv):
    metadata = {"autoreset_mode": AutoresetMode.SAME_STEP, "render_modes": []}

    def __init__(self, reward="v2", num_envs=1, seed=None, autoreset=True, max_episode_steps=1000,
                 command=(0.5, 0.0, 0.0), action_scale=0.25, kp=20.0, kd=0.5, init_noise=0.05,
                 control_dt=0.02, substeps=1):
        from envs.backends.genesis import _init_genesis
        gs = _init_genesis()            # one gs.init per process, shared with the lift backend (gs.cpu, fp64)
        self.task_name, self.reward_version = "walk", reward
        self.reward_fn = rewards.get("walk", reward)
        self.num_envs = num_envs
        self.autoreset = autoreset
        self.max_episode_steps = int(max_episode_steps)
        self.action_scale = float(action_scale)
        self.init_noise = float(init_noise)
        self.termination_height = float(getattr(self.reward_fn, "TERMINATION_HEIGHT", 0.12))
        self.grace_steps = int(getattr(self.reward_fn, "GRACE_STEPS", 0))
        self.grace_height = float(getattr(self.reward_fn, "GRACE_HEIGHT", self.termination_height))

        self.scene = gs.Scene(
            sim_options=gs.options.SimOptions(dt=control_dt, substeps=substeps),
            rigid_options=gs.options.RigidOptions(
                constraint_solver=gs.constraint_solver.Newton, enable_collision=True,
                enable_joint_limit=True, enable_self_collision=False, max_collision_pairs=30),
            vis_options=gs.options.VisOptions(rendered_envs_idx=[0]),
            show_viewer=False)
        self.scene.add_entity(gs.morphs.Plane())
        self.robot = self.scene.add_entity(gs.morphs.URDF(file="urdf/go2/urdf/go2.urdf",
                                                          pos=(0.0, 0.0, INIT_HEIGHT), quat=(1.0, 0.0, 0.0, 0.0)))
        self.scene.build(n_envs=num_envs)
        r = self.robot
        self._dofs = np.array([int(np.ravel(r.get_joint(n).dofs_idx_local)[0]) for n in JOINT_NAMES])
        self._qs = np.array([int(np.ravel(r.get_joint(n).qs_idx_local)[0]) for n in JOINT_NAMES])
        self._nq = r.n_qs
        r.set_dofs_kp(np.full(12, kp), self._dofs)
        r.set_dofs_kv(np.full(12, kd), self._dofs)
        self.default_dof_pos = DEFAULT_POSE.copy()

        self.single_action_space = spaces.Box(-1.0, 1.0, (12,), dtype=np.float32)
        self.single_observation_space = spaces.Box(-np.inf, np.inf, (45,), dtype=np.float32)
        self.action_space = batch_space(self.single_action_space, num_envs)
        self.observation_space = batch_space(self.single_observation_space, num_envs)
        self.render_mode = None

        self._rngs = [np.random.default_rng(None if seed is None else seed + i) for i in range(num_envs)]
        self.command = np.tile(np.asarray(command, dtype=np.float64), (num_envs, 1))
        self._targets = np.tile(self.default_dof_pos, (num_envs, 1))
        self._elapsed = np.zeros(num_envs, dtype=np.int64)
        self._last_action = np.zeros((num_envs, 12))
        self._x0 = np.zeros(num_envs)
        self._stats, self._components = {}, {}
        self._clear_stats(np.arange(num_envs))
        self._done = np.zeros(num_envs, dtype=bool)
        self._obs = np.zeros((num_envs, 45), dtype=np.float32)
        self._needs_reset = True

    # --- physics reads/writes -------------------------------------------------------------------
    def read_state(self, action=None):
        """The current WalkState of every env (reads Genesis; steps nothing)."""
        r = self.robot
        pos, quat = _np(r.get_pos()).reshape(-1, 3), _np(r.get_quat()).reshape(-1, 4)
        vel, ang = _np(r.get_vel()).reshape(-1, 3), _np(r.get_ang()).reshape(-1, 4 - 1)
        rot_t = np.swapaxes(quat_to_mat(quat), -1, -2)      # world -> body
        body = lambda v: np.einsum("nij,nj->ni", rot_t, v)  # noqa: E731
        grav = np.broadcast_to(np.array([0.0, 0.0, -1.0]), vel.shape)
        return WalkState(
            base_pos=pos, base_quat=quat, lin_vel=body(vel), ang_vel=body(ang), world_lin_vel=vel,
            projected_gravity=body(grav),
            dof_pos=_np(r.get_dofs_position(self._dofs)).reshape(-1, 12),
            dof_vel=_np(r.get_dofs_velocity(self._dofs)).reshape(-1, 12),
            default_dof_pos=self.default_dof_pos,
            action=self._last_action.copy() if action is None else action,
            last_action=self._last_action.copy(), command=self.command.copy(), step=self._elapsed.copy())

    def place(self, ids, base_pos, base_quat=(1.0, 0.0, 0.0, 0.0), dof_pos=None):
        """Write envs `ids` at rest in a pose (base position, quaternion wxyz, 12 joint angles in JOINT_NAMES
        order; default pose if None) with PD targets at those angles. Nothing is stepped; other envs untouched."""
        ids = np.atleast_1d(np.asarray(ids, dtype=np.int64))
        if not len(ids):
            return
        dof_pos = np.broadcast_to(self.default_dof_pos if dof_pos is None else np.asarray(dof_pos, float),
                                  (len(ids), 12))
        q = np.zeros((len(ids), self._nq))
        q[:, :3] = np.broadcast_to(np.asarray(base_pos, float), (len(ids), 3))
        q[:, 3:7] = np.broadcast_to(np.asarray(base_quat, float), (len(ids), 4))
        q[:, self._qs] = dof_pos
        self.robot.set_qpos(q, envs_idx=ids.tolist(), zero_velocity=True)
        self._targets[ids] = dof_pos
        self.robot.control_dofs_position(self._targets[ids], self._dofs, envs_idx=ids.tolist())

    def _reset_envs(self, ids):
        if not len(ids):
            return
        joints = np.stack([self.default_dof_pos + self._rngs[i].uniform(-self.init_noise, self.init_noise, 12)
                           for i in ids])
        self.place(ids, (0.0, 0.0, INIT_HEIGHT), dof_pos=joints)
        self._elapsed[ids] = 0
        self._last_action[ids] = 0.0
        self._x0[ids] = 0.0
        self._done[ids] = False
        self._clear_stats(ids)

    # --- reset ----------------------------------------------------------------------------------
    def reset(self, *, seed=None, options=None):
        """Reset all envs, or only those in options["reset_mask"] (the others are untouched).
        seed: an int (env i gets seed + i, as in Gymnasium) or a list of per-env seeds."""
        ids = envs_to_reset(self, seed, options)
        self._reset_envs(ids)
        self._observe(self.read_state(), ids)
        self._needs_reset = False
        return self._obs.copy(), {}

    # --- step -----------------------------------------------------------------------------------
    def step(self, actions):
        if self._needs_reset:
            raise RuntimeError("call reset() before step()")
        actions = self._check_actions(actions)
        if not self.autoreset and self._done.any():
            raise RuntimeError(f"env(s) {np.flatnonzero(self._done).tolist()} finished; call reset() first")
        self._targets[:] = self.default_dof_pos + self.action_scale * actions
        self.robot.control_dofs_position(self._targets, self._dofs)
        self.scene.step()
        self._elapsed += 1
        state = self.read_state(action=actions)
        self._check_finite("physics state", np.concatenate(
            [state.base_pos, state.base_quat, state.world_lin_vel, state.dof_pos, state.dof_vel], axis=1))
        reward, components = self.reward_fn.compute(state)
        reward = np.asarray(reward, dtype=np.float64)
        self._check_finite("reward", reward)
        terminated = self.terminated(state)
        truncated = (self._elapsed >= self.max_episode_steps) & ~terminated
        self._last_action[:] = actions
        self._update_stats(state, reward, components)
        all_ids = np.arange(self.num_envs)
        self._observe(state, all_ids)
        infos = {}
        done = terminated | truncated
        if done.any():
            ids = np.flatnonzero(done)
            self._stats["fell"][ids] = terminated[ids]
            infos.update(self._final_infos(ids, done))
            if self.autoreset:
                self._reset_envs(ids)
                self._observe(self.read_state(), ids)
            else:
                self._done |= done
        return self._obs.copy(), reward, terminated, truncated, infos

    def terminated(self, s):
        min_h = np.where(s.step <= self.grace_steps, self.grace_height, self.termination_height)
        up_z = -s.projected_gravity[:, 2]          # world z of the body's up axis
        return (s.base_height < min_h) | (up_z < FLIP_COS)

    def _check_actions(self, actions):
        actions = np.asarray(actions, dtype=np.float64)
        if actions.shape != (self.num_envs, 12):
            raise ValueError(f"actions must have shape ({self.num_envs}, 12) (num_envs, joints {JOINT_NAMES}), "
                             f"got {actions.shape}")
        bad = ~np.isfinite(actions).all(axis=1)
        if bad.any():
            raise ValueError(f"non-finite action for env(s) {np.flatnonzero(bad).tolist()}: "
                             f"{actions[bad][0].tolist()}")
        return np.clip(actions, -1.0, 1.0)

    def _check_finite(self, what, values):
        flat = np.asarray(values).reshape(self.num_envs, -1)
        bad = ~np.isfinite(flat).all(axis=1)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise FloatingPointError(f"non-finite {what} in env {i} at episode step {self._elapsed[i]} "
                                     f"(task walk, reward {self.reward_version}): {flat[i].tolist()[:8]}")

    # --- observations -----------------------------------------------------------------------------
    def observe_state(self, s):
        cmd_scale = np.array([OBS_SCALES["lin_vel"], OBS_SCALES["lin_vel"], OBS_SCALES["ang_vel"]])
        return np.concatenate([s.ang_vel * OBS_SCALES["ang_vel"], s.projected_gravity, s.command * cmd_scale,
                               s.dof_pos - s.default_dof_pos, s.dof_vel * OBS_SCALES["dof_vel"],
                               self._last_action], axis=1).astype(np.float32)

    def _observe(self, state, ids):
        obs = self.observe_state(state)
        self._check_finite("observation", obs)
        self._obs[ids] = obs[ids]

    # --- episode statistics ---------------------------------------------------------------------
    _SUMS = ("return", "episode_len", "vx_sum", "height_sum", "x_end", "fell")

    def _clear_stats(self, ids):
        for key, dtype in zip(self._SUMS, (np.float64, np.int64, np.float64, np.float64, np.float64, bool)):
            self._stats.setdefault(key, np.zeros(self.num_envs, dtype=dtype))[ids] = 0
        for values in self._components.values():
            values[ids] = 0.0

    def _update_stats(self, s, reward, components):
        st = self._stats
        st["return"] += reward
        st["episode_len"] += 1
        st["vx_sum"] += s.world_lin_vel[:, 0]
        st["height_sum"] += s.base_height
        st["x_end"] = s.base_pos[:, 0].copy()
        for name, value in components.items():
            self._components.setdefault(name, np.zeros(self.num_envs))
            self._components[name] += value

    def episode_stats_arrays(self):
        st = self._stats
        n = np.maximum(st["episode_len"], 1)
        return {"return": st["return"], "episode_len": st["episode_len"], "mean_forward_vel": st["vx_sum"] / n,
                "distance_x": st["x_end"] - self._x0, "mean_base_height": st["height_sum"] / n, "fell": st["fell"],
                **{f"reward/{k}": v for k, v in self._components.items()}}

    def _final_infos(self, ids, done):
        final_info = {}
        for key, values in self.episode_stats_arrays().items():
            final_info[key] = np.where(done, values, np.zeros_like(values))
            final_info["_" + key] = done.copy()
        final_obs = np.full(self.num_envs, None, dtype=object)
        for i in ids:
            final_obs[i] = self._obs[i].copy()
        return {"final_info": final_info, "_final_info": done.copy(), "final_obs": final_obs,
                "_final_obs": done.copy()}

    # --- checkpointing ---------------------------------------------------------------------------
    _STATE = ("_rngs", "_elapsed", "_stats", "_components", "_done", "_obs", "_needs_reset", "_last_action",
              "_x0", "_targets", "command")

    def get_state(self):
        """A picklable copy of every env's physics state and bookkeeping (see the module docstring)."""
        r = self.robot
        return {"qpos": _np(r.get_qpos()).reshape(self.num_envs, -1).copy(),
                "vel": _np(r.get_dofs_velocity()).reshape(self.num_envs, -1).copy(),
                **copy.deepcopy({k: getattr(self, k) for k in self._STATE})}

    def set_state(self, state):
        for k, v in copy.deepcopy({k: state[k] for k in self._STATE}).items():
            setattr(self, k, v)
        self.robot.set_qpos(state["qpos"], zero_velocity=False)
        self.robot.set_dofs_velocity(state["vel"])
        self.robot.control_dofs_position(self._targets, self._dofs)

    def close_extras(self, **kwargs):
        try:
            self.scene.destroy()
        except Exception:  # noqa: BLE001 - best effort, as the lift backend
            pass


def make_walk_env(reward="v2", num_envs=1, seed=None, **kwargs):
    return WalkEnv(reward=reward, num_envs=num_envs, seed=seed, **kwargs)


def walk_sb3(env):
    """A WalkEnv as a Stable-Baselines3 VecEnv: SB3VecEnv, with is_success = survived to the time limit
    (walk has no success test; SB3VecEnv reads success_once)."""
    from envs.sb3 import SB3VecEnv

    class WalkSB3VecEnv(SB3VecEnv):
        @staticmethod
        def is_success(stats):
            return not stats["fell"]

    return WalkSB3VecEnv(env)
