# Two commands a learner needs: `make lab` and `make test`. Both create .venv when it is missing
# and are safe to re-run (the install step re-runs only when requirements.txt or pyproject.toml change).
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
# Two pytest workers on a 2-core machine: one math thread each, so they don't oversubscribe.
THREADS := OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1

.PHONY: lab test venv exercises execute clean

venv: $(STAMP)

$(STAMP): requirements.txt pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet -r requirements.txt
	@touch $@

lab: $(STAMP)
	$(VENV)/bin/jupyter lab $(if $(filter 0,$(shell id -u)),--allow-root) notebooks/

test: $(STAMP)
	$(THREADS) $(PY) -m pytest

# Write exercises/ from solutions/ (the single source); tests fail while exercises/ is stale.
exercises: $(STAMP)
	$(PY) tools/make_exercises.py

# Re-run every lesson and solution notebook in place, refreshing its stored outputs.
execute: $(STAMP)
	$(THREADS) $(PY) tools/nb.py execute notebooks/*.ipynb solutions/*.ipynb

clean:
	rm -rf $(VENV)
