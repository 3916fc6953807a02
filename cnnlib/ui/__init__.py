"""cnnlib.ui: the course's pictures and widgets, on top of the numpy-only core.

    from cnnlib.ui import viz                         # filters, activations, curves (matplotlib)
    from cnnlib.ui.dashboard import TrainingDashboard # live training page (ipywidgets)
    from cnnlib.ui.pad import DigitPad                # draw a digit (ipycanvas)

Everything else in cnnlib needs only numpy and tqdm; this subpackage also needs the course's extra
packages (pyproject's ``course`` extra: matplotlib, ipywidgets, ipycanvas). Importing it without
them raises an ImportError that says how to install them. Nothing outside ``cnnlib.ui`` imports it.
"""

import importlib.util

_EXTRAS = ("matplotlib", "ipywidgets", "ipycanvas")


def _installed(name):
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


_missing = [name for name in _EXTRAS if not _installed(name)]
if _missing:
    raise ImportError(
        f"cnnlib.ui (the course's plots and widgets) needs {', '.join(_missing)}, which "
        f"{'is' if len(_missing) == 1 else 'are'} not installed. Install the course's extras: "
        "pip install 'cnnlib[course]' (or, from the repository root, pip install -r "
        "requirements.txt). The rest of cnnlib (training, evaluation, the command line) works "
        "without them.", name="cnnlib.ui")
