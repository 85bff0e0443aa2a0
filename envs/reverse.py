"""Reverse-curriculum starts (RFCL: Tao et al., "Reverse Forward Curriculum Learning", 2024): training
episodes begin at states along successful demonstrations, and the starts move back towards the real
start distribution as the policy succeeds from them. The stage curriculum (curriculum_from) is the
hand-made form of the same idea, with four fixed starts.

    env = make_vec_env("lift", "v19", 8, seed=0, reverse_curriculum=True, start_states=starts)

Rules (tests/test_reverse_curriculum.py):
- start_states holds, per demonstration, the task's snapshots (Task.snapshot) of its steps up to its
  first success. Each demonstration has a start pointer, first at its last step: the success state.
- A training episode picks a demonstration uniformly, drawing from the env's own generator, and
  starts at its pointer's step: the env is reset as usual (its model randomisation drawn), then put
  in the snapshot's configuration with its actuator targets, at rest (velocities zero).
- The last curriculum_window episodes started at a pointer are its window (an episode begun before
  the pointer moved does not count); when the window is full and its success rate reaches
  curriculum_bar, the pointer moves back reverse_step steps, never below 0, with an empty window.
- A pointer at 0 is done: an episode that picks its demonstration starts from the real start
  distribution (env.curriculum_stage) instead, so the share of real starts grows as the pointers
  finish, and every episode starts there once all are at 0.
- Pointers, windows and where each running episode started are env state (BatchedEnv.get_state):
  a resumed run continues exactly.
"""
import copy

import numpy as np

REAL_START = -1     # episode_demo of an episode started from the real start distribution


class ReverseCurriculum:
    def __init__(self, start_states, num_envs, step, bar, window):
        """start_states: per demonstration, {name: (T + 1, ...) array}, as Task.snapshot() names them."""
        if not start_states:
            raise ValueError("reverse_curriculum: no start states; pass start_states=, the task's snapshots along "
                             "successful demonstrations (pipeline/run/transitions.py: start_states)")
        self.demonstrations = [{name: np.asarray(rows) for name, rows in demo.items()} for demo in start_states]
        self.step, self.bar, self.window = step, bar, window
        self.pointers = np.array([len(next(iter(demo.values()))) - 1 for demo in self.demonstrations])
        self.windows = [[] for _ in self.demonstrations]
        self.episode_demo = np.full(num_envs, REAL_START)     # the demonstration each running episode started on
        self.episode_start = np.zeros(num_envs, dtype=np.int64)   # and its step there (0: a real start)

    def start(self, ids, task, rngs):
        """Move the envs of ids, just reset, to their episode's start: a demonstration's pointer, or
        where reset put them (a real start) when the picked demonstration is done."""
        for i in ids:
            k = int(rngs[i].integers(len(self.demonstrations)))
            step = int(self.pointers[k])
            self.episode_demo[i], self.episode_start[i] = (k, step) if step > 0 else (REAL_START, 0)
            if step > 0:
                task.restore(i, {name: rows[step] for name, rows in self.demonstrations[k].items()})

    def finish(self, ids, successes):
        """Count the finished episodes of ids towards their pointer's window; at the bar, move it back."""
        for i, ok in zip(ids, successes):
            k, step = self.episode_demo[i], self.episode_start[i]
            if k == REAL_START or step != self.pointers[k]:
                continue
            self.windows[k] = (self.windows[k] + [bool(ok)])[-self.window:]
            if len(self.windows[k]) == self.window and np.mean(self.windows[k]) >= self.bar:
                self.pointers[k] = max(0, step - self.step)
                self.windows[k] = []

    _STATE = ("pointers", "windows", "episode_demo", "episode_start")

    def get_state(self):
        return copy.deepcopy({k: getattr(self, k) for k in self._STATE})

    def set_state(self, state):
        if len(state["pointers"]) != len(self.demonstrations):
            raise ValueError(f"reverse curriculum state of {len(state['pointers'])} demonstrations, "
                             f"restored into an env with {len(self.demonstrations)}")
        for k, v in copy.deepcopy(state).items():
            setattr(self, k, v)
