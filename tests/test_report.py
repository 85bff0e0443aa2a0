"""The report and the comparison: devlog formats, the consistency flag, per-seed statistics, the
before/after table, byte-for-byte determinism, no input read that is not declared.

Inputs are small hand-made evaluation files in the stage's own formats (no training needed).
"""
import itertools
import json
import subprocess
import sys

import numpy as np
import pandas as pd
from PIL import Image

from pipeline import evaluate


def episodes(algo, returns_by_step, length=300, seeds=(0,)):
    """Evaluation rows; seed k's returns are the given ones shifted by -100 k at the final step."""
    rows = []
    last = max(returns_by_step)
    for seed, (step, rets) in itertools.product(seeds, returns_by_step.items()):
        for i, r in enumerate(rets):
            r = r - 100.0 * seed * (step == last)
            rows.append({"algo": algo, "seed": seed, "step": step, "episode": i, "return": r, "episode_len": length,
                         "success_once": r > 500, "success_at_end": r > 500, "terminated": False,
                         "max_cube_z": 0.08 if r > 500 else 0.013,
                         "grasp_steps": 120 if r > 500 else 0, "reward/reach": r / 2, "reward/lift": r / 2})
    return pd.DataFrame(rows)


def write_inputs(root, reward, train_len, train_return, seeds=(0,), final=(850.0, 854.4), algo="ppo"):
    ev = root / "data" / "eval" / f"lift_{reward}_mujoco"
    vid = root / "data" / "videos" / f"lift_{reward}_mujoco"
    ev.mkdir(parents=True, exist_ok=True)
    vid.mkdir(parents=True, exist_ok=True)
    df = episodes(algo, {0: [10.0, 12.0], 50000: [400.0, 600.0], 100000: list(final)}, seeds=seeds)
    df.to_parquet(ev / f"{algo}.parquet")
    per_seed, across = evaluate.per_seed(df, ["max_cube_z", "grasp_steps"])
    metrics = {**evaluate.headline(df, ["max_cube_z", "grasp_steps"]), "per_seed": per_seed, "across_seeds": across,
               "train": {"episodes": 20, "mean_return": train_return, "mean_episode_len": train_len,
                         "success_rate": 1.0, "max_cube_z": 0.08, "grasp_steps": 120.0},
               # training episodes between checkpoints, as evaluate.training_chunks writes them
               "train_chunks": {"0": [
                   {"chunk": 1, "from_step": 0, "to_step": 50000, "episodes": 0},
                   {"chunk": 2, "from_step": 50000, "to_step": 100000, "episodes": 4, "mean_return": 400.0,
                    "max_return": 700.0, "mean_episode_len": 300.0, "success_rate": 0.5, "terminated_rate": 0.25,
                    "max_cube_z": 0.05, "grasp_steps": 60.0},
                   {"chunk": 3, "from_step": 100000, "to_step": 150000, "episodes": 5, "mean_return": 800.0,
                    "max_return": 900.0, "mean_episode_len": 300.0, "success_rate": 1.0, "terminated_rate": 0.0,
                    "max_cube_z": 0.08, "grasp_steps": 120.0}]}}
    (ev / f"{algo}.json").write_text(json.dumps(metrics))
    prov = {"task": "lift", "reward": reward, "reward_fingerprint": "ab" * 32, "algo": algo, "seeds": list(seeds),
            "git_commit": "deadbeef", "versions": {"torch": "2.13.0"}, "hparams": {"learning_rate": 0.0003},
            "env": {"max_episode_steps": 300, "domain_randomization": True, "obs_mode": "state", "backend": "mujoco"},
            # what the policy was trained on, as pipeline/evaluate.py records it
            "trained_env": {"max_episode_steps": 300, "domain_randomization": True, "obs_mode": "state"},
            "train_wall_s": {str(s): 1200.0 for s in seeds},
            "train_env_steps_per_s": {str(s): 83.3 for s in seeds}, "eval_wall_s": 12.0,
            "evaluation": {"episodes": 2, "final_episodes": 2, "deterministic": True, "seed": 1000}}
    (ev / f"{algo}_provenance.json").write_text(json.dumps(prov))
    (vid / f"{algo}.mp4").write_bytes(b"")
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(vid / f"{algo}.png")
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(vid / f"{algo}_sheet.png")
    (vid / f"{algo}_render.json").write_text(json.dumps({"episode": {"steps": 300, "return": 852.2, "success": True},
                                                     "wall_s": 5.0}))
    sanity = root / "data" / "sanity" / "lift_mujoco.json"
    sanity.parent.mkdir(parents=True, exist_ok=True)
    sanity.write_text(json.dumps({"ok": True, "backend": "mujoco", "seconds": 3.0,
                                  "checks": {"scripted": {"success_rate": 1.0, "episodes": 5, "mean_max_cube_z": 0.08}}}))
    return ["--task", "lift", "--reward", reward, "--sanity", sanity, "--episodes", ev / f"{algo}.parquet",
            "--metrics", ev / f"{algo}.json", "--provenance", ev / f"{algo}_provenance.json", "--videos", vid / f"{algo}.mp4",
            "--stills", vid / f"{algo}.png", "--sheets", vid / f"{algo}_sheet.png", "--renders", vid / f"{algo}_render.json",
            "--out", root / "reports" / f"lift_{reward}.md", "--figures", root / "reports" / f"lift_{reward}",
            "--report.consistency_tolerance", "0.25", "--report.success_threshold", "0.8"]


def report(args, cwd):
    proc = subprocess.run([sys.executable, "-m", "pipeline.report", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd)
    assert proc.returncode == 0, proc.stderr
    return (cwd / "reports" / f"lift_{args[3]}.md").read_text()


def test_devlog_formats_and_determinism(tmp_path):
    args = write_inputs(tmp_path, "v19", train_len=300.0, train_return=840.0)
    text = report(args, tmp_path)
    assert "Mean Reward: 852.20 +/- 2.20" in text
    assert "Success Rate: 100.0%" in text
    assert "Max Cube Z: 0.080 +/- 0.000" in text
    assert "Mean Grasp Steps: 120.0" in text
    assert "| 0 | 11.00 | 12.00 | 0% | 0.013 | 0.0 | Baseline |" in text
    assert "| 100000 | 852.20 | 854.40 | 100% | 0.080 | 120.0 | +7647% |" in text
    assert "Training vs evaluation: consistent" in text
    # devlog 002's per-chunk table: improvement over the first chunk with finished episodes
    assert "| 1 | 0-50,000 | 0 | no episode finished |" in text
    assert "| 2 | 50,000-100,000 | 4 | 400.00 | 700.00 | Baseline | 50% | 25% | 0.050 | 60.0 |" in text
    assert "| 3 | 100,000-150,000 | 5 | 800.00 | 900.00 | +100% | 100% | 0% | 0.080 | 120.0 |" in text
    assert "| Observations | ppo: state |" in text
    assert "(tmp_path)" not in text and str(tmp_path) not in text, "paths in the report must be relative"
    png = (tmp_path / "reports" / "lift_v19" / "learning_curve.png").read_bytes()
    assert report(args, tmp_path) == text
    assert (tmp_path / "reports" / "lift_v19" / "learning_curve.png").read_bytes() == png


def test_flags_a_devlog_000_gap(tmp_path):
    """Training logged 52-step fragments with return 8.6 while evaluation saw 300 steps and 852."""
    text = report(write_inputs(tmp_path, "v19", train_len=52.5, train_return=8.6), tmp_path)
    assert "**Training vs evaluation: GAP**" in text
    assert "episode length 52.5 vs 300.0" in text


def test_summary_gives_each_seed_and_the_spread_across_seeds(tmp_path):
    args = write_inputs(tmp_path, "v19", train_len=300.0, train_return=840.0, seeds=(0, 1, 2),
                        final=(600.0, 900.0))
    text = report(args, tmp_path)
    # seed k's final returns are 600 - 100k and 900 - 100k: success (> 500) 100%, 50%, 50%, each of
    # 2 episodes with its 95% Wilson interval; 3 seeds: n, mean and the range, no interval
    assert ("| ppo | 100000 | 0: 100% (2/2, 34-100%), 1: 50% (1/2, 9-91%), 2: 50% (1/2, 9-91%) | "
            "n = 3 seeds, mean 67%, range 50-100% | n = 3 seeds, mean 650.00, range 550.00 to 750.00 |") in text
    assert "| 1 of 3 seeds |" in text, "solved (>= 80%) on one seed of three"
    assert "95% Wilson score interval" in text and "range (lowest-highest), which is no confidence interval" in text
    assert "bootstrap" not in text
    assert ("| Evaluation | 2 episodes at each seed's final checkpoint, 2 at the others, deterministic, "
            "episode i reset with seed 1000 + i |") in text


def test_summary_from_five_seeds_names_its_interval(tmp_path):
    args = write_inputs(tmp_path, "v19", train_len=300.0, train_return=840.0, seeds=(0, 1, 2, 3, 4),
                        final=(600.0, 900.0))
    text = report(args, tmp_path)
    # final returns 750, 650, 550, 450, 350: mean 550, s 158.1, t(0.975, 4) s / sqrt 5 = 196.3; success
    # 100%, 50%, 50%, 50%, 0%: mean 50%, s 35.4%, half-width 43.9% (clipped to [0, 1])
    assert "| n = 5 seeds, mean 50%, 95% t-interval [6%, 94%], IQM 50% |" in text
    assert "n = 5 seeds, mean 550.00, 95% t-interval [353.68, 746.32], IQM 550.00 |" in text
    assert "Student's t" in text


def test_a_checkpoint_only_some_seeds_have_is_marked_and_left_out_of_the_curve():
    from pipeline import report as rp
    df = episodes("ppo", {0: [10.0, 12.0], 100000: [600.0, 900.0]}, seeds=(0, 1, 2))
    stray = df[(df.seed == 1) & (df.step == 0)].assign(step=70000, **{"return": 5.0})   # a stopped run's checkpoint
    df = pd.concat([df, stray], ignore_index=True)
    from pipeline.run import reporting
    curve = reporting.seed_curves(df, "return")
    assert list(curve.index) == [0, 100000], "a mean across seeds only where every seed has the checkpoint"
    table = rp.checkpoint_table(df, "lift", [])
    assert "| 70000 (1 of 3 seeds) | 5.00 |" in table and "| 100000 | " in table


def test_provenance_names_each_commit_with_its_seeds_when_runs_differ(tmp_path):
    from pipeline import report as rp
    from pipeline.run import reporting
    assert reporting.commits({"git_commit": "a" * 40, "git_commits": {"0": "a" * 40, "1": "a" * 40}}) == "a" * 12
    mixed = {"git_commit": "a" * 40, "git_commits": {"0": "a" * 40, "1": "b" * 40, "2": "a" * 40}}
    assert reporting.commits(mixed) == f"{'a' * 12} (seeds 0, 2), {'b' * 12} (seed 1)"
    args = write_inputs(tmp_path, "v19", train_len=300.0, train_return=840.0, seeds=(0, 1))
    prov = tmp_path / "data/eval/lift_v19_mujoco/ppo_provenance.json"
    prov.write_text(json.dumps({**json.loads(prov.read_text()), "git_commits": {"0": "a" * 40, "1": "b" * 40}}))
    assert f"| Git commit ppo | {'a' * 12} (seed 0), {'b' * 12} (seed 1) |" in report(args, tmp_path)


def test_a_curriculum_run_shows_where_its_stage_moved(tmp_path):
    args = write_inputs(tmp_path, "v19", train_len=300.0, train_return=840.0, seeds=(0, 1))
    plain = report(args, tmp_path)
    assert "Training curriculum" not in plain
    ev = tmp_path / "data/eval/lift_v19_mujoco"
    m, prov = json.loads((ev / "ppo.json").read_text()), json.loads((ev / "ppo_provenance.json").read_text())
    m["curriculum"] = {"0": [{"stage": 3, "step": 300}, {"stage": 2, "step": 41200}, {"stage": 1, "step": 90000}],
                       "1": [{"stage": 3, "step": 300}, {"stage": 2, "step": 50100}]}
    prov["env"]["curriculum_stage"] = 0
    (ev / "ppo.json").write_text(json.dumps(m))
    (ev / "ppo_provenance.json").write_text(json.dumps(prov))
    text = report(args, tmp_path)
    assert "Training curriculum (evaluation always at stage 0)" in text
    assert "- seed 0: stage 3 at 300, stage 2 at 41,200, stage 1 at 90,000" in text
    assert "- seed 1: stage 3 at 300, stage 2 at 50,100" in text


def test_best_checkpoints_are_the_earliest_best_and_reported_as_optimistic(tmp_path):
    df = episodes("ppo", {0: [10.0, 12.0], 50000: [600.0, 700.0], 100000: [650.0, 400.0], 150000: [900.0, 950.0]},
                  seeds=(0,))
    df.loc[df.step == 150000, "success_once"] = [True, False]        # 50% at the end, 100% at 50k
    assert evaluate.best_checkpoints(df) == {"0": {"step": 50000, "success_rate": 1.0, "mean_return": 650.0}}
    args = write_inputs(tmp_path, "v19", train_len=300.0, train_return=840.0)
    ev = tmp_path / "data/eval/lift_v19_mujoco"
    m = json.loads((ev / "ppo.json").read_text())
    m["best"] = {"0": {"step": 50000, "success_rate": 1.0, "mean_return": 650.0}}
    (ev / "ppo.json").write_text(json.dumps(m))
    assert ("Best checkpoint by evaluation success, per seed (picked on these same evaluation episodes, so an "
            "optimistic figure; the tables above use the final checkpoint): seed 0: step 50,000, 100%.") in report(args, tmp_path)


def test_report_reads_no_other_reward_version(tmp_path):
    """Another reward version's evaluation data next to ours changes nothing: the report reads its
    declared inputs only (reports/{task}_compare.md compares versions)."""
    args = write_inputs(tmp_path, "v19", train_len=300.0, train_return=840.0)
    alone = report(args, tmp_path)
    write_inputs(tmp_path, "v11", train_len=300.0, train_return=840.0)
    assert report(args, tmp_path) == alone


def compare_args(root, rewards, seeds, pairs=()):
    """Arguments of the compare stage over reward versions with PPO, or over "reward/algo" pairs."""
    files = {"metrics": [], "provenance": [], "episodes": []}
    for r, a in [p.split("/") for p in pairs] or [(r, "ppo") for r in rewards]:
        ev = root / "data" / "eval" / f"lift_{r}_mujoco"
        files["metrics"].append(ev / f"{a}.json")
        files["provenance"].append(ev / f"{a}_provenance.json")
        files["episodes"].append(ev / f"{a}.parquet")
    return ["--task", "lift", *[a for k, v in files.items() for a in (f"--{k}", *v)],
            "--out", root / "reports" / "lift_compare.md", "--figures", root / "reports" / "lift_compare",
            "--compare.rewards", ",".join(rewards), "--compare.algos", "ppo", "--compare.backends", "mujoco",
            *(["--compare.pairs", ",".join(pairs)] if pairs else []),
            "--report.consistency_tolerance", "0.25", "--report.success_threshold", "0.8"]


def compare(args, cwd):
    proc = subprocess.run([sys.executable, "-m", "pipeline.compare", *map(str, args)], capture_output=True,
                          text=True, cwd=cwd)
    assert proc.returncode == 0, proc.stderr
    return (cwd / "reports" / "lift_compare.md").read_text()


def test_compare_gives_no_verdict_on_three_seeds(tmp_path):
    """3 vs 3 seeds, one variant never succeeding and the other always: still too few seeds to tell
    (the exact permutation test of a complete separation gives p = 0.10)."""
    write_inputs(tmp_path, "v11", 300.0, 840.0, seeds=(0, 1, 2), final=(100.0, 120.0))    # never succeeds
    write_inputs(tmp_path, "v19", 300.0, 840.0, seeds=(0, 1, 2), final=(900.0, 950.0))    # always succeeds
    text = compare(compare_args(tmp_path, ["v11", "v19"], 3), tmp_path)
    assert "| Metric | v11 | v19 | v19 vs v11 |" in text
    assert ("| Success Rate | n = 3 seeds, mean 0%, range 0-0% | n = 3 seeds, mean 100%, range 100-100% | "
            "+100% (too few seeds to tell) |") in text
    assert "**3 seeds in the smallest variant, fewer than 5" in text
    assert "| v19/ppo/mujoco | 100% (2/2, 34-100%); 925.0 | 100% (2/2, 34-100%); 825.0 | " \
           "100% (2/2, 34-100%); 725.0 | 3 of 3 seeds |" in text
    assert "intervals overlap" not in text and "bootstrap" not in text
    assert compare(compare_args(tmp_path, ["v11", "v19"], 3), tmp_path) == text, "same data, same bytes"


def test_compare_gives_the_probability_of_improvement_from_five_seeds(tmp_path):
    seeds = (0, 1, 2, 3, 4)
    write_inputs(tmp_path, "v11", 300.0, 840.0, seeds=seeds, final=(100.0, 120.0))    # never succeeds
    write_inputs(tmp_path, "v19", 300.0, 840.0, seeds=seeds, final=(900.0, 950.0))    # always succeeds
    text = compare(compare_args(tmp_path, ["v11", "v19"], 5), tmp_path)
    # success: v19 seeds 100% but seed 4 (its returns 500 and 550: 50%), v11 0%; every v19 seed above
    # every v11 seed: P(higher) 1, exact two-sided p = 2 / C(10, 5) = 2/252
    assert "| **+90%**; P(higher) 1.00; p = 0.008 |" in text
    # mean reward: v19 seeds 925 - 100k, v11 seeds 110 - 100k: the same spread, +815
    assert "| **+815.00**; P(higher) 1.00; p = 0.008 |" in text
    assert "fewer than 5" not in text and "(too few seeds to tell)" not in text
    assert "probability that a seed of the variant scores higher" in text and "permutation test" in text


def test_compare_pairs_sets_reward_and_algorithm_per_column(tmp_path):
    """compare.pairs: one column per reward/algo pair (devlog 004's dense/SAC, staged/SAC,
    sparse/HER), the first pair the baseline; rewards x algos is not built."""
    write_inputs(tmp_path, "v11", 300.0, 840.0, seeds=(0, 1, 2), final=(100.0, 120.0), algo="sac")
    write_inputs(tmp_path, "v19", 300.0, 840.0, seeds=(0, 1, 2), final=(900.0, 950.0), algo="ppo")
    text = compare(compare_args(tmp_path, ["v11", "v19"], 3, pairs=["v11/sac", "v19/ppo"]), tmp_path)
    assert text.startswith("# lift: v11/sac, v19/ppo x mujoco")
    assert "| Metric | v11/sac | v19/ppo | v19/ppo vs v11/sac |" in text
    assert "| Success Rate | n = 3 seeds, mean 0%, range 0-0% | n = 3 seeds, mean 100%, range 100-100% | " \
           "+100% (too few seeds to tell) |" in text
    assert "| v11/sac/mujoco | 0% (" in text and "v19/sac" not in text and "v11/ppo" not in text
    bad = compare_args(tmp_path, ["v11", "v19"], 3, pairs=["v11/sac", "v19/ppo"])
    bad[bad.index("--compare.pairs") + 1] = "v19/ppo,v11/sac"           # inputs no longer in the pairs' order
    proc = subprocess.run([sys.executable, "-m", "pipeline.compare", *map(str, bad)], capture_output=True,
                          text=True, cwd=tmp_path)
    assert proc.returncode != 0 and "expected lift/v19/ppo/mujoco" in proc.stderr, proc.stderr


def test_compare_says_when_one_seed_cannot_tell(tmp_path):
    write_inputs(tmp_path, "v11", 300.0, 840.0, final=(100.0, 120.0))
    write_inputs(tmp_path, "v19", 300.0, 840.0, final=(900.0, 950.0))
    text = compare(compare_args(tmp_path, ["v11", "v19"], 1), tmp_path)
    assert "**1 seed in the smallest variant, fewer than 5: no difference below can be told apart" in text
    assert "+100% (too few seeds to tell)" in text


def test_shows_backend_parity_when_the_sanity_stage_measured_it(tmp_path):
    args = write_inputs(tmp_path, "v19", train_len=300.0, train_return=840.0)
    sanity = args[args.index("--sanity") + 1]
    data = json.loads(sanity.read_text())
    assert "vs mujoco" not in report(args, tmp_path)       # a MuJoCo run has nothing to compare
    data["backend"] = "genesis"
    data["checks"]["parity"] = {"success_rate": 1.0, "mujoco_success_rate": 0.75, "success_rate_gap": 0.25,
                                "steps": 100, "cube_divergence_mean_m": 0.0021, "cube_divergence_max_m": 0.0262,
                                "gripper_divergence_mean_m": 0.0022, "gripper_divergence_max_m": 0.0234}
    sanity.write_text(json.dumps(data))
    text = report(args, tmp_path)
    assert "Backend parity (genesis vs mujoco" in text
    assert "| scripted success | 100% | 75% |" in text
    assert "2.1 / 26.2" in text and "2.2 / 23.4" in text


def test_compare_of_one_reward_version_tables_the_algorithms_only(tmp_path):
    write_inputs(tmp_path, "v19", 300.0, 840.0, seeds=(0, 1, 2), final=(100.0, 120.0), algo="sac")
    write_inputs(tmp_path, "v19", 300.0, 840.0, seeds=(0, 1, 2), final=(900.0, 950.0), algo="ppo")
    args = compare_args(tmp_path, ["v19"], 3, pairs=["v19/sac", "v19/ppo"])
    i = args.index("--compare.pairs")
    del args[i:i + 2]
    args[args.index("--compare.algos") + 1] = "sac,ppo"
    text = compare(args, tmp_path)
    assert "## Reward versions" not in text and "## Algorithms" in text
    assert "| Metric | sac | ppo | ppo vs sac |" in text


def test_dvc_headline_gives_per_seed_intervals_and_an_interval_only_from_five_seeds(tmp_path):
    from pipeline.dag import headline
    write_inputs(tmp_path, "v19", 300.0, 840.0, seeds=(0, 1, 2), final=(600.0, 900.0))
    h = headline.summary(json.loads((tmp_path / "data/eval/lift_v19_mujoco/ppo.json").read_text()))
    assert h["seeds"] == 3 and (h["success_rate_seed_min"], h["success_rate_seed_max"]) == (0.5, 1.0)
    assert "success_rate_ci_low" not in h, "below 5 seeds the range, no interval"
    assert h["per_seed"]["seed1"]["successes"] == 1 and h["per_seed"]["seed1"]["episodes"] == 2
    assert round(h["per_seed"]["seed1"]["success_low"], 4) == 0.0945       # Wilson, 1 of 2
    write_inputs(tmp_path, "v19", 300.0, 840.0, seeds=(0, 1, 2, 3, 4), final=(600.0, 900.0))
    h = headline.summary(json.loads((tmp_path / "data/eval/lift_v19_mujoco/ppo.json").read_text()))
    assert h["seeds"] == 5 and h["success_rate_ci_method"] == "95% t-interval"
    assert h["success_rate_ci_low"] < h["success_rate_seed_mean"] < h["success_rate_ci_high"]
