"""The task interface (`Task`, what envs/vector.py's BatchedEnv asks of a task) and what the SO-101
tabletop tasks share (`TabletopTask`): settings, the arm's action interface, episode initialisation
(curriculum and domain randomisation, written as state for the reset envs only), the state
observation and the step state that rewards are computed from.

A task is one module in this folder with one class deriving from `Task` (a new robot, as walk.py)
or from `TabletopTask` (an arm task, which adds only what makes it that task: `init_goal` (where
to go), `evaluate` (is it done) and its extra observation entries), plus its line in
envs/tasks/__init__.py and its reward versions in envs/rewards/<task>/. Everything is batched:
arrays have the env index first.
"""
import abc
from dataclasses import dataclass, field, make_dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np

from envs import rewards
from envs.backends import BACKENDS, make_physics
from envs.ik import top_down_ik
from envs.settings import ENV, Field

ASSETS = Path(__file__).resolve().parent.parent / "assets"
CUBE_HALF = 0.0125
TABLE_CENTER, TABLE_HALF = np.array([0.15, 0.0]), 0.45   # the table geom of tabletop.xml
ARM_JOINTS = ("shoulder_pan", "shoulder_lift", "elbow_flex", "wrist_flex", "wrist_roll", "gripper")
GRIPPER_OPEN, GRIPPER_CLOSED = 1.0, -0.17


# The reward argument that builds a task with no reward version: rewards are 0, with no components.
NO_REWARD = "none"

# The env settings: the env block of params.yaml, declared once in envs/settings.py, and the physics
# backend, which the pipeline passes from its top-level `backend` key (each backend is imported only
# when chosen).
SETTINGS = {**ENV, "backend": Field("str", choices=tuple(BACKENDS), default="mujoco",
                                    doc="physics backend (envs/backends/; genesis: docs/genesis.md)")}


def _check(cfg):
    """Every setting as declared; an automatic curriculum starts at an easier stage than where it ends;
    one curriculum at a time (the reverse curriculum ends at curriculum_stage, where the stages would)."""
    for name, setting in SETTINGS.items():
        value = getattr(cfg, name)
        if not setting.check(value):
            raise ValueError(f"{name}: got {value!r}; expected {setting.describe()}")
    if cfg.curriculum_from != -1 and not cfg.curriculum_stage <= cfg.curriculum_from <= 3:
        raise ValueError(f"curriculum_from: got {cfg.curriculum_from!r}; expected -1 (no curriculum) or a stage "
                         f"from curriculum_stage ({cfg.curriculum_stage}) to 3")
    if cfg.reverse_curriculum and cfg.curriculum_from not in (-1, cfg.curriculum_stage):
        raise ValueError(f"curriculum_from: got {cfg.curriculum_from!r} with reverse_curriculum; expected -1: "
                         "the reverse curriculum replaces the stage curriculum")


def _from_kwargs(cls, **kwargs):
    """TaskConfig(**kwargs), refusing a keyword that is no setting."""
    unknown = sorted(set(kwargs) - set(SETTINGS))
    if unknown:
        raise TypeError(f"unknown env setting(s) {unknown}; valid: {list(SETTINGS)}")
    return cls(**kwargs)


# The env's settings, one field per setting with its declared default (a task may change some:
# Task.config_defaults), checked when built. Tasks read them as cfg.max_episode_steps etc.
TaskConfig = make_dataclass(
    "TaskConfig", [(name, setting.type, field(default=setting.default)) for name, setting in SETTINGS.items()],
    namespace={"__module__": __name__, "__doc__": "Env settings (SETTINGS), checked as declared.",
               "__post_init__": _check, "from_kwargs": classmethod(_from_kwargs)})


@dataclass
class StepState:
    """Batched quantities a reward version may use (all arrays have the env index first)."""
    grasp_pos: np.ndarray          # (N, 3) point between the jaw pads
    moving_finger_pos: np.ndarray  # (N, 3)
    fixed_finger_pos: np.ndarray   # (N, 3)
    cube_pos: np.ndarray           # (N, 3) centre
    cube_quat: np.ndarray          # (N, 4) w x y z
    cube_height: np.ndarray        # (N,) cube bottom above the table
    grasped: np.ndarray            # (N,) bool, both jaws touch the cube
    lifted: np.ndarray             # (N,) bool, grasped and above lift_height
    hold_count: np.ndarray         # (N,) consecutive lifted steps
    success: np.ndarray            # (N,) bool, the task's success test this step
    goal_pos: np.ndarray           # (N, 3) pick_place goal (the cube's spawn point for lift)
    action: np.ndarray             # (N, 6) the action just applied, clipped to [-1, 1]
    lift_height: float
    hold_steps: int


class Metric(NamedTuple):
    """One per-episode metric of a task: reported in final_info, evaluated, tabled in reports."""
    aggregate: str              # how the episode's value comes from metric_values() per step: max, sum, mean, last
    label: str                  # its title in reports
    fmt: str = "{:.3g}"         # how reports print it


class Task(abc.ABC):
    """What envs/vector.py's BatchedEnv asks of a task: N envs of it in one process.

    A task declares, as class attributes:
      name                 its name, the key of its line in envs/tasks/__init__.py
      default_reward       the reward version used when none is given (envs/rewards/<name>/<version>.py)
      goal_conditioned     whether it has obs_mode "goal" (observation, achieved_goal, desired_goal),
                           which HER needs; if so, default_goal_reward names the version used there by
                           default, one that defines goal_reward()
      action_dim, action_help   actions are action_dim values in [-1, 1]; action_help says what they move
      cameras              the cameras render() accepts; pixel_camera the one pixel observations use
                           (None: no pixel observation modes)
      probe_action         an action that moves what the last camera sees (a render check: does its view change?)
      config_defaults      TaskConfig settings it reads differently (walk: 1000-step episodes)
      episode_metrics      {name: Metric}: its per-episode metrics, how each aggregates, how reports show it
    and implements the methods below. Its step state (read_state) has a (N,) bool `success` array,
    which its reward versions may read as well.
    """
    name: str
    default_reward: str
    goal_conditioned: bool = False
    default_goal_reward: str | None = None
    action_dim: int
    action_help: str
    cameras: tuple
    pixel_camera: str | None = None
    probe_action: tuple
    config_defaults: dict = {}
    episode_metrics: dict

    def __init__(self, cfg: TaskConfig, num_envs: int, reward: str, render_sizes=()):
        """render_sizes: (height, width) of the images render() will be asked for besides observations."""
        self.cfg = cfg
        self.num_envs = num_envs
        self.reward_version = reward
        # NO_REWARD: no reward version at all (to check the task and physics alone).
        self.reward_fn = None if reward == NO_REWARD else rewards.get(self.name, reward)

    @classmethod
    def default_reward_for(cls, obs_mode):
        """The reward version an env of this task uses when none is given."""
        return cls.default_goal_reward if obs_mode == "goal" and cls.goal_conditioned else cls.default_reward

    # --- episodes ----------------------------------------------------------------------------------
    @abc.abstractmethod
    def reset(self, ids, rngs):
        """Start a new episode in each env of `ids`, drawing from that env's generator rngs[i]; write
        only those envs (nothing is stepped, other envs stay bit-identical)."""

    @abc.abstractmethod
    def apply_action(self, actions):
        """Apply (N, action_dim) actions in [-1, 1] and advance the physics by one control step."""

    @abc.abstractmethod
    def unstable(self):
        """(N,) bool: envs whose simulation state went non-finite or exploded this step."""

    @abc.abstractmethod
    def read_state(self):
        """The current step state of every env (with its `success`), changing nothing."""

    @abc.abstractmethod
    def step_state(self):
        """read_state after a physics step, advancing whatever the task counts per step (call once per step)."""

    @abc.abstractmethod
    def terminated(self, state):
        """(N,) bool: a real termination (no bootstrapping past it); time limits are the env's."""

    # --- observations and metrics ------------------------------------------------------------------
    @abc.abstractmethod
    def state_layout(self):
        """[(name, size, low, high), ...]: the state observation's entries in order, with bounds that a
        sound simulation never leaves."""

    @abc.abstractmethod
    def observe_state(self, state):
        """(N, sum of sizes) float32 state observation, laid out as state_layout()."""

    def goals(self, state):
        """Goal-conditioned tasks: ((N, 3) achieved goal, (N, 3) desired goal) for obs_mode "goal"."""
        raise NotImplementedError(f"task {self.name} is not goal-conditioned")

    @abc.abstractmethod
    def metric_values(self, state):
        """{metric: (N,) values this step} for each of episode_metrics."""

    @abc.abstractmethod
    def render(self, i, camera, height, width):
        """(height, width, 3) uint8 RGB image of env i from one of `cameras`."""

    # --- starts from recorded states (reverse curriculum: envs/reverse.py) ------------------------
    # A task that can start an episode from a recorded step sets restorable and implements these two.
    restorable: bool = False

    def snapshot(self):
        """{name: (N, ...) array}: what restore() needs to put each env back at its current step."""
        raise NotImplementedError(f"task {self.name} cannot start episodes from recorded states")

    def restore(self, i, snapshot):
        """Start a new episode in env i at one env's row of a snapshot(), at rest (velocities zero);
        call after reset(), whose model randomisation the episode keeps. Writes env i only."""
        raise NotImplementedError(f"task {self.name} cannot start episodes from recorded states")

    # --- checkpoints -------------------------------------------------------------------------------
    # A task on make_physics (self.physics) lists in _STATE the arrays it carries between steps
    # besides the physics; a task on another simulator (walk) overrides these three.
    _STATE: tuple = ()

    def get_state(self):
        """A picklable copy of everything the task carries between steps (physics included)."""
        return {"physics": self.physics.get_state(), **{k: getattr(self, k).copy() for k in self._STATE}}

    def set_state(self, state):
        """Restore get_state()'s copy: the envs continue as if never interrupted."""
        self.physics.set_state_all(state["physics"])
        for k in self._STATE:
            setattr(self, k, state[k].copy())

    def close(self):
        """Release the physics."""
        self.physics.close()


# State observation, in order; bounds are generous physical limits, so a value outside them means
# the simulation blew up.
STATE_LAYOUT = [
    ("joint_pos", 6, -3.0, 3.0),
    ("joint_vel", 6, -50.0, 50.0),
    ("grasp_pos", 3, -1.5, 1.5),
    ("moving_finger_pos", 3, -1.5, 1.5),
    ("fixed_finger_pos", 3, -1.5, 1.5),
    ("cube_pos", 3, -1.5, 1.5),
    ("cube_quat", 4, -1.0, 1.0),
    ("cube_minus_grasp", 3, -3.0, 3.0),
    ("gripper_opening", 1, -0.5, 1.5),   # gripper joint / GRIPPER_OPEN
    ("grasped", 1, 0.0, 1.0),
]


class TabletopTask(Task):
    """An SO-101 tabletop task: a subclass adds its name, default reward, success test (`evaluate`) and,
    for a goal task, goal sampling (`init_goal`) and goal observations (`goal_layout`, `goal_observation`)."""
    name = None
    goal_layout = []              # extra state entries, appended after STATE_LAYOUT
    show_goal = False             # draw the goal marker in camera images
    action_dim = 6
    action_help = "joints: 5 arm joints + gripper"
    cameras = ("front", "wrist")
    pixel_camera = "wrist"
    probe_action = (0.0, -1.0, 1.0, 0.0, 1.0, 0.0)   # swings the wrist camera
    config_defaults = {}          # TaskConfig's defaults suit the arm
    episode_metrics = {"max_cube_z": Metric("max", "Max Cube Z", "{:.3f}"),         # highest cube centre, m
                       "grasp_steps": Metric("sum", "Mean Grasp Steps", "{:.1f}")}  # steps with both jaws on it

    def __init__(self, cfg: TaskConfig, num_envs: int, reward: str, render_sizes=()):
        super().__init__(cfg, num_envs, reward, render_sizes)
        pairs = [("cube", "fixed_jaw"), ("cube", "moving_jaw")]
        self.physics = make_physics(
            cfg.backend, ASSETS / "tabletop.xml", num_envs, 1.0 / cfg.control_hz, contact_pairs=pairs,
            camera_sizes=sorted({(cfg.image_size, cfg.image_size), (240, 320), *map(tuple, render_sizes)}))
        p = self.physics
        self.arm_qpos = np.array([p.joint_qpos_adr(j) for j in ARM_JOINTS])
        self.arm_dof = np.array([p.joint_dof_adr(j) for j in ARM_JOINTS])
        self.cube_qpos = p.joint_qpos_adr("cube")
        self.sites = {s: p.site_id(s) for s in ("grasp", "moving_finger", "fixed_finger", "goal")}
        self.cube_geom, self.cube_body = p.geom_id("cube"), p.body_id("cube")
        self.table_geom = p.geom_id("table")
        self.rest_qpos = p.keyframe_qpos("rest")
        self.ctrl_low, self.ctrl_high = p.ctrl_range[:, 0], p.ctrl_range[:, 1]
        self.target = np.tile(self.rest_qpos[:6], (num_envs, 1))   # actuator targets
        self.hold_count = np.zeros(num_envs, dtype=np.int64)
        self.goal = np.zeros((num_envs, 3))
        self.cube_spawn = np.zeros((num_envs, 3))
        self.last_action = np.zeros((num_envs, 6))
        base = p.base
        self._base_friction = base.geom_friction[self.cube_geom, 0]
        self._base_mass = base.body_mass[self.cube_body]
        self._base_cube_rgba = base.geom_rgba[self.cube_geom].copy()
        self._base_table_rgba = base.geom_rgba[self.table_geom].copy()

    # --- episode initialisation ---------------------------------------------------------------
    def reset(self, env_ids, rngs):
        """Start a new episode in each env of env_ids, drawing from that env's own generator."""
        for i in env_ids:
            rng = rngs[i]
            dr = self.cfg.domain_randomization
            cube_xy = np.array([0.2, 0.0]) + (rng.uniform(-0.02, 0.02, 2) if dr else 0.0)
            yaw = rng.uniform(-np.pi / 4, np.pi / 4) if dr else 0.0
            self.cube_spawn[i] = [*cube_xy, CUBE_HALF]
            self.goal[i] = self.init_goal(rng, self.cube_spawn[i])
            qpos = self.rest_qpos.copy()
            qpos[self.cube_qpos:self.cube_qpos + 7] = [*self.cube_spawn[i], np.cos(yaw / 2), 0, 0, np.sin(yaw / 2)]
            arm, gripper = self._curriculum_pose(self.cube_spawn[i], yaw, rng if dr else None)
            qpos[self.arm_qpos[:5]] = arm
            qpos[self.arm_qpos[5]] = gripper[0]
            self.target[i] = [*arm, gripper[1]]
            if dr:
                self._randomize_model(i, rng)
            self.physics.set_state(i, qpos, self.target[i])
            self.physics.set_site_pos(i, self.sites["goal"], self.goal[i])
            self.hold_count[i] = 0
            self.last_action[i] = 0.0

    def _curriculum_pose(self, cube, yaw, rng):
        """Arm joints and (gripper position, gripper target) for the curriculum stage."""
        stage = self.cfg.curriculum_stage
        if stage == 0:
            arm = self.rest_qpos[:5] + (rng.uniform(-0.05, 0.05, 5) if rng is not None else 0.0)
            return arm, (self.rest_qpos[5], self.rest_qpos[5])
        height = {1: 0.06, 2: 0.0, 3: 0.0}[stage]
        arm = top_down_ik(cube + [0.0, 0.0, height], yaw)
        # Stage 3 starts with the moving jaw touching the cube's edge and its target closed.
        return arm, (0.66, GRIPPER_CLOSED) if stage == 3 else (GRIPPER_OPEN, GRIPPER_OPEN)

    def _randomize_model(self, i, rng):
        p = self.physics
        p.set_geom_friction(i, self.cube_geom, self._base_friction * rng.uniform(0.7, 1.3))
        p.set_body_mass(i, self.cube_body, self._base_mass * rng.uniform(0.7, 1.5))
        p.set_geom_rgba(i, self.cube_geom, np.clip(self._base_cube_rgba + [*rng.uniform(-0.15, 0.15, 3), 0], 0, 1))
        p.set_geom_rgba(i, self.table_geom, np.clip(self._base_table_rgba + [*rng.uniform(-0.1, 0.1, 3), 0], 0, 1))
        p.set_light_diffuse(i, 0, rng.uniform(0.3, 0.7, 3))

    # What the task itself carries between steps; with the physics state, enough to continue exactly.
    _STATE = ("target", "hold_count", "goal", "cube_spawn", "last_action")

    # --- starts from recorded states ------------------------------------------------------------
    restorable = True

    def snapshot(self):
        """The configuration (arm joints, gripper, cube pose), the actuator targets and what the task
        counts across steps (hold_count; goal and cube_spawn, which rewards and metrics read)."""
        return {"qpos": self.physics.qpos.copy(), "ctrl": self.target.copy(), "hold_count": self.hold_count.copy(),
                "goal": self.goal.copy(), "cube_spawn": self.cube_spawn.copy()}

    def restore(self, i, snapshot):
        self.target[i] = snapshot["ctrl"]
        self.hold_count[i] = snapshot["hold_count"]
        self.goal[i], self.cube_spawn[i] = snapshot["goal"], snapshot["cube_spawn"]
        self.last_action[i] = 0.0
        self.physics.set_state(i, snapshot["qpos"], self.target[i])
        self.physics.set_site_pos(i, self.sites["goal"], self.goal[i])

    def init_goal(self, rng, cube_spawn):
        return cube_spawn.copy()

    # --- stepping -------------------------------------------------------------------------------
    def apply_action(self, action):
        """Delta joint targets: action in [-1, 1] moves each target by up to action_scale rad."""
        self.last_action = action
        self.target = np.clip(self.target + self.cfg.action_scale * action, self.ctrl_low, self.ctrl_high)
        self.physics.step(self.target)

    def read_state(self):
        """The current StepState of every env, without changing anything."""
        p, s = self.physics, self.sites
        cube = p.qpos[:, self.cube_qpos:self.cube_qpos + 7]
        grasped = p.touching[:, 0] & p.touching[:, 1]
        cube_height = cube[:, 2] - CUBE_HALF
        state = StepState(
            grasp_pos=p.site_xpos[:, s["grasp"]], moving_finger_pos=p.site_xpos[:, s["moving_finger"]],
            fixed_finger_pos=p.site_xpos[:, s["fixed_finger"]], cube_pos=cube[:, :3], cube_quat=cube[:, 3:],
            cube_height=cube_height, grasped=grasped, lifted=grasped & (cube_height >= self.cfg.lift_height),
            hold_count=self.hold_count.copy(), success=np.zeros(self.num_envs, dtype=bool),
            goal_pos=self.goal.copy(), action=self.last_action,
            lift_height=self.cfg.lift_height, hold_steps=self.cfg.hold_steps)
        state.success = self.evaluate(state)
        return state

    def step_state(self):
        """read_state after a physics step, advancing the hold counters (call once per step)."""
        state = self.read_state()
        self.hold_count = np.where(state.lifted, self.hold_count + 1, 0)
        state.hold_count = self.hold_count.copy()
        state.success = self.evaluate(state)
        return state

    @abc.abstractmethod
    def evaluate(self, state):
        """(N,) bool: the task's success test on a StepState."""

    def unstable(self):
        """(N,) bool: envs whose simulation state went non-finite or exploded this step."""
        return self.physics.unstable

    def metric_values(self, state):
        return {"max_cube_z": state.cube_pos[:, 2], "grasp_steps": state.grasped}

    def terminated(self, state):
        """A real termination (no bootstrapping past it): the cube left the table top, knocked or
        flung off. The episode cannot recover it, and a cube falling freely is no training data."""
        off_top = np.abs(state.cube_pos[:, :2] - TABLE_CENTER).max(axis=1) > TABLE_HALF
        return off_top | (state.cube_pos[:, 2] < -0.02)

    # --- observations -------------------------------------------------------------------------
    def state_layout(self):
        return STATE_LAYOUT + self.goal_layout

    def observe_state(self, state):
        p = self.physics
        parts = [p.qpos[:, self.arm_qpos], p.qvel[:, self.arm_dof], state.grasp_pos, state.moving_finger_pos,
                 state.fixed_finger_pos, state.cube_pos, state.cube_quat, state.cube_pos - state.grasp_pos,
                 p.qpos[:, self.arm_qpos[5:]] / GRIPPER_OPEN, state.grasped[:, None]]
        parts += self.goal_observation(state)
        return np.concatenate(parts, axis=1).astype(np.float32)

    def goal_observation(self, state):
        return []

    def goals(self, state):
        return state.cube_pos, state.goal_pos

    def render(self, i, camera, height, width):
        return self.physics.render(i, camera, height, width, show_sites=(2,) if self.show_goal else ())
