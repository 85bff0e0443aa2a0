"""MuJoCo backend: N independent copies of one scene, stepped as a batch in one process.

Each env has its own MjModel copy (so domain randomisation of friction, mass and colours is per
env) and its own MjData. Resetting env i writes env i's state and nothing else: there is no
shared scene to step, so the partial-reset bug of devlog 000 cannot happen here.

The loop over envs calls `mj_step(nstep=substeps)`, so the physics of one control step runs in C
without returning to Python; what Python adds per env is a few array copies (see
benchmarks/env_speed.py for how close this gets to the raw mj_step bound).
"""
import copy
import os

os.environ.setdefault("MUJOCO_GL", "egl")  # headless offscreen rendering (EGL/Mesa on CPU machines)
# Mesa's software rasteriser starts a thread per core; for 84x84 frames the threads cost more than
# they save and fight the training process for cores (benchmarks/env_speed.py: 903 vs 670 steps/s).
os.environ.setdefault("LP_NUM_THREADS", "1")
import mujoco  # noqa: E402
import numpy as np  # noqa: E402


_INSTABILITY_WARNINGS = np.array([mujoco.mjtWarning.mjWARN_BADQACC, mujoco.mjtWarning.mjWARN_BADQVEL,
                                  mujoco.mjtWarning.mjWARN_BADQPOS], dtype=int)


class SceneIndex:
    """Names -> indices in the scene's MjModel (`self.base`): every backend loads the same MJCF, so
    the tasks address bodies, joints and sites the same way on all of them."""

    def _id(self, kind, name):
        i = mujoco.mj_name2id(self.base, kind, name)
        if i < 0:
            raise KeyError(f"no {kind.name[6:].lower()} named {name!r} in the scene")
        return i

    def geom_id(self, name):
        return self._id(mujoco.mjtObj.mjOBJ_GEOM, name)

    def site_id(self, name):
        return self._id(mujoco.mjtObj.mjOBJ_SITE, name)

    def body_id(self, name):
        return self._id(mujoco.mjtObj.mjOBJ_BODY, name)

    def joint_qpos_adr(self, name):
        return int(self.base.jnt_qposadr[self._id(mujoco.mjtObj.mjOBJ_JOINT, name)])

    def joint_dof_adr(self, name):
        return int(self.base.jnt_dofadr[self._id(mujoco.mjtObj.mjOBJ_JOINT, name)])

    def keyframe_qpos(self, name):
        return self.base.key_qpos[self._id(mujoco.mjtObj.mjOBJ_KEY, name)].copy()


class MujocoBatch(SceneIndex):
    """The physics interface a task uses; the Genesis backend implements the same methods."""

    name = "mujoco"

    def __init__(self, scene_xml, num_envs, control_dt, contact_pairs=(), camera_sizes=()):
        """camera_sizes: accepted for the common interface; MuJoCo renders any size on demand."""
        base = mujoco.MjModel.from_xml_path(str(scene_xml))
        self.substeps = max(1, int(round(control_dt / base.opt.timestep)))
        self.models = [copy.deepcopy(base) for _ in range(num_envs)]
        self.datas = [mujoco.MjData(m) for m in self.models]
        self.base = base
        self.num_envs = num_envs
        self.ctrl_range = base.actuator_ctrlrange.copy()
        # Batched copies of the state the tasks read, refreshed after every step or reset.
        self.qpos = np.zeros((num_envs, base.nq))
        self.qvel = np.zeros((num_envs, base.nv))
        self.site_xpos = np.zeros((num_envs, base.nsite, 3))
        # Contacts of interest, e.g. (cube, fixed_jaw): pair k is touching in env i -> touching[i, k].
        # A contact (g1, g2) is coded g1 * ngeom + g2, in both orders, and matched by one comparison.
        ids = [(self.geom_id(a), self.geom_id(b)) for a, b in contact_pairs]
        self._pair_codes = np.array([a * base.ngeom + b for a, b in ids] + [b * base.ngeom + a for a, b in ids],
                                    dtype=np.int64)
        self._code_weights = np.array([base.ngeom, 1])
        self.touching = np.zeros((num_envs, len(ids)), dtype=bool)
        # MuJoCo answers a blown-up simulation by silently resetting that env's data (with only a
        # printed warning); we count those warnings so the env can stop with a clear error instead.
        self.unstable = np.zeros(num_envs, dtype=bool)
        self._renderers = {}
        for i in range(num_envs):
            mujoco.mj_resetData(self.models[i], self.datas[i])
            mujoco.mj_forward(self.models[i], self.datas[i])
            self._read(i)

    # --- stepping and state -----------------------------------------------------------------
    def step(self, ctrl):
        """Advance every env by one control step (substeps physics steps) with targets ctrl (N, nu)."""
        for i, (m, d) in enumerate(zip(self.models, self.datas)):
            d.ctrl[:] = ctrl[i]
            mujoco.mj_step(m, d, self.substeps)
            self.unstable[i] = d.warning.number[_INSTABILITY_WARNINGS].any()
            self._refresh(m, d)
            self._read(i)

    def set_state(self, i, qpos, ctrl):
        """Put env i at rest in configuration qpos with actuator targets ctrl; other envs untouched."""
        m, d = self.models[i], self.datas[i]
        mujoco.mj_resetData(m, d)  # also clears warm-starts and warnings: a reset state evolves deterministically
        d.qpos[:] = qpos
        d.ctrl[:] = ctrl
        mujoco.mj_forward(m, d)
        self.unstable[i] = False
        self._read(i)

    def get_state(self):
        """Every env's model (domain randomisation lives there) and data, warm-starts included:
        set_state of a copy continues the simulation bit for bit (checkpoints use this)."""
        return {"models": copy.deepcopy(self.models), "datas": copy.deepcopy(self.datas)}

    def set_state_all(self, state):
        self.models, self.datas = copy.deepcopy(state["models"]), copy.deepcopy(state["datas"])
        for i, d in enumerate(self.datas):
            self.unstable[i] = d.warning.number[_INSTABILITY_WARNINGS].any()
            self._read(i)

    @staticmethod
    def _refresh(m, d):
        # After mj_step, positions are integrated but frames and contacts still describe the state
        # before the last substep. Recompute both so observations and rewards see the same state.
        mujoco.mj_kinematics(m, d)
        mujoco.mj_collision(m, d)

    def _read(self, i):
        d = self.datas[i]
        self.qpos[i] = d.qpos
        self.qvel[i] = d.qvel
        self.site_xpos[i] = d.site_xpos
        if len(self._pair_codes):
            codes = d.contact.geom @ self._code_weights
            hit = (codes[:, None] == self._pair_codes).any(axis=0)
            self.touching[i] = hit.reshape(2, -1).any(axis=0)

    def site_xmat_of(self, site):
        """(N, 3, 3) orientation of a site in every env (read on demand: only controllers need it)."""
        return np.stack([d.site_xmat[site].reshape(3, 3) for d in self.datas])

    # --- per-env model parameters (domain randomisation) -------------------------------------
    def set_geom_friction(self, i, geom, friction):
        self.models[i].geom_friction[geom, 0] = friction

    def set_body_mass(self, i, body, mass):
        m = self.models[i]
        scale = mass / m.body_mass[body]
        m.body_mass[body] = mass
        m.body_inertia[body] *= scale  # keep the inertia consistent with the new mass

    def set_geom_rgba(self, i, geom, rgba):
        self.models[i].geom_rgba[geom] = rgba

    def set_light_diffuse(self, i, light, diffuse):
        self.models[i].light_diffuse[light] = diffuse

    def set_site_pos(self, i, site, pos):
        m, d = self.models[i], self.datas[i]
        m.site_pos[site] = pos
        mujoco.mj_kinematics(m, d)
        self.site_xpos[i] = d.site_xpos

    # --- cameras ------------------------------------------------------------------------------
    def render(self, i, camera, height, width, show_sites=()):
        """RGB image (H, W, 3) uint8 of env i from a named camera; show_sites: site groups to draw."""
        key = (height, width, tuple(show_sites))
        if key not in self._renderers:
            self._renderers[key] = Renderer(self.base, height, width, show_sites)
        m, d = self.models[i], self.datas[i]
        mujoco.mj_comPos(m, d)  # camera poses are computed here, not in mj_kinematics
        mujoco.mj_camlight(m, d)
        return self._renderers[key].render(m, d, camera)

    def close(self):
        for r in self._renderers.values():
            r.close()
        self._renderers = {}


def _gl_context_class():
    """The offscreen GL context named by MUJOCO_GL (default egl), whatever was imported first."""
    backend = os.environ.get("MUJOCO_GL", "egl").lower()
    if backend == "osmesa":
        from mujoco.osmesa import GLContext
    elif backend == "glfw":
        from mujoco.glfw import GLContext
    else:
        from mujoco.egl import GLContext
    return GLContext


class Renderer:
    """A minimal offscreen renderer that can draw any of the batch's models.

    mujoco.Renderer binds one model; ours takes (model, data) per call so that per-env colour
    randomisation shows up. Shadows, reflections, skybox and multisampling are off: with
    primitive geoms an 84x84 frame then costs well under a millisecond on a CPU.
    """

    def __init__(self, model, height, width, show_sites=()):
        GLContext = _gl_context_class()
        self.height, self.width = height, width
        # An offscreen buffer the size of the image: clearing and reading a larger one costs more
        # than drawing the scene.
        sized = copy.copy(model)
        sized.vis.global_.offwidth, sized.vis.global_.offheight = width, height
        self._gl = GLContext(width, height)
        self._gl.make_current()
        self._context = mujoco.MjrContext(sized, mujoco.mjtFontScale.mjFONTSCALE_100)
        mujoco.mjr_setBuffer(mujoco.mjtFramebuffer.mjFB_OFFSCREEN, self._context)
        self._scene = mujoco.MjvScene(model, maxgeom=500)
        for flag in (mujoco.mjtRndFlag.mjRND_SHADOW, mujoco.mjtRndFlag.mjRND_REFLECTION,
                     mujoco.mjtRndFlag.mjRND_SKYBOX):
            self._scene.flags[flag] = False
        self._option = mujoco.MjvOption()
        self._option.sitegroup[:] = [g in show_sites for g in range(len(self._option.sitegroup))]
        self._camera = mujoco.MjvCamera()
        self._camera.type = mujoco.mjtCamera.mjCAMERA_FIXED
        self._rect = mujoco.MjrRect(0, 0, width, height)
        self._buffer = np.empty((height, width, 3), dtype=np.uint8)

    def render(self, model, data, camera):
        self._gl.make_current()
        self._camera.fixedcamid = camera if isinstance(camera, int) else mujoco.mj_name2id(
            model, mujoco.mjtObj.mjOBJ_CAMERA, camera)
        mujoco.mjv_updateScene(model, data, self._option, None, self._camera,
                               mujoco.mjtCatBit.mjCAT_ALL, self._scene)
        mujoco.mjr_render(self._rect, self._scene, self._context)
        mujoco.mjr_readPixels(self._buffer, None, self._rect, self._context)
        return np.flipud(self._buffer).copy()  # OpenGL's origin is bottom-left

    def close(self):
        if self._context is not None:
            self._gl.make_current()
            self._context.free()
            self._gl.free()
            self._context = None
