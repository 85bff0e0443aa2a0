"""PaperDragger, paper_square's controller: a scripted press-and-drag, batched, and its sanity check.
It is the task's base policy for residual RL (the `scripted` base, envs/residual.py).

Phases per env: above the sheet's centre -> press the closed jaws down on it -> drag: aim the
jaws, from where they are, up to 1.5 cm further along the sheet centre's remaining way to the
target (so whatever point of the sheet they hold, its centre ends on the target) -> lift off -> if
the sheet is not within 1.2 cm of the target, start over (twice at most) -> hover. Targets come
from the closed-form IK of envs/ik.py applied to the true sheet pose (privileged state), reached
through the same delta-target actions a policy uses, as envs/controllers/picker.py.

Imperfect by design: it brings the sheet's centre to the target but never turns the sheet, so it
succeeds only when the random start yaw is already within the 10 deg tolerance (a third of the
starts under the +-30 deg randomisation; the drag turns the sheet by a degree or two).
Measured with the task's defaults (domain randomisation on, 400-step episodes),
envs.sanity.run_scripted(env, 50, seed=s) on a 5-env BatchedEnv, s = 0, 100, 200: success (success_once) 38%, 26%, 36%, so 33%
of 150 episodes; mean final distance 2.2 mm each time; mean final yaw error 14.6, 16.5, 14.5 deg
(every failure is a yaw error >= 10 deg). The drag itself takes ~40 steps with the jaws on the
sheet. tests/test_paper_square.py holds the success rate to 10-80%.
"""
import numpy as np

from envs.ik import top_down_ik
from envs.tasks.base import GRIPPER_CLOSED
from envs.tasks.paper_square import PAPER_HALF_THICKNESS, START, TARGET

ABOVE, PRESS, DRAG, LIFT, DONE = range(5)
JAW_TIP = 0.023          # m, jaw tips below the grasp site with the gripper pointing down
JAW_PATCH = 0.0175       # m, the closed jaws' tips sit this far from the grasp site, against the closing direction
PRESS_DEPTH = 0.003      # m, jaws aimed this far into the sheet: the servos' compliance presses it down
HOVER = 0.04             # m above the sheet when approaching and after lifting off
LEAD = 0.015             # m the jaws are aimed ahead of where they are while dragging
DONE_DISTANCE = 0.004    # m: stop dragging
RETRY_DISTANCE = 0.012   # m: after lifting off, start over if the sheet is farther than this
MAX_RETRIES = 2


class PaperDragger:
    """Built from a BatchedEnv of paper_square; reset(ids), act() -> (N, 6) actions in [-1, 1],
    get_state()/set_state() of its per-env phases (the residual base checkpoints them)."""

    _STATE = ("phase", "timer", "retries", "hold")

    def __init__(self, env):
        self.env, self.task = env, env.task
        n = env.num_envs
        self.phase = np.zeros(n, dtype=int)
        self.timer = np.zeros(n, dtype=int)
        self.retries = np.zeros(n, dtype=int)
        self.hold = np.zeros((n, 3))          # where LIFT and DONE hold the grasp site

    def reset(self, ids=None):
        ids = np.arange(self.env.num_envs) if ids is None else ids
        self.phase[ids] = ABOVE
        self.timer[ids] = 0
        self.retries[ids] = 0

    def get_state(self):
        return {k: getattr(self, k).copy() for k in self._STATE}

    def set_state(self, state):
        for k in self._STATE:
            setattr(self, k, state[k].copy())

    def act(self):
        task, s = self.task, self.task.read_state()
        closing = task.physics.site_xmat_of(task.grasp_site)[:, :, 1]   # fixed jaw -> moving jaw
        press_z = 2 * PAPER_HALF_THICKNESS + JAW_TIP - PRESS_DEPTH
        actions = np.zeros((self.env.num_envs, 6))
        for i in range(self.env.num_envs):
            # the grasp site that puts the jaws' tips over the sheet's centre
            centred = s.paper_pos[i, :2] + JAW_PATCH * closing[i, :2]
            to_target = s.target_pos[i, :2] - s.paper_pos[i, :2]
            phase = self.phase[i]
            if phase == ABOVE:
                goal = np.array([*centred, press_z + HOVER])
            elif phase == PRESS:
                goal = np.array([*centred, press_z])
            elif phase == DRAG:
                # move the jaws, wherever they hold the sheet, by what the sheet still has to go
                lead = to_target / max(s.distance[i], 1e-9) * min(LEAD, s.distance[i])
                goal = np.array([*(s.grasp_pos[i, :2] + lead), press_z])
            else:   # LIFT, DONE
                goal = self.hold[i]
            try:
                arm = top_down_ik(goal, 0.0)
            except ValueError:
                arm = task.target[i, :5]
            desired = np.array([*arm, GRIPPER_CLOSED])
            actions[i] = np.clip((desired - task.target[i]) / task.cfg.action_scale, -1.0, 1.0)
            self._advance(i, s, goal)
        return actions

    def _advance(self, i, s, goal):
        self.timer[i] += 1
        phase, t = self.phase[i], self.timer[i]
        error = np.linalg.norm(s.grasp_pos[i] - goal)
        nxt = phase
        if phase == ABOVE and (error < 0.01 or t > 80):
            nxt = PRESS
        elif phase == PRESS and ((s.touching[i] and t > 15) or t > 40):
            nxt = DRAG
        elif phase == DRAG and (s.distance[i] < DONE_DISTANCE or t > 250):
            nxt = LIFT
            self.hold[i] = [*s.grasp_pos[i, :2], s.grasp_pos[i, 2] + HOVER]
        elif phase == LIFT and t > 20:
            if s.distance[i] > RETRY_DISTANCE and self.retries[i] < MAX_RETRIES:
                nxt = ABOVE
                self.retries[i] += 1
            else:
                nxt = DONE
        if nxt != phase:
            self.phase[i], self.timer[i] = nxt, 0


MIN_TRAVEL = 0.05   # m: the sanity check's least mean travel of the sheet under the dragger


def sanity_checks(make, run, *, backend, seed, episodes, min_success):
    """The sanity stage's checks of paper_square: the dragger moves the sheet by contact (mean travel
    >= MIN_TRAVEL, with the jaws on it) and leaves it nearer the target than half the nominal
    distance. Its success rate is a figure, not a requirement: the dragger is imperfect by design, so
    the stage's min_success does not apply. make(**overrides): a BatchedEnv of the task;
    run(env, episodes, seed): the final_info rows of that many episodes of the dragger."""
    env = make()
    rows = run(env, episodes, seed=seed)
    env.close()
    mean = lambda key, digits=4: round(float(np.mean([r[key] for r in rows])), digits)   # noqa: E731
    c = {"episodes": episodes, "success_rate": mean("success_once"), "success_at_end_rate": mean("success_at_end"),
         "mean_paper_travel_m": mean("paper_travel"), "mean_final_distance_m": mean("final_distance"),
         "mean_final_yaw_error_deg": mean("final_yaw_error", 2), "mean_contact_steps": mean("contact_steps", 1)}
    problems = []
    if c["mean_paper_travel_m"] < MIN_TRAVEL or c["mean_contact_steps"] < 1:
        problems.append(f"the scripted dragger moved the sheet {c['mean_paper_travel_m']:.3f} m on average with "
                        f"{c['mean_contact_steps']:.0f} contact steps (< {MIN_TRAVEL} m): the sheet does not move "
                        "by contact")
    if c["mean_final_distance_m"] > 0.5 * np.linalg.norm(TARGET - START):
        problems.append(f"the scripted dragger left the sheet {c['mean_final_distance_m']:.3f} m from the target on "
                        "average (more than half the nominal 13 cm): it does not bring the sheet to the target")
    return {"scripted": c}, problems
