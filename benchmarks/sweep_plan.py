"""How long Snakemake takes to plan a large sweep, and how many jobs it makes (no job runs).

    python benchmarks/sweep_plan.py                # 3 algorithms x 3 reward versions x 10 seeds on lift

In a throwaway copy of the project: lift gets a third reward version (a copy of v19, so that three
exist), and reports/lift_compare.md is planned over every (reward, algorithm) with seeds 0-9 via
`snakemake -n`. Lift has three algorithms (HER needs a goal-conditioned task). Prints the planning
wall time and the job counts per rule; docs/benchmarks.md holds the figures.
"""
from __future__ import annotations

import re
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests.e2e.smoke import copy_project, sh  # noqa: E402

SWEEP = """seeds: [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]
algos: [ppo, sac, drqv2]
compare:
  rewards: [v11, v19, v20]
  algos: [ppo, sac, drqv2]
  backends: [mujoco]
"""


def main() -> int:
    base = Path(tempfile.mkdtemp(prefix="sweep-plan-"))
    try:
        ws = copy_project(base / "ws")
        shutil.copy(ws / "envs/rewards/lift/v19.py", ws / "envs/rewards/lift/v20.py")
        (ws / "sweep.yaml").write_text(SWEEP)
        t = time.time()
        out = sh(["snakemake", "-n", "--cores", "2", "reports/lift_compare.md", "--configfile", "sweep.yaml"], ws,
                 quiet=True)
        wall = time.time() - t
        counts = dict(re.findall(r"^(\w+)\s+(\d+)$", out.split("Job stats:")[1].split("Reasons:")[0], re.M))
        print(f"planned in {wall:.1f} s: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
    finally:
        shutil.rmtree(base, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
