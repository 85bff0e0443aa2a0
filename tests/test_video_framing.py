"""Bug 6, "Videos crop the task": the arm tasks' video camera (`front`, the first camera of the
render stage) must keep the whole motion in view, in front of a scene that is not a black void.

Every point that matters is projected through the camera's pinhole model (its pose from MuJoCo,
its vertical field of view, the render stage's 240x320 image) and must land inside the image with a
margin: the bounding box of every arm geom, the cube and, for pick_place, the goal marker. They are
checked along scripted lift and pick_place episodes, and over the arm's whole reach: random joint
configurations (any pan, lift, elbow, wrist) that keep the arm above the table, each holding the
cube in its jaws, plus hand-picked extremes (straight up, stretched forward, to each side, leaning
back) and the cube lifted 0.15 m above any point of the goal region.

The scene file is the module's SCENE, so the same checks can be run against another version of it.
"""
import mujoco
import numpy as np
import pytest

import envs
from envs.backends.mujoco import MujocoBatch
from envs.controllers.picker import ScriptedPicker
from envs.tasks.base import ASSETS

SCENE = ASSETS / "tabletop.xml"
CAMERA = "front"
HEIGHT, WIDTH = 240, 320          # the render stage's frame (params.yaml render: height, width)
MARGIN = 4                        # px every point must stay inside the image's border
ARM_BODIES = ("base", "shoulder", "upper_arm", "forearm", "wrist", "gripper", "moving_jaw")
UNIT_BOX = np.array([[i, j, k] for i in (-1, 1) for j in (-1, 1) for k in (-1, 1)], dtype=float)


class Projector:
    """The video camera of one scene file, and the 3-D points that must stay in its frame."""

    def __init__(self, scene=None):
        self.m = mujoco.MjModel.from_xml_path(str(scene or SCENE))
        self.d = mujoco.MjData(self.m)
        m = self.m
        self.cam = mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_CAMERA, CAMERA)
        assert self.cam >= 0, f"no camera {CAMERA!r} in {scene or SCENE}"
        arm = {mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_BODY, b) for b in ARM_BODIES}
        self.arm_geoms = [g for g in range(m.ngeom) if m.geom_bodyid[g] in arm]
        self.cube_geom = mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_GEOM, "cube")
        self.goal_site = mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_SITE, "goal")
        self.grasp_site = mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_SITE, "grasp")
        self.cube_qpos = m.jnt_qposadr[mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_JOINT, "cube")]

    def set(self, qpos, goal=None):
        m, d = self.m, self.d
        d.qpos[:] = qpos
        if goal is not None:
            m.site_pos[self.goal_site] = goal     # the goal site sits on the world body
        mujoco.mj_kinematics(m, d)
        mujoco.mj_comPos(m, d)
        mujoco.mj_camlight(m, d)                  # camera poses

    def box(self, g):
        """The 8 corners of geom g's bounding box, in the world."""
        m, d = self.m, self.d
        size, kind = m.geom_size[g], m.geom_type[g]
        if kind == mujoco.mjtGeom.mjGEOM_CAPSULE:
            half = np.array([size[0], size[0], size[1] + size[0]])
        elif kind == mujoco.mjtGeom.mjGEOM_CYLINDER:
            half = np.array([size[0], size[0], size[1]])
        else:
            half = size[:3]
        return d.geom_xpos[g] + (UNIT_BOX * half) @ d.geom_xmat[g].reshape(3, 3).T

    def arm_points(self):
        return np.concatenate([self.box(g) for g in self.arm_geoms])

    def scene_points(self, goal=False):
        """Arm, cube and (goal=True) the goal marker, as they are now."""
        pts = [self.arm_points(), self.box(self.cube_geom)]
        if goal:
            r = self.m.site_size[self.goal_site][0]
            pts.append(self.d.site_xpos[self.goal_site] + UNIT_BOX * r)
        return np.concatenate(pts)

    def project(self, points):
        """(u, v) pixel coordinates (u right, v down) and depth of world points in the video frame."""
        pos = self.d.cam_xpos[self.cam]
        rot = self.d.cam_xmat[self.cam].reshape(3, 3)      # columns: camera x (right), y (up), z (backwards)
        local = (np.asarray(points) - pos) @ rot
        depth = -local[:, 2]
        f = (HEIGHT / 2) / np.tan(np.radians(self.m.cam_fovy[self.cam]) / 2)
        safe = np.where(depth > 1e-9, depth, 1e-9)
        u = WIDTH / 2 + f * local[:, 0] / safe
        v = HEIGHT / 2 - f * local[:, 1] / safe
        return u, v, depth

    def outside(self, points):
        """The points that are not inside the frame with MARGIN px to spare (or behind the camera)."""
        u, v, depth = self.project(points)
        bad = (depth <= 0.05) | (u < MARGIN) | (u > WIDTH - MARGIN) | (v < MARGIN) | (v > HEIGHT - MARGIN)
        return np.asarray(points)[bad], u[bad], v[bad]


def assert_in_frame(proj, points, what):
    pts, u, v = proj.outside(points)
    assert not len(pts), (f"{what}: {len(pts)} point(s) outside the {CAMERA} camera's {WIDTH}x{HEIGHT} frame, "
                          f"e.g. {np.round(pts[0], 3).tolist()} at pixel ({u[0]:.0f}, {v[0]:.0f})")


def full_reach_poses(proj, n=2000, seed=0):
    """Random arm configurations over the whole joint ranges that keep every arm geom above the
    table top (z = 0), plus hand-picked extremes."""
    m = proj.m
    rng = np.random.default_rng(seed)
    lo, hi = m.jnt_range[:6, 0], m.jnt_range[:6, 1]
    poses = [[0, 0, -1.57, 0, 0, 0.5],        # straight up
             [0, 0, 0, 0, 0, 0.5],            # upper arm up, forearm and gripper forward
             [0, 1.45, 0.1, 0, 0, 0.5],       # stretched forward over the table
             [1.92, 0.9, -0.8, 0, 0, 0.5],    # stretched to the left
             [-1.92, 0.9, -0.8, 0, 0, 0.5],   # and to the right
             [0, -1.5, 0, 0, 0, 0.5],         # leaning back
             [0, 0.2, -1.2, 0.4, 0, 0.0]]     # cube held high
    while len(poses) < n:
        q = rng.uniform(lo, hi)
        proj.set(np.concatenate([q, proj.m.key_qpos[0][6:]]))
        if proj.arm_points()[:, 2].min() >= -1e-6:
            poses.append(q)
    return np.array(poses, dtype=float)


@pytest.fixture(scope="module")
def proj():
    return Projector()


@pytest.mark.parametrize("task,reward", [("lift", "v19"), ("pick_place", "staged")])
def test_scripted_episodes_stay_in_frame(proj, task, reward):
    # Two seeded scripted episodes per task (domain randomisation on): the arm reaching, the cube
    # grasped and lifted (pick_place: carried to a goal, half of them in the air).
    for seed in (0, 1):
        vec = envs.make_vec_env(task, reward, num_envs=1, seed=seed, max_episode_steps=200)
        assert vec.task.cameras[0] == CAMERA, "the render stage's first camera is the one framed here"
        picker = ScriptedPicker(vec)
        vec.reset(seed=seed)
        picker.reset()
        top = 0.0
        for step in range(200):
            vec.step(picker.act())
            s = vec.task.read_state()
            top = max(top, float(s.cube_pos[0, 2]))
            proj.set(vec.task.physics.qpos[0], goal=s.goal_pos[0])
            assert_in_frame(proj, proj.scene_points(goal=task == "pick_place"), f"{task} seed {seed} step {step}")
        vec.close()
        assert top > 0.05, f"{task} seed {seed}: the scripted episode never lifted the cube (max z {top:.3f})"


def test_the_arm_at_full_reach_holding_the_cube_stays_in_frame(proj):
    key = proj.m.key_qpos[0].copy()
    for q in full_reach_poses(proj):
        qpos = key.copy()
        qpos[:6] = q
        proj.set(qpos)
        qpos[proj.cube_qpos:proj.cube_qpos + 3] = proj.d.site_xpos[proj.grasp_site]   # the cube in its jaws
        proj.set(qpos)
        assert_in_frame(proj, np.concatenate([proj.arm_points(), proj.box(proj.cube_geom)]),
                        f"arm pose {np.round(q, 2).tolist()}")


def test_the_goal_region_and_a_lifted_cube_stay_in_frame(proj):
    # pick_place goals: x 0.16-0.26, y -0.1..0.1, up to 8 cm above the table; lift: the cube held
    # up to 0.15 m above the table anywhere over that region.
    qpos = proj.m.key_qpos[0].copy()
    for x in (0.16, 0.26):
        for y in (-0.1, 0.1):
            for z in (0.0125, 0.0925, 0.1625):
                qpos[proj.cube_qpos:proj.cube_qpos + 3] = x, y, z
                proj.set(qpos, goal=(x, y, z))
                assert_in_frame(proj, proj.scene_points(goal=True), f"cube/goal at {(x, y, z)}")


def test_the_video_background_is_a_scene_not_a_black_void():
    batch = MujocoBatch(SCENE, 1, 0.02)
    try:
        frame = batch.render(0, CAMERA, HEIGHT, WIDTH).astype(float)
    finally:
        batch.close()
    top = frame[:HEIGHT // 8].mean()
    black = (frame.max(axis=2) < 20).mean()
    assert top > 80, f"the top of the {CAMERA} frame is dark (mean {top:.0f} of 255): nothing behind the table"
    assert black < 0.01, f"{black:.0%} of the {CAMERA} frame is black"
