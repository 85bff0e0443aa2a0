"""BatchedEnv: N envs of one task in one process, as a Gymnasium 1.x VectorEnv.

Autoreset mode SAME_STEP: the step that ends env i's episode returns env i's *reset* observation;
the episode's last observation is infos["final_obs"][i] and its statistics are in
infos["final_info"] (Gymnasium's masked-dict format: final_info["return"][i] is valid where
infos["_final_info"][i]). Stable-Baselines3 expects the same (see envs/sb3.py).

What this file guarantees, each covered by a test in tests/test_vector.py:
- Episode statistics live here, per env, and are reset only when that env's episode ends: an
  episode of 300 steps collected in rollouts of 128 is reported as 300 steps with its whole return
  (devlog 000's first bug), however the training loop slices its rollouts.
- Resetting env i writes env i's state only (devlog 000's second bug): partial resets, with
  reset(options={"reset_mask": mask}), leave the other envs bit-identical.
- Every finished episode reports success in final_info (devlog 001's 0% success rate), whether
  it ended by termination, and its task's own metrics (lift: max_cube_z, grasp_steps; walk:
  mean_forward_vel, distance_x, mean_base_height), aggregated over the whole episode.
- get_state()/set_state() capture everything in flight (physics with warm-starts, randomised
  models, per-env generators, episode statistics, frame stacks, curriculum stage or reverse-curriculum
  pointers): a restored env continues its episodes bit for bit, which is what makes a resumed
  training run equal an uninterrupted one.
- Wrong action shapes, NaN actions and non-finite observations or rewards raise at once, naming
  the env and the step. A simulation blow-up ends that env's episode only (`unstable`).
"""
import copy

import numpy as np
from gymnasium import spaces
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from envs.residual import Residual
from envs.reverse import ReverseCurriculum
from envs.tasks import get_task, restorable_tasks
from envs.tasks.base import TaskConfig

# Every task's episodes report these; a task adds its own metrics (Task.episode_metrics).
EPISODE_STATS = {"return": np.float64, "episode_len": np.int64, "success_once": bool, "success_at_end": bool,
                 "terminated": bool, "unstable": bool}
# How a task metric aggregates its per-step values over an episode (its initial value, its update).
AGGREGATE = {"max": (-np.inf, np.maximum), "sum": (0.0, np.add), "mean": (0.0, np.add),
             "last": (0.0, lambda old, new: new)}


class BatchedEnv(VectorEnv):
    metadata = {"autoreset_mode": AutoresetMode.SAME_STEP, "render_modes": []}

    def __init__(self, task="lift", reward=None, num_envs=1, seed=None, autoreset=True, render_sizes=(),
                 residual=None, start_states=None, **env_kwargs):
        """reward: a reward version of the task (None: the task's default for the obs_mode).
        render_sizes: (height, width) of the images render_env will be asked for besides the
        observation size (Genesis builds its cameras up front; MuJoCo renders any size).
        residual: {"base": ..., "alpha": ..., "penalty": ...}: actions are residuals on a base
        policy (envs/residual.py).
        start_states: with reverse_curriculum, the task's snapshots along successful demonstrations
        that training episodes start from (envs/reverse.py)."""
        task_class = get_task(task)
        # A task may change the defaults of settings it reads differently (walk: 1000-step episodes).
        self.cfg = TaskConfig.from_kwargs(**{**task_class.config_defaults, **env_kwargs})
        if reward is None:
            reward = task_class.default_reward_for(self.cfg.obs_mode)
        self.task = task_class(self.cfg, num_envs, reward, render_sizes=render_sizes)   # refuses what it cannot do
        if self.cfg.obs_mode == "goal" and not task_class.goal_conditioned:
            raise ValueError(f"obs_mode 'goal': task {task!r} is not goal-conditioned")
        if self.cfg.obs_mode in ("pixels", "state+pixels") and task_class.pixel_camera is None:
            raise ValueError(f"obs_mode {self.cfg.obs_mode!r}: task {task!r} has no pixel observations")
        self.task_name, self.reward_version = task, reward
        self.num_envs = num_envs
        self.autoreset = autoreset
        self.residual = None if residual is None else Residual(self, **residual)
        # The automatic curriculum: tasks read cfg.curriculum_stage at every reset, so moving it
        # moves the episodes that start after it; final_stage is where it ends.
        self.final_stage = self.cfg.curriculum_stage
        self.curriculum = self.cfg.curriculum_from not in (-1, self.final_stage)
        if self.curriculum:
            self.cfg.curriculum_stage = self.cfg.curriculum_from
        self._window = []                   # success of the last episodes at the current stage
        self._episode_stage = np.full(num_envs, self.cfg.curriculum_stage, dtype=np.int64)
        self.reverse = self._reverse_curriculum(task_class, start_states)
        if self.cfg.obs_mode == "goal" and not hasattr(self.task.reward_fn, "goal_reward"):
            from envs import rewards
            usable = [v for v in rewards.available(task) if hasattr(rewards.get(task, v), "goal_reward")]
            raise ValueError(f"obs_mode 'goal' needs a reward computable from goals; reward {reward!r} of "
                             f"task {task!r} is not. Versions that are: {usable}")
        self.single_action_space = spaces.Box(-1.0, 1.0, (self.task.action_dim,), dtype=np.float32)
        self.single_observation_space = self._observation_space()
        self.action_space = batch_space(self.single_action_space, num_envs)
        self.observation_space = batch_space(self.single_observation_space, num_envs)
        self.render_mode = None
        self._rngs = [np.random.default_rng(None if seed is None else seed + i) for i in range(num_envs)]
        self._elapsed = np.zeros(num_envs, dtype=np.int64)
        self._stats = {}
        self._components = {}
        self._clear_stats(np.arange(num_envs))
        self._done = np.zeros(num_envs, dtype=bool)
        self._state_obs = None
        self._frames = None  # (N, frame_stack, 3, H, W) uint8, newest last
        self._needs_reset = True

    def _reverse_curriculum(self, task_class, start_states):
        """The reverse curriculum of reverse_curriculum (None without it); start_states only with it."""
        if not self.cfg.reverse_curriculum:
            if start_states is not None:
                raise ValueError("start_states given, but reverse_curriculum is off")
            return None
        if not task_class.restorable:
            raise ValueError(f"reverse_curriculum: task {task_class.name!r} cannot start episodes from recorded "
                             f"states; valid tasks: {restorable_tasks()}")
        return ReverseCurriculum(start_states, self.num_envs, self.cfg.reverse_step, self.cfg.curriculum_bar,
                                 self.cfg.curriculum_window)

    # --- spaces ---------------------------------------------------------------------------------
    def _observation_space(self):
        layout = self.task.state_layout()
        low = np.concatenate([np.full(n, lo) for _, n, lo, _ in layout]).astype(np.float32)
        high = np.concatenate([np.full(n, hi) for _, n, _, hi in layout]).astype(np.float32)
        state = spaces.Box(low, high, dtype=np.float32)
        size = self.cfg.image_size
        pixels = spaces.Box(0, 255, (3 * self.cfg.frame_stack, size, size), dtype=np.uint8)
        goal = spaces.Box(-1.5, 1.5, (3,), dtype=np.float32)
        return {"state": state, "pixels": pixels,
                "state+pixels": spaces.Dict({"state": state, "pixels": pixels}),
                "goal": spaces.Dict({"observation": state, "achieved_goal": goal, "desired_goal": goal}),
                }[self.cfg.obs_mode]

    # --- reset ----------------------------------------------------------------------------------
    def reset(self, *, seed=None, options=None):
        """Reset all envs, or only those in options["reset_mask"] (the others are untouched).
        seed: an int (env i gets seed + i, as in Gymnasium) or a list of per-env seeds."""
        options = options or {}
        unknown = sorted(set(options) - {"reset_mask"})
        if unknown:
            raise ValueError(f"unknown reset option(s) {unknown}; valid: ['reset_mask']")
        mask = np.asarray(options.get("reset_mask", np.ones(self.num_envs)), dtype=bool)
        if mask.shape != (self.num_envs,):
            raise ValueError(f"reset_mask must have shape ({self.num_envs},), got {mask.shape}")
        if self._needs_reset and not mask.all():
            raise RuntimeError("the first reset() must reset every env")
        ids = np.flatnonzero(mask)
        if seed is not None:
            seeds = [seed + i for i in range(self.num_envs)] if np.isscalar(seed) else list(seed)
            if len(seeds) != self.num_envs:
                raise ValueError(f"expected {self.num_envs} seeds, got {len(seeds)}")
            for i in ids:
                self._rngs[i] = np.random.default_rng(seeds[i])
        self._start_episodes(ids)
        self._elapsed[ids] = 0
        self._done[ids] = False
        self._clear_stats(ids)
        self._observe(self.task.read_state(), ids, new_episode=True)
        self._needs_reset = False
        return self._current_obs(), {}

    # --- step -----------------------------------------------------------------------------------
    def step(self, actions):
        if self._needs_reset:
            raise RuntimeError("call reset() before step()")
        actions = self._check_actions(actions)
        if not self.autoreset and self._done.any():
            raise RuntimeError(f"env(s) {np.flatnonzero(self._done).tolist()} finished; call reset() first")
        if self.residual is not None:
            actions, penalty, residual_l2 = self.residual.blend(actions, self._current_obs())
        self.task.apply_action(actions)
        self._elapsed += 1
        # A simulation that blew up in an env ends that env's episode here, as a termination (no
        # bootstrapping from a broken state) with reward 0 for the step and `unstable` in its
        # statistics; its physics is reset so every env reads a sound state. The other envs go on:
        # a rare contact blow-up must not end a long run (a chunk's retry would replay it exactly).
        blown = self.task.unstable().copy()
        if blown.any():
            self.task.reset(np.flatnonzero(blown), self._rngs)
            if self.residual is not None:
                self.residual.reset(np.flatnonzero(blown))
        state = self.task.step_state()
        if self.task.reward_fn is None:
            reward, components = np.zeros(self.num_envs), {}
        else:
            reward, components = self.task.reward_fn.compute(state)
        reward = np.asarray(reward, dtype=np.float64)
        if self.residual is not None:
            reward = reward + penalty
            components = {**components, "residual_penalty": penalty}
        if blown.any():
            reward = np.where(blown, 0.0, reward)
            components = {k: np.where(blown, 0.0, v) for k, v in components.items()}
        self._check_finite("reward", reward)
        terminated = self.task.terminated(state) | blown
        truncated = (self._elapsed >= self.cfg.max_episode_steps) & ~terminated
        self._update_stats(state, reward, components, terminated, blown)
        if self.residual is not None:
            self._stats["residual_l2"] += np.where(blown, 0.0, residual_l2)
        all_ids = np.arange(self.num_envs)
        self._observe(state, all_ids, new_episode=False)
        infos = {"success": state.success & ~blown, "_success": np.ones(self.num_envs, dtype=bool)}
        done = terminated | truncated
        if done.any():
            ids = np.flatnonzero(done)
            infos.update(self._final_infos(ids, state, done))
            if self.curriculum:
                self._advance_curriculum(ids, infos["final_info"]["success_once"][ids])
            if self.reverse is not None:
                self.reverse.finish(ids, infos["final_info"]["success_once"][ids])
            if self.autoreset:
                self._start_episodes(ids)
                self._elapsed[ids] = 0
                self._clear_stats(ids)
                self._observe(self.task.read_state(), ids, new_episode=True)
            else:
                self._done |= done
        return self._current_obs(), reward, terminated, truncated, infos

    def _start_episodes(self, ids):
        """Reset the envs of ids at the curriculum's current stage; with curriculum_mix, each starts
        at an easier stage already passed with that probability, drawn from the env's own generator;
        with reverse_curriculum, then moved to a demonstration's start (envs/reverse.py)."""
        current = self.cfg.curriculum_stage
        stages = np.full(len(ids), current, dtype=np.int64)
        passed = np.arange(current + 1, self.cfg.curriculum_from + 1) if self.curriculum else []
        if self.cfg.curriculum_mix > 0 and len(passed):
            for k, i in enumerate(ids):
                if self._rngs[i].uniform() < self.cfg.curriculum_mix:
                    stages[k] = self._rngs[i].choice(passed)
        try:    # tasks read cfg.curriculum_stage at reset
            for s in np.unique(stages):
                self.cfg.curriculum_stage = int(s)
                self.task.reset(ids[stages == s], self._rngs)
        finally:
            self.cfg.curriculum_stage = current
        if self.reverse is not None:
            self.reverse.start(ids, self.task, self._rngs)
        if self.residual is not None:
            self.residual.reset(ids)
        self._episode_stage[ids] = stages

    def _advance_curriculum(self, ids, successes):
        """Record the finished episodes that ran at the current stage; at the bar, one stage harder
        (never two: the window starts empty at every stage)."""
        for i, ok in zip(ids, successes):
            if self.cfg.curriculum_stage == self.final_stage:
                return
            if self._episode_stage[i] != self.cfg.curriculum_stage:
                continue
            self._window = (self._window + [bool(ok)])[-self.cfg.curriculum_window:]
            if len(self._window) == self.cfg.curriculum_window and \
                    np.mean(self._window) >= self.cfg.curriculum_bar:
                self.cfg.curriculum_stage -= 1
                self._window = []

    def _check_actions(self, actions):
        actions = np.asarray(actions, dtype=np.float64)
        if actions.shape != (self.num_envs, self.task.action_dim):
            raise ValueError(f"actions must have shape ({self.num_envs}, {self.task.action_dim}) (num_envs, "
                             f"{self.task.action_help}), got {actions.shape}")
        bad = ~np.isfinite(actions).all(axis=1)
        if bad.any():
            raise ValueError(f"non-finite action for env(s) {np.flatnonzero(bad).tolist()}: "
                             f"{actions[bad][0].tolist()}")
        return np.clip(actions, -1.0, 1.0)

    def _check_finite(self, what, values):
        flat = values.reshape(self.num_envs, -1)
        bad = ~np.isfinite(flat).all(axis=1)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise FloatingPointError(f"non-finite {what} in env {i} at episode step {self._elapsed[i]} "
                                     f"(task {self.task_name}, reward {self.reward_version}): {flat[i].tolist()[:8]}")

    # --- observations -----------------------------------------------------------------------------
    def _observe(self, state, ids, new_episode):
        """Refresh the observation rows of envs `ids` from the current physics state."""
        obs = self.task.observe_state(state)
        self._check_finite("observation", obs)
        if self._state_obs is None:
            self._state_obs = obs
        self._state_obs[ids] = obs[ids]
        if self.cfg.obs_mode in ("pixels", "state+pixels"):
            size, k = self.cfg.image_size, self.cfg.frame_stack
            if self._frames is None:
                self._frames = np.zeros((self.num_envs, k, 3, size, size), dtype=np.uint8)
            frames = np.stack([self.task.render(i, self.task.pixel_camera, size, size).transpose(2, 0, 1)
                               for i in ids])
            if new_episode:   # a new episode's stack is its first frame repeated
                self._frames[ids] = frames[:, None]
            else:
                self._frames[ids, :-1] = self._frames[ids, 1:]
                self._frames[ids, -1] = frames

    def _current_obs(self):
        mode = self.cfg.obs_mode
        state = self._state_obs.copy()
        if mode == "state":
            return state
        pixels = None if self._frames is None else self._frames.reshape(self.num_envs, -1, *self._frames.shape[-2:]).copy()
        if mode == "pixels":
            return pixels
        if mode == "state+pixels":
            return {"state": state, "pixels": pixels}
        achieved, desired = self.task.goals(self.task.read_state())
        return {"observation": state, "achieved_goal": np.asarray(achieved, dtype=np.float32),
                "desired_goal": np.asarray(desired, dtype=np.float32)}

    # --- episode statistics ---------------------------------------------------------------------
    def _clear_stats(self, ids):
        for key, dtype in EPISODE_STATS.items():
            self._stats.setdefault(key, np.zeros(self.num_envs, dtype=dtype))[ids] = 0
        for key, metric in self.task.episode_metrics.items():
            self._stats.setdefault(key, np.zeros(self.num_envs))[ids] = AGGREGATE[metric.aggregate][0]
        if self.residual is not None:
            self._stats.setdefault("residual_l2", np.zeros(self.num_envs))[ids] = 0.0
        for values in self._components.values():
            values[ids] = 0.0

    def _update_stats(self, state, reward, components, terminated, blown):
        """Add this step to every env's episode statistics; for an env whose simulation blew up, only
        the step itself (its state is a fresh reset's, not its episode's)."""
        kept = {k: v[blown].copy() for k, v in self._stats.items()}
        s = self._stats
        s["return"] += reward
        s["episode_len"] += 1
        s["success_once"] |= state.success
        s["success_at_end"] = state.success.copy()
        s["terminated"] = terminated.copy()
        for key, value in self.task.metric_values(state).items():
            s[key] = AGGREGATE[self.task.episode_metrics[key].aggregate][1](s[key], value)
        for name, value in components.items():
            self._components.setdefault(name, np.zeros(self.num_envs))
            self._components[name] += value
        if blown.any():
            for k, v in kept.items():
                s[k][blown] = v
            s["episode_len"][blown] += 1
            s["return"][blown] += reward[blown]
            s["success_at_end"][blown] = False
            s["terminated"][blown] = True
            s["unstable"][blown] = True

    def episode_stats_so_far(self):
        """Every env's statistics of its current episode, as final_info will report them."""
        stats = dict(self._stats)
        for key, metric in self.task.episode_metrics.items():
            if metric.aggregate == "mean":
                stats[key] = self._stats[key] / np.maximum(self._stats["episode_len"], 1)
        if self.residual is not None:   # the mean residual L2 norm per step
            stats["residual_l2"] = self._stats["residual_l2"] / np.maximum(self._stats["episode_len"], 1)
        if self.curriculum:             # the stage the episode started at
            stats["curriculum_stage"] = self._episode_stage.astype(np.float64)
        if self.reverse is not None:    # the demonstration step it started at (0: a real start)
            stats["start_step"] = self.reverse.episode_start.astype(np.float64)
        return {**stats, **{f"reward/{name}": values for name, values in self._components.items()}}

    def _final_infos(self, ids, state, done):
        final_info = {}
        for key, values in self.episode_stats_so_far().items():
            final_info[key] = np.where(done, values, np.zeros_like(values))
            final_info["_" + key] = done.copy()
        final_obs = np.full(self.num_envs, None, dtype=object)
        current = self._current_obs()
        for i in ids:
            final_obs[i] = ({k: v[i] for k, v in current.items()} if isinstance(current, dict) else current[i])
        return {"final_info": final_info, "_final_info": done.copy(), "final_obs": final_obs,
                "_final_obs": done.copy()}

    # --- checkpointing ---------------------------------------------------------------------------
    _STATE = ("_rngs", "_elapsed", "_stats", "_components", "_done", "_state_obs", "_frames", "_needs_reset",
              "_window", "_episode_stage")

    def get_state(self):
        """A picklable copy of everything the envs carry between steps (see the module docstring)."""
        residual = None if self.residual is None else copy.deepcopy(self.residual.get_state())
        reverse = None if self.reverse is None else self.reverse.get_state()
        return {"task": self.task.get_state(), "residual": residual, "stage": self.cfg.curriculum_stage,
                "reverse": reverse,
                **copy.deepcopy({k: getattr(self, k) for k in self._STATE})}

    def set_state(self, state):
        self.task.set_state(state["task"])
        self.cfg.curriculum_stage = state["stage"]
        if self.residual is not None:
            self.residual.set_state(copy.deepcopy(state["residual"]))
        if self.reverse is not None:
            self.reverse.set_state(state["reverse"])
        for k, v in copy.deepcopy({k: state[k] for k in self._STATE}).items():
            setattr(self, k, v)

    # --- goals, rendering, closing ------------------------------------------------------------------
    def compute_reward(self, achieved_goal, desired_goal, info=None):
        """Vectorised goal reward for HER (obs_mode="goal"); works on any leading batch shape."""
        return self.task.reward_fn.goal_reward(achieved_goal, desired_goal, self.cfg.goal_tolerance)

    def render_env(self, i, camera="front", height=240, width=320):
        return self.task.render(i, camera, height, width)

    def close_extras(self, **kwargs):
        self.task.close()


def episode_stats(infos, i):
    """Env i's finished-episode statistics from a step's infos, as plain Python numbers."""
    return {k: v[i].item() for k, v in infos["final_info"].items() if not k.startswith("_")}


def make_vec_env(task, reward=None, num_envs=1, seed=None, **env_kwargs):
    return BatchedEnv(task=task, reward=reward, num_envs=num_envs, seed=seed, **env_kwargs)
