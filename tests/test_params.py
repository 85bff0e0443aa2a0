"""params.yaml: both YAML parsers agree on it, and the schema rejects bad input naming valid values."""
import copy
import io
import subprocess
import sys

import pytest
import yaml
from ruamel.yaml import YAML

from pipeline.dag import params as cfg
from pipeline.run import settings
from stagetools import params_errors

FILES = [cfg.PARAMS_FILE, cfg.PARAMS_FILE.parent / "config" / "smoke.yaml"]


def _plain(x):
    """ruamel's round-trip types (CommentedMap, ScalarFloat, ...) as plain Python values."""
    if isinstance(x, dict):
        return {str(k): _plain(v) for k, v in x.items()}
    if isinstance(x, list):
        return [_plain(v) for v in x]
    for t in (bool, int, float, str):
        if isinstance(x, t):
            return t(x)
    return x


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_pyyaml_and_ruamel_read_the_same(path):
    """Snakemake reads with PyYAML (YAML 1.1), DVC with ruamel round-trip (YAML 1.2): 3e-4 or yes
    would be a string to one and a number or bool to the other."""
    text = path.read_text()
    a = yaml.safe_load(text)
    b = _plain(YAML(typ="rt").load(io.StringIO(text)))
    assert a == b

    def types(x):
        return {k: types(v) for k, v in x.items()} if isinstance(x, dict) else (
            [types(v) for v in x] if isinstance(x, list) else type(x).__name__)
    assert types(a) == types(b)


def test_default_and_smoke_params_are_valid():
    params = cfg.load()
    cfg.validate(params)
    cfg.validate(cfg.merge(params, cfg.load(FILES[1])))


def test_smoke_keeps_the_dag_shape():
    """dvc.yaml fits both files only if algos and seeds are the same."""
    smoke = cfg.load(FILES[1])
    assert "algos" not in smoke and "seeds" not in smoke


def test_errors_name_the_key_and_valid_values():
    assert "valid: lift, paper_square, pick_place, walk" in params_errors(lambda p: p.update(task="stack"))
    assert "reward: unknown reward version 'v20' for task lift; valid: v11, v19" in params_errors(
        lambda p: p.update(reward="v20"))
    assert "valid: ppo, sac, tqc, her" in params_errors(lambda p: p.update(algos=["ppo", "td3"]))
    assert "ppo.learning_rate" in params_errors(lambda p: p["ppo"].update(learning_rate="3e-4"))
    assert "env.obs_mode: got 'rgb'; expected one of state, pixels, state+pixels" in params_errors(
        lambda p: p["env"].update(obs_mode="rgb"))
    msg = params_errors(lambda p: p["env"].update(max_steps=100))
    assert "env.max_steps: unknown key; valid keys: max_episode_steps" in msg
    assert "her needs a goal-conditioned task" in params_errors(lambda p: p.update(algos=["her"]))
    assert "seeds" in params_errors(lambda p: p.update(seeds=[0, 0]))


@pytest.mark.parametrize("given,expected", [(["0", "1", "2"], [0, 1, 2]), (["10", 3], [10, 3]), ([0, 1], [0, 1])])
def test_seeds_as_snakemake_config_gives_them(given, expected):
    """`snakemake --config 'seeds=[0,1,2]'` passes the list items as text (YAML's BaseLoader):
    validation turns plain decimal numbers into ints, in the config itself, once."""
    params = {**copy.deepcopy(cfg.load()), "seeds": given}
    assert cfg.validate(params)["seeds"] == expected and params["seeds"] == expected


@pytest.mark.parametrize("seeds", [["01"], ["-1"], ["1.0"], ["a"], ["0", 0], [" 1"], [True], []])
def test_seeds_that_are_not_plain_numbers_are_refused(seeds):
    assert "seeds: expected a non-empty list of distinct integers >= 0" in params_errors(lambda p: p.update(seeds=seeds))


def test_residual_learners_name_their_bases():
    assert "unknown algorithm 'ppo+gr00t'; valid: ppo, sac, tqc, her, drqv2, scripted, bc, rlpd, or a residual learner on a base " \
           "as <algorithm>+<base> with base zero, scripted or a trained run of ppo or sac" in params_errors(
               lambda p: p.update(algos=["ppo+gr00t"]))
    assert "takes no base" in params_errors(lambda p: p.update(algos=["scripted+zero"]))
    assert "residual.alpha: got -1.0" in params_errors(lambda p: (p.update(algos=["ppo+zero"]), p["residual"].update(alpha=-1.0)))
    from envs import controllers
    without_walk = {t: c for t, c in controllers.TASK_CONTROLLERS.items() if t != "walk"}
    with pytest.MonkeyPatch.context() as mp:      # a task without a controller
        mp.setattr(controllers, "TASK_CONTROLLERS", without_walk)
        walk = params_errors(lambda p: p.update(task="walk", reward="v2", algos=["ppo+scripted"], compare={
            "rewards": ["v2"], "algos": ["ppo"], "backends": ["genesis"]}))
    assert "algos: ppo+scripted needs a task with a scripted controller; valid tasks: lift, paper_square, pick_place" in walk
    params = copy.deepcopy(cfg.load())
    cfg.validate({**params, "algos": ["scripted", "ppo+scripted", "ppo+zero", "sac+scripted"]})
    assert settings.algo_blocks("ppo+scripted", {}, {}) == ["ppo", "residual"] and settings.algo_blocks("ppo", {}, {}) == ["ppo"]


def test_a_block_says_whether_its_run_reads_the_demonstrations():
    """bc always learns from demonstrations; rlpd and drqv2 where their demo_ratio is > 0 (drqv2's
    presets: 0), and only then does a run read the demos block."""
    import algos
    assert algos.uses_demos("bc", {}) and settings.algo_blocks("bc", {}, {}) == ["bc", "demos"]
    assert settings.algo_blocks("rlpd", {"demo_ratio": 0.5}, {}) == ["rlpd", "demos"]
    assert settings.algo_blocks("rlpd", {"demo_ratio": 0.0}, {}) == ["rlpd"]
    assert settings.algo_blocks("drqv2", {"preset": "gpu"}, {}) == ["drqv2"]
    assert settings.algo_blocks("drqv2", {"demo_ratio": 0.25}, {}) == ["drqv2", "demos"]
    assert not algos.uses_demos("ppo", {"demo_ratio": 0.5})
    params = copy.deepcopy(cfg.load())
    assert settings.demo_algos({**params, "algos": ["rlpd", "drqv2", "bc"]}) == ["rlpd", "bc"]


def test_compare_pairs_name_valid_rewards_and_algorithms():
    def pairs(*values):
        return lambda p: p["compare"].update(pairs=list(values))
    msg = params_errors(pairs("v19/ppo", "v99/ppo", "v19"))
    assert "compare.pairs: 'v99/ppo' is not reward/algo; valid rewards for task lift: v11, v19" in msg
    assert "compare.pairs: 'v19' is not reward/algo" in msg and "'v19/ppo'" not in msg
    assert "compare.pairs v19/her: algos: her needs a goal-conditioned task" in params_errors(pairs("v19/her"))
    params = cfg.load()
    assert cfg.compare_variants({**params["compare"], "pairs": ["v19/sac", "v11/ppo"]}) == [
        ("v19", "sac", "mujoco"), ("v11", "ppo", "mujoco")], "pairs replace rewards x algos, in their order"
    assert cfg.compare_variants(params["compare"]) == [("v11", "ppo", "mujoco"), ("v19", "ppo", "mujoco")]


EXPERIMENTS = sorted(p for p in (cfg.PARAMS_FILE.parent / "config").glob("*.yaml") if p.name != "conda.yaml")


@pytest.mark.parametrize("path", EXPERIMENTS, ids=lambda p: p.name)
def test_experiment_files_are_valid(path):
    cfg.validate(cfg.merge(cfg.load(), cfg.load(path)))


def test_all_problems_reported_at_once():
    msg = params_errors(lambda p: (p.update(task="stack"), p["ppo"].update(gamma=2.0), p["sac"].pop("tau")))
    assert "task:" in msg and "ppo.gamma" in msg and "sac.tau: missing" in msg


def test_bool_is_not_a_number():
    assert "sanity.episodes" in params_errors(lambda p: p["sanity"].update(episodes=True))


def test_malformed_file_names_the_line(tmp_path):
    bad = tmp_path / "params.yaml"
    bad.write_text("task: lift\nenv:\n  max_episode_steps: 200\n bad_indent: 1\n")
    proc = subprocess.run([sys.executable, "-m", "pipeline.dag.params", str(bad)], capture_output=True, text=True)
    assert proc.returncode == 2
    assert "line 4" in proc.stderr and "not valid YAML" in proc.stderr


def test_merge_output_reads_back_identically(tmp_path):
    """The DVC smoke run writes merged params with PyYAML: both parsers must still agree on it."""
    proc = subprocess.run([sys.executable, "-m", "pipeline.dag.params", "--merge", str(FILES[1])],
                          capture_output=True, text=True, check=True)
    a = yaml.safe_load(proc.stdout)
    b = _plain(YAML(typ="rt").load(io.StringIO(proc.stdout)))
    assert a == b == cfg.merge(cfg.load(), cfg.load(FILES[1]))


def test_cli_flags_round_trip():
    """A value written on a command line (format_value) parses back to the same value."""
    params = cfg.load()
    for block, fields in settings.BLOCKS.items():
        for name, f in fields.items():
            if block in params and name in params[block]:
                v = params[block][name]
                assert f.parse(settings.format_value(v)) == v, f"{block}.{name}"


def test_conda_env_pins_match_requirements():
    """config/conda.yaml (Snakemake's conda: directive) lists the same pins as requirements.txt."""
    root = cfg.PARAMS_FILE.parent
    reqs = [ln.strip() for name in ("requirements.txt", "requirements-genesis.txt")
            for ln in (root / name).read_text().splitlines() if ln.strip() and not ln.startswith("#")]
    conda = yaml.safe_load((root / "config" / "conda.yaml").read_text())
    pip = next(d["pip"] for d in conda["dependencies"] if isinstance(d, dict))
    assert pip == reqs


def test_every_experiment_env_block_builds_the_env():
    """The env block is envs/settings.py's ENV, declared once; each experiment's values are ones the
    env accepts, and a value the schema refuses the env refuses too, naming the setting."""
    from envs import TaskConfig
    for path in [cfg.PARAMS_FILE, *sorted((cfg.PARAMS_FILE.parent / "config").glob("*.yaml"))]:
        merged = cfg.merge(cfg.load(), cfg.load(path))
        if "env" in merged:
            TaskConfig.from_kwargs(**merged["env"])
    with pytest.raises(ValueError, match="hold_steps"):
        TaskConfig.from_kwargs(hold_steps=0)


def test_settings_table_is_fresh():
    """docs/settings.md follows from the declarations; regenerate it after declaring a setting
    (`python -m pipeline.dag.settings_doc`)."""
    proc = subprocess.run([sys.executable, "-m", "pipeline.dag.settings_doc", "--check"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
