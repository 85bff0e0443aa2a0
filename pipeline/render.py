"""Stage `render`: a video of the final policy and a contact sheet of its progress.

    python -m pipeline.render --task lift --reward v19 --algo ppo --runs data/runs/lift_v19_mujoco/ppo/seed0 \
        --video data/videos/lift_v19_mujoco/ppo.mp4 --sheet data/videos/lift_v19_mujoco/ppo_sheet.png \
        --still data/videos/lift_v19_mujoco/ppo.png --env.max_episode_steps 200 ... --render.fps 25 ...

Always a single clean env (envs.make_env), never a camera on the batched training scene, so the
video shows one arm and one cube (devlog 000). The cameras are placed side by side with the step,
return so far and success overlaid; for a policy that acts from pixels (DrQ-v2, or any obs_mode
with pixels) a third panel shows what it sees: the wrist-camera frames of its observation (its
frame stack, oldest at the top). The policy is the final checkpoint of the first run (lowest
seed); the contact sheet shows the last frame of one episode for up to 8 checkpoints of that run.
The still is the frame where the episode first succeeds, or its last frame.
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import imageio.v2 as imageio
import numpy as np
from PIL import Image, ImageDraw
from tqdm import tqdm

from pipeline.run import bases, checkpoints, cli, files, finished, settings

SHEET_MAX = 8
SHEET_COLUMNS = 4


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    cli.add_policy_args(ap)
    ap.add_argument("--video", required=True)
    ap.add_argument("--sheet", required=True)
    ap.add_argument("--still", required=True)
    ap.add_argument("--info", required=True, help="JSON: the rendered episode's outcome and the wall time")
    ap.add_argument("--best", nargs="*", default=[],
                    help="evaluate's metrics JSON naming each seed's best checkpoint (needed where render.checkpoint is best)")
    cli.add_block_args(ap, "env", "render")
    return ap.parse_args(argv)


def label(frame: np.ndarray, lines: list[str]) -> np.ndarray:
    img = Image.fromarray(frame)
    draw = ImageDraw.Draw(img)
    for i, text in enumerate(lines):
        xy = (6, 4 + 12 * i)
        draw.text((xy[0] + 1, xy[1] + 1), text, fill=(0, 0, 0))     # shadow keeps it readable on any background
        draw.text(xy, text, fill=(255, 255, 255))
    return np.asarray(img)


def agent_view(obs, height: int) -> np.ndarray | None:
    """The frames of a pixel observation (3 * frame_stack, H, W), oldest on top, as one column
    `height` rows tall (each frame a height // frame_stack square); None for observations without
    pixels."""
    pixels = obs.get("pixels") if isinstance(obs, dict) else obs
    if not isinstance(pixels, np.ndarray) or pixels.dtype != np.uint8 or pixels.ndim != 3:
        return None
    frames = pixels.reshape(-1, 3, *pixels.shape[1:]).transpose(0, 2, 3, 1)     # (stack, H, W, 3)
    side = max(1, height // len(frames))
    resample = Image.NEAREST if side >= frames.shape[1] else Image.BOX     # pixels stay pixels
    column = np.concatenate([np.asarray(Image.fromarray(f).resize((side, side), resample)) for f in frames])
    return np.pad(column, ((0, height - len(column)), (0, 0), (0, 0)))


def view(env, obs, cameras: list[str], agent: bool) -> np.ndarray:
    """The cameras side by side, then (agent=True) what a pixel policy sees."""
    views = env.render_frames()
    panels = [views[c] for c in cameras]
    seen = agent_view(obs, panels[0].shape[0]) if agent else None
    return np.concatenate(panels + ([seen] if seen is not None else []), axis=1)


def episode(policy, env, seed: int):
    """Yield (obs, step, return so far, succeeded so far) for one whole episode, its reset included."""
    obs, _ = env.reset(seed=seed)
    ret, success, step = 0.0, False, 0
    yield obs, step, ret, success
    while True:
        obs, reward, terminated, truncated, info = env.step(policy.act(obs))
        step += 1
        ret += reward
        success = success or info["is_success"]
        yield obs, step, ret, success
        if terminated or truncated:
            return


def episode_frames(policy, env, seed: int, cameras: list[str]):
    """Yield (frame, step, return so far, succeeded so far) for one whole episode, every frame rendered."""
    for obs, step, ret, success in episode(policy, env, seed):
        yield view(env, obs, cameras, agent=True), step, ret, success


def final_frame(policy, env, seed: int, cameras: list[str]):
    """(last frame, return, succeeded) of one whole episode, rendering only its end (a finished
    episode stays on screen until reset)."""
    *_, (obs, _, ret, success) = episode(policy, env, seed)
    return view(env, obs, cameras, agent=False), ret, success


def even(frame: np.ndarray) -> np.ndarray:
    """H.264 in yuv420p needs even sides: pad one black row/column where needed."""
    h, w = frame.shape[:2]
    return np.pad(frame, ((0, h % 2), (0, w % 2), (0, 0)))


def best_checkpoint(best: list[str], found):
    """The checkpoint of found (a run's) that the evaluate stage picked as its seed's best, read from
    evaluate's metrics, this stage's declared input where render.checkpoint is best."""
    if not best:
        raise cli.StageError("render.checkpoint is best: pass evaluate's metrics JSON with --best")
    pick = files.read_json(best[0])["best"][str(found[-1][1]["seed"])]
    return next((p, m) for p, m in found if m["global_step"] == pick["step"])


def main(argv=None) -> int:
    args = parse_args(argv)
    cli.set_threads(args.threads)
    import algos
    from envs.single import make_env
    from envs.tasks import get_task

    problems = settings.task_reward_problems(args.task, args.reward, [args.algo])
    if problems:
        raise settings.ParamsError("; ".join(problems))
    env_params, r = cli.env_block(args), cli.block(args, "render")
    cameras, valid = r["cameras"].split(","), get_task(args.task).cameras
    if not set(cameras) <= set(valid):
        raise settings.ParamsError(f"render.cameras: got {r['cameras']!r}; valid cameras of task {args.task}: "
                              f"{', '.join(valid)} (comma-separated)")
    done = {d: finished.checkpoints(d) for d in args.runs}     # all intact up to the trained step, or stop
    runs = {found[0][1]["seed"]: d for d, found in done.items()}
    found = done[runs[min(runs)]]       # the lowest seed's run
    env_cfg = checkpoints.policy_env(args.algo, env_params, found)
    for path, meta in found:
        checkpoints.check_checkpoint(meta, path, args.task, args.reward, {k: env_cfg[k] for k in checkpoints.OBS_KEYS})
    started = time.time()
    for path in (args.video, args.sheet, args.still, args.info):
        Path(path).parent.mkdir(parents=True, exist_ok=True)     # DVC, unlike Snakemake, does not
    env = make_env(args.task, args.reward, render_size=(r["height"], r["width"]),
                   **bases.with_trained_base(env_cfg, runs[min(runs)], args.task, args.reward))

    # The final (or best) policy, one episode, every frame.
    path, meta = found[-1] if r["checkpoint"] == "final" else best_checkpoint(args.best, found)
    policy = algos.load_policy(args.algo, path)
    still, writer = None, imageio.get_writer(args.video, fps=r["fps"], codec="libx264", macro_block_size=1,
                                              ffmpeg_log_level="error")
    bar = tqdm(total=env.vec.cfg.max_episode_steps, unit="frame", mininterval=5.0, desc="video")
    for frame, step, ret, success in episode_frames(policy, env, r["seed"], cameras):
        bar.update(step - bar.n)
        frame = label(frame, [f"{args.task} {args.reward} {args.algo} @ {meta['global_step']} steps",
                              f"step {step}  return {ret:.2f}  success {'yes' if success else 'no'}"])
        writer.append_data(even(frame))
        if success and still is None:
            still = frame
        last = frame
    writer.close()
    bar.close()
    episode = {"checkpoint_step": meta["global_step"], "seed": meta["seed"], "steps": step, "return": ret,
               "success": success}
    Image.fromarray(still if still is not None else last).save(args.still)

    # Contact sheet: where each checkpoint's episode ends, side by side.
    picks = found if len(found) <= SHEET_MAX else [found[int(i)] for i in np.linspace(0, len(found) - 1, SHEET_MAX)]
    tiles = []
    for path, meta in tqdm(picks, unit="checkpoint", desc="contact sheet"):
        policy = algos.load_policy(args.algo, path)
        frame, ret, success = final_frame(policy, env, r["seed"], cameras[:1])
        tiles.append(label(frame, [f"step {meta['global_step']}", f"return {ret:.1f} {'success' if success else ''}"]))
    env.close()
    cols = min(SHEET_COLUMNS, len(tiles))
    rows = -(-len(tiles) // cols)
    h, w = tiles[0].shape[:2]
    sheet = np.zeros((rows * h, cols * w, 3), dtype=np.uint8)
    for i, t in enumerate(tiles):
        sheet[(i // cols) * h:(i // cols + 1) * h, (i % cols) * w:(i % cols + 1) * w] = t
    Image.fromarray(sheet).save(args.sheet)
    files.write_json(args.info, {"episode": episode, "cameras": cameras, "sheet_steps": [m["global_step"] for _, m in picks],
                                  "wall_s": round(time.time() - started, 1)})
    print(f"wrote {args.video}, {args.still}, {args.sheet}")
    return 0


if __name__ == "__main__":
    cli.run_main(main)
