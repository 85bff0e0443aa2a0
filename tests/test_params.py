"""params.yaml: both YAML parsers agree on it, and the schema rejects bad input naming valid values."""
import copy
import io
import subprocess
import sys

import pytest
import yaml
from ruamel.yaml import YAML

from pipeline import config as cfg

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


def _errors(mutate):
    params = copy.deepcopy(cfg.load())
    mutate(params)
    with pytest.raises(cfg.ParamsError) as e:
        cfg.validate(params)
    return str(e.value)


def test_errors_name_the_key_and_valid_values():
    assert "valid: lift, paper_square, pick_place, walk" in _errors(lambda p: p.update(task="stack"))
    assert "reward: unknown reward version 'v20' for task lift; valid: v11, v19" in _errors(
        lambda p: p.update(reward="v20"))
    assert "valid: ppo, sac, tqc, her" in _errors(lambda p: p.update(algos=["ppo", "td3"]))
    assert "ppo.learning_rate" in _errors(lambda p: p["ppo"].update(learning_rate="3e-4"))
    assert "env.obs_mode: got 'rgb'; expected one of state, pixels, state+pixels" in _errors(
        lambda p: p["env"].update(obs_mode="rgb"))
    msg = _errors(lambda p: p["env"].update(max_steps=100))
    assert "env.max_steps: unknown key; valid keys: max_episode_steps" in msg
    assert "her needs a goal-conditioned task" in _errors(lambda p: p.update(algos=["her"]))
    assert "seeds" in _errors(lambda p: p.update(seeds=[0, 0]))


def test_residual_learners_name_their_bases():
    assert "unknown algorithm 'ppo+gr00t'; valid: ppo, sac, tqc, her, drqv2, scripted, or a residual learner on a base " \
           "as <algorithm>+<base> with base zero, scripted or a trained run of ppo or sac" in _errors(
               lambda p: p.update(algos=["ppo+gr00t"]))
    assert "takes no base" in _errors(lambda p: p.update(algos=["scripted+zero"]))
    assert "residual.alpha: got -1.0" in _errors(lambda p: (p.update(algos=["ppo+zero"]), p["residual"].update(alpha=-1.0)))
    walk = _errors(lambda p: p.update(task="walk", reward="v2", algos=["ppo+scripted"], compare={
        "rewards": ["v2"], "algos": ["ppo"], "backends": ["genesis"]}))
    assert "algos: ppo+scripted needs a task with a scripted controller; valid tasks: lift, paper_square, pick_place" in walk
    params = copy.deepcopy(cfg.load())
    cfg.validate({**params, "algos": ["scripted", "ppo+scripted", "ppo+zero", "sac+scripted"]})
    assert cfg.algo_blocks("ppo+scripted") == ["ppo", "residual"] and cfg.algo_blocks("ppo") == ["ppo"]


def test_compare_pairs_name_valid_rewards_and_algorithms():
    def pairs(*values):
        return lambda p: p["compare"].update(pairs=list(values))
    msg = _errors(pairs("v19/ppo", "v99/ppo", "v19"))
    assert "compare.pairs: 'v99/ppo' is not reward/algo; valid rewards for task lift: v11, v19" in msg
    assert "compare.pairs: 'v19' is not reward/algo" in msg and "'v19/ppo'" not in msg
    assert "compare.pairs v19/her: algos: her needs a goal-conditioned task" in _errors(pairs("v19/her"))
    params = cfg.load()
    assert cfg.compare_variants({**params["compare"], "pairs": ["v19/sac", "v11/ppo"]}) == [
        ("v19", "sac", "mujoco"), ("v11", "ppo", "mujoco")], "pairs replace rewards x algos, in their order"
    assert cfg.compare_variants(params["compare"]) == [("v11", "ppo", "mujoco"), ("v19", "ppo", "mujoco")]


EXPERIMENTS = sorted(p for p in (cfg.PARAMS_FILE.parent / "config").glob("*.yaml") if p.name != "conda.yaml")


@pytest.mark.parametrize("path", EXPERIMENTS, ids=lambda p: p.name)
def test_experiment_files_are_valid(path):
    cfg.validate(cfg.merge(cfg.load(), cfg.load(path)))


def test_all_problems_reported_at_once():
    msg = _errors(lambda p: (p.update(task="stack"), p["ppo"].update(gamma=2.0), p["sac"].pop("tau")))
    assert "task:" in msg and "ppo.gamma" in msg and "sac.tau: missing" in msg


def test_bool_is_not_a_number():
    assert "sanity.episodes" in _errors(lambda p: p["sanity"].update(episodes=True))


def test_malformed_file_names_the_line(tmp_path):
    bad = tmp_path / "params.yaml"
    bad.write_text("task: lift\nenv:\n  max_episode_steps: 200\n bad_indent: 1\n")
    proc = subprocess.run([sys.executable, "-m", "pipeline.config", str(bad)], capture_output=True, text=True)
    assert proc.returncode == 2
    assert "line 4" in proc.stderr and "not valid YAML" in proc.stderr


def test_merge_output_reads_back_identically(tmp_path):
    """The DVC smoke run writes merged params with PyYAML: both parsers must still agree on it."""
    proc = subprocess.run([sys.executable, "-m", "pipeline.config", "--merge", str(FILES[1])],
                          capture_output=True, text=True, check=True)
    a = yaml.safe_load(proc.stdout)
    b = _plain(YAML(typ="rt").load(io.StringIO(proc.stdout)))
    assert a == b == cfg.merge(cfg.load(), cfg.load(FILES[1]))


def test_cli_flags_round_trip():
    """A value written on a command line (format_value) parses back to the same value."""
    params = cfg.load()
    for block, fields in cfg.BLOCKS.items():
        for name, f in fields.items():
            if block in params and name in params[block]:
                v = params[block][name]
                assert f.parse(cfg.format_value(v)) == v, f"{block}.{name}"


def test_conda_env_pins_match_requirements():
    """config/conda.yaml (Snakemake's conda: directive) lists the same pins as requirements.txt."""
    root = cfg.PARAMS_FILE.parent
    reqs = [ln.strip() for name in ("requirements.txt", "requirements-genesis.txt")
            for ln in (root / name).read_text().splitlines() if ln.strip() and not ln.startswith("#")]
    conda = yaml.safe_load((root / "config" / "conda.yaml").read_text())
    pip = next(d["pip"] for d in conda["dependencies"] if isinstance(d, dict))
    assert pip == reqs


def test_env_block_matches_the_envs_settings():
    """Every env setting envs/ accepts is a key of the env block, and nothing else: a new TaskConfig
    field must be added to the schema and params.yaml (or it could never be set or tracked). The
    backend is the top-level `backend` key (it names the sanity file), passed to the env by the stages."""
    from dataclasses import fields

    from envs import TaskConfig
    from envs.tasks.base import BACKENDS
    assert set(cfg.BLOCKS["env"]) | {"backend"} == {f.name for f in fields(TaskConfig)}
    assert cfg.BACKENDS == BACKENDS
    TaskConfig.from_kwargs(**cfg.load()["env"])     # and the values are ones envs accepts


def test_drqv2_block_errors_name_valid_values():
    """drqv2: `preset` plus optional overrides of it (what DrQV2Config.from_params reads)."""
    assert "drqv2.preset: got 'tpu'; expected one of cpu, gpu" in _errors(lambda p: p["drqv2"].update(preset="tpu"))
    assert "drqv2.encoder_bf16: got 'yes'; expected one of auto, on, off" in _errors(
        lambda p: p["drqv2"].update(encoder_bf16="yes"))
    assert "expected a constant like 0.2 or linear(init,final,duration)" in _errors(
        lambda p: p["drqv2"].update(stddev_schedule="exp(1.0)"))
    assert "drqv2.learning_rate: unknown key; valid keys: preset, total_timesteps" in _errors(
        lambda p: p["drqv2"].update(learning_rate=1.0e-4))
    assert "drqv2.total_timesteps: missing" in _errors(lambda p: p["drqv2"].pop("total_timesteps"))
    assert "drqv2.batch_size: got 0" in _errors(lambda p: p["drqv2"].update(batch_size=0))
    assert "valid: ppo, sac, tqc, her, drqv2" in _errors(lambda p: p.update(algos=["ppo", "td3"]))
    # the overrides are optional: a bare preset is a valid block
    params = copy.deepcopy(cfg.load())
    params["drqv2"] = {"preset": "gpu", "total_timesteps": 1000, "num_envs": 8}
    cfg.validate({**params, "algos": ["drqv2"]})


def test_drqv2_block_is_what_drqv2config_reads():
    """Every override key of the schema is a DrQV2Config field, and params.yaml's block builds the
    CPU preset (its values are the preset's), with frame stack 3 on pixels."""
    from dataclasses import asdict, fields

    import algos
    from algos import drqv2
    from algos.drqv2 import DrQV2Config
    overrides = set(cfg.BLOCKS["drqv2"]) - {"preset", *drqv2.LOOP_KEYS}
    assert overrides == {f.name for f in fields(DrQV2Config)} - {"seed", "torch_threads"}
    block = cfg.load()["drqv2"]
    assert asdict(drqv2.config(block)) == asdict(DrQV2Config(torch_threads=0))
    env = algos.env_settings("drqv2", cfg.load()["env"], block)
    assert env["obs_mode"] == "pixels" and env["frame_stack"] == 3
