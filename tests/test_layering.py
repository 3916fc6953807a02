"""The package's import graph: strictly layered floors, nothing importing upward, a UI-free core.

Floors, bottom to top (a module may import from its own floor and the floors below):
  0 utilities        seeding, paths, atomic
  1 operations       functional, fast, naive, ops, checks, gradcheck, exercises,
                     learner
  2 layers           layers, batchnorm, dropout, losses, network, optim
  3 data             data, augment, strokes, pendigits
  4 models           architectures, serialization
  5 training         train, parallel
  6 UI and CLI       ui.*, bench, __main__
Every import is counted, also those inside functions.
"""

import ast
from pathlib import Path

import pytest

import cnnlib

PACKAGE = Path(cnnlib.__file__).parent
FLOORS = {
    0: {"__init__", "seeding", "paths", "atomic"},
    1: {"functional", "fast", "naive", "ops", "checks", "gradcheck", "exercises",
        "learner"},
    2: {"layers", "batchnorm", "dropout", "losses", "network", "optim"},
    3: {"data", "augment", "strokes", "pendigits"},
    4: {"architectures", "serialization"},
    5: {"train", "parallel"},
    6: {"ui", "bench", "__main__"},
}
FLOOR_OF = {name: floor for floor, names in FLOORS.items() for name in names}
UI_PACKAGES = {"matplotlib", "ipywidgets", "ipycanvas", "IPython"}


def _modules():
    """{module name relative to cnnlib ("layers", "ui.pad"): path} for every module."""
    return {".".join(path.relative_to(PACKAGE).with_suffix("").parts): path
            for path in sorted(PACKAGE.rglob("*.py"))}


def _floor(module):
    return FLOOR_OF[module.split(".")[0]]


def _imports(module, path):
    """(cnnlib modules, top-level outside packages) that ``module`` imports anywhere in its code."""
    ours, theirs = set(), set()
    package = module.split(".")[:-1] if not path.name == "__init__.py" else module.split(".")
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                parts = alias.name.split(".")
                if parts[0] == "cnnlib":
                    ours.add(".".join(parts[1:2]) or "__init__")
                else:
                    theirs.add(parts[0])
        elif isinstance(node, ast.ImportFrom):
            if node.level == 0:
                parts = (node.module or "").split(".")
                if parts[0] != "cnnlib":
                    theirs.add(parts[0])
                    continue
                base = parts[1:]
            else:
                base = package[:len(package) - (node.level - 1)] + \
                    (node.module.split(".") if node.module else [])
            if base:
                ours.add(base[0])
            else:                                   # from . import a, b
                ours.update(alias.name for alias in node.names)
    return ours, theirs


def test_every_module_has_a_floor():
    unplaced = sorted(m for m in _modules() if m.split(".")[0] not in FLOOR_OF
                      and m != "__init__")
    assert not unplaced, f"give these modules a floor in FLOORS: {unplaced}"


@pytest.mark.parametrize("module", sorted(_modules()))
def test_nothing_imports_upward(module):
    path = _modules()[module]
    ours, _ = _imports(module, path)
    upward = sorted(name for name in ours
                    if name in FLOOR_OF and FLOOR_OF[name] > _floor(module))
    assert not upward, (f"cnnlib.{module} (floor {_floor(module)}) imports {upward} from a "
                        f"higher floor")


@pytest.mark.parametrize("module", sorted(m for m in _modules() if not m.startswith("ui")))
def test_the_core_needs_no_ui_package(module):
    ours, theirs = _imports(module, _modules()[module])
    assert not theirs & UI_PACKAGES, f"cnnlib.{module} imports {sorted(theirs & UI_PACKAGES)}"
    assert "ui" not in ours or module == "__main__", f"cnnlib.{module} imports cnnlib.ui"
