"""Results shared through a DVC remote: one clone runs the smoke DAG and pushes, a fresh clone pulls
and has the report without training (docs/pipeline.md, "Sharing results: a DVC remote").

The remote is a local directory, as on a cluster's shared filesystem, set per site with
`dvc remote add -d --local` (so .dvc/config.local, which git ignores); an object store differs only
in the URL and its DVC plugin. One real `dvc repro` on config/smoke.yaml: about 1.5 minutes on 2 cores.
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import dagtools as d
from tests.e2e.smoke import SMOKE, check_report, copy_project

REPORT = "reports/lift_v19.md"      # params.yaml's task and reward: check_report fails if they change
GIT = ["git", "-c", "user.email=t@t", "-c", "user.name=t"]


def git_status(ws: Path) -> str:
    return d.run(["git", "status", "--porcelain", "--untracked-files=all"], ws).stdout


def reports(ws: Path) -> dict[str, bytes]:
    """Every file under reports/ with its bytes: the markdown and the figures it links."""
    return {str(p.relative_to(ws)): p.read_bytes() for p in sorted((ws / "reports").rglob("*")) if p.is_file()}


def test_push_then_pull_in_a_fresh_clone_rebuilds_the_report_without_training(tmp_path):
    remote = tmp_path / "shared-dvc-remote"
    origin = copy_project(tmp_path / "origin")
    merged = subprocess.run([sys.executable, "-m", "pipeline.dag.params", "--merge", SMOKE], cwd=origin,
                            env=d.tool_env(), capture_output=True, text=True, check=True).stdout
    (origin / "params.yaml").write_text(merged)
    d.run([sys.executable, "-m", "pipeline.dag.dvcgen"], origin)
    d.run(["git", "init", "-q"], origin)
    d.run(GIT + ["add", "-A"], origin)
    d.run(GIT + ["commit", "-q", "-m", "smoke project"], origin)

    # Training site: run the DAG, push its cached outputs, commit dvc.lock and the cache: false
    # outputs (the report, metrics.json, plots/) to git.
    d.run(["dvc", "repro"], origin)
    check_report(origin)
    d.run(["dvc", "remote", "add", "-d", "--local", "shared", str(remote)], origin)
    d.run(["dvc", "push"], origin)
    d.run(GIT + ["add", "-A"], origin)
    d.run(GIT + ["commit", "-q", "-m", "smoke results"], origin)
    assert git_status(origin) == "", "the per-site remote (.dvc/config.local) stays out of git"
    assert (remote / "files" / "md5").is_dir(), "dvc push wrote nothing to the remote"

    # Another site: a fresh clone has the report in git but none of data/; dvc pull brings it.
    clone = tmp_path / "clone"
    d.run(["git", "clone", "-q", str(origin), str(clone)], tmp_path)
    assert not (clone / "data").exists()
    assert "Data and pipelines are up to date" not in d.run(["dvc", "status"], clone).stdout
    d.run(["dvc", "remote", "add", "-d", "--local", "shared", str(remote)], clone)
    d.run(["dvc", "pull"], clone)
    assert (clone / "data" / "runs" / "lift_v19_mujoco" / "ppo" / "seed0").is_dir()
    assert (clone / "data" / "videos" / "lift_v19_mujoco" / "ppo.mp4").is_file()

    status = d.run(["dvc", "status"], clone).stdout
    assert "Data and pipelines are up to date" in status, status
    out = d.run(["dvc", "repro"], clone).stdout
    assert "Running stage" not in out, f"dvc repro after dvc pull ran stages:\n{out}"

    # The report regenerated from the pulled data, forced, is the committed one byte for byte
    # (figures included), and leaves dvc.lock and everything else git tracks as it was.
    out = d.run(["dvc", "repro", "--force", "--single-item", "report"], clone).stdout
    assert "Running stage 'report'" in out, out
    assert sum("Running stage" in line for line in out.splitlines()) == 1, out
    before, after = reports(origin), reports(clone)
    assert REPORT in after and after.keys() == before.keys()
    differ = [name for name in before if before[name] != after[name]]
    assert not differ, f"regenerated from pulled data, these differ from the pushed ones: {differ}"
    assert git_status(clone) == "", git_status(clone)
    status = d.run(["dvc", "status"], clone).stdout
    assert "Data and pipelines are up to date" in status, status
