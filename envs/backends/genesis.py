"""Genesis backend (genesis-world==1.4.5, CPU): the same interface as MujocoBatch, on one batched scene.

Why: devlogs 000 and 002 trained on Genesis; this backend lets the same tasks, rewards and vector env
run on it (`TaskConfig(backend="genesis")`), for parity checks and Genesis-specific work. Training
from pixels stays on MuJoCo (Genesis CPU cameras are slow, and see the colour note below).

How: Genesis loads the SAME file as MuJoCo (envs/assets/tabletop.xml, which includes so101.xml) as
one MJCF entity: the arm, the table (a world geom) and the free cube form one kinematic "forest", so
arm/cube contacts are self-collisions of that entity (enable_self_collision=True; the MJCF <exclude>
pairs are honoured). An mujoco.MjModel of the same file is kept as `base`: names, indices,
keyframes, ctrl ranges and site/camera offsets come from it, and Genesis's per-env state is mapped
into MuJoCo's qpos/qvel layout joint by joint (the cube's free joint is pos + quat wxyz in both).
Sites are fixed offsets on bodies: site_xpos = link pose (Genesis) composed with MjModel site_pos.
The MJCF position actuators are parsed by Genesis itself into PD gains (kp, forcerange) and driven
with `control_dofs_position`; the constructor checks the parsed gains against the MjModel.

What differs from MuJoCo (all documented in docs/genesis.md):
- One scene for all envs: `set_state(i)` writes env i's qpos/targets with `envs_idx=[i]` and steps
  nothing, so env j stays bit-identical (tests/test_genesis.py checks it).
- Contacts after a step are Genesis's (the contacts of the last substep). After a reset nothing has
  been stepped, so the reset env's `touching` row comes from MuJoCo's collision detection on the same
  geometry (a scratch MjData of `base`), which is what MujocoBatch's mj_forward gives as well.
- Physics: Genesis's constraint solver (elliptic cones, torsional friction, impratio from the MJCF)
  is not MuJoCo's; trajectories differ in detail, the task's success rates should not (tested).
- Domain randomisation: friction (friction ratio of the geom) and mass (with inertia scaled) are per
  env. Colours and lights cannot be per env in one Genesis scene (the rasterizer shares one material
  per visual geom across envs): set_geom_rgba / set_light_diffuse store the values (self.geom_rgba,
  self.light_diffuse) but images show the MJCF's colours. Use MuJoCo for pixel DR.
- Cameras must exist before scene.build, at a fixed resolution: one Genesis camera per MJCF camera
  and per size in `camera_sizes` (render() raises for other sizes). Rendering uses split_envs, so a
  frame shows ONE env (devlog 000's video showed all 16 cubes), but Genesis renders all of
  `rendered_envs` in one call; the stack is cached until the state changes, so rendering every env
  once per step costs one render per env. Sites (e.g. the goal marker) are not drawn.
- gs.init can run once per process (backend gs.cpu, precision 64 so that states written equal states
  read); the first scene.build compiles kernels (minutes), later processes load them from the cache
  (~/.cache/quadrants, ~/.cache/genesis).
"""
import logging
import os
import sys
import time

import mujoco
import numpy as np

from envs.backends import quat_to_mat, to_numpy
from envs.backends.mujoco import SceneIndex

_log = logging.getLogger(__name__)


def init_genesis():
    """Genesis, initialised once per process (backend gs.cpu, precision 64 so that states written equal
    states read); every Genesis scene of the process (tasks and backend) shares it."""
    os.environ.setdefault("PYOPENGL_PLATFORM", "egl")  # headless offscreen rendering (Mesa on CPU machines)
    import genesis as gs
    if not getattr(gs, "_initialized", False):
        gs.init(backend=gs.cpu, precision="64", logging_level="warning")
    return gs


class GenesisBatch(SceneIndex):
    """The physics interface a task uses (see envs/backends/mujoco.py), on a batched Genesis scene."""

    name = "genesis"

    def __init__(self, scene_xml, num_envs, control_dt, contact_pairs=(), camera_sizes=((84, 84),),
                 rendered_envs=None):
        gs = init_genesis()
        self._gs = gs
        base = mujoco.MjModel.from_xml_path(str(scene_xml))
        self.base = base
        self.num_envs = num_envs
        self.substeps = max(1, int(round(control_dt / base.opt.timestep)))
        self.ctrl_range = base.actuator_ctrlrange.copy()
        if rendered_envs is None:
            rendered_envs = range(min(num_envs, 16))
        self.rendered_envs = [int(e) for e in rendered_envs]

        # MuJoCo's contact settings that Genesis has options for; the rest (solref, solimp) use
        # Genesis's defaults.
        elliptic = base.opt.cone == mujoco.mjtCone.mjCONE_ELLIPTIC
        cone = gs.friction_cone.elliptic if elliptic else gs.friction_cone.pyramidal
        self.scene = gs.Scene(
            sim_options=gs.options.SimOptions(dt=self.substeps * base.opt.timestep, substeps=self.substeps),
            rigid_options=gs.options.RigidOptions(
                enable_self_collision=True, enable_adjacent_collision=False, friction_cone=cone,
                enable_torsional_friction=bool((base.geom_condim >= 4).any()), impratio=float(base.opt.impratio),
                batch_links_info=True),     # per-env masses (domain randomisation)
            vis_options=gs.options.VisOptions(split_envs=True, shadow=False, plane_reflection=False,
                                              rendered_envs_idx=self.rendered_envs),
            show_viewer=False)
        self.entity = self.scene.add_entity(gs.morphs.MJCF(file=str(scene_xml)))
        self._cameras = {}
        for c in range(base.ncam):
            cname = mujoco.mj_id2name(base, mujoco.mjtObj.mjOBJ_CAMERA, c)
            for h, w in camera_sizes:
                cam = self.scene.add_camera(res=(int(w), int(h)), fov=float(base.cam_fovy[c]), GUI=False,
                                            near=0.005, far=20.0)
                self._cameras[(cname, int(h), int(w))] = (c, cam)
        cache = os.path.join(os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")), "quadrants")
        first = not os.path.isdir(cache)
        print(f"genesis: building the scene for {num_envs} envs; " + (
            f"compiling its kernels the first time takes minutes (cached in {cache} for next time)" if first
            else f"kernels from the cache in {cache} (~10 s)"), file=sys.stderr, flush=True)
        started = time.time()
        self.scene.build(n_envs=num_envs)
        print(f"genesis: scene built in {time.time() - started:.0f} s", file=sys.stderr, flush=True)
        self._solver = self.scene.sim.rigid_solver
        ent = self.entity

        # --- MuJoCo layout <-> Genesis layout -----------------------------------------------
        gq, mq, gd, md = [], [], [], []
        by_name = {j.name: j for j in ent.joints}
        for j in range(base.njnt):
            jname = mujoco.mj_id2name(base, mujoco.mjtObj.mjOBJ_JOINT, j)
            gj = by_name[jname]
            nq = {0: 7, 1: 4}.get(int(base.jnt_type[j]), 1)
            nv = {0: 6, 1: 3}.get(int(base.jnt_type[j]), 1)
            qs, dofs = list(np.ravel(gj.qs_idx_local)), list(np.ravel(gj.dofs_idx_local))
            assert len(qs) == nq and len(dofs) == nv, (jname, qs, dofs)
            gq += qs
            mq += range(base.jnt_qposadr[j], base.jnt_qposadr[j] + nq)
            gd += dofs
            md += range(base.jnt_dofadr[j], base.jnt_dofadr[j] + nv)
        self._gq, self._mq = np.array(gq), np.array(mq)     # qpos[:, mq] = genesis_qpos[:, gq]
        self._gd, self._md = np.array(gd), np.array(md)
        self._free_dofs = [base.jnt_dofadr[j] for j in range(base.njnt) if base.jnt_type[j] == 0]
        self._free_qpos = [base.jnt_qposadr[j] for j in range(base.njnt) if base.jnt_type[j] == 0]
        # Actuated dofs (Genesis local indices), in actuator order.
        act_joint = base.actuator_trnid[:, 0]
        self._act_dofs = np.array([int(np.ravel(by_name[mujoco.mj_id2name(
            base, mujoco.mjtObj.mjOBJ_JOINT, j)].dofs_idx_local)[0]) for j in act_joint])
        kp = to_numpy(ent.get_dofs_kp(self._act_dofs))
        kp = kp[0] if kp.ndim == 2 else kp
        if not np.allclose(kp, base.actuator_gainprm[:, 0]):
            raise RuntimeError(f"Genesis parsed actuator gains {kp} differ from the MJCF's "
                               f"{base.actuator_gainprm[:, 0]}")

        # Bodies -> links (sites, cameras, masses); world / static bodies map to None (fixed pose).
        links = {l.name: l for l in ent.links}
        self._body_link = {}
        for b in range(base.nbody):
            bname = mujoco.mj_id2name(base, mujoco.mjtObj.mjOBJ_BODY, b)
            self._body_link[b] = links.get(bname)
            if self._body_link[b] is None and b != 0 and base.body_weldid[b] != 0:
                raise KeyError(f"no Genesis link for moving body {bname!r}")
        # Geoms -> Genesis global geom indices (collision geoms only), matched on body and local pose.
        self._geom_gs = {}
        for g in range(base.ngeom):
            link = self._body_link.get(int(base.geom_bodyid[g]))
            if link is None:
                continue
            for gg in link.geoms:
                if np.allclose(gg.init_pos, base.geom_pos[g], atol=1e-6):
                    self._geom_gs[g] = gg.idx
                    break
        self._ngeom_gs = self._solver.n_geoms

        self.qpos = np.zeros((num_envs, base.nq))
        self.qvel = np.zeros((num_envs, base.nv))
        self.site_xpos = np.zeros((num_envs, base.nsite, 3))
        self._site_pos = np.tile(base.site_pos, (num_envs, 1, 1))        # per env (set_site_pos)
        self._site_rot = quat_to_mat(base.site_quat)                     # (nsite, 3, 3)
        self._site_links = sorted({l.idx_local for l in (self._body_link[int(b)] for b in base.site_bodyid)
                                   if l is not None})
        self._link_slot = {li: k for k, li in enumerate(self._site_links)}
        self._site_slot = np.array([self._link_slot[self._body_link[int(b)].idx_local]
                                    if self._body_link[int(b)] is not None else -1 for b in base.site_bodyid])
        self._link_rot = np.zeros((num_envs, len(self._site_links), 3, 3))
        self._link_pos = np.zeros((num_envs, len(self._site_links), 3))

        ids = [(self.geom_id(a), self.geom_id(b)) for a, b in contact_pairs]
        self._pairs_mj = ids
        missing = [p for p, (a, b) in zip(contact_pairs, ids) if a not in self._geom_gs or b not in self._geom_gs]
        if missing:
            raise KeyError(f"no Genesis collision geom for contact pair(s) {missing}")
        gpairs = [(self._geom_gs[a], self._geom_gs[b]) for a, b in ids]
        n = self._ngeom_gs
        self._pair_codes = np.array([a * n + b for a, b in gpairs] + [b * n + a for a, b in gpairs], dtype=np.int64)
        self._mj_codes = np.array([a * base.ngeom + b for a, b in ids] + [b * base.ngeom + a for a, b in ids],
                                  dtype=np.int64)
        self.touching = np.zeros((num_envs, len(ids)), dtype=bool)
        self.unstable = np.zeros(num_envs, dtype=bool)
        self._scratch = mujoco.MjData(base)

        # Domain randomisation values Genesis cannot show per env (stored, see module docstring).
        self.geom_rgba = np.tile(base.geom_rgba, (num_envs, 1, 1))
        self.light_diffuse = np.tile(base.light_diffuse, (num_envs, 1, 1))
        self._warned_colours = False

        # Cameras: fixed ones get their world pose, body ones are attached to their link.
        for (cname, h, w), (c, cam) in self._cameras.items():
            T = np.eye(4)
            T[:3, :3] = quat_to_mat(base.cam_quat[c])
            T[:3, 3] = base.cam_pos[c]
            link = self._body_link.get(int(base.cam_bodyid[c]))
            if link is None:
                cam.set_pose(transform=T)
            else:
                cam.attach(link, T)
        self._frames = {}
        self._version = 0
        self._ctrl = np.zeros((num_envs, base.nu))
        self._links_idx = [l.idx for l in ent.links]

        # Initial state: MuJoCo's qpos0 with targets at the actuated joints' qpos0.
        for i in range(num_envs):
            self.set_state(i, base.qpos0.copy(), base.qpos0[base.jnt_qposadr[act_joint]])

    # --- stepping and state -------------------------------------------------------------------
    def step(self, ctrl):
        """Advance every env by one control step (substeps physics steps) with targets ctrl (N, nu)."""
        self._ctrl[:] = ctrl
        self.entity.control_dofs_position(self._ctrl, self._act_dofs)
        self.scene.step()
        self._read(None)
        self._read_contacts()
        self.unstable = ~(np.isfinite(self.qpos).all(1) & np.isfinite(self.qvel).all(1)) | \
            (np.abs(self.qvel) > 1e3).any(1)
        self._version += 1

    def set_state(self, i, qpos, ctrl):
        """Put env i at rest in configuration qpos with actuator targets ctrl; other envs untouched."""
        gq = np.empty(len(self._gq))
        gq[self._gq] = np.asarray(qpos)[self._mq]
        self.entity.set_qpos(gq[None], envs_idx=[i], zero_velocity=True)
        self._ctrl[i] = ctrl
        self.entity.control_dofs_position(self._ctrl[i][None], self._act_dofs, envs_idx=[i])
        self.unstable[i] = False
        self._read([i])
        d = self._scratch   # contacts at a state nothing has stepped: MuJoCo's detection on the same geometry
        d.qpos[:] = qpos
        mujoco.mj_kinematics(self.base, d)
        mujoco.mj_collision(self.base, d)
        if len(self._mj_codes):
            codes = d.contact.geom[:d.ncon] @ np.array([self.base.ngeom, 1])
            hit = (codes[:, None] == self._mj_codes).any(axis=0)
            self.touching[i] = hit.reshape(2, -1).any(axis=0)
        self._version += 1

    def get_state(self):
        """Every env's state and per-env parameters, to continue later with set_state_all.

        Unlike MujocoBatch's, this does not hold the solver's warm starts or contact caches, so exactness
        is not guaranteed; measured: qpos within 4e-18 of the uninterrupted run 10 steps after a restore
        (lift, 16 envs)."""
        ent, sol = self.entity, self._solver
        return {"qpos": to_numpy(ent.get_qpos()).copy(), "vel": to_numpy(ent.get_dofs_velocity()).copy(),
                "ctrl": self._ctrl.copy(), "friction_ratio": to_numpy(sol.get_geoms_friction_ratio()).copy(),
                "mass": to_numpy(sol.get_links_mass(self._links_idx)).copy(), "site_pos": self._site_pos.copy(),
                "geom_rgba": self.geom_rgba.copy(), "light_diffuse": self.light_diffuse.copy(),
                "touching": self.touching.copy(), "unstable": self.unstable.copy()}

    def set_state_all(self, state):
        ent, sol = self.entity, self._solver
        # Inertia follows the mass (scale_inertia), as in set_body_mass: Genesis refuses to write the inertia of
        # a free body loaded with align=True, and only masses are randomised.
        sol.set_links_mass(state["mass"], links_idx=self._links_idx, scale_inertia=True)
        sol.set_geoms_friction_ratio(state["friction_ratio"])
        ent.set_qpos(state["qpos"], zero_velocity=False)
        ent.set_dofs_velocity(state["vel"])
        self._ctrl[:] = state["ctrl"]
        ent.control_dofs_position(self._ctrl, self._act_dofs)
        self._site_pos[:] = state["site_pos"]
        self.geom_rgba[:], self.light_diffuse[:] = state["geom_rgba"], state["light_diffuse"]
        self.touching[:], self.unstable[:] = state["touching"], state["unstable"]
        self._read(None)
        self._version += 1

    def sync(self):
        """Re-read every env's qpos/qvel/sites from Genesis (tests use it: the arrays are otherwise
        refreshed only for the envs a call touched)."""
        self._read(None)

    def _read(self, envs):
        ent = self.entity
        idx = slice(None) if envs is None else envs
        q = to_numpy(ent.get_qpos(envs_idx=envs))
        v = to_numpy(ent.get_dofs_velocity(envs_idx=envs))
        qpos = np.empty((q.shape[0], self.base.nq))
        qvel = np.empty((v.shape[0], self.base.nv))
        qpos[:, self._mq] = q[:, self._gq]
        qvel[:, self._md] = v[:, self._gd]
        self.qpos[idx] = qpos
        self.qvel[idx] = qvel
        if self._site_links:
            pos = to_numpy(ent.get_links_pos(self._site_links, envs_idx=envs))
            rot = quat_to_mat(to_numpy(ent.get_links_quat(self._site_links, envs_idx=envs)))
            self._link_rot[idx] = rot
            self._link_pos[idx] = pos
        self._update_sites(idx)

    def _update_sites(self, idx):
        for s, slot in enumerate(self._site_slot):
            if slot < 0:
                self.site_xpos[idx, s] = self._site_pos[idx, s]
            else:
                self.site_xpos[idx, s] = self._link_pos[idx, slot] + np.einsum(
                    "nij,nj->ni", self._link_rot[idx, slot], self._site_pos[idx, s])

    def _read_contacts(self):
        if not len(self._pair_codes):
            return
        c = self._solver.collider.get_contacts(as_tensor=True, to_torch=True, is_padded=True)
        ga, gb, n = to_numpy(c["geom_a"]), to_numpy(c["geom_b"]), to_numpy(c["n_contacts"]).reshape(-1)
        ga, gb = ga.reshape(self.num_envs, -1), gb.reshape(self.num_envs, -1)
        live = np.arange(ga.shape[1])[None, :] < n[:, None]
        codes = np.where(live, ga.astype(np.int64) * self._ngeom_gs + gb, -1)
        hit = (codes[:, :, None] == self._pair_codes).any(axis=1)       # (N, 2 * npairs)
        self.touching[:] = hit.reshape(self.num_envs, 2, -1).any(axis=1)

    def site_xmat_of(self, site):
        """(N, 3, 3) orientation of a site in every env."""
        slot = self._site_slot[site]
        if slot < 0:
            return np.tile(self._site_rot[site], (self.num_envs, 1, 1))
        return self._link_rot[:, slot] @ self._site_rot[site]

    # --- per-env model parameters (domain randomisation) -----------------------------------------
    def set_geom_friction(self, i, geom, friction):
        base = self.base.geom_friction[geom, 0]
        self._solver.set_geoms_friction_ratio(np.array([[friction / base]]), geoms_idx=[self._geom_gs[geom]],
                                              envs_idx=[i])

    def set_body_mass(self, i, body, mass):
        link = self._body_link[body]
        self._solver.set_links_mass(np.array([[mass]]), links_idx=[link.idx], envs_idx=[i], scale_inertia=True)

    def _colour_note(self):
        if not self._warned_colours:
            _log.warning("Genesis backend: per-env colours/lights are stored but not rendered (one material per "
                         "visual geom across envs); images show the MJCF colours")
            self._warned_colours = True

    def set_geom_rgba(self, i, geom, rgba):
        self.geom_rgba[i, geom] = rgba
        self._colour_note()

    def set_light_diffuse(self, i, light, diffuse):
        self.light_diffuse[i, light] = diffuse
        self._colour_note()

    def set_site_pos(self, i, site, pos):
        self._site_pos[i, site] = pos
        self._update_sites([i])

    # --- cameras ------------------------------------------------------------------------------
    def render(self, i, camera, height, width, show_sites=()):
        """RGB image (H, W, 3) uint8 of env i alone from a named camera (sites are not drawn)."""
        key = (camera, int(height), int(width))
        if key not in self._cameras:
            raise ValueError(f"Genesis cameras are created before the scene is built: {key} is not one of "
                             f"{sorted(self._cameras)} (pass camera_sizes=... to GenesisBatch)")
        if i not in self.rendered_envs:
            raise ValueError(f"env {i} is not rendered; rendered_envs={self.rendered_envs}")
        cached = self._frames.get(key)
        if cached is None or cached[0] != self._version:
            cam = self._cameras[key][1]
            if cam._attached_link is not None:
                cam.move_to_attach()
            rgb = cam.render(rgb=True, force_render=True)[0]
            rgb = np.asarray(rgb).reshape(len(self.rendered_envs), height, width, -1)[..., :3]
            cached = (self._version, rgb)
            self._frames[key] = cached
        return cached[1][self.rendered_envs.index(i)].astype(np.uint8, copy=True)

    def close(self):
        self._frames = {}
        try:
            self.scene.destroy()
        except Exception:  # noqa: BLE001 - best effort: gs has no per-scene teardown guarantee
            pass
