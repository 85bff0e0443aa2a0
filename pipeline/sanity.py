"""Stage `sanity`: does the env behave before anyone trains on it? (envs.run_sanity)

    python -m pipeline.sanity --task lift --backend mujoco --out data/sanity/lift_mujoco.json \
        --sanity.episodes 5 --sanity.seed 0

Writes the measured figures to --out and exits 0 when every check passes. When one fails it prints
each problem and exits 1, so the DAG stops here instead of after hours of training; the JSON is
still printed so the figures are not lost when the DAG tool removes the failed output.
"""
import argparse
import json
import sys

from pipeline.run import cli, files, settings


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--task", required=True)
    ap.add_argument("--backend", required=True)
    ap.add_argument("--out", required=True)
    cli.add_block_args(ap, "sanity")
    args = ap.parse_args(argv)
    cli.set_threads(1)

    from envs.sanity import run_sanity
    from envs.tasks import TASKS
    if args.task not in TASKS:
        raise settings.ParamsError(f"task: unknown task {args.task!r}; valid: {', '.join(sorted(TASKS))}")
    if args.backend not in settings.BACKENDS:
        raise settings.ParamsError(f"backend: unknown backend {args.backend!r}; valid: {', '.join(settings.BACKENDS)}")
    s = cli.block(args, "sanity")
    result = run_sanity(args.task, backend=args.backend, episodes=s["episodes"], seed=s["seed"])
    if not result["ok"]:
        print(json.dumps(result, indent=2, default=str))
        for problem in result["problems"]:
            print(f"sanity: {args.task}/{args.backend}: {problem}", file=sys.stderr)
        return 1
    # The file holds the verdict and the figures only (no wall time): an edit of the check or of a
    # controller that changes no figure writes the same bytes, so nothing downstream reruns in DVC.
    seconds = result.pop("seconds", None)
    files.write_json(args.out, result)
    print(f"sanity ok: {args.task} on {args.backend} ({seconds} s)")
    return 0


if __name__ == "__main__":
    cli.run_main(main)
