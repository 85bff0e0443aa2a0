# The two commands:   make setup && make report     (a trained lift policy and reports/lift_v19.md)
# Tests and CI:       make test                     (fast tests, then the whole DAG on config/smoke.yaml
#                                                    through Snakemake and DVC, in throwaway copies, and
#                                                    on a local SLURM cluster it brings up and stops)
VENV    := .venv
PY      := $(VENV)/bin/python
CORES   ?= 2
# Stages run `python -m pipeline.<stage>`: put the venv first so every tool finds the pinned set.
export PATH := $(abspath $(VENV))/bin:$(PATH)
# One BLAS/torch thread per process unless a stage asks for more (--threads): on 2 cores,
# oversubscription costs more than it gives (field notes).
export OMP_NUM_THREADS ?= 1

.PHONY: setup test test-slow smoke smoke-genesis smoke-walk report dvc-report dvc.yaml lint

setup: $(VENV)/.installed

$(VENV)/.installed: requirements.txt requirements-genesis.txt $(wildcard pyproject.toml)
	test -x $(PY) || python3 -m venv $(VENV)
	# The Genesis backend is an extra, installed here too (~2.6 GB); its pins are in requirements-genesis.txt.
	$(PY) -m pip install -r requirements.txt -r requirements-genesis.txt
	# --no-build-isolation: build with the venv's setuptools instead of downloading one.
	if [ -f pyproject.toml ]; then $(PY) -m pip install --no-deps --no-build-isolation -e . \
		|| $(PY) -m pip install --no-deps -e .; fi
	touch $@

test: setup
	$(PY) -m pytest -n $(CORES)
	$(PY) -m tests.e2e.smoke --cores $(CORES)
	# The Genesis and walk smoke DAGs are chains of single-core jobs: one core each, side by side.
	$(MAKE) -j2 smoke-genesis smoke-walk
	$(PY) -m tests.e2e.smoke --tool snakemake --experiment config/paper_square.yaml --config 'seeds=[0,1]' --cores $(CORES)
	$(PY) -m tests.e2e.smoke --tool snakemake --experiment config/bc_lift.yaml --config 'algos=[bc,rlpd]' --cores $(CORES)
	$(PY) -m tests.e2e.smoke_slurm

# lift on Genesis (its sanity stage checks parity with MuJoCo), and the Go2 walk; one core each
smoke-genesis: setup
	$(PY) -m tests.e2e.smoke --tool snakemake --backend genesis --config 'algos=[ppo]' --cores 1
smoke-walk: setup
	$(PY) -m tests.e2e.smoke --tool snakemake --experiment config/walk.yaml --cores 1

test-slow: setup
	$(PY) -m pytest -m slow

smoke: setup
	$(PY) -m tests.e2e.smoke --cores $(CORES)

# The default pipeline (params.yaml) with Snakemake; params are validated before anything runs.
report: setup
	$(PY) -m pipeline.dag.params
	snakemake --cores $(CORES)

# The same with DVC (needs a git repository with at least one commit).
dvc-report: setup
	$(PY) -m pipeline.dag.params
	$(PY) -m pipeline.dag.dvcgen --check || (echo "dvc.yaml is stale: run make dvc.yaml" && exit 1)
	dvc repro

# Regenerate dvc.yaml from pipeline/dag/registry.py after changing task, algos or seeds, or what a stage imports.
dvc.yaml:
	$(PY) -m pipeline.dag.dvcgen

lint: setup
	snakemake --lint
	$(PY) -m pipeline.dag.dvcgen --check
