"""The learner's own operations: saved from the notebooks into files, loaded back to plug in.

    save_functions("my_ops_02.py", linear_forward, linear_backward, softmax_cross_entropy)
    mine = load_functions(".")            # every my_ops_*.py in the folder, in order
    ops.plug(mine)                        # the layers now run the learner's code

Each notebook from 02 to 06 ends by saving the functions the learner wrote in it, through
``inspect.getsource`` (which works for functions defined in notebook cells), into a file of its own
beside the notebook, ``my_ops_NN.py``: one file per notebook, so notebooks run in parallel never
write the same file, and re-running a notebook replaces only its own part. Each file starts with
``import numpy as np`` and says where it came from; it is written with ``cnnlib.atomic``.

A function that uses a name defined elsewhere in the notebook (a helper, a constant) would fail
when loaded from the file, so ``save_functions`` refuses it and names what is missing: pass the
helper too.

What it trades away: the files are generated, not meant to be edited (edit the notebook and
re-run its last cell); only numpy is available to the saved code.
"""

from __future__ import annotations

import ast
import builtins
import importlib.util
import inspect
import textwrap
from pathlib import Path
from types import SimpleNamespace

from .atomic import atomic_write

__all__ = ["save_functions", "load_functions", "PATTERN"]

PATTERN = "my_ops_*.py"
HEADER = '''"""Your own operations, saved by the last cell of notebook {source}.

Generated: edit the functions in the notebook and run its last cell again.
Load them with cnnlib.learner.load_functions(); plug them in with cnnlib.ops.ops.plug(...).
"""

import numpy as np
'''


def _free_names(function_node, module_names):
    """Names a function reads that are bound neither in it, nor in its module, nor as builtins."""
    bound = {arg.arg for arg in ast.walk(function_node) if isinstance(arg, ast.arg)}
    read = set()
    for node in ast.walk(function_node):
        if isinstance(node, ast.Name):
            (read if isinstance(node.ctx, ast.Load) else bound).add(node.id)
        elif isinstance(node, (ast.FunctionDef, ast.ClassDef)) and node is not function_node:
            bound.add(node.name)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            bound.update((alias.asname or alias.name).split(".")[0] for alias in node.names)
    return sorted(read - bound - module_names - set(dir(builtins)))


def save_functions(path, *functions):
    """Write the source of ``functions`` into the module file ``path``; return a line saying so.

    path: e.g. "my_ops_02.py", relative to the current folder (a notebook's own folder).
    Raises ValueError when a function's source cannot be found or it reads a name that the file
    would not define (another function of the notebook: pass it too).
    """
    path = Path(path)
    if not functions:
        raise ValueError("save_functions needs at least one function to save")
    sources = []
    for function in functions:
        try:
            source = textwrap.dedent(inspect.getsource(function))
        except (OSError, TypeError) as error:
            raise ValueError(f"cannot find the source of {function!r}: define it with def in a "
                             f"notebook cell or a file ({error})") from None
        # The instructor edition's solution markers are nbgrader's business, not the module's.
        sources.append("".join(line for line in source.splitlines(keepends=True)
                               if line.strip() not in ("### BEGIN SOLUTION", "### END SOLUTION")))
    text = HEADER.format(source=path.stem.removeprefix("my_ops_")) + \
        "".join(f"\n\n{source.rstrip()}\n" for source in sources)
    tree = ast.parse(text)
    defined = {node.name for node in tree.body if isinstance(node, ast.FunctionDef)}
    module_names = defined | {"np"}
    for node in tree.body:
        if isinstance(node, ast.FunctionDef):
            missing = _free_names(node, module_names)
            if missing:
                raise ValueError(f"{node.name} uses {', '.join(missing)}, which would not be in "
                                 f"{path.name}: pass {'it' if len(missing) == 1 else 'them'} to "
                                 f"save_functions too")
    atomic_write(path, lambda f: f.write(text.encode("utf-8")))
    names = ", ".join(function.__name__ for function in functions)
    return f"saved {names} to {path.name}"


def load_functions(folder="."):
    """Every function of the ``my_ops_*.py`` files in ``folder`` (in name order, a later file's
    function replacing an earlier one of the same name), as a namespace ``ops.plug`` accepts."""
    functions = {}
    for path in sorted(Path(folder).glob(PATTERN)):
        spec = importlib.util.spec_from_file_location(f"cnnlib_learner_{path.stem}", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        functions.update({name: value for name, value in vars(module).items()
                          if inspect.isfunction(value) and value.__module__ == module.__name__})
    if not functions:
        raise FileNotFoundError(f"no {PATTERN} files in {Path(folder).resolve()}: run the last "
                                f"cell of notebooks 02 to 06 first")
    return SimpleNamespace(**functions)
