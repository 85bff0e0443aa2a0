"""The task registry: one line per task, naming its class and its Gymnasium ids.

A task is one module in this folder (its class derives from envs.tasks.base.Task and declares the
rest: default reward, goal conditioning, metrics), this line, and its reward versions in
envs/rewards/<task>/.
"""
import importlib
from typing import NamedTuple


class Entry(NamedTuple):
    task_class: str             # "module:Class"
    gym_ids: dict = {}          # Gymnasium id -> obs_mode; envs/__init__.py registers them (envs.single:make_env)


# Stage code dependencies follow imports: importing one task imports no other, and registering the Gymnasium ids imports none.
TASKS = {
    "lift": Entry("envs.tasks.lift:LiftTask", gym_ids={"SO101Lift-v0": "state"}),
    "pick_place": Entry("envs.tasks.pick_place:PickPlaceTask",
                        gym_ids={"SO101PickPlace-v0": "state", "SO101PickPlaceGoal-v0": "goal"}),
    "walk": Entry("envs.tasks.walk:WalkTask"),
    "paper_square": Entry("envs.tasks.paper_square:PaperSquareTask", gym_ids={"SO101PaperSquare-v0": "state"}),
}


def get_task(name):
    """The class of task `name`, importing its module (and no other task's)."""
    if name not in TASKS:
        raise ValueError(f"unknown task {name!r}; valid tasks: {sorted(TASKS)}")
    module, cls = TASKS[name].task_class.split(":")
    return getattr(importlib.import_module(module), cls)


def restorable_tasks() -> list[str]:
    """The tasks whose episodes can start from recorded states (Task.restorable): what
    env.reverse_curriculum needs. Imports every task's module."""
    return [name for name in TASKS if get_task(name).restorable]


__all__ = ["TASKS", "Entry", "get_task", "restorable_tasks"]
