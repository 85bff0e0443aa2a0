"""Every command in README.md's bash blocks runs, from a fresh clone of the committed HEAD.

A command that would train, run the whole suite or start a cluster runs in a cheap form instead:
a dry run (`snakemake -n`, `make -n`), `--help`, or the first stage only. How each command becomes
cheap is the table CHEAP below, one commented row per kind of command, first match wins. A README
command no row matches fails test_every_readme_command_has_a_rule, so a new command cannot slip in
untested: add a row (or widen one) when the README gains a command.

The clone is `git clone` of this checkout's HEAD (commit first: uncommitted edits are not in it),
with `.venv` a link to the venv running the tests and PYTHONPATH set to the clone, so the tools and
the stages run the clone's code as they would in a fresh checkout after `make setup`. About two
minutes on our 2-core machine, most of it Snakemake building its DAG once per command.
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Callable, NamedTuple

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
VENV = Path(sys.executable).parent.parent
TIMEOUT = 180          # seconds per command; the slowest cheap form takes ~10 s


# --- README.md's commands ------------------------------------------------------------------------

def _outside_quotes(line: str, char: str) -> list[int]:
    """Positions of char in line that are not inside '...' or "..."."""
    found, quote = [], None
    for i, c in enumerate(line):
        if quote:
            quote = None if c == quote else quote
        elif c in "'\"":
            quote = c
        elif c == char:
            found.append(i)
    return found


def commands(text: str) -> list[str]:
    """The commands of every ```bash block, in order, without duplicates: comments dropped (a line
    starting with #, or from ' #' outside quotes), backslash continuations joined, `a ; b` split."""
    out = []
    for block in re.findall(r"^```bash\n(.*?)^```", text, re.M | re.S):
        for line in block.replace("\\\n", " ").splitlines():
            cuts = [i for i in _outside_quotes(line, "#") if i == 0 or line[i - 1].isspace()]
            line = line[:cuts[0]] if cuts else line
            starts = [0] + [i + 1 for i in _outside_quotes(line, ";")]
            ends = [i - 1 for i in starts[1:]] + [len(line)]
            for a, b in zip(starts, ends):
                cmd = " ".join(line[a:b].split())
                if cmd and cmd not in out:
                    out.append(cmd)
    return out


README_COMMANDS = commands(README.read_text())


# --- how each command runs cheaply ---------------------------------------------------------------

class Rule(NamedTuple):
    pattern: str                    # a regex the whole command must match (re.fullmatch)
    cheap: Callable[[re.Match], str] | str     # the command to run: a template of the match's groups
                                               # ({0} the whole command, {1}... its groups) or a function
    why: str


AS_IS = "{0}"

CHEAP: list[Rule] = [
    # The clone's .venv is a link to the test's venv: activating it is real and instant.
    Rule(r"source \.venv/bin/activate", AS_IS, "instant"),

    # make: only `make dvc.yaml` runs (it regenerates dvc.yaml in a second). The others depend on
    # `setup`, which would pip install into the linked venv, and then train or test for minutes to
    # hours (make test is CI itself): print their recipes instead.
    Rule(r"make dvc\.yaml", AS_IS, "instant"),
    Rule(r"make (report|test|test-slow|dvc-report|smoke|lint)", "make -n {1}", "trains, or is CI itself"),

    # Snakemake: --lint runs as is; everything else trains, so a dry run: the params are validated,
    # the targets resolved and every job listed, which is where a wrong target, key or value fails.
    Rule(r"snakemake --lint", AS_IS, "instant"),
    Rule(r"snakemake -n( .*)?", AS_IS, "a dry run already"),
    # --report needs the finished outputs it gathers (tests/e2e/smoke.py makes it after a run):
    # here, the DAG it reports on builds.
    Rule(r"snakemake (.*)--report \S+(.*)", "snakemake -n {1}{2}", "needs a finished DAG"),
    # The SLURM profile selects the slurm executor; a dry run builds the DAG without submitting.
    Rule(r"snakemake (.*)", "snakemake -n {1}", "trains"),
    Rule(r"snakemake", "snakemake -n", "trains"),

    # DVC. `dvc repro` on a fresh clone runs every stage: --dry --force lists them all with their
    # commands. (Plain `dvc repro --dry` fails on a fresh clone in DVC 3.67.1: see
    # test_dvc_dry_run_on_a_fresh_clone below.)
    Rule(r"dvc repro", "dvc repro --dry --force", "trains"),
    # Queueing only stashes the experiments (DVC checks that every -S key exists): real and cheap.
    Rule(r"dvc exp run --queue .*", AS_IS, "queues, runs nothing"),
    # An experiment trains: run its first stage only, `params`, which is real: DVC writes the -S
    # values into params.yaml and our check validates them (an unknown key or value fails here).
    Rule(r"dvc exp run (.*)", "dvc exp run {1} params", "trains"),
    # Starting the queue trains what it holds; its status is the cheap half of the same line.
    Rule(r"dvc queue start .*", "dvc queue status", "trains"),
    # A remote: added for real, at a folder beside the clone instead of the README's placeholder path.
    # Pushing and pulling real data is the smoke DAG's (tests/e2e/smoke.py, smoke_remote): on a fresh
    # clone there is nothing to push, and nothing on the remote to pull.
    Rule(r"dvc remote add (.*) \S+", "dvc remote add {1} ../dvc-remote", "the README's path is a placeholder"),
    Rule(r"dvc (push|pull)", "dvc {1} --help", "pushed and pulled for real in the smoke DAG"),
    # Adding a result copies a finished experiment's outputs, which a fresh clone has not made.
    Rule(r"python -m pipeline\.results add .*", "python -m pipeline.results add --help", "needs a finished run"),
    # The results page: real (it rewrites docs/results/README.md from the committed results).
    Rule(r"python -m pipeline\.results", AS_IS, "seconds"),
    # Reading experiments, metrics and plots: real (on a fresh clone they report nothing to show).
    Rule(r"dvc (exp show|metrics show|metrics diff|plots show|plots diff|queue status|status)( .*)?", AS_IS,
         "reads only"),

    # Stage CLIs and the params check: real.
    Rule(r"python -m pipeline\.dag\.params( .*)?", AS_IS, "instant"),
    Rule(r"python -m pipeline\.\w+ --help", AS_IS, "instant"),
    # The smoke DAGs take minutes each and are `make test` itself: their arguments are parsed.
    Rule(r"python -m tests\.e2e\.smoke\w*( .*)?", "{0} --help", "minutes; make test runs them"),

    # Benchmarks run for minutes: env_speed has knobs for a real, short measurement; the others
    # parse their arguments (and import their modules) with --help.
    Rule(r"python benchmarks/env_speed\.py", "{0} --seconds 0.2 --rounds 1", "a real, short measurement"),
    Rule(r"python benchmarks/\w+\.py( .*)?", "{0} --help", "minutes"),

    # TensorBoard serves until stopped.
    Rule(r"tensorboard --logdir \S+", "tensorboard --help", "serves until stopped"),
]


def cheap_form(command: str) -> tuple[str, Rule] | None:
    for rule in CHEAP:
        match = re.fullmatch(rule.pattern, command)
        if match:
            form = rule.cheap(match) if callable(rule.cheap) else rule.cheap.format(
                match.group(0), *(g or "" for g in match.groups()))
            return " ".join(form.split()), rule
    return None


# --- the tests -----------------------------------------------------------------------------------

def test_readme_has_commands():
    assert len(README_COMMANDS) > 20, README_COMMANDS


def test_every_readme_command_has_a_rule():
    """A README command without a row in CHEAP is one nobody tests: add a row for it."""
    missing = [c for c in README_COMMANDS if cheap_form(c) is None]
    assert not missing, f"README.md commands with no rule in CHEAP ({__file__}): {missing}"


def test_the_parser():
    text = ("```bash\nmake test     # CI\n               # more comment\n# a comment line\n"
            "a --x 'y # z' ; b  # c\nsnakemake --config 'seeds=[0,1]'\nlong \\\n  line\n```\n"
            "```\nnot bash\n```\n")
    assert commands(text) == ["make test", "a --x 'y # z'", "b", "snakemake --config 'seeds=[0,1]'", "long line"]


@pytest.fixture(scope="module")
def clone(tmp_path_factory) -> Path:
    """A fresh clone of HEAD with the venv linked in as .venv."""
    dest = tmp_path_factory.mktemp("readme") / "clone"
    subprocess.run(["git", "clone", "-q", str(ROOT), str(dest)], check=True)
    (dest / ".venv").symlink_to(VENV)
    return dest


def clone_env(clone: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SNAKEMAKE", "DVC_"))}
    return {**env, "PATH": f"{VENV / 'bin'}{os.pathsep}{env.get('PATH', '')}", "PYTHONPATH": str(clone),
            "OMP_NUM_THREADS": "1"}


def sh(command: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", "-c", command], cwd=cwd, env=clone_env(cwd), stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, timeout=TIMEOUT)


@pytest.mark.parametrize("command", README_COMMANDS)
def test_readme_command(clone, command):
    form = cheap_form(command)
    if form is None:
        pytest.fail(f"no rule in CHEAP for README command `{command}`")
    cheap, rule = form
    proc = sh(cheap, clone)
    # Each command starts from the clone as committed: an experiment's -S values are undone.
    subprocess.run(["git", "checkout", "-q", "--", "."], cwd=clone, check=True)
    assert proc.returncode == 0, (f"README command `{command}`, run as `{cheap}` ({rule.why}), failed with "
                                  f"exit code {proc.returncode}:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")


def test_dvc_dry_run_on_a_fresh_clone(clone):
    """What DVC would run on a fresh clone: `dvc status` lists every stage, `dvc repro --dry --force`
    every command. Plain `dvc repro --dry` fails there in DVC 3.67.1, for any pipeline whose stage
    reads what an earlier stage would write: its run-cache lookup hashes the missing file
    ([Errno 2] No such file ... data/params_ok.json; treeverse/dvc#9818). Strict: when DVC fixes
    it, this fails, and the README can recommend `dvc repro --dry` again."""
    status = sh("dvc status", clone)
    assert status.returncode == 0 and "train-ppo-seed0:" in status.stdout, status.stdout + status.stderr
    forced = sh("dvc repro --dry --force", clone)
    assert forced.returncode == 0 and "Running stage 'report'" in forced.stdout, forced.stdout + forced.stderr
    dry = sh("dvc repro --dry", clone)
    assert dry.returncode != 0 and "No such file or directory" in dry.stdout + dry.stderr, (
        "`dvc repro --dry` works on a fresh clone now: recommend it in README.md and docs/pipeline.md, "
        "and drop this check")
