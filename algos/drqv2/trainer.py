"""DrQ-v2's training loop on a gymnasium 1.x VectorEnv (SAME_STEP autoreset), the exploration it
runs (uniform actions for num_expl_steps, then the agent's scheduled noise; updates once
num_seed_steps are stored), its batches (with demo_ratio > 0, that share from the demonstrations),
its checkpoints, and evaluate().

    trainer = DrQV2Trainer(vec_env, algos.drqv2.config(params["drqv2"], seed=0))    # demos=: with demo_ratio > 0
    trainer.load(state_dir)                          # optional: resume (agent, optimisers, replay, RNG)
    trainer.train_until(total_env_steps, on_checkpoint=lambda t: t.save(state_dir),
                        checkpoint_every=50_000, on_episode=write_row)
    trainer.episodes                                 # per-episode stats (also passed to on_episode)
    episodes = evaluate(trainer.agent, eval_vec_env, num_episodes=20, seed=1)
"""
import dataclasses
import os
import random
import time
from pathlib import Path

import numpy as np
import torch

from algos.base import Trainer
from algos.drqv2 import DrQV2Config
from algos.drqv2.agent import STATE_FILE, DrQV2Agent
from algos.drqv2.replay import DemoBuffer, ReplayBuffer


def _newest_frame(obs, frame_stack):
    """The newest frame (last C channels) of frame-stacked observations (..., frame_stack*C, H, W)."""
    channels = obs.shape[-3] // frame_stack
    return obs[..., -channels:, :, :]


def _scalar_items(info, i):
    """Scalar entries of env i in a batched gymnasium info dict (respecting the "_key" masks)."""
    out = {}
    for key, value in info.items():
        if key.startswith("_") or isinstance(value, dict):
            continue
        mask = info.get("_" + key)
        if mask is not None and not mask[i]:
            continue
        v = np.asarray(value[i]) if hasattr(value, "__len__") else None
        if v is not None and v.ndim == 0 and v.dtype.kind in "biuf":
            out[key] = v.item()
    return out


class DrQV2Trainer(Trainer):
    """Collects with a gymnasium 1.x VectorEnv (autoreset mode SAME_STEP) and trains a DrQ-v2 agent.

    Observations: uint8 (num_envs, frame_stack * C, H, W), frame-stacked by the env, newest frame
    last. Steps are counted in env steps summed over the envs (one vector step of N envs = N frames);
    the exploration schedule, num_expl_steps, num_seed_steps and update_every_steps use that count.
    """

    STATE_FILE = STATE_FILE
    REPLAY_DIR = "replay"
    policy_suffix = ".pt"
    # save() adds to one state folder (the replay buffer in chunks, never rewritten): a resume
    # continues from the latest checkpoint only.
    keeps_one_state = True

    def __init__(self, env, config: DrQV2Config, on_episode=None, demos=None):
        if config.torch_threads > 0:
            torch.set_num_threads(config.torch_threads)
        self.env = env
        self.config = config
        self.num_envs = env.num_envs
        obs_shape = tuple(env.single_observation_space.shape)
        action_dim = int(np.prod(env.single_action_space.shape))
        if obs_shape[0] % config.frame_stack:
            raise ValueError(f"obs channels {obs_shape[0]} not a multiple of frame_stack")
        frame_shape = (obs_shape[0] // config.frame_stack, *obs_shape[1:])
        self.action_low = env.single_action_space.low
        self.action_high = env.single_action_space.high
        if not (np.allclose(self.action_low, -1) and np.allclose(self.action_high, 1)):
            raise ValueError("DrQ-v2's tanh actor expects actions in [-1, 1]")

        torch.manual_seed(config.seed)
        np.random.seed(config.seed)
        random.seed(config.seed)
        self.agent = DrQV2Agent(obs_shape, action_dim, config)
        self.replay = ReplayBuffer(self.num_envs, frame_shape, action_dim, config.frame_stack,
                                   config.nstep, config.discount, config.replay_memory_bytes,
                                   seed=config.seed)
        # With demo_ratio > 0, each batch draws round(demo_ratio * batch_size) of its transitions
        # from the demonstrations' wrist frames (demos: pipeline/run/transitions.py, with frames).
        self.demos = None if demos is None else demo_buffer(demos, frame_shape, action_dim, config)
        self.n_demo = round(config.demo_ratio * config.batch_size) if self.demos is not None else 0
        self._global_step = 0         # env steps, all envs together
        self.num_updates = 0
        self._update_credit = 0.0     # fractional updates owed (N envs / update_every_steps per step)
        self.episodes = []            # one dict per finished training episode
        self.metrics = {}             # last update's losses
        self.on_episode = on_episode
        self._obs = None              # current observations; None means the envs need a reset
        self._ep_return = np.zeros(self.num_envs)
        self._ep_length = np.zeros(self.num_envs, dtype=np.int64)
        self._resets = 0

    @property
    def global_step(self):
        return self._global_step

    @global_step.setter
    def global_step(self, value):
        self._global_step = value

    def _reset_envs(self):
        # A fresh seed per (re)start: a resumed run does not replay the first run's initial states.
        obs, _ = self.env.reset(seed=self.config.seed + 1_000_003 * self._resets + self.global_step)
        self._resets += 1
        self._obs = obs
        self._ep_return[:] = 0.0
        self._ep_length[:] = 0
        self.replay.add_first(_newest_frame(obs, self.config.frame_stack))

    def _record_episodes(self, done, infos):
        final_info = infos.get("final_info", {})
        mask = infos.get("_final_info", done)
        for i in np.flatnonzero(done):
            record = {"step": self.global_step, "env": int(i), "episode_return": float(self._ep_return[i]),
                      "episode_length": int(self._ep_length[i])}
            if mask[i]:
                record.update(_scalar_items(final_info, i))
            self.episodes.append(record)
            if self.on_episode is not None:
                self.on_episode(record)

    def train_until(self, total_env_steps, on_checkpoint=None, checkpoint_every=None, progress=False,
                    on_episode=None, should_stop=None):
        """Collect and train until global_step >= total_env_steps, or until should_stop() says so
        (checked between env steps, where a checkpoint is consistent: Ctrl-C).

        on_checkpoint(trainer) is called each time global_step crosses a multiple of
        checkpoint_every, and once at the end (e.g. lambda t: t.save(ckpt_dir)).
        """
        if on_episode is not None:
            self.on_episode = on_episode
        c = self.config
        if self._obs is None:
            self._reset_envs()
        t0, step0, last_print = time.time(), self.global_step, time.time()
        checkpointed = False
        while self.global_step < total_env_steps and not (should_stop is not None and should_stop()):
            action = self.agent.act(self._obs, self.global_step, eval_mode=False)
            next_obs, reward, terminated, truncated, infos = self.env.step(action)
            terminated, truncated = np.asarray(terminated), np.asarray(truncated)
            done = terminated | truncated
            self._ep_return += reward
            self._ep_length += 1

            final_frames = None
            if done.any():
                final_obs = infos["final_obs"]
                final_frames = [_newest_frame(np.asarray(final_obs[i]), c.frame_stack) if done[i] else None
                                for i in range(self.num_envs)]
            self.replay.add(action, reward, terminated, truncated,
                            _newest_frame(next_obs, c.frame_stack), final_frames)
            prev_step = self.global_step
            self.global_step += self.num_envs
            if done.any():
                self._record_episodes(done, infos)
                self._ep_return[done] = 0.0
                self._ep_length[done] = 0
            self._obs = next_obs

            # The replay ratio: one update per update_every_steps env steps, once seeded.
            if self.global_step >= c.num_seed_steps:
                self._update_credit += self.num_envs / c.update_every_steps
                while self._update_credit >= 1.0:
                    self._update_credit -= 1.0
                    self.metrics = self.agent.update(self.sample(), self.global_step)
                    self.num_updates += 1

            if progress and time.time() - last_print > 30:
                last_print = time.time()
                self._print_progress(t0, step0)
            checkpointed = False
            if (checkpoint_every and on_checkpoint is not None
                    and self.global_step // checkpoint_every > prev_step // checkpoint_every):
                on_checkpoint(self)
                checkpointed = True
        if progress:
            self._print_progress(t0, step0)
        if on_checkpoint is not None and not checkpointed:
            on_checkpoint(self)
        return self

    def sample(self):
        """A batch (obs, action, reward, discount, next_obs): n_demo demonstration transitions
        first, then the replay's; without demonstrations, the replay's alone."""
        batches = []
        if self.n_demo:
            batches.append(self.demos.sample(self.n_demo))
        if self.n_demo < self.config.batch_size:
            batches.append(self.replay.sample(self.config.batch_size - self.n_demo))
        return batches[0] if len(batches) == 1 else tuple(map(np.concatenate, zip(*batches)))

    def _print_progress(self, t0, step0):
        fps = (self.global_step - step0) / max(time.time() - t0, 1e-9)
        recent = self.episodes[-20:]
        ret = np.mean([e["episode_return"] for e in recent]) if recent else float("nan")
        succ = [e["success_once"] for e in recent if "success_once" in e]
        succ_s = f" success {np.mean(succ):.2f}" if succ else ""
        print(f"[drqv2] step {self.global_step} updates {self.num_updates} {fps:.1f} frames/s "
              f"episodes {len(self.episodes)} return(20) {ret:.2f}{succ_s} "
              f"critic_loss {self.metrics.get('critic_loss', float('nan')):.4f}", flush=True)

    # ---- checkpoints: the policy file, and the resume state (state_dict, save and load)
    def save_policy(self, path):
        """The agent alone, in trainer.pt's layout ({"agent": ...}): DrQV2Agent.from_checkpoint and
        algos.drqv2.read_weights read it."""
        path = Path(path)
        tmp = path.with_name(path.name + ".tmp")
        torch.save({"agent": self.agent.state_dict(), "global_step": self.global_step,
                    "num_updates": self.num_updates}, tmp)
        os.replace(tmp, path)

    def state_dict(self):
        return {
            "agent": self.agent.state_dict(),
            "replay": self.replay.state_dict(),
            "demos": None if self.demos is None else self.demos.state_dict(),   # its RNG; data: the dataset
            "global_step": self.global_step,
            "num_updates": self.num_updates,
            "update_credit": self._update_credit,
            "episodes": list(self.episodes),
            "resets": self._resets,
            # The envs' episodes in flight, so a resume continues them instead of starting new ones:
            # with this, a resumed run's weights equal an uninterrupted run's (tests/test_pipeline.py).
            # (An env without get_state, like the tests' toy env, resumes with fresh episodes.)
            "envs": None if self._obs is None or not hasattr(self.env, "get_state") else {
                "state": self.env.get_state(), "obs": self._obs, "ep_return": self._ep_return,
                "ep_length": self._ep_length},
            "rng": {"torch": torch.get_rng_state(), "numpy": np.random.get_state(),
                    "python": random.getstate(),
                    "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None},
            "config": dataclasses.asdict(self.config),
        }

    def save(self, directory):
        """Checkpoint into directory: new replay chunks first, then trainer.pt (atomic rename).

        trainer.pt is the commit point: a run killed before it is renamed resumes from the previous
        checkpoint, whose replay chunks are all still there (overwritten chunks are pruned only after).
        """
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        self.replay.save(directory / self.REPLAY_DIR)
        tmp = directory / (self.STATE_FILE + ".tmp")
        torch.save(self.state_dict(), tmp)
        os.replace(tmp, directory / self.STATE_FILE)
        self.replay.prune(directory / self.REPLAY_DIR)

    def load(self, directory):
        """Resume from save(directory), the envs' episodes in flight included, so training goes on
        exactly as if it had never stopped."""
        directory = Path(directory)
        state = torch.load(directory / self.STATE_FILE, map_location="cpu", weights_only=False)
        self.agent.load_state_dict(state["agent"])
        self.replay.load(directory / self.REPLAY_DIR, state["replay"])
        if (state.get("demos") is None) != (self.demos is None):
            raise ValueError("the checkpoint was made with demonstrations and this trainer has none, or the reverse")
        if self.demos is not None:
            self.demos.load_state_dict(state["demos"])
        self.global_step = state["global_step"]
        self.num_updates = state["num_updates"]
        self._update_credit = state["update_credit"]
        self.episodes = list(state["episodes"])
        self._resets = state["resets"]
        rng = state["rng"]
        torch.set_rng_state(rng["torch"])
        np.random.set_state(rng["numpy"])
        random.setstate(rng["python"])
        if rng["cuda"] is not None and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(rng["cuda"])
        self._obs = None
        if state.get("envs") is not None:
            envs = state["envs"]
            self.env.set_state(envs["state"])
            self._obs = envs["obs"]
            self._ep_return, self._ep_length = envs["ep_return"].copy(), envs["ep_length"].copy()
        return self

    def named_parameters(self):
        for part in ("encoder", "actor", "critic"):
            for name, value in getattr(self.agent, part).named_parameters():
                yield f"{part}.{name}", value

    def info(self):
        config = {k: v for k, v in dataclasses.asdict(self.config).items() if k != "torch_threads"}
        demos = {} if self.demos is None else {"demo_transitions": self.demos.transitions}
        return {"num_updates": self.num_updates, "drqv2_config": config, "device": str(self.agent.device), **demos}

    def losses(self):
        return {**self.metrics, "num_updates": self.num_updates}

    def episode_log(self):
        """Finished episodes as the train log's rows: global_step, env and the env's final_info."""
        return [{"global_step": r["step"], "env": r["env"],
                 **{k: v for k, v in r.items() if k not in ("step", "env", "episode_return", "episode_length")}}
                for r in self.episodes]

    def close(self):
        self.env.close()


def demo_buffer(demos, frame_shape, action_dim, config: DrQV2Config) -> DemoBuffer:
    """The demonstrations as a DemoBuffer, refused where their frames or actions are not the env's."""
    if demos.frames[0].shape[1:] != tuple(frame_shape):
        raise ValueError(f"{demos.path}: wrist frames of shape {demos.frames[0].shape[1:]}, the env's are "
                         f"{tuple(frame_shape)}: record the demonstrations at the run's env.image_size")
    if demos.actions.shape[1] != action_dim:
        raise ValueError(f"{demos.path}: actions of {demos.actions.shape[1]} values, the env's have {action_dim}")
    # Its own generator, seeded apart from the replay's.
    return DemoBuffer(demos.episodes(), config.frame_stack, config.nstep, config.discount,
                      seed=(config.seed, 1))


@torch.no_grad()
def evaluate(agent, env, num_episodes, seed=None):
    """Run the deterministic policy on a SAME_STEP VectorEnv; return one stats dict per episode.

    Only the first num_episodes episodes to finish are kept (envs keep stepping until then).
    """
    obs, _ = env.reset(seed=seed)
    n = env.num_envs
    ret, length = np.zeros(n), np.zeros(n, dtype=np.int64)
    out = []
    while len(out) < num_episodes:
        obs, reward, terminated, truncated, infos = env.step(agent.act(obs, eval_mode=True))
        ret += reward
        length += 1
        done = np.asarray(terminated) | np.asarray(truncated)
        mask = infos.get("_final_info", done)
        for i in np.flatnonzero(done):
            record = {"episode_return": float(ret[i]), "episode_length": int(length[i])}
            if mask[i]:
                record.update(_scalar_items(infos.get("final_info", {}), i))
            out.append(record)
        ret[done], length[done] = 0.0, 0
    return out[:num_episodes]
