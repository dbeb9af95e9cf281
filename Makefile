# Two commands a learner needs: `make lab` and `make test`. Both create .venv when it is missing
# and are safe to re-run (the install step re-runs only when requirements.txt or pyproject.toml change).
# Python 3.11, 3.12 or 3.13: PYTHON=python3.12 picks another one for a new .venv.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
# TORCH_CPU=1 (e.g. `make lab TORCH_CPU=1` on a fresh clone) installs PyTorch's CPU-only build first:
# on Linux, pip's default from PyPI is the CUDA build with ~15 nvidia-* packages (a ~5.5 GB venv).
TORCH_CPU       ?=
TORCH_CPU_INDEX ?= https://download.pytorch.org/whl/cpu
TORCH_PIN       := $(shell sed -n 's/^torch==//p' requirements.txt)
# JupyterLab opens the course root on the landing page, with the course's settings (no news prompt).
LAB_CONFIG := $(CURDIR)/jupyter-config

.PHONY: lab lab-zh test test-grader test-portable venv exercises translate execute clean

venv: $(STAMP)

$(STAMP): requirements.txt pyproject.toml
	@test -x $(PY) || $(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null || { \
	  echo "The course needs Python 3.11 or newer (its pinned numpy 2.4.6 does); '$(PYTHON)' is" \
	    "$$($(PYTHON) --version 2>&1). Name another one, e.g.: make $(or $(MAKECMDGOALS),venv) PYTHON=python3.12"; exit 1; }
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(if $(TORCH_CPU),$(PY) -m pip install --quiet torch==$(TORCH_PIN) --index-url $(TORCH_CPU_INDEX))
	$(PY) -m pip install --quiet -r requirements.txt
	@touch $@

lab: $(STAMP)
	JUPYTER_CONFIG_PATH="$(LAB_CONFIG)$${JUPYTER_CONFIG_PATH:+:$$JUPYTER_CONFIG_PATH}" $(VENV)/bin/jupyter lab \
	  $(if $(filter 0,$(shell id -u)),--allow-root) --ServerApp.root_dir="$(CURDIR)" START_HERE.md

# The Chinese edition (zh-CN/): JupyterLab on its landing page, with JupyterLab's own interface in Chinese
# (jupyter-config/zh-CN/ sets the locale of the zh-CN language pack, which requirements.txt installs).
lab-zh: $(STAMP)
	JUPYTER_CONFIG_PATH="$(LAB_CONFIG)/zh-CN:$(LAB_CONFIG)$${JUPYTER_CONFIG_PATH:+:$$JUPYTER_CONFIG_PATH}" \
	  $(VENV)/bin/jupyter lab $(if $(filter 0,$(shell id -u)),--allow-root) --ServerApp.root_dir="$(CURDIR)" \
	  zh-CN/START_HERE.md

# Math threads are set in one place, course/execute.py (the root conftest.py applies it).
# `make test`: the course (unit tests, every notebook, every exercise graded for real, the browser). The grader's
# attack room and its time, signal and worker limits wait for timeouts by design: `make test-grader` (CI runs both).
test: $(STAMP)
	$(PY) -m pytest -m "not grader"

test-grader: $(STAMP)
	$(PY) -m pytest -m grader tests

# The notebooks once more on torch's plain, non-vectorised CPU kernels, as an older CPU runs them: a stored output
# that depends on the float kernels (a live trained accuracy printed too precisely) fails here. Run it before
# landing a lesson; CPU_CAPABILITY=avx2 tries another kernel set (torch's names: default, avx2, avx512).
CPU_CAPABILITY ?= default
test-portable: $(STAMP)
	ATEN_CPU_CAPABILITY=$(CPU_CAPABILITY) $(PY) -m pytest notebooks solutions

# Write exercises/ from solutions/ (the single source); tests fail while exercises/ is stale.
exercises: $(STAMP)
	$(PY) -m course.exercises

# Bring the Chinese edition in step after an English change: code cells and outputs copied from the English
# notebooks, zh-CN/exercises/ rewritten; it lists the Chinese cells to translate again (docs/authoring.md).
translate: $(STAMP)
	$(PY) -m course.translate

# Re-run every lesson, solution and teaching notebook in place (one math thread), refreshing its stored outputs.
execute: $(STAMP)
	$(PY) -m course.execute notebooks/*.ipynb solutions/*.ipynb teaching/*.ipynb

clean:
	rm -rf $(VENV)
