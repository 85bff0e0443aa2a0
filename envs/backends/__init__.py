"""Physics backends: one module per backend, each with a batch class of the same interface
(envs/backends/mujoco.py documents it). Tasks build their physics through `make_physics`.

A backend module is imported only when it is chosen, by name: MuJoCo code never imports Genesis.
"""
import importlib

import numpy as np

# backend name -> "module:class" of its batch of N envs of one scene.
BACKENDS = {"mujoco": "envs.backends.mujoco:MujocoBatch",
            "genesis": "envs.backends.genesis:GenesisBatch"}


def make_physics(backend, model_file, num_envs, dt, **kw):
    """N envs of the scene in `model_file` on `backend`, one control step of `dt` seconds each.
    kw: the batch's options, e.g. contact_pairs (pairs of geom names whose contact the task reads)
    and camera_sizes ((height, width) of every image render() will be asked for)."""
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; valid backends: {list(BACKENDS)}")
    module, cls = BACKENDS[backend].split(":")
    return getattr(importlib.import_module(module), cls)(model_file, num_envs, dt, **kw)


def to_numpy(t):
    """A backend's array (a torch tensor on Genesis) as a numpy array."""
    return t.detach().cpu().numpy() if hasattr(t, "detach") else np.asarray(t)


def quat_to_mat(q):
    """(..., 4) wxyz -> (..., 3, 3)."""
    w, x, y, z = np.moveaxis(q, -1, 0)
    return np.stack([
        np.stack([1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)], -1),
        np.stack([2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)], -1),
        np.stack([2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)], -1),
    ], -2)
