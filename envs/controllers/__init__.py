"""The scripted controllers registry: each task's own controller, a batched policy on privileged state.

A controller is one module in this folder, with its class and its sanity checks side by side:
  class        built from a BatchedEnv of its task: reset(ids=None), act() -> (N, action_dim) actions
               in [-1, 1], get_state(), set_state() (the residual base checkpoints it)
  sanity_checks(make, run, *, backend, seed, episodes, min_success) -> ({check: JSON-able figures},
               [problems in words]): the task's own checks, after envs/sanity.py's generic ones.
               make(**overrides) builds a BatchedEnv of the task with the sanity stage's settings;
               run(env, episodes, seed) returns the final_info rows of that many episodes of the controller.
It may import envs/tasks and envs/ik.py, never what builds on it (envs/vector.py, residual.py, sanity.py).

Entries are imported by name (importlib): importing this registry imports no controller, and a stage's
code dependencies include only the controller it runs (`module`).
"""
import importlib

# controller name -> "module:Class"
CONTROLLERS = {"picker": "envs.controllers.picker:ScriptedPicker",
               "dragger": "envs.controllers.dragger:PaperDragger",
               "stand": "envs.controllers.stand:StandStill"}
# task -> the name of its own controller (its sanity checks and its `scripted` residual base)
TASK_CONTROLLERS = {"lift": "picker", "pick_place": "picker", "paper_square": "dragger", "walk": "stand"}


def controller_of(task):
    """The name of task's controller, or None if it has none."""
    return TASK_CONTROLLERS.get(task)


def module(name):
    """The dotted module of controller `name` (its class and its sanity checks)."""
    if name not in CONTROLLERS:
        raise ValueError(f"unknown controller {name!r}; valid controllers: {sorted(CONTROLLERS)}")
    return CONTROLLERS[name].split(":")[0]


def get(name):
    """The class of controller `name`, importing its module (and no other controller's)."""
    return getattr(importlib.import_module(module(name)), CONTROLLERS[name].split(":")[1])


def sanity_checks(name):
    """The sanity_checks function of controller `name`'s module."""
    return importlib.import_module(module(name)).sanity_checks


def make(env):
    """The controller of env's task, built on env (a BatchedEnv)."""
    name = controller_of(env.task.name)
    if name is None:
        raise ValueError(f"task {env.task.name} has no scripted controller; tasks with one: {sorted(TASK_CONTROLLERS)}")
    return get(name)(env)
