"""Replay buffer for DrQ-v2 from pixels: single frames stored, frame stacks rebuilt at sample time.

Why single frames: the env hands us frame-stacked observations (3 x RGB = 9 x 84 x 84 uint8,
63.5 kB a step), but consecutive stacks share all but one frame. Keeping only the newest frame of each
observation (21 kB) cuts memory by `frame_stack`, so 1M steps need ~21 GB instead of ~63 GB, and a
CPU budget of 2 GiB holds ~100k steps.

Layout. The buffer keeps one ring per env stream of the vector env (env i always writes to stream i),
so an episode is a contiguous run of entries. An episode of T steps is T + 1 entries:

    entry:     o_0        o_1        ...   o_{T-1}      o_T (final obs)    o'_0 (next episode)
    first:     True       False            False        False              True
    valid:     True       True             True         False              ...
    action:    a_0        a_1              a_{T-1}      -
    reward:    r_1        r_2              r_T          -
    terminal:  False      False            False        terminated?

`valid` marks entries that have an outgoing transition (action and reward known). The final
observation of an episode (gymnasium's infos["final_obs"]) is an entry of its own, not sampleable as a
start, and `terminal` says whether the episode ended in a real termination (no bootstrapping from it)
or a time-limit truncation (bootstrap from it as from any other state). The newest entry of each
stream (its "head") is the current observation, whose action is not known yet.

Frame stacks at sample time: going back from entry p, each step back stays put once it reaches an
entry with `first` set, so at an episode start the first frame is repeated: exactly what the env's own
frame stacking does after a reset, and never a frame of the previous episode.

n-step returns: R = sum_{k<n'} gamma^k r_{t+k}, discount = gamma^{n'} * (0 if the window ends on a
real termination else 1), next obs = o_{t+n'}, with n' = n, or fewer steps where the episode ended
first (a window never crosses an episode boundary).

Persistence: `save(dir)` appends the entries written since the previous save as chunk files
(uncompressed .npz, one per stream per save), so a checkpoint costs only the new data; `load(dir,
state)` rebuilds the rings from the chunks; `prune(dir)` deletes chunks that the ring has overwritten.
"""
import os
import re
from pathlib import Path

import numpy as np

# What one stored step costs besides its frame: float32 action, float32 reward, three bool flags.
_FLAG_BYTES = 3
_CHUNK_RE = re.compile(r"stream(\d+)_(\d+)_(\d+)\.npz$")


def bytes_per_step(frame_shape, action_dim):
    return int(np.prod(frame_shape)) + 4 * action_dim + 4 + _FLAG_BYTES


def capacity_for_memory(memory_bytes, frame_shape, action_dim):
    """Number of steps (all streams together) that fit in memory_bytes."""
    return int(memory_bytes) // bytes_per_step(frame_shape, action_dim)


class ReplayBuffer:
    def __init__(self, num_streams, frame_shape, action_dim, frame_stack, nstep, discount,
                 memory_bytes, seed=0):
        self.num_streams = num_streams
        self.frame_shape = tuple(frame_shape)
        self.action_dim = action_dim
        self.frame_stack = frame_stack
        self.nstep = nstep
        self.discount = discount
        self.memory_bytes = int(memory_bytes)
        # Each stream gets an equal share: the envs step in lockstep, so they fill at the same rate.
        self.capacity = capacity_for_memory(memory_bytes, frame_shape, action_dim) // num_streams
        if self.capacity < frame_stack + nstep + 1:
            raise ValueError(f"memory_bytes={memory_bytes} leaves {self.capacity} steps per stream, "
                             f"fewer than frame_stack + nstep + 1")

        S, N = num_streams, self.capacity
        # np.zeros pages are only committed by the OS once written, so an unfilled buffer is cheap.
        self.frames = np.zeros((S, N, *self.frame_shape), dtype=np.uint8)
        self.action = np.zeros((S, N, action_dim), dtype=np.float32)
        self.reward = np.zeros((S, N), dtype=np.float32)
        self.first = np.zeros((S, N), dtype=bool)
        self.valid = np.zeros((S, N), dtype=bool)
        self.terminal = np.zeros((S, N), dtype=bool)
        # Logical positions: entry p of stream s lives at slot p % capacity; `total` counts entries
        # ever written, so [max(0, total - capacity), total) is what the ring still holds.
        self.total = np.zeros(S, dtype=np.int64)
        self._saved_upto = np.zeros(S, dtype=np.int64)   # first entry the next save must write
        self._saved_total = np.zeros(S, dtype=np.int64)  # total at the last save
        self.rng = np.random.default_rng(seed)

    # ----------------------------------------------------------------------------------- writing
    def _append(self, s, frame, first, terminal=False):
        i = self.total[s] % self.capacity
        self.frames[s, i] = frame
        self.action[s, i] = 0.0
        self.reward[s, i] = 0.0
        self.first[s, i] = first
        self.valid[s, i] = False
        self.terminal[s, i] = terminal
        self.total[s] += 1

    def add_first(self, frames, streams=None):
        """Start an episode on each stream with its reset frame (newest frame of the reset obs)."""
        streams = range(self.num_streams) if streams is None else streams
        for s, frame in zip(streams, frames):
            self._append(s, frame, first=True)

    def add(self, action, reward, terminated, truncated, next_frames, final_frames=None):
        """Record one vector-env step for every stream.

        action, reward, terminated, truncated: per stream, for the step just taken from the head.
        next_frames: newest frame of the obs the env returned (for a finished env, SAME_STEP autoreset
        makes that the reset obs of its next episode). final_frames[s]: newest frame of
        infos["final_obs"][s] for each finished stream (ignored for the others).
        """
        for s in range(self.num_streams):
            if self.total[s] == 0:
                raise RuntimeError("add_first must start each stream before add")
            head = (self.total[s] - 1) % self.capacity
            self.action[s, head] = action[s]
            self.reward[s, head] = reward[s]
            self.valid[s, head] = True
            if terminated[s] or truncated[s]:
                self._append(s, final_frames[s], first=False, terminal=bool(terminated[s]))
                self._append(s, next_frames[s], first=True)
            else:
                self._append(s, next_frames[s], first=False)

    def __len__(self):
        """Steps currently held (entries with an outgoing transition are most of them)."""
        return int(np.minimum(self.total, self.capacity).sum())

    # ---------------------------------------------------------------------------------- sampling
    def _stack(self, s, p):
        """Frame-stacked observations (B, frame_stack * C, H, W) for entries p of streams s."""
        idx = [p]
        for _ in range(self.frame_stack - 1):
            cur = idx[0]
            at_start = self.first[s, cur % self.capacity]
            idx.insert(0, np.where(at_start, cur, cur - 1))   # oldest first, newest last
        frames = np.stack([self.frames[s, q % self.capacity] for q in idx], axis=1)
        return frames.reshape(len(p), -1, *self.frame_shape[1:])

    def _nstep(self, s, p):
        """n-step return, discount, end entry and an ok-mask for windows starting at entries p."""
        C = self.capacity
        ok = self.valid[s, p % C].copy()          # the start needs a known action and reward
        ret = np.zeros(len(p), dtype=np.float32)
        gamma_k = np.ones(len(p), dtype=np.float32)
        cur = p.copy()
        alive = np.ones(len(p), dtype=bool)        # still inside the episode and under n steps
        head = self.total[s] - 1
        for k in range(self.nstep):
            ret += np.where(alive, gamma_k * self.reward[s, cur % C], 0.0).astype(np.float32)
            gamma_k = np.where(alive, gamma_k * self.discount, gamma_k).astype(np.float32)
            cur = np.where(alive, cur + 1, cur)
            # The head's action is not known yet: a window that needs a reward from it is unfinished.
            ok &= ~(alive & (cur == head) & (k < self.nstep - 1))
            # An entry without an outgoing transition (other than the head) ends the episode.
            alive &= self.valid[s, cur % C] | (cur == head)
        discount = gamma_k * (~self.terminal[s, cur % C])
        return ret, discount.astype(np.float32), cur, ok

    def _starts(self):
        """Per stream, the first entry a window may start at and how many starts follow it."""
        lo = np.maximum(self.total - self.capacity, 0)
        # Starts need frame_stack - 1 older entries still in the ring (the stack looks back) and a
        # next entry.
        start_lo = lo + self.frame_stack - 1
        return start_lo, np.maximum(self.total - 1 - start_lo, 0)

    def sample(self, batch_size):
        """A batch (obs, action, reward, discount, next_obs) as numpy arrays, uniform over steps."""
        start_lo, counts = self._starts()
        if counts.sum() == 0:
            raise RuntimeError("replay buffer is empty")
        probs = counts / counts.sum()
        got_s, got_p = [], []
        n_got = 0
        while n_got < batch_size:
            m = 2 * (batch_size - n_got) + 8
            s = self.rng.choice(self.num_streams, size=m, p=probs)
            p = start_lo[s] + np.floor(self.rng.random(m) * counts[s]).astype(np.int64)
            _, _, _, ok = self._nstep(s, p)
            got_s.append(s[ok])
            got_p.append(p[ok])
            n_got += int(ok.sum())
        s = np.concatenate(got_s)[:batch_size]
        p = np.concatenate(got_p)[:batch_size]
        ret, discount, end, _ = self._nstep(s, p)
        C = self.capacity
        return (self._stack(s, p), self.action[s, p % C], ret[:, None], discount[:, None],
                self._stack(s, end))

    # ------------------------------------------------------------------------------- persistence
    def state_dict(self):
        """Small metadata for a checkpoint; the data itself lives in the chunk files of save()."""
        return {"total": self.total.copy(), "capacity": self.capacity,
                "num_streams": self.num_streams, "frame_shape": self.frame_shape,
                "rng": self.rng.bit_generator.state}

    def save(self, directory):
        """Write entries added since the previous save as one chunk file per stream.

        The head entry is written too but saved again next time, since its action and reward only
        become known at the next step. Files go through a temporary name, so a killed save leaves
        no half-written chunk under a real name.
        """
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        C = self.capacity
        for s in range(self.num_streams):
            start = max(self._saved_upto[s], self.total[s] - C, 0)
            end = self.total[s]
            if end <= start or self.total[s] == self._saved_total[s]:
                continue     # nothing written since the last save
            slots = np.arange(start, end) % C
            path = directory / f"stream{s:03d}_{start:012d}_{end:012d}.npz"
            tmp = path.with_name(path.name + ".tmp")
            with open(tmp, "wb") as f:
                np.savez(f, frames=self.frames[s, slots], action=self.action[s, slots],
                         reward=self.reward[s, slots], first=self.first[s, slots],
                         valid=self.valid[s, slots], terminal=self.terminal[s, slots])
            os.replace(tmp, path)
            self._saved_upto[s] = end - 1
            self._saved_total[s] = end

    def _chunks(self, directory):
        out = []
        for path in Path(directory).glob("stream*.npz"):
            m = _CHUNK_RE.search(path.name)
            if m:
                out.append((int(m.group(1)), int(m.group(2)), int(m.group(3)), path))
        return sorted(out)

    def prune(self, directory):
        """Delete chunk files whose entries have all been overwritten in the ring."""
        lo = np.maximum(self.total - self.capacity, 0)
        for s, _, end, path in self._chunks(directory):
            if s < self.num_streams and end <= lo[s]:
                path.unlink(missing_ok=True)

    def load(self, directory, state):
        """Rebuild the rings from the chunks in directory, up to the positions recorded in state.

        Chunks reaching past state["total"] come from a save that was not committed (the run died
        before writing its checkpoint) and are deleted. Each stream's head is left without an outgoing
        transition, as it is between two steps: the resumed run either continues the envs' episodes
        (restored with the trainer) or resets them, which ends the head's episode as a truncation.
        """
        if state["capacity"] != self.capacity or state["num_streams"] != self.num_streams:
            raise ValueError("replay checkpoint was made with a different capacity or env count")
        self.total = np.asarray(state["total"], dtype=np.int64).copy()
        self.rng.bit_generator.state = state["rng"]
        C = self.capacity
        lo = np.maximum(self.total - C, 0)
        covered = [np.zeros(C, dtype=bool) for _ in range(self.num_streams)]
        for s, start, end, path in self._chunks(directory):
            if end > self.total[s]:
                path.unlink()
                continue
            a, b = max(start, lo[s]), end
            if b <= a:
                continue
            with np.load(path) as z:
                src = slice(a - start, b - start)
                slots = np.arange(a, b) % C
                self.frames[s, slots] = z["frames"][src]
                self.action[s, slots] = z["action"][src]
                self.reward[s, slots] = z["reward"][src]
                self.first[s, slots] = z["first"][src]
                self.valid[s, slots] = z["valid"][src]
                self.terminal[s, slots] = z["terminal"][src]
            covered[s][slots] = True
        for s in range(self.num_streams):
            need = np.arange(lo[s], self.total[s]) % C
            if not covered[s][need].all():
                raise FileNotFoundError(f"replay chunks in {directory} miss entries of stream {s}")
            if self.total[s] > 0:
                head = (self.total[s] - 1) % C
                self.valid[s, head] = False
                self.terminal[s, head] = False
        # The heads changed (now truncation ends), so the next save writes them again.
        self._saved_upto = np.maximum(self.total - 1, 0)
        self._saved_total = np.full(self.num_streams, -1, dtype=np.int64)


class DemoBuffer(ReplayBuffer):
    """The demonstrations as a read-only replay, sampled exactly as the run's own: one stream
    holding every episode back to back, written through add_first/add as the trainer writes its
    envs' steps, so frame stacks (first frame repeated at an episode's start) and n-step windows
    (never across an episode's end; no bootstrap past a termination) follow the same code.

    episodes: (frames (T + 1, C, H, W) uint8, actions (T, action_dim), rewards (T,), terminated)
    per episode. The buffer is rebuilt from the dataset whenever a run starts; only its sampling
    generator is part of a checkpoint (state_dict).
    """

    def __init__(self, episodes, frame_stack, nstep, discount, seed):
        frames0, actions0, _, _ = episodes[0]
        frame_shape, action_dim = frames0.shape[1:], actions0.shape[1]
        # Every entry of every episode, and one closing entry: the head, where the next episode's
        # reset frame would be, so that the last episode's windows are complete like the others'.
        entries = sum(len(frames) for frames, *_ in episodes) + 1
        super().__init__(1, frame_shape, action_dim, frame_stack, nstep, discount,
                         entries * bytes_per_step(frame_shape, action_dim), seed)
        self.add_first([frames0[0]])
        closing = np.zeros(frame_shape, np.uint8)
        for k, episode in enumerate(episodes):
            next_first = episodes[k + 1][0][0] if k + 1 < len(episodes) else closing
            self._add_episode(*episode, next_first)
        self.transitions = sum(len(actions) for _, actions, _, _ in episodes)

    def _add_episode(self, frames, actions, rewards, terminated, next_first):
        """Steps 0..T-1 of an episode whose first frame is the head; its end appends the final frame
        and then next_first, the next episode's first (as an env's autoreset does)."""
        T = len(actions)
        for t in range(T):
            end = t == T - 1
            self.add(actions[t:t + 1], rewards[t:t + 1], [end and terminated], [end and not terminated],
                     [next_first if end else frames[t + 1]], [frames[T]] if end else None)

    def _starts(self):
        # Never overwritten, and a stack stops at its episode's first frame: every step is a start.
        return np.zeros(1, np.int64), self.total - 1

    def state_dict(self):
        """What a checkpoint keeps: the sampling generator (the data comes from the dataset)."""
        return {"transitions": self.transitions, "rng": self.rng.bit_generator.state}

    def load_state_dict(self, state):
        if state["transitions"] != self.transitions:
            raise ValueError(f"the checkpoint's demonstrations had {state['transitions']} transitions, "
                             f"these {self.transitions}")
        self.rng.bit_generator.state = state["rng"]
