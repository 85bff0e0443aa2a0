"""lift: grasp the cube and hold it at least `lift_height` above the table for `hold_steps` steps.

Success is the hold itself (devlogs 000/001): the cube must be held, not thrown. Episodes run to
the time limit, so `success_once` (held at some point) and `success_at_end` (still held at the
last step) are both meaningful.
"""
from envs.tasks.base import TabletopTask


class LiftTask(TabletopTask):
    name = "lift"
    default_reward = "v19"

    def evaluate(self, state):
        return state.hold_count >= state.hold_steps
