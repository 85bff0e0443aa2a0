"""Task registry: a task is one class in this folder; add it to TASKS to make it selectable.
walk's module imports Genesis only when a walk env is built."""
from envs.tasks.base import OBS_MODES, StepState, TaskConfig
from envs.tasks.lift import LiftTask
from envs.tasks.pick_place import PickPlaceTask
from envs.tasks.walk import WalkTask

TASKS = {"lift": LiftTask, "pick_place": PickPlaceTask, "walk": WalkTask}


def get_task(name):
    if name not in TASKS:
        raise ValueError(f"unknown task {name!r}; valid tasks: {sorted(TASKS)}")
    return TASKS[name]


__all__ = ["TASKS", "get_task", "TaskConfig", "StepState", "OBS_MODES"]
