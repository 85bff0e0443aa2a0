"""The demonstrations as a run uses them: transitions for a learner, their rewards relabelled for the
run's reward version (pipeline/run/relabel.py), and for a learner from pixels each episode's wrist
frames; or start states for the env's reverse curriculum (envs/reverse.py). Refused when recorded
for another task or env, or without the frames a run learns from."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pipeline.run import cli, relabel, settings
from pipeline.run.demos import episode_info, fingerprint, load


@dataclass
class Demos:
    """The demonstrations as transitions for a learner, episode after episode (n transitions)."""
    obs: np.ndarray            # (n, ...) state observations (pixel datasets: the "state" part)
    actions: np.ndarray        # (n, action_dim)
    next_obs: np.ndarray
    rewards: np.ndarray        # (n,) of the run's reward version, relabelled
    terminations: np.ndarray   # (n,) bool
    episode: np.ndarray        # (n,) the episode index of each transition
    success: np.ndarray        # (n,) bool: its episode succeeded
    path: str
    sha256: str
    # pixels=True: per episode, its T + 1 wrist frames (T + 1, 3, H, W) uint8, channels first as
    # the env's pixel observations hold them (index 0: after reset)
    frames: list | None = None

    def episodes(self) -> list[tuple]:
        """(frames, actions, rewards, terminated) per episode, in order (needs frames)."""
        ends = np.cumsum([len(f) - 1 for f in self.frames])[:-1]      # an episode of T + 1 frames has T steps
        steps = (np.split(a, ends) for a in (self.actions, self.rewards, self.terminations))
        return [(f, a, r, bool(t[-1])) for f, a, r, t in zip(self.frames, *steps)]

    def provenance(self) -> dict:
        """What a checkpoint records about the data it learnt from."""
        return {"path": self.path, "sha256": self.sha256, "transitions": len(self.actions),
                "episodes": int(len(np.unique(self.episode))),
                "successful_episodes": int(len(np.unique(self.episode[self.success])))}


def for_training(path, task: str, reward: str, env: dict, pixels: bool = False) -> Demos:
    """The demonstrations in `path` as transitions, their rewards relabelled for `reward`; refused
    when they were recorded for another task or other env settings than the run's `env`. pixels:
    with each episode's wrist frames, refused when the dataset was recorded without them."""
    dataset = recorded_for(path, task, env)
    if pixels and "pixels" not in getattr(dataset.observation_space, "spaces", {}):
        raise cli.StageError(f"refusing demonstrations {path}: recorded without wrist frames, which this run "
                             "learns from (set demos.pixels: true)")
    rewards, _ = relabel.relabel(dataset, task, reward)
    obs, actions, next_obs, terms, episode, success, frames = [], [], [], [], [], [], []
    for k, (ep, info) in enumerate(zip(dataset.iterate_episodes(), episode_info(dataset))):
        states = ep.observations["state"] if isinstance(ep.observations, dict) else ep.observations
        steps = len(ep.actions)
        obs.append(states[:-1])
        next_obs.append(states[1:])
        actions.append(ep.actions)
        terms.append(ep.terminations)
        episode.append(np.full(steps, k))
        success.append(np.full(steps, bool(info["success"])))
        if pixels:
            frames.append(np.ascontiguousarray(ep.observations["pixels"].transpose(0, 3, 1, 2)))
    return Demos(np.concatenate(obs), np.concatenate(actions), np.concatenate(next_obs), rewards,
                 np.concatenate(terms), np.concatenate(episode), np.concatenate(success), str(path), fingerprint(path),
                 frames if pixels else None)


def recorded_for(path, task: str, env: dict):
    """The Minari dataset in `path`, refused when recorded for another task, backend or other env
    settings (DEMOS_ENV) than the run's `env`."""
    dataset = load(path)
    meta = dataset.storage.metadata
    problems = [f"task is {meta['task']!r}, the run's {task!r}"] if meta["task"] != task else []
    problems += [f"env.{k} is {meta['env'].get(k)!r}, the run's {env[k]!r}" for k in settings.DEMOS_ENV
                 if meta["env"].get(k) != env[k]]
    if meta["backend"] != env["backend"]:
        problems.append(f"backend is {meta['backend']!r}, the run's {env['backend']!r}")
    if problems:
        raise cli.StageError(f"refusing demonstrations {path}: " + "; ".join(problems))
    return dataset


def start_states(path, task: str, env: dict) -> list[dict]:
    """The successful demonstrations in `path` as the states a reverse curriculum starts episodes
    from: per episode, {field: rows} of its start snapshots (infos/start) from reset to its first
    success. Failed episodes have no success state to start from and are left out."""
    dataset = recorded_for(path, task, env)
    starts = []
    for ep in dataset.iterate_episodes():
        if "start" not in ep.infos:
            raise cli.StageError(f"{path}: the demonstrations hold no start states (infos/start); task {task} "
                                 "cannot start from recorded states, or they were recorded before it could")
        succeeded = np.flatnonzero(ep.infos["success"])
        if len(succeeded):
            starts.append({k: np.asarray(v)[:succeeded[0] + 1] for k, v in ep.infos["start"].items()})
    if not starts:
        raise cli.StageError(f"{path}: no successful demonstration to start episodes from")
    return starts
