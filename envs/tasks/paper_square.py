"""paper_square: push or drag a thin square sheet of paper onto a square of tape on the table
(devlog 003, the residual-RL task: a learned residual on top of a scripted base controller).

Scene: envs/assets/paper_square.xml, the tabletop scene (same arm, table, room, cameras) with a
10 cm x 10 cm x 1 mm sheet of 3 g instead of the cube and a tape square (visual only) whose centre
is the site `target`. The sheet moves only by contact: the jaws pressed down on it hold it with
friction 1.2 against the table's 0.4 (explicit contact pairs), so pressing and moving drags it;
pushing an edge moves it too.

Settings (TaskConfig; this task changes the defaults of max_episode_steps to 400 and action_scale
to 0.02, the devlog's):
- Action: 6 values in [-1, 1], delta joint targets (5 arm joints + gripper) of up to action_scale
  rad per step, as the other arm tasks.
- State observation (25 float32, `state_layout()`), in this order:
    joint_pos    6  arm joint positions (5 joints + gripper), rad
    joint_vel    6  their velocities, rad/s
    paper_pose   7  sheet centre position (x, y, z, m) and orientation quaternion (w, x, y, z)
    goal_vector  3  target centre minus sheet centre, m
    ee_pos       3  end-effector position: the grasp site between the jaw pads, m
- Success: the sheet's centre within SUCCESS_DISTANCE (2 cm) of the target centre on the table
  plane and its yaw within SUCCESS_YAW (10 deg) of the target's, modulo 90 deg (a square looks
  the same turned by a quarter). Reported as success_once / success_at_end by the env.
- Termination: the sheet's centre off the table top, or the sheet more than LOST_HEIGHT (5 cm)
  above it or tilted more than 60 deg (lifted, flipped or flung): the episode cannot recover it.
- Reset: arm at rest (curriculum stage 0, the only stage: other stages, and so an automatic
  curriculum (curriculum_from), are refused, naming the valid values, as walk refuses what it
  cannot do); sheet at START (0.20, -0.07), target at TARGET (0.20, 0.06), 13 cm apart, yaw 0.
  With domain_randomization: sheet position +-START_JITTER (2 cm) per axis (so >= 11 cm from
  the target), yaw +-START_YAW (30 deg), paper-table friction
  x0.7-1.3, arm joints +-0.05 rad, table/sheet colours and light; per env, from that env's own
  generator. The target stays fixed (its tape is part of the scene).
- Metrics per episode: final_distance (m), final_yaw_error (deg), paper_travel (m, the farthest
  the sheet's centre got from its start), contact_steps (steps with a jaw on the sheet).
- Settings of the cube tasks (lift_height, hold_steps, goal_tolerance) are ignored.
- Backend: MuJoCo only (the sheet's contact pairs and priorities are MuJoCo's); backend genesis is
  refused, naming the valid one.

Reward versions (envs/rewards/paper_square/) read a PaperState.
"""
from dataclasses import dataclass

import numpy as np

from envs.backends import make_physics
from envs.tasks.base import ARM_JOINTS, ASSETS, TABLE_CENTER, TABLE_HALF, Metric, Task

PAPER_HALF = 0.05           # m, half side of the sheet
PAPER_HALF_THICKNESS = 0.0005
START = np.array([0.20, -0.07])
TARGET = np.array([0.20, 0.06])     # the site `target` of paper_square.xml
START_JITTER = 0.02         # m, per axis, with domain randomisation
START_YAW = np.radians(30)  # rad, +-, with domain randomisation
FRICTION_SCALE = (0.7, 1.3)
LOST_HEIGHT = 0.05          # m: the sheet's centre this far above the table top ends the episode
FLIP_COS = 0.5              # ... and so does its normal's world z below this (tilted > 60 deg)


@dataclass
class PaperState:
    """What a paper_square reward version sees; arrays have the env index first (N, ...)."""
    grasp_pos: np.ndarray      # (N, 3) end effector: the grasp site between the jaw pads
    paper_pos: np.ndarray      # (N, 3) sheet centre
    paper_quat: np.ndarray     # (N, 4) w x y z
    paper_yaw: np.ndarray      # (N,) rad, the sheet's rotation about the vertical
    target_pos: np.ndarray     # (N, 3) target centre (the site `target`)
    distance: np.ndarray       # (N,) m, sheet centre to target centre on the table plane
    yaw_error: np.ndarray      # (N,) rad in [0, pi/4]: |sheet yaw - target yaw| modulo pi/2
    touching: np.ndarray       # (N,) bool, a jaw touches the sheet
    travel: np.ndarray         # (N,) m, sheet centre from its start on the table plane
    success: np.ndarray        # (N,) bool, the task's success test this step
    lost: np.ndarray           # (N,) bool, the sheet left the table top, or was lifted, flipped or flung
    action: np.ndarray         # (N, 6) the action just applied, clipped to [-1, 1]


def quat_yaw(quat):
    """(N, 4) w x y z -> (N,) rotation about the world z axis, rad."""
    w, x, y, z = np.moveaxis(np.asarray(quat), -1, 0)
    return np.arctan2(2 * (w * z + x * y), 1 - 2 * (y * y + z * z))


def square_yaw_error(yaw, target_yaw=0.0):
    """|yaw - target_yaw| modulo a quarter turn, in [0, pi/4] (a square is the same turned by 90 deg)."""
    return np.abs((np.asarray(yaw) - target_yaw + np.pi / 4) % (np.pi / 2) - np.pi / 4)


class PaperSquareTask(Task):
    name = "paper_square"
    default_reward = "v1"
    action_dim = 6
    action_help = "joints: 5 arm joints + gripper"
    cameras = ("front", "wrist")
    pixel_camera = "wrist"
    probe_action = (0.0, -1.0, 1.0, 0.0, 1.0, 0.0)   # swings the wrist camera
    config_defaults = {"max_episode_steps": 400, "action_scale": 0.02}
    episode_metrics = {"final_distance": Metric("last", "Final Distance (m)", "{:.3f}"),
                       "final_yaw_error": Metric("last", "Final Yaw Error (deg)", "{:.1f}"),
                       "paper_travel": Metric("max", "Paper Travel (m)", "{:.3f}"),
                       "contact_steps": Metric("sum", "Mean Contact Steps", "{:.1f}")}
    SUCCESS_DISTANCE = 0.02             # m, sheet centre to target centre
    SUCCESS_YAW = np.radians(10.0)      # rad, yaw error modulo 90 deg

    def __init__(self, cfg, num_envs, reward, render_sizes=()):
        # One physics backend and one curriculum stage (arm at rest), so no automatic curriculum.
        for key, valid in (("backend", ["mujoco"]), ("curriculum_stage", [0]), ("curriculum_from", [-1, 0])):
            if getattr(cfg, key) not in valid:
                raise ValueError(f"task paper_square: {key} {getattr(cfg, key)!r} is not supported; valid: {valid}")
        super().__init__(cfg, num_envs, reward, render_sizes)
        pairs = [("paper", "fixed_jaw"), ("paper", "moving_jaw")]
        self.physics = p = make_physics(cfg.backend, ASSETS / "paper_square.xml", num_envs, 1.0 / cfg.control_hz,
                                        contact_pairs=pairs)
        self.arm_qpos = np.array([p.joint_qpos_adr(j) for j in ARM_JOINTS])
        self.arm_dof = np.array([p.joint_dof_adr(j) for j in ARM_JOINTS])
        self.paper_qpos = p.joint_qpos_adr("paper")
        self.grasp_site, self.target_site = p.site_id("grasp"), p.site_id("target")
        self.paper_geom, self.table_geom = p.geom_id("paper"), p.geom_id("table")
        self.rest_qpos = p.keyframe_qpos("rest")
        self.ctrl_low, self.ctrl_high = p.ctrl_range[:, 0], p.ctrl_range[:, 1]
        base = p.base
        self._base_friction = base.geom_friction[self.paper_geom, 0]
        self._base_paper_rgba = base.geom_rgba[self.paper_geom].copy()
        self._base_table_rgba = base.geom_rgba[self.table_geom].copy()
        target = p.site_xpos[0, self.target_site].copy()
        assert np.allclose(target[:2], TARGET), "TARGET and the site `target` of paper_square.xml disagree"
        assert np.allclose(base.geom_size[self.paper_geom], [PAPER_HALF, PAPER_HALF, PAPER_HALF_THICKNESS])
        self.target_pos = np.tile(target, (num_envs, 1))
        self.target = np.tile(self.rest_qpos[:6], (num_envs, 1))   # actuator targets
        self.paper_start = np.zeros((num_envs, 3))
        self.max_travel = np.zeros(num_envs)
        self.last_action = np.zeros((num_envs, 6))

    # --- episodes ---------------------------------------------------------------------------------
    def reset(self, env_ids, rngs):
        for i in env_ids:
            rng, dr = rngs[i], self.cfg.domain_randomization
            xy = START + (rng.uniform(-START_JITTER, START_JITTER, 2) if dr else 0.0)
            yaw = rng.uniform(-START_YAW, START_YAW) if dr else 0.0
            qpos = self.rest_qpos.copy()
            self.paper_start[i] = [*xy, PAPER_HALF_THICKNESS]
            qpos[self.paper_qpos:self.paper_qpos + 7] = [*self.paper_start[i], np.cos(yaw / 2), 0, 0, np.sin(yaw / 2)]
            arm = self.rest_qpos[:5] + (rng.uniform(-0.05, 0.05, 5) if dr else 0.0)
            qpos[self.arm_qpos[:5]] = arm
            self.target[i] = [*arm, self.rest_qpos[5]]
            if dr:
                self._randomize_model(i, rng)
            self.physics.set_state(i, qpos, self.target[i])
            self.max_travel[i] = 0.0
            self.last_action[i] = 0.0

    def _randomize_model(self, i, rng):
        p = self.physics
        p.set_geom_friction(i, self.paper_geom, self._base_friction * rng.uniform(*FRICTION_SCALE))
        p.set_geom_rgba(i, self.paper_geom, np.clip(self._base_paper_rgba + [*rng.uniform(-0.08, 0.04, 3), 0], 0, 1))
        p.set_geom_rgba(i, self.table_geom, np.clip(self._base_table_rgba + [*rng.uniform(-0.1, 0.1, 3), 0], 0, 1))
        p.set_light_diffuse(i, 0, rng.uniform(0.3, 0.7, 3))

    def apply_action(self, action):
        """Delta joint targets: action in [-1, 1] moves each target by up to action_scale rad."""
        self.last_action = action
        self.target = np.clip(self.target + self.cfg.action_scale * action, self.ctrl_low, self.ctrl_high)
        self.physics.step(self.target)

    def unstable(self):
        return self.physics.unstable

    def read_state(self):
        p = self.physics
        paper = p.qpos[:, self.paper_qpos:self.paper_qpos + 7].copy()   # copies: a state outlives the step
        yaw = quat_yaw(paper[:, 3:])
        state = PaperState(
            grasp_pos=p.site_xpos[:, self.grasp_site].copy(), paper_pos=paper[:, :3], paper_quat=paper[:, 3:],
            paper_yaw=yaw, target_pos=self.target_pos.copy(),
            distance=np.linalg.norm(self.target_pos[:, :2] - paper[:, :2], axis=1),
            yaw_error=square_yaw_error(yaw), touching=p.touching.any(axis=1),
            travel=np.linalg.norm(paper[:, :2] - self.paper_start[:, :2], axis=1),
            success=np.zeros(self.num_envs, dtype=bool), lost=self.lost(paper), action=self.last_action)
        state.success = self.evaluate(state)
        return state

    def step_state(self):
        state = self.read_state()
        self.max_travel = np.maximum(self.max_travel, state.travel)
        return state

    def evaluate(self, state):
        """(N,) bool: centre within SUCCESS_DISTANCE of the target and yaw within SUCCESS_YAW (mod 90 deg)."""
        return (state.distance < self.SUCCESS_DISTANCE) & (state.yaw_error < self.SUCCESS_YAW)

    def terminated(self, state):
        return state.lost

    @staticmethod
    def lost(paper):
        """(N,) bool from (N, 7) sheet poses: it left the table top, or was lifted, flipped or flung
        (see the module docstring)."""
        off_top = np.abs(paper[:, :2] - TABLE_CENTER).max(axis=1) > TABLE_HALF
        _, x, y, _ = paper[:, 3:].T
        normal_z = 1 - 2 * (x * x + y * y)      # world z of the sheet's normal
        return off_top | (paper[:, 2] > LOST_HEIGHT) | (normal_z < FLIP_COS)

    # --- observations and metrics -------------------------------------------------------------------
    def state_layout(self):
        return [("joint_pos", 6, -3.0, 3.0), ("joint_vel", 6, -50.0, 50.0), ("paper_pose", 7, -1.5, 1.5),
                ("goal_vector", 3, -3.0, 3.0), ("ee_pos", 3, -1.5, 1.5)]

    def observe_state(self, state):
        p = self.physics
        return np.concatenate([p.qpos[:, self.arm_qpos], p.qvel[:, self.arm_dof], state.paper_pos, state.paper_quat,
                               state.target_pos - state.paper_pos, state.grasp_pos], axis=1).astype(np.float32)

    def metric_values(self, state):
        return {"final_distance": state.distance, "final_yaw_error": np.degrees(state.yaw_error),
                "paper_travel": self.max_travel.copy(), "contact_steps": state.touching}

    def render(self, i, camera, height, width):
        return self.physics.render(i, camera, height, width)

    # --- checkpoints ----------------------------------------------------------------------------------
    _STATE = ("target", "paper_start", "max_travel", "last_action", "target_pos")

