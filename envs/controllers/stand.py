"""StandStill, walk's controller: it holds the default standing pose (zero actions, as walk's joint
targets are the default pose + action_scale * action), and walk's sanity check `stand`: held so,
no robot falls and the base stays near its standing height (the model, the PD gains and the
termination agree).
"""
import numpy as np

STAND_STEPS = 200          # the length of the check's one episode
MIN_BASE_HEIGHT = 0.2      # m: lower than this, the robot sagged (it stands at ~0.27 m)


class StandStill:
    """Built from a BatchedEnv of walk; reset(ids), act() -> (N, action_dim) zeros. It keeps no state."""

    def __init__(self, env):
        self.shape = (env.num_envs, env.task.action_dim)

    def reset(self, ids=None):
        pass

    def act(self):
        return np.zeros(self.shape)

    def get_state(self):
        return {}

    def set_state(self, state):
        pass


def sanity_checks(make, run, *, backend, seed, episodes, min_success):
    """`stand`: one STAND_STEPS-step episode of every env under StandStill. The stage's episodes and
    min_success do not apply (nor run: the check watches the base height at every step)."""
    checks = {"stand": stand(make(max_episode_steps=STAND_STEPS), seed)}
    problems = []
    if checks["stand"]["fell"] or checks["stand"]["min_base_height"] < MIN_BASE_HEIGHT:
        problems.append(f"holding the default pose, the Go2 fell or sagged: {checks['stand']}")
    return checks, problems


def stand(env, seed):
    """StandStill for one episode of every env of a BatchedEnv of walk: how many fell, and the base heights."""
    controller = StandStill(env)
    env.reset(seed=seed)
    heights = []
    for _ in range(env.cfg.max_episode_steps):
        _, _, terminated, _, _ = env.step(controller.act())
        heights.append(env.task.read_state().base_height.copy())
        if terminated.any():
            break
    env.close()
    heights = np.array(heights)
    return {"episodes": env.num_envs, "steps": len(heights), "fell": int(terminated.sum()),
            "mean_base_height": round(float(heights.mean()), 4), "min_base_height": round(float(heights.min()), 4)}
