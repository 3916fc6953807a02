# Two commands for a fresh machine with Python 3.10+:
#   make lab    set everything up and open the course in JupyterLab
#   make test   set everything up the same way and run the whole test suite
# Both are idempotent: a second run reuses .venv, the installed packages and the data.

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

# The README's test command: unit tests, the real-browser test and every notebook under nbval.
# One cell of any notebook may run 300 s under nbval before it fails (nbval's default: 2000 s);
# the option is here, not in pyproject's addopts, so pytest runs without nbval installed too.
PYTEST_ARGS := -n 2 --dist loadfile --nbval --nbval-current-env --nbval-cell-timeout=300 \
               --nbval-sanitize-with notebooks/nbval-sanitize.cfg tests notebooks

.PHONY: setup data lab test notebooks bench

$(PY):
	$(PYTHON) -m venv $(VENV)

$(STAMP): requirements.txt pyproject.toml | $(PY)
	$(PY) -m pip install --upgrade pip
	$(PY) -m pip install -r requirements.txt
	touch $(STAMP)

setup: $(STAMP) data

data: $(STAMP)
	$(PY) -m cnnlib data

lab: setup
	$(VENV)/bin/jupyter lab notebooks/

test: setup
	$(PY) -m pytest $(PYTEST_ARGS)

# Re-execute every notebook in place (deterministic; an unchanged notebook gives an empty diff).
notebooks: setup
	$(PY) tools/run_notebooks.py

bench: setup
	$(PY) -m cnnlib bench
