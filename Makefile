# Two commands a learner needs: `make lab` and `make test`. Both create .venv when it is missing
# and are safe to re-run (the install step re-runs only when requirements.txt or pyproject.toml change).
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: lab test venv exercises execute clean

venv: $(STAMP)

$(STAMP): requirements.txt pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet -r requirements.txt
	@touch $@

lab: $(STAMP)
	$(VENV)/bin/jupyter lab $(if $(filter 0,$(shell id -u)),--allow-root) notebooks/

# Math threads are set in one place, course/execute.py (tests/conftest.py applies it).
test: $(STAMP)
	$(PY) -m pytest

# Write exercises/ from solutions/ (the single source); tests fail while exercises/ is stale.
exercises: $(STAMP)
	$(PY) -m course.exercises

# Re-run every lesson and solution notebook in place (one math thread), refreshing its stored outputs.
execute: $(STAMP)
	$(PY) -m course.execute notebooks/*.ipynb solutions/*.ipynb

clean:
	rm -rf $(VENV)
