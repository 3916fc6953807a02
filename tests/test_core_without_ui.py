"""The core (everything outside cnnlib.ui) needs only numpy and tqdm: it imports, trains and
evaluates where matplotlib, ipywidgets and ipycanvas cannot be imported, and cnnlib.ui then says
how to install them."""

import ast
import os
import subprocess
import sys
import venv
from pathlib import Path

import pytest

import cnnlib

ROOT = Path(cnnlib.__file__).resolve().parent.parent
EXTRAS = ("matplotlib", "ipywidgets", "ipycanvas")

# Run before the code under test: a meta-path finder that refuses the course's extras, as if they
# were not installed (whatever this environment has).
BLOCK = f"""
import sys

class _NotInstalled:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {EXTRAS!r}:
            raise ModuleNotFoundError(f"No module named {{name!r}} (blocked by the test)",
                                      name=name)
        return None

sys.meta_path.insert(0, _NotInstalled())
"""


def _run(code, *, python=sys.executable, timeout=300):
    env = dict(os.environ, PYTHONPATH=str(ROOT), OPENBLAS_NUM_THREADS="1")
    return subprocess.run([python, "-c", code], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=timeout)


def _cli(*argv):
    """Code that runs ``python -m cnnlib ARGV`` and exits with its code."""
    return (f"import runpy, sys\nsys.argv = ['cnnlib', *{list(argv)!r}]\n"
            "runpy.run_module('cnnlib', run_name='__main__', alter_sys=True)\n")


def _core_modules():
    return sorted(f"cnnlib.{path.stem}" for path in (ROOT / "cnnlib").glob("*.py"))


def test_no_core_module_imports_the_extras_or_cnnlib_ui():
    # Also imports inside functions: the CLI and the trainer import lazily.
    for module in _core_modules():
        path = ROOT / "cnnlib" / (module.split(".")[1] + ".py")
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [("." * node.level) + (node.module or "")] + [
                    f"{'.' * node.level}{alias.name}" for alias in node.names
                    if not node.module]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                assert top not in EXTRAS, f"{module} imports {name}"
                assert not name.startswith(("cnnlib.ui", ".ui")), f"{module} imports {name}"


def test_every_core_module_imports_without_the_extras_and_ui_says_how_to_get_them():
    code = BLOCK + f"""
import importlib
for name in {_core_modules()!r}:
    importlib.import_module(name)
try:
    import cnnlib.ui
except ImportError as error:
    print(error)
else:
    raise SystemExit("cnnlib.ui imported without its extras")
assert not [m for m in sys.modules if m.split(".")[0] in {EXTRAS!r}]
"""
    run = _run(code)
    assert run.returncode == 0, run.stderr
    message = run.stdout
    assert "pip install 'cnnlib[course]'" in message and "pip install -r requirements.txt" in message
    assert all(name in message for name in EXTRAS), message


@pytest.mark.slow
def test_train_and_evaluate_from_the_command_line_without_the_extras(tmp_path, mnist):
    out = tmp_path / "net.npz"
    run = _run(BLOCK + _cli("train", "--train-size", "200", "--val-size", "50", "--test-size",
                            "50", "--epochs", "1", "--quiet", "--out", str(out)))
    assert run.returncode == 0, run.stderr
    assert "test accuracy: " in run.stdout and out.is_file()
    run = _run(BLOCK + _cli("evaluate", str(out), "--test-size", "50", "--quiet"))
    assert run.returncode == 0, run.stderr
    assert "test accuracy: " in run.stdout


@pytest.mark.slow
def test_a_fresh_venv_with_only_numpy_and_tqdm_trains_and_evaluates(tmp_path, mnist):
    # The real thing: a new virtual environment, numpy and tqdm from pip, cnnlib from this tree.
    venv.create(tmp_path / "venv", with_pip=True)
    python = str(tmp_path / "venv" / "bin" / "python")
    install = subprocess.run([python, "-m", "pip", "install", "-q", "numpy>=1.26,<3",
                              "tqdm>=4.66,<5"], capture_output=True, text=True, timeout=300)
    if install.returncode != 0:
        pytest.skip(f"pip could not install numpy and tqdm here: {install.stderr[-500:]}")
    listed = subprocess.run([python, "-m", "pip", "list", "--format=freeze"],
                            capture_output=True, text=True, check=True).stdout.lower()
    assert not any(f"{name}==" in listed for name in EXTRAS), listed
    out = tmp_path / "net.npz"
    run = _run(_cli("train", "--train-size", "200", "--val-size", "50", "--test-size", "50",
                    "--epochs", "1", "--quiet", "--out", str(out)), python=python)
    assert run.returncode == 0, run.stderr
    run = _run(_cli("evaluate", str(out), "--test-size", "50", "--quiet"), python=python)
    assert run.returncode == 0 and "test accuracy: " in run.stdout, run.stderr
    run = _run("import cnnlib.ui", python=python)
    assert run.returncode == 1 and "pip install 'cnnlib[course]'" in run.stderr
