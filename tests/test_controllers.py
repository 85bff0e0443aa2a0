"""The controllers registry (envs/controllers/) and the layering of envs/: a task knows neither its
controller nor the sanity checks, a controller knows neither the vector env nor the sanity stage,
and the registry imports its entries only by name. Stage code dependencies follow imports, so
each of these keeps an edit of one file from rerunning stages that do not run it."""
import subprocess
import sys

import numpy as np
import pytest

import envs.tasks
from envs import controllers

SANITY_AND_CONTROLLERS = {"envs.sanity", "envs.controllers", *(m.split(":")[0] for m in controllers.CONTROLLERS.values())}


def _imported_after(statement):
    code = f"import sys; {statement}; print(' '.join(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    return set(out.split())


@pytest.mark.parametrize("name", sorted(envs.tasks.TASKS))
def test_importing_a_task_imports_no_controller_nor_the_sanity_checks(name):
    module = envs.tasks.TASKS[name].task_class.split(":")[0]
    assert not _imported_after(f"import {module}") & SANITY_AND_CONTROLLERS


@pytest.mark.parametrize("name", sorted(controllers.CONTROLLERS))
def test_importing_a_controller_imports_no_other_nor_what_builds_on_it(name):
    loaded = _imported_after(f"import {controllers.module(name)}")
    others = {controllers.module(n) for n in controllers.CONTROLLERS if n != name}
    assert not loaded & (others | {"envs.sanity", "envs.vector", "envs.residual"})


def test_importing_the_registry_imports_no_controller():
    loaded = _imported_after("import envs.controllers")
    assert not loaded & {controllers.module(n) for n in controllers.CONTROLLERS}


def test_every_task_has_a_registered_controller_with_the_controller_interface():
    assert set(controllers.TASK_CONTROLLERS) == set(envs.tasks.TASKS)
    for task in envs.tasks.TASKS:
        name = controllers.controller_of(task)
        cls = controllers.get(name)
        assert all(callable(getattr(cls, m, None)) for m in ("reset", "act", "get_state", "set_state"))
        assert callable(controllers.sanity_checks(name))
        assert controllers.module(name) == cls.__module__


def test_unknown_controller_names_the_valid_ones():
    with pytest.raises(ValueError, match=r"unknown controller 'pickr'; valid controllers: \['dragger', 'picker', 'stand'\]"):
        controllers.get("pickr")
    assert controllers.controller_of("no_such_task") is None


def test_stand_still_holds_the_default_pose_with_zero_actions():
    """walk's controller, without Genesis: its actions are zeros (joint targets = the default pose)."""
    from types import SimpleNamespace

    from envs.controllers.stand import StandStill
    env = SimpleNamespace(num_envs=3, task=SimpleNamespace(action_dim=12))
    still = StandStill(env)
    still.reset()
    still.set_state(still.get_state())
    assert (still.act() == 0).all() and still.act().shape == (3, 12)


def test_the_scripted_residual_base_is_the_tasks_controller():
    from envs.controllers.dragger import PaperDragger
    from envs.controllers.picker import ScriptedPicker
    from envs.vector import BatchedEnv
    for task, cls in (("lift", ScriptedPicker), ("paper_square", PaperDragger)):
        env = BatchedEnv(task=task, num_envs=1, residual=dict(base="scripted", alpha=1.0, penalty=0.0))
        assert type(env.residual.base.controller) is cls
        env.close()


def test_the_picker_places_within_devlog_004s_two_seconds():
    """From pick_place's start (jaws open around the cube, stage 2) the picker closes at once instead of
    rising above the cube first, so most of its episodes place the cube within the 100 steps."""
    import envs
    from envs.controllers.picker import DESCEND, ScriptedPicker
    env = envs.make_vec_env("pick_place", "staged_v2", num_envs=8, seed=0, max_episode_steps=100,
                            curriculum_stage=2)
    picker = ScriptedPicker(env)
    env.reset(seed=0)
    picker.reset()
    successes = []
    for step in range(100):
        action = picker.act()
        assert step > 0 or (picker.phase == DESCEND).all(), "around the cube from the first step: no climb"
        *_, infos = env.step(action)
        if "final_info" in infos:
            successes += infos["final_info"]["success_once"][infos["_final_info"]].tolist()
    env.close()
    assert len(successes) == 8 and np.mean(successes) >= 0.75, successes
