"""The demonstrations dataset on disk, in one place: where it lives, writing it in Minari's format,
reading it back for training, its fingerprint.

The demos stage's folder, data/demos/<task>_<backend>/<controller>/stage<s>_n<episodes>_seed<seed>/,
is a Minari datasets root holding one dataset, <task>-<controller>-v0, so either of

    MINARI_DATASETS_PATH=data/demos/lift_mujoco/picker/stage1_n100_seed0 python -c \\
        "import minari; print(minari.load_dataset('lift-picker-v0'))"
    pipeline.run.demos.load("data/demos/lift_mujoco/picker/stage1_n100_seed0")

reads it (nothing is written to ~/.minari). Per step, T actions and T + 1 observations and infos
(index 0: after reset), as Minari's own collector stores them:
  observations   the state observation (float32), or, where demos.pixels is true (a run learns from
                 the wrist camera: drqv2 with demo_ratio > 0), {"state": ..., "pixels": (H, W, 3)
                 uint8 wrist frames at env.image_size, stored raw: exactly the env's pixels}
  actions        float32 in [-1, 1]^action_dim: what the env applied
  rewards        0: the demos stage runs no reward version (pipeline/run/relabel.py scores the steps)
  infos          success (bool): the task's success test; state/<field>: the task's step state
                 (StepState, PaperState, WalkState), what a reward version's compute() reads;
                 start/<field>, for a task that can start episodes from recorded states (lift,
                 pick_place): the task's snapshot (qpos, ctrl, hold_count, goal, cube_spawn), what a
                 reverse-curriculum start restores (envs/reverse.py)
Per episode (Minari episode metadata): seed, success (the env's success_once: failed episodes are
kept, marked False), success_at_end, terminated, unstable, episode_len and the task's metrics.
Dataset metadata (metadata.json, besides Minari's own keys): task, backend, controller, the env
settings, the step state's type and constants (lift_height, hold_steps), the success rate.
"""
from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import warnings
from pathlib import Path

import numpy as np

PATH = "data/demos/{task}_{backend}/{controller}/stage{stage}_n{episodes}_seed{demos_seed}"


def dataset_path(task: str, backend: str, demos: dict, curriculum_stage) -> str:
    """The folder of the demonstrations that block `demos` ({episodes, seed, controller}) and the
    start stage describe: every value that made it is in its path."""
    return PATH.format(task=task, backend=backend, controller=demos["controller"], stage=curriculum_stage,
                       episodes=demos["episodes"], demos_seed=demos["seed"])


def dataset_id(task: str, controller: str) -> str:
    """The Minari id of the dataset in a demos folder (Minari ids end in a version)."""
    return f"{task}-{controller}-v0"


def summary_path(path) -> str:
    """The demos stage's summary JSON, beside the dataset folder."""
    return f"{path}.json"


@contextlib.contextmanager
def _root(path: Path):
    """Minari finds datasets under $MINARI_DATASETS_PATH: point it at the demos folder."""
    old = os.environ.get("MINARI_DATASETS_PATH")
    os.environ["MINARI_DATASETS_PATH"] = str(path.resolve())     # Minari joins a relative root twice
    try:
        yield
    finally:
        if old is None:
            del os.environ["MINARI_DATASETS_PATH"]
        else:
            os.environ["MINARI_DATASETS_PATH"] = old


def write(path, recording, metadata: dict):
    """Write a Recording (envs/demos.py) as the Minari dataset `path`, replacing what is there.
    metadata: JSON-able facts about it, added to the dataset's metadata. Returns the dataset."""
    import gymnasium
    import minari
    from minari.data_collector import EpisodeBuffer

    path = Path(path)
    if path.exists():
        shutil.rmtree(path)
    path.mkdir(parents=True)
    pixels = recording.episodes[0].frames is not None
    state_space = recording.state_space
    obs_space = state_space
    if pixels:
        height, width, _ = recording.episodes[0].frames[0].shape
        obs_space = gymnasium.spaces.Dict({"state": state_space, "pixels": gymnasium.spaces.Box(
            0, 255, (height, width, 3), dtype=np.uint8)})
    buffers = []
    for k, ep in enumerate(recording.episodes):
        state_obs = np.asarray(ep.state_obs, dtype=np.float32)
        obs = {"state": state_obs, "pixels": np.asarray(ep.frames, dtype=np.uint8)} if pixels else state_obs
        steps = len(ep.actions)
        buffers.append(EpisodeBuffer(
            id=k, seed=ep.seed, observations=obs, actions=np.asarray(ep.actions, dtype=np.float32),
            rewards=np.asarray(ep.rewards, dtype=np.float64), terminations=np.array([False] * (steps - 1) + [ep.terminated]),
            truncations=np.array([False] * (steps - 1) + [ep.truncated]),
            infos=step_infos(ep)))
    # Frames raw, not Minari's default JPEG (PIL quality 75, chroma subsampled): a learner from pixels
    # must see the frames the env renders, the ones its own replay holds.
    with _root(path), warnings.catch_warnings():
        # Minari asks for an author, e-mail, permalink and a registered env; the provenance and the env
        # settings are in the metadata instead.
        warnings.filterwarnings("ignore", message=".*(is set to None|env_spec is None).*", category=UserWarning)
        dataset = minari.create_dataset_from_buffers(
            dataset_id(metadata["task"], metadata["controller"]), buffers, observation_space=obs_space, action_space=recording.action_space,
            algorithm_name=metadata.get("controller"), description=DESCRIPTION, jpeg_encoding=False)
    dataset.storage.update_metadata({**metadata, "step_state": {"type": recording.state_type,
                                                                "constants": recording.constants}})
    dataset.storage.update_episode_metadata([episode_metadata(ep) for ep in recording.episodes],
                                            range(len(recording.episodes)))
    return dataset


def step_infos(ep) -> dict:
    """An episode's per-step infos: success, the step state and, where recorded, the start snapshot."""
    infos = {"success": np.asarray(ep.success), "state": {k: np.asarray(v) for k, v in ep.states.items()}}
    if ep.starts:
        infos["start"] = {k: np.asarray(v) for k, v in ep.starts.items()}
    return infos


DESCRIPTION = ("Scripted-controller demonstrations (pipeline/demos.py). Rewards are 0: relabel them for a "
               "reward version from infos['state'] (pipeline/run/relabel.py).")


def episode_metadata(ep) -> dict:
    """What Minari keeps per episode: the env's own final_info for it, success first."""
    stats = {k: (bool(v) if isinstance(v, bool) else float(v) if isinstance(v, float) else v)
             for k, v in ep.stats.items() if k != "return" and not k.startswith("reward/")}   # a reward version's, not the data's
    return {"success": bool(ep.stats["success_once"]), **stats}


def load(path):
    """The Minari dataset in demos folder `path` (as minari.load_dataset finds it)."""
    import minari
    path = Path(path)
    found = sorted(p.parent.name for p in path.glob("*/data"))
    if len(found) != 1:
        raise FileNotFoundError(f"{path}: expected one Minari dataset written by the demos stage, found {found}")
    with _root(path):
        return minari.load_dataset(found[0])


def episode_info(dataset) -> list[dict]:
    """Every episode's metadata, in order."""
    return list(dataset.storage.get_episode_metadata(range(dataset.total_episodes)))


def fingerprint(path) -> str:
    """sha256 of the dataset's files (names and contents): what a run that learnt from it records."""
    digest = hashlib.sha256()
    for f in sorted(p for p in Path(path).rglob("*") if p.is_file()):
        digest.update(str(f.relative_to(path)).encode() + b"\0" + f.read_bytes())
    return digest.hexdigest()
