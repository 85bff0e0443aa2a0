"""Task registry: a task is one class in this folder; add it to TASKS to make it selectable."""
from envs.tasks.base import OBS_MODES, StepState, TaskConfig
from envs.tasks.lift import LiftTask
from envs.tasks.pick_place import PickPlaceTask

TASKS = {"lift": LiftTask, "pick_place": PickPlaceTask}


def get_task(name):
    if name not in TASKS:
        raise ValueError(f"unknown task {name!r}; valid tasks: {sorted(TASKS)}")
    return TASKS[name]


__all__ = ["TASKS", "get_task", "TaskConfig", "StepState", "OBS_MODES"]
