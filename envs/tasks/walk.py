"""walk: N Unitree Go2 quadrupeds in one batched Genesis scene track a commanded base velocity.

The walking task of devlog 002, a task like lift (envs.make_vec_env("walk", "v2", n, backend="genesis")
gives a BatchedEnv, with its autoreset, partial resets, whole-episode statistics, NaN guards and exact
checkpoint state): track a commanded base velocity (0.5 m/s forward, lateral and yaw 0) with 12 joint
position targets around the default standing pose. Rewards are versioned modules,
envs/rewards/walk/<version>.py (v1: the devlog's first reward, which taught the robot to lie down
and crawl; v2: its redesign). See docs/walk.md.

Settings (TaskConfig; walk changes the defaults of max_episode_steps and action_scale):
- Control at control_hz (50 Hz: one rigid step of 0.02 s per control step, Newton solver), which is
  what Genesis's go2 example runs (its RigidOptions dt=0.02).
- Action: 12 values in [-1, 1]; joint target = default pose + action_scale * action (default 0.25 rad,
  the example's scale), PD gains kp 20, kd 0.5 on every joint.
- Observation (45 float32): base angular velocity in the body frame (x0.25), projected gravity (3),
  command (vx, vy x2, yaw rate x0.25), joint pos - default (12), joint vel (x0.05, 12), last action (12).
- Time limit: max_episode_steps (default 1000 = 20 s at 50 Hz), a truncation.
- Termination: base height below the reward version's TERMINATION_HEIGHT (0.12 m; during the first
  GRACE_STEPS steps, GRACE_HEIGHT instead: v2 uses 20 steps at 0.08 m as in the devlog, v1 none), or
  the body tilted more than 60 degrees (up axis' world z below FLIP_COS = 0.5).
- Success: the base has covered half the distance the command asks for in a whole episode
  (0.5 * vx * episode duration: 5 m in 20 s at 0.5 m/s), forward along x.
- Reset: default pose, base at INIT_HEIGHT (the settled standing height + 5 mm, the devlog's
  "grounding safety margin"), joints +- init_noise rad (uniform, per-env generator); written for the
  reset envs only (set_qpos / control targets with envs_idx, nothing stepped).
- Only obs_mode "state", backend "genesis" (the Go2 ships inside genesis-world), no domain
  randomisation: other values are refused, naming the valid ones.
- Cameras "front" (a chase camera behind and beside the robot) and "side", both following env i's
  base; built only when render sizes are asked for (videos), env 0 only.

Genesis keeps no solver warm start we can save, so restoring get_state() continues a run to within
~1e-15 per step, not bit for bit (docs/walk.md).
"""
import dataclasses

import numpy as np

from envs.backends import quat_to_mat, to_numpy
from envs.tasks.base import Metric, Task

# Genesis's go2 example order (legs FR, FL, RR, RL; hip, thigh, calf).
JOINT_NAMES = ("FR_hip_joint", "FR_thigh_joint", "FR_calf_joint",
               "FL_hip_joint", "FL_thigh_joint", "FL_calf_joint",
               "RR_hip_joint", "RR_thigh_joint", "RR_calf_joint",
               "RL_hip_joint", "RL_thigh_joint", "RL_calf_joint")
DEFAULT_POSE = np.array([0.0, 0.8, -1.5, 0.0, 0.8, -1.5, 0.0, 1.0, -1.5, 0.0, 1.0, -1.5])
INIT_HEIGHT = 0.28        # m, base height at reset: settled height at the default pose (~0.275 m) + 5 mm
FLIP_COS = 0.5            # terminate when the body's up axis has world z below this (tilt > 60 deg)
OBS_SCALES = {"ang_vel": 0.25, "lin_vel": 2.0, "dof_vel": 0.05}
COMMAND = (0.5, 0.0, 0.0)   # vx, vy (m/s, body frame), yaw rate (rad/s)
KP, KD, INIT_NOISE = 20.0, 0.5, 0.05
# Camera offsets from the base (world frame) and where they look (the base + 0.1 m up).
CAMERAS = {"front": (1.2, -1.0, 0.6), "side": (0.0, -1.6, 0.35)}
OBS_LAYOUT = [("ang_vel", 3, -30.0, 30.0), ("projected_gravity", 3, -1.0, 1.0), ("command", 3, -5.0, 5.0),
              ("dof_pos", 12, -6.0, 6.0), ("dof_vel", 12, -20.0, 20.0), ("last_action", 12, -1.0, 1.0)]


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
    distance_x: np.ndarray        # (N,) base x now minus at the episode's start (m)
    success: np.ndarray           # (N,) bool, distance_x reached the task's success distance

    @property
    def base_height(self):
        return self.base_pos[:, 2]


class WalkTask(Task):
    name = "walk"
    default_reward = "v2"
    action_dim = 12
    action_help = "12 joint targets: legs FR, FL, RR, RL x hip, thigh, calf"
    cameras = tuple(CAMERAS)
    probe_action = (0.5,) * 12      # bends the legs
    config_defaults = {"max_episode_steps": 1000, "action_scale": 0.25, "domain_randomization": False}
    episode_metrics = {"mean_forward_vel": Metric("mean", "Forward Velocity (m/s)", "{:.3f}"),
                       "distance_x": Metric("last", "Distance (m)", "{:.2f}"),
                       "mean_base_height": Metric("mean", "Base Height (m)", "{:.3f}")}

    def __init__(self, cfg, num_envs, reward, render_sizes=()):
        for key, valid in (("backend", "genesis"), ("obs_mode", "state"), ("domain_randomization", False)):
            if getattr(cfg, key) != valid:
                raise ValueError(f"task walk: {key} {getattr(cfg, key)!r} is not supported; valid: [{valid!r}] "
                                 "(docs/walk.md)")
        from envs.backends.genesis import init_genesis
        gs = init_genesis()             # one gs.init per process, shared with the lift backend (gs.cpu, fp64)
        super().__init__(cfg, num_envs, reward, render_sizes)
        self.termination_height = float(getattr(self.reward_fn, "TERMINATION_HEIGHT", 0.12))
        self.grace_steps = int(getattr(self.reward_fn, "GRACE_STEPS", 0))
        self.grace_height = float(getattr(self.reward_fn, "GRACE_HEIGHT", self.termination_height))
        self.init_noise = INIT_NOISE
        self.success_distance = 0.5 * COMMAND[0] * cfg.max_episode_steps / cfg.control_hz

        self.scene = gs.Scene(
            sim_options=gs.options.SimOptions(dt=1.0 / cfg.control_hz, substeps=1),
            rigid_options=gs.options.RigidOptions(
                constraint_solver=gs.constraint_solver.Newton, enable_collision=True,
                enable_joint_limit=True, enable_self_collision=False, max_collision_pairs=30),
            vis_options=gs.options.VisOptions(rendered_envs_idx=[0], shadow=False, plane_reflection=False),
            show_viewer=False)
        self.scene.add_entity(gs.morphs.Plane())
        self.robot = self.scene.add_entity(gs.morphs.URDF(file="urdf/go2/urdf/go2.urdf",
                                                          pos=(0.0, 0.0, INIT_HEIGHT), quat=(1.0, 0.0, 0.0, 0.0)))
        self._cameras = {(name, int(h), int(w)): self.scene.add_camera(res=(int(w), int(h)), fov=40, GUI=False)
                         for name in CAMERAS for h, w in render_sizes}
        self.scene.build(n_envs=num_envs)
        r = self.robot
        self._dofs = np.array([int(np.ravel(r.get_joint(n).dofs_idx_local)[0]) for n in JOINT_NAMES])
        self._qs = np.array([int(np.ravel(r.get_joint(n).qs_idx_local)[0]) for n in JOINT_NAMES])
        self._nq = r.n_qs
        r.set_dofs_kp(np.full(12, KP), self._dofs)
        r.set_dofs_kv(np.full(12, KD), self._dofs)
        self.default_dof_pos = DEFAULT_POSE.copy()
        self.command = np.tile(np.asarray(COMMAND, dtype=np.float64), (num_envs, 1))
        self.target = np.tile(self.default_dof_pos, (num_envs, 1))
        self.step_count = np.zeros(num_envs, dtype=np.int64)
        self.action = np.zeros((num_envs, 12))
        self.last_action = np.zeros((num_envs, 12))
        self.x0 = np.zeros(num_envs)

    # --- physics reads/writes -------------------------------------------------------------------
    def read_state(self):
        """The current WalkState of every env (reads Genesis; steps nothing)."""
        r = self.robot
        pos, quat = to_numpy(r.get_pos()).reshape(-1, 3), to_numpy(r.get_quat()).reshape(-1, 4)
        vel, ang = to_numpy(r.get_vel()).reshape(-1, 3), to_numpy(r.get_ang()).reshape(-1, 3)
        rot_t = np.swapaxes(quat_to_mat(quat), -1, -2)      # world -> body
        body = lambda v: np.einsum("nij,nj->ni", rot_t, v)  # noqa: E731
        grav = np.broadcast_to(np.array([0.0, 0.0, -1.0]), vel.shape)
        distance = pos[:, 0] - self.x0
        return WalkState(
            base_pos=pos, base_quat=quat, lin_vel=body(vel), ang_vel=body(ang), world_lin_vel=vel,
            projected_gravity=body(grav),
            dof_pos=to_numpy(r.get_dofs_position(self._dofs)).reshape(-1, 12),
            dof_vel=to_numpy(r.get_dofs_velocity(self._dofs)).reshape(-1, 12),
            default_dof_pos=self.default_dof_pos, action=self.action.copy(), last_action=self.last_action.copy(),
            command=self.command.copy(), step=self.step_count.copy(), distance_x=distance,
            success=distance >= self.success_distance)

    step_state = read_state     # walk keeps no counters that advance with a step read

    def place(self, ids, base_pos, base_quat=(1.0, 0.0, 0.0, 0.0), dof_pos=None):
        """Write envs `ids` at rest in a pose (base position, quaternion wxyz, 12 joint angles in JOINT_NAMES
        order; default pose if None) with PD targets at those angles. Nothing is stepped; other envs untouched."""
        ids = np.atleast_1d(np.asarray(ids, dtype=np.int64))
        dof_pos = np.broadcast_to(self.default_dof_pos if dof_pos is None else np.asarray(dof_pos, float),
                                  (len(ids), 12))
        q = np.zeros((len(ids), self._nq))
        q[:, :3] = np.broadcast_to(np.asarray(base_pos, float), (len(ids), 3))
        q[:, 3:7] = np.broadcast_to(np.asarray(base_quat, float), (len(ids), 4))
        q[:, self._qs] = dof_pos
        self.robot.set_qpos(q, envs_idx=ids.tolist(), zero_velocity=True)
        self.target[ids] = dof_pos
        self.robot.control_dofs_position(self.target[ids], self._dofs, envs_idx=ids.tolist())

    def reset(self, ids, rngs):
        if not len(ids):
            return
        joints = np.stack([self.default_dof_pos + rngs[i].uniform(-self.init_noise, self.init_noise, 12)
                           for i in ids])
        self.place(ids, (0.0, 0.0, INIT_HEIGHT), dof_pos=joints)
        self.step_count[ids] = 0
        self.action[ids] = 0.0
        self.last_action[ids] = 0.0
        self.x0[ids] = 0.0

    def apply_action(self, actions):
        self.last_action = self.action
        self.action = actions.copy()
        self.target = self.default_dof_pos + self.cfg.action_scale * actions
        self.robot.control_dofs_position(self.target, self._dofs)
        self.scene.step()
        self.step_count += 1

    def unstable(self):
        r = self.robot
        qpos = to_numpy(r.get_qpos()).reshape(self.num_envs, -1)
        vel = to_numpy(r.get_dofs_velocity()).reshape(self.num_envs, -1)
        return ~(np.isfinite(qpos).all(axis=1) & np.isfinite(vel).all(axis=1)) | (np.abs(vel).max(axis=1) > 1e3)

    def terminated(self, s):
        min_h = np.where(s.step <= self.grace_steps, self.grace_height, self.termination_height)
        up_z = -s.projected_gravity[:, 2]          # world z of the body's up axis
        return (s.base_height < min_h) | (up_z < FLIP_COS)

    # --- observations and metrics -----------------------------------------------------------------
    def state_layout(self):
        return OBS_LAYOUT

    def observe_state(self, s):
        cmd_scale = np.array([OBS_SCALES["lin_vel"], OBS_SCALES["lin_vel"], OBS_SCALES["ang_vel"]])
        return np.concatenate([s.ang_vel * OBS_SCALES["ang_vel"], s.projected_gravity, s.command * cmd_scale,
                               s.dof_pos - s.default_dof_pos, s.dof_vel * OBS_SCALES["dof_vel"],
                               s.action], axis=1).astype(np.float32)

    def metric_values(self, s):
        return {"mean_forward_vel": s.world_lin_vel[:, 0], "distance_x": s.distance_x,
                "mean_base_height": s.base_height}

    def render(self, i, camera, height, width):
        """RGB image (H, W, 3) uint8 of env 0 from a camera following its base."""
        key = (camera, int(height), int(width))
        if key not in self._cameras:
            raise ValueError(f"walk cameras are built with the scene: {key} is not one of {sorted(self._cameras)} "
                             "(pass render_sizes=... to the env)")
        if i != 0:
            raise ValueError(f"walk renders env 0 only, not env {i}")
        base = to_numpy(self.robot.get_pos()).reshape(-1, 3)[0]
        cam = self._cameras[key]
        cam.set_pose(pos=base + np.array(CAMERAS[camera]), lookat=base + np.array([0.0, 0.0, 0.1]), up=(0.0, 0.0, 1.0))
        rgb = np.asarray(cam.render(rgb=True, force_render=True)[0])
        return rgb.reshape(height, width, -1)[..., :3].astype(np.uint8, copy=True)

    # --- checkpointing ---------------------------------------------------------------------------
    _STATE = ("target", "step_count", "action", "last_action", "x0", "command")

    def get_state(self):
        r = self.robot
        return {"qpos": to_numpy(r.get_qpos()).reshape(self.num_envs, -1).copy(),
                "vel": to_numpy(r.get_dofs_velocity()).reshape(self.num_envs, -1).copy(),
                **{k: getattr(self, k).copy() for k in self._STATE}}

    def set_state(self, state):
        for k in self._STATE:
            setattr(self, k, state[k].copy())
        self.robot.set_qpos(state["qpos"], zero_velocity=False)
        self.robot.set_dofs_velocity(state["vel"])
        self.robot.control_dofs_position(self.target, self._dofs)

    def close(self):
        try:
            self.scene.destroy()
        except Exception:  # noqa: BLE001 - best effort, as the lift backend
            pass
