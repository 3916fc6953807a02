"""nbval must fail when a result changes: tests that the notebook regression check has teeth.

A notebook test that passes no matter what is worse than none. These tests take a real course
notebook, run nbval on copies of it in a subprocess, and assert that

- the unchanged copy passes (the baseline reproduces),
- a copy whose stored result was changed by one digit fails (nbval compares, and the sanitize
  file does not hide the change),
- the unchanged copy fails when cnnlib's ReLU backward pass is broken (a shadow copy of the
  package, first on PYTHONPATH): a library bug reaches the notebooks' checks.

The fast tests at the top check the sanitize file itself: every pattern is well formed, results
pass through it untouched, and only timings, addresses and temporary paths are replaced.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from nbval.plugin import get_sanitize_patterns

REPO = Path(__file__).resolve().parent.parent
SANITIZE = REPO / "notebooks" / "nbval-sanitize.cfg"
# A small, fast notebook (a few seconds) whose cells use cnnlib's ReLU backward pass.
NOTEBOOK = REPO / "notebooks" / "01_gradient_checking.ipynb"


def _patterns():
    return get_sanitize_patterns(SANITIZE.read_text(encoding="utf-8"))


def _sanitize(text: str) -> str:
    for regex, replace in _patterns():
        text = re.sub(regex, replace, text)
    return text


# --------------------------------------------------------------------------- the sanitize file

def test_every_regex_line_has_its_replace_line():
    lines = SANITIZE.read_text(encoding="utf-8").splitlines()
    regex_lines = [line for line in lines if line.startswith("regex:")]
    replace_lines = [line for line in lines if line.startswith("replace:")]
    # nbval silently drops a "regex:" line not directly followed by its "replace:" line.
    assert len(_patterns()) == len(regex_lines) == len(replace_lines) >= 1
    for regex, _ in _patterns():
        re.compile(regex)


def test_sanitize_file_is_ascii():
    SANITIZE.read_bytes().decode("ascii")  # nbval reads it in the locale's encoding


@pytest.mark.parametrize("result", [
    "validation accuracy 97.12%, test accuracy 96.98%",
    "loss 2.302585, ln 10 = 2.302585",
    "dL/dw1 = -1.992952",
    " 1e-05        4.5e-05        1.3e-10        6.5e-03",
    "train  images (50000, 28, 28)  labels per digit: 4932 5678 4968",
    "magic number 0x00000803",
    "parameters: 79,510",
    "epoch 3: 12 steps, lr 0.05",
    "took 1.2 s",             # not the documented form "time: 1.2 s": deliberately not sanitized
    "timestamp 2026-01-01T00:00:00",
    "saved to /work/main/models/seed_net.npz",
])
def test_sanitizer_leaves_results_alone(result):
    assert _sanitize(result) == result


@pytest.mark.parametrize("before, after", [
    ("loop time: 1.93 s, vectorized time: 12.4 ms",
     "loop time: 0.84 s, vectorized time: 9.1 ms"),
    ("epoch time: 3 s", "epoch time: 41 s"),
    ("forward time: 85.2 \u00b5s \u00b1 3.1 \u00b5s", "forward time: 91.0 \u00b5s \u00b1 0.4 \u00b5s"),
    ("speed-up: 120x", "speed-up: 7.5x"),
    ("<cnnlib.layers.ReLU object at 0x7f3a2c1b4d30>", "<cnnlib.layers.ReLU object at 0x55d1c0ffee00>"),
    ("/tmp/ipykernel_4123/2760.py:3: RuntimeWarning: overflow",
     "/var/folders/x1/T/ipykernel_77/118.py:3: RuntimeWarning: overflow"),
    ("wrote /tmp/tmpab12_cd9/net.npz", "wrote /tmp/tmpzz9_x0q1/net.npz"),
])
def test_sanitizer_replaces_run_to_run_noise(before, after):
    assert before != after
    assert _sanitize(before) == _sanitize(after)


@pytest.mark.parametrize("line, changed", [
    ("loop time: 1.93 s; accuracy 97.12%", "loop time: 1.93 s; accuracy 97.13%"),
    ("speed-up: 120x, max error 1.2e-12", "speed-up: 120x, max error 1.3e-12"),
    ("<function f at 0x7f3a2c1b4d30> returned 0.4982", "<function f at 0x7f3a2c1b4d30> returned 0.4983"),
])
def test_sanitizer_does_not_mask_a_changed_number_next_to_noise(line, changed):
    assert _sanitize(line) != _sanitize(changed)


# ------------------------------------------------------------------- nbval on real notebooks

def _nbval(notebook: Path, extra_env: dict[str, str] | None = None):
    env = dict(os.environ, PYTHONHASHSEED="0", OPENBLAS_NUM_THREADS="1")
    env.pop("PYTEST_XDIST_WORKER", None)
    env.pop("PYTEST_ADDOPTS", None)
    env.update(extra_env or {})
    command = [sys.executable, "-m", "pytest", "--nbval", "--nbval-current-env",
               "--nbval-sanitize-with", str(SANITIZE), "--nbval-cell-timeout=300",
               "-p", "no:cacheprovider", "-p", "no:xdist", "-q",
               "--rootdir", str(notebook.parent), str(notebook)]
    return subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=600)


def _copy_notebook(tmp_path: Path) -> Path:
    if not NOTEBOOK.exists():
        pytest.fail(f"{NOTEBOOK.name} is missing; the teeth tests need it")
    copy = tmp_path / NOTEBOOK.name
    shutil.copyfile(NOTEBOOK, copy)
    return copy


def _change_one_stored_digit(path: Path) -> tuple[int, str, str]:
    """Change the last digit of the first number with 3+ decimals printed by a checked cell.

    Returns (index of the code cell, old line, new line).
    """
    nb = json.loads(path.read_text(encoding="utf-8"))
    code_cells = [c for c in nb["cells"] if c["cell_type"] == "code"]
    for index, cell in enumerate(code_cells):
        if "nbval-ignore-output" in cell["metadata"].get("tags", []):
            continue
        for output in cell["outputs"]:
            if output["output_type"] != "stream":
                continue
            text = "".join(output["text"])
            match = re.search(r"\d+\.\d{2,}(\d)", text)  # a result with 3+ decimals
            if match is None:
                continue
            position = match.start(1)
            digit = text[position]
            new_text = text[:position] + str((int(digit) + 1) % 10) + text[position + 1:]
            output["text"] = new_text
            path.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
            old_line = text[text.rfind("\n", 0, position) + 1:text.find("\n", position)]
            new_line = new_text[new_text.rfind("\n", 0, position) + 1:new_text.find("\n", position)]
            return index, old_line, new_line
    pytest.fail(f"{path.name} has no checked cell printing a decimal number")


def _shadow_cnnlib_with_broken_relu(tmp_path: Path) -> Path:
    shadow = tmp_path / "shadow"
    shutil.copytree(REPO / "cnnlib", shadow / "cnnlib",
                    ignore=shutil.ignore_patterns("__pycache__"))
    functional = shadow / "cnnlib" / "functional.py"
    with open(functional, "a", encoding="utf-8") as f:
        f.write("\n\ndef relu_backward(dout, cache):\n"
                "    # Deliberately broken by tests/test_nbval_teeth.py: forgets the mask x > 0.\n"
                "    return dout\n")
    return shadow


@pytest.mark.slow
def test_unchanged_notebook_passes(tmp_path):
    result = _nbval(_copy_notebook(tmp_path))
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert re.search(r"\d+ passed", result.stdout)


@pytest.mark.slow
def test_a_changed_stored_result_fails(tmp_path):
    copy = _copy_notebook(tmp_path)
    index, old_line, new_line = _change_one_stored_digit(copy)
    assert _sanitize(old_line) != _sanitize(new_line), "the sanitizer would hide this change"
    result = _nbval(copy)
    assert result.returncode != 0, (
        f"nbval passed although code cell {index} now stores {new_line!r} instead of "
        f"{old_line!r}:\n{result.stdout[-3000:]}")
    assert f"::Cell {index}" in result.stdout
    assert "1 failed" in result.stdout


@pytest.mark.slow
def test_a_broken_layer_fails(tmp_path):
    copy = _copy_notebook(tmp_path)
    shadow = _shadow_cnnlib_with_broken_relu(tmp_path)
    env = {"PYTHONPATH": str(shadow), "CNNLIB_DATA": str(REPO / "data")}
    # Run from tmp_path, like the kernel (whose cwd is the notebook's folder): from the repository
    # root, the current directory would put the real cnnlib first on sys.path.
    which = subprocess.run(
        [sys.executable, "-c", "import cnnlib.functional as F; print(F.__file__); "
                               "import numpy as np; print(F.relu_backward(np.ones(2), np.array([True, False])))"],
        cwd=tmp_path, env=dict(os.environ, **env), capture_output=True, text=True, timeout=60)
    assert str(shadow) in which.stdout and "[1. 1.]" in which.stdout, (
        f"the shadow package is not the one imported: {which.stdout}{which.stderr}")
    result = _nbval(copy, env)
    assert result.returncode != 0, f"nbval passed with a broken relu_backward:\n{result.stdout[-3000:]}"
    failed = [int(i) for i in re.findall(r"::Cell (\d+) ", result.stdout)]
    assert failed, result.stdout[-3000:]
    code_cells = [c for c in json.loads(copy.read_text(encoding="utf-8"))["cells"]
                  if c["cell_type"] == "code"]
    for index in failed:  # it failed where ReLU is used, not for some unrelated reason
        assert "relu" in "".join(code_cells[index]["source"]), (index, result.stdout[-3000:])
