"""docs/results/README.md, the results page, generated from the committed results; never by hand.

    python -m pipeline.results                          # rewrite docs/results/README.md
    python -m pipeline.results add NAME --configfile config/X.yaml --target reports/lift_v19.md \
        [--success 0.9] [--what "one line"]             # commit a finished experiment's outputs

A result is a folder docs/results/<name>/ holding `result.json` (the command that reproduces it,
its experiment file, the success rate it must reach, one line on what it is) and the DAG's own
outputs for it: each evaluated variant's metrics (`<algo>.json`) and provenance
(`<algo>_provenance.json`) under `<task>_<reward>_<backend>/`, its learning curves, the reports and
figures, the videos, and where an algorithm learned from demonstrations the demos stage's summary
(`demos.json`: the controller's success rate, the dataset's sha256). A folder with result.json alone is an experiment without a result on today's
code: the page lists it with its command.

The page has a row per task x start stage x reward x algorithm: seeds, each seed's success with its
Wilson interval, the figure across seeds (pipeline/run/stats.py: a range below 5 seeds, a named
interval from 5), the target and whether the mean meets it, training time per seed, and a stale
mark: the code the result recorded (a sha256 per project file its train and evaluate stages loaded,
or else its commit; for a learner on demonstrations also the demos stage's code, recorded by `add`)
compared with today's code. Below it, a table per demonstration-count sweep:
the results of one experiment file and the files that modify it, by number of demonstrations.
"""
from __future__ import annotations

import argparse
import hashlib
import shutil
import subprocess
import sys
from pathlib import Path

import algos
from pipeline.dag import params as cfg
from pipeline.dag.registry import EVAL, RUN, STAGES, VIDEO, code_files, smk_demos_path
from pipeline.run import demos as demo_files, files, settings, stats

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "docs" / "results"
PAGE = RESULTS / "README.md"


def code_sha256(ident: dict, stages: tuple[str, ...] = ("train", "evaluate")) -> dict[str, str]:
    """{file: sha256} of the code the given stages of identity ident run today."""
    names = sorted(set().union(*(code_files(STAGES[stage], ident) for stage in stages)))
    return {f: hashlib.sha256((ROOT / f).read_bytes()).hexdigest() for f in names if (ROOT / f).is_file()}


def differs(recorded: dict[str, str]) -> list[str]:
    """The files of {file: sha256} that are gone or differ today."""
    return sorted(f for f, sha in recorded.items()
                  if not (ROOT / f).is_file() or hashlib.sha256((ROOT / f).read_bytes()).hexdigest() != sha)


def changed_code(prov: dict) -> list[str] | None:
    """The files of the result's stages whose code differs today from what it recorded; None when
    nothing was recorded to compare with."""
    recorded = prov.get("code_sha256")
    if recorded is not None:
        return differs(recorded)
    ident = {k: prov[k] for k in ("task", "reward", "algo")} | {"backend": prov.get("env", {}).get("backend", "mujoco")}
    today = code_sha256(ident)
    commit = prov.get("git_commit", "")
    if not commit or commit.endswith("-dirty") or commit == "unknown":
        return None
    proc = subprocess.run(["git", "diff", "--name-only", commit, "--", *today], cwd=ROOT, capture_output=True, text=True)
    if proc.returncode != 0:
        return None
    missing = subprocess.run(["git", "ls-tree", "-r", "--name-only", commit, "--", *today], cwd=ROOT,
                             capture_output=True, text=True).stdout.split()
    return sorted(set(proc.stdout.split()) | (set(today) - set(missing)))


def stale_mark(prov: dict, spec: dict | None = None) -> str:
    """"current", or what changed since: the code of the result's train and evaluate stages and, for
    an algorithm that read demonstrations, of the demos stage that recorded them (result.json)."""
    changed = changed_code(prov)
    if changed is None:
        return "stale: no code recorded"
    if spec and prov["algo"] in spec.get("demos", {}):
        changed = sorted(set(changed) | set(differs(spec.get("demos_code_sha256", {}))))
    if changed:
        shown = ", ".join(f"`{f}`" for f in changed[:3]) + (f" and {len(changed) - 3} more" if len(changed) > 3 else "")
        return f"stale: {shown} changed"
    return "current"


def per_seed_of(metrics: dict, prov: dict) -> dict:
    """Each seed's figures; a one-seed result evaluated before per-seed figures were recorded has
    only the pooled ones, which are that seed's."""
    if "per_seed" in metrics:
        return metrics["per_seed"]
    (seed,) = prov["seeds"]
    return {str(seed): {"success_rate": metrics["success_rate"]}}


def seed_cells(metrics: dict, prov: dict) -> tuple[str, str]:
    """(each seed's success with its Wilson interval, the figure across seeds)."""
    per_seed = per_seed_of(metrics, prov)
    cells, rates = [], []
    for seed in sorted(per_seed, key=int):
        s = per_seed[seed]
        # results evaluated before successes were recorded: their final checkpoint ran evaluation.episodes
        n = s.get("episodes") or prov.get("evaluation", {}).get("episodes")
        rates.append(s["success_rate"])
        cells.append(f"{seed}: " + (stats.fmt_rate(stats.rate(round(s["success_rate"] * n), n)) if n
                                    else f"{s['success_rate']:.0%}"))
    return "<br>".join(cells), stats.fmt(stats.across_seeds(rates, bounds=(0.0, 1.0)), "{:.0%}")


def base_configfile(spec: dict) -> str:
    """The first experiment file of a result's command (the experiment its later files modify);
    params.yaml for a command without one."""
    return (spec.get("configfile") or spec["command"].partition("--configfile")[2] or "params.yaml").split()[0]


def rows() -> tuple[list[dict], list[list[str]]]:
    """(a dict per result row: its page cells under "cells" and what the sweep tables group by,
    rows of experiments without a result on record)."""
    done, todo = [], []
    for spec_path in sorted(RESULTS.glob("*/result.json")):
        folder, spec = spec_path.parent, files.read_json(spec_path)
        provs = sorted(folder.rglob("*_provenance.json"))
        link = f"[{folder.name}]({folder.name}/)"
        if not provs:
            todo.append([link, spec["what"], f"`{spec['command']}`"])
            continue
        for prov_path in provs:
            prov = files.read_json(prov_path)
            metrics = files.read_json(prov_path.with_name(prov_path.name.replace("_provenance", "")))
            per_seed, across = seed_cells(metrics, prov)
            mean = stats.across_seeds([s["success_rate"] for s in per_seed_of(metrics, prov).values()])["mean"]
            target = spec.get("success")
            met = "" if target is None else ("met" if mean >= target else "not met")
            walls = ", ".join(f"{w / 60:.0f}" for _, w in sorted(prov["train_wall_s"].items(), key=lambda kv: int(kv[0])))
            env = prov.get("trained_env") or prov["env"]
            stage, demos, code = str(env.get("curriculum_stage", "")), spec.get("demos", {}).get(prov["algo"]), stale_mark(prov, spec)
            done.append({"cells": [link, prov["task"], stage, prov["reward"], prov["algo"],
                                   "" if demos is None else str(demos), str(len(prov["seeds"])), per_seed, across,
                                   "" if target is None else f">= {target:.0%}", met, walls,
                                   f"`{spec['command']}`", code],
                         "link": link, "across": across, "demos": demos or 0, "current": code == "current",
                         "sweep": (base_configfile(spec), prov["task"], stage, prov["reward"]), "algo": prov["algo"]})
    return done, todo


def sweeps(done: list[dict]) -> list[str]:
    """A table per demonstration-count sweep: the results of one experiment file and the files that
    modify it (`--configfile config/a.yaml config/a_n5.yaml`) on one task, start and reward, for each
    algorithm run on at least two counts: success across seeds by number of demonstrations."""
    groups: dict[tuple, dict[str, dict[int, list[dict]]]] = {}
    for row in done:
        groups.setdefault(row["sweep"], {}).setdefault(row["algo"], {}).setdefault(row["demos"], []).append(row)
    md = []
    for (configfile, task, stage, reward), by_algo in sorted(groups.items()):
        swept = {algo: points for algo, points in by_algo.items() if len(points) > 1}
        if not swept:
            continue
        md += ["", f"### {task}, start {stage}, {reward}: `{configfile}` and its demonstration counts", "",
               "| demos | " + " | ".join(swept) + " |", "|---|" + "---|" * len(swept)]
        for count in sorted({c for points in swept.values() for c in points}):
            cells = ["<br>".join(f"{r['across']} ({r['link']}{'' if r['current'] else ', stale'})"
                                 for r in points.get(count, [])) for points in swept.values()]
            md.append(f"| {count} | " + " | ".join(cells) + " |")
    return (["", "## Demonstration-count sweeps", "",
             "What each demonstration buys: the same experiment on different numbers of scripted "
             "demonstrations (0: the algorithm without them), success across seeds as above."] + md) if md else []


HEADER = """\
# Results

GENERATED by `python -m pipeline.results` from the committed results (`docs/results/*/`): do not
edit by hand. A row per task, evaluation start stage (`env.curriculum_stage`), reward version and
algorithm; demos is the number of scripted demonstrations the algorithm learned or started from
(`docs/demos.md`), empty for none. Success is each seed's final policy over its evaluation
episodes, with a 95% Wilson interval; across seeds, below 5 seeds the range (lowest and highest seed), from 5 seeds the mean
with its named 95% interval (`docs/pipeline.md`, "Data flow", on seeds as the unit). **stale** means the code of the
result's train or evaluate stage (and, for a learner on demonstrations, of the demos stage that
recorded them) has changed since it ran: rerun its command to refresh it.
"""


def render() -> str:
    done, todo = rows()
    head = ["result", "task", "start", "reward", "algorithm", "demos", "seeds", "success per seed", "across seeds",
            "target", "met", "train min per seed", "command", "code"]
    md = [HEADER, "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    md += ["| " + " | ".join(r["cells"]) + " |" for r in done]
    md += sweeps(done)
    if todo:
        md += ["", "## Experiments without a result on record", "",
               "| experiment | what | command |", "|---|---|---|"]
        md += ["| " + " | ".join(r) + " |" for r in todo]
    return "\n".join(md) + "\n"


def add(name: str, configfiles: list[str], targets: list[str], success: float | None, what: str) -> None:
    """Copy a finished experiment's outputs (reports, evaluation, videos) into docs/results/<name>/.
    configfiles: the experiment's files, merged over params.yaml in order, as Snakemake merges them."""
    params = cfg.load()
    for configfile in configfiles:
        params = cfg.merge(params, cfg.load(ROOT / configfile))
    params = cfg.validate(params)
    dest = RESULTS / name
    dest.mkdir(parents=True, exist_ok=True)
    # The experiment's own runs, and with a comparison among the targets every variant it compares.
    variants = [(params["reward"], algo, params["backend"]) for algo in params["algos"]]
    if any(Path(t).stem.endswith("_compare") for t in targets):
        variants += cfg.compare_variants(params["compare"])
    for reward, algo, backend in dict.fromkeys(variants):
        ident = {"task": params["task"], "reward": reward, "backend": backend}
        for src in sorted((ROOT / EVAL.format(**ident, algo=algo)).parent.glob(f"{algo}*")):
            sub = dest / src.parent.name
            sub.mkdir(exist_ok=True)
            shutil.copy2(src, sub / src.name)
        video = ROOT / (VIDEO.format(**ident, algo=algo) + ".mp4")
        if video.exists():
            (dest / video.parent.name).mkdir(exist_ok=True)
            shutil.copy2(video, dest / video.parent.name / video.name)
    for target in targets:
        report = ROOT / target
        shutil.copy2(report, dest / report.name)
        if report.with_suffix("").is_dir():
            shutil.copytree(report.with_suffix(""), dest / report.stem, dirs_exist_ok=True)
    command = f"snakemake --cores 2 {' '.join(targets)} --configfile {' '.join(configfiles)}"
    ident = {k: params[k] for k in ("task", "reward", "backend")}
    # How many demonstrations each algorithm that reads them had (the page's demos column).
    demos = {algo: params["demos"]["episodes"] for _, algo, _ in variants
             if settings.reads_demos(algo, params.get(algos.learner(algo), {}), params["env"])}
    spec = {"command": command, "configfile": " ".join(configfiles), "success": success, "what": what, "demos": demos}
    if demos:   # the dataset they read: its controller's success rate and its sha256
        summary = demo_files.summary_path(smk_demos_path(params).format(**ident))
        shutil.copy2(ROOT / summary, dest / "demos.json")
        # The demos stage's code, which the runs' provenance does not hold: the DAG just brought the
        # dataset up to date with it (its code is an input of the stage), so today's files are its.
        spec["demos_code_sha256"] = code_sha256({**ident, "controller": params["demos"]["controller"]}, ("demos",))
    files.write_json(dest / "result.json", {**spec,
                                             "runs": RUN.format(**ident, algo="<algo>", seed="<seed>")})


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd")
    a = sub.add_parser("add", help="commit a finished experiment's outputs as docs/results/NAME/")
    a.add_argument("name")
    a.add_argument("--configfile", nargs="+", required=True, help="the experiment's file(s), as given to Snakemake")
    a.add_argument("--target", nargs="+", required=True, help="the report(s) the command builds")
    a.add_argument("--success", type=float, help="the success rate the experiment must reach (its target)")
    a.add_argument("--what", required=True, help="one line: what the experiment runs")
    args = ap.parse_args(argv)
    if args.cmd == "add":
        add(args.name, args.configfile, args.target, args.success, args.what)
    PAGE.write_text(render())
    print(f"wrote {PAGE}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
