"""pytest's own configuration: one test file runs where nbval is not installed (the nbval options
live in the Makefile's PYTEST_ARGS, not in pyproject's addopts)."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_a_single_test_file_runs_without_nbval():
    # -p no:nbval: pytest loads no nbval, as when it is not installed, so an nbval option in
    # addopts would end the run with "unrecognized arguments".
    run = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:nbval", "-p", "no:xdist",
                          "-p", "no:cacheprovider", "-q", "tests/test_dropout.py"],
                         cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout + run.stderr
    assert " passed" in run.stdout
