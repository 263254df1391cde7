# Two commands do everything on a fresh clone: `make demo` (the main job) and `make test`.
# Each creates or reuses .venv by itself; `make test` also installs the Debian packages only the tests
# need (scripts/debian-packages.txt: chromium, Slurm, munge, MariaDB; as root), `make demo` none of them.
SHELL := /bin/bash
VENV ?= $(or $(MTSLVR_VENV),.venv)
export MTSLVR_VENV := $(VENV)
BIN := $(VENV)/bin

.PHONY: env test-env demo test sync readme readme-tables lab clean-docs docs docs-outputs

env:
	@bash scripts/setup_env.sh

# The venv and the test-only Debian packages, installed in parallel.
test-env:
	@bash scripts/setup_env.sh --test

demo: env
	$(BIN)/mtslvr demo $(ARGS)

test: test-env
	@bash scripts/run_tests.sh

# Regenerate the library, clean the notebooks and render README.md from nbs/index.ipynb.
sync: env
	$(BIN)/nbdev-export && $(BIN)/python scripts/experiment_parameters.py && $(BIN)/nbdev-clean && $(BIN)/python scripts/render_readme.py

readme: env
	$(BIN)/python scripts/render_readme.py

# Put a demo run's tables into the README (and its summary into docs/results/demo/): make readme-tables RUN=runs/demo
readme-tables: env
	$(BIN)/python scripts/readme_tables.py $(or $(RUN),runs/demo) --write

# JupyterLab on the widget notebooks (nbs/explore); as root (containers) it needs --allow-root.
lab: env
	$(BIN)/jupyter lab nbs/explore $(if $(filter 0,$(shell id -u)),--allow-root)

# Run the docs pages headlessly and commit their small static outputs (figures, tables, audio files in nbs/audio/):
# every page, or NB="nbs/02_augment.ipynb nbs/03_pipeline.ipynb". A test fails when a page's code changed since.
docs-outputs: env
	$(BIN)/python scripts/refresh_outputs.py $(NB)

# The docs site without Quarto, from the committed outputs, into _docs/ (open _docs/index.html; works offline).
# The published site is Quarto's, built from the same notebooks by .github/workflows/deploy.yaml
# (to run nbdev-docs by hand: python scripts/build_docs.py --plotly-js nbs/plotly.min.js && PYTHONPATH=. nbdev-docs).
docs: env
	$(BIN)/python scripts/build_docs.py
