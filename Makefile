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

# make lab: writes the learner edition (make student) where it is missing or stale, then opens
# JupyterLab on LAB_FOLDER (the repository root: student/ and notebooks/ side by side) at
# http://LAB_IP:LAB_PORT (the next free port when that one is taken); LAB_ARGS are more JupyterLab
# options. Any of them can be set: make lab LAB_PORT=8890.
# tools/lab.py adds --allow-root as root and --no-browser without a display, each with a line why.
LAB_FOLDER ?= .
LAB_IP     ?= localhost
LAB_PORT   ?= 8888
LAB_ARGS   ?=
LAB         = $(strip $(PY) tools/lab.py $(LAB_FOLDER) --ip=$(LAB_IP) --port=$(LAB_PORT) $(LAB_ARGS))

.PHONY: setup data student lab lab-serve test notebooks bench

$(PY):
	$(PYTHON) -m venv $(VENV)

$(STAMP): requirements.txt pyproject.toml | $(PY)
	$(PY) -m pip install --upgrade pip
	$(PY) -m pip install -r requirements.txt
	touch $(STAMP)

setup: $(STAMP) data

data: $(STAMP)
	$(PY) -m cnnlib data

# The learner edition: student/ from notebooks/, solutions replaced by stubs (tools/student.py);
# a notebook the learner has edited is never overwritten.
student: $(STAMP)
	$(PY) tools/student.py

lab: setup student
	$(LAB)

# What lab runs after the set-up, alone: for an environment made otherwise
# (make lab-serve PY=/path/to/python); tests/test_lab.py checks that it is lab's last step.
lab-serve:
	$(LAB)

test: setup
	$(PY) -m pytest $(PYTEST_ARGS)

# Re-execute every notebook in place (deterministic; an unchanged notebook gives an empty diff).
notebooks: setup
	$(PY) tools/run_notebooks.py

bench: setup
	$(PY) -m cnnlib bench
