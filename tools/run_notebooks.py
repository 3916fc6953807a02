"""Re-execute the course notebooks in place, deterministically, and strip run-to-run noise.

    .venv/bin/python tools/run_notebooks.py                      # every notebooks/NN_*.ipynb
    .venv/bin/python tools/run_notebooks.py notebooks/01_gradient_checking.ipynb
    .venv/bin/python tools/run_notebooks.py --check              # exit 1 if a re-run changes a
                                                                 # checked output (writes nothing)

The stored outputs are nbval's baseline (`pytest --nbval`), so re-running a notebook whose code did
not change must give an empty `git diff` (timings in ignored cells aside, see below). This tool
therefore:

- runs each notebook with nbclient in a fresh kernel of *this* Python environment (the same
  interpreter as `sys.executable`, like nbval's `--nbval-current-env`), with the notebook's folder as
  the working directory, PYTHONHASHSEED=0 and (unless set) OPENBLAS_NUM_THREADS=1, as
  notebooks/conftest.py gives nbval's kernels; notebooks seed their own random generators;
- numbers the code cells 1, 2, 3, ... (a fresh top-to-bottom run) and gives the cells stable ids
  (``cell-000``, ``cell-001``, ...);
- drops what changes on every run without meaning anything: execution timestamps in cell metadata,
  the widget state blob (``metadata.widgets``), widget view references (random model ids) in
  outputs, version numbers in ``metadata.language_info``, per-output metadata noise;
- merges consecutive stream outputs of the same stream (stdout/stderr), as nbval does when it
  compares;
- writes atomically (a temporary file in the same folder, then ``os.replace``), and only when the
  whole notebook ran without an unexpected error. Cells tagged ``raises-exception`` may raise.

Cells tagged ``nbval-ignore-output`` that print timings differ on every run; the tool names the
cells whose outputs changed, so a diff confined to those cells is easy to recognise, and
``--check`` accepts it.

What it trades away: notebooks run one after the other (no parallelism), and widgets are not
stored live: an opened notebook shows a widget's text form until its cell is run again.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import tempfile
import time
from pathlib import Path

import nbformat
from jupyter_client.kernelspec import KernelSpecManager
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

REPO = Path(__file__).resolve().parent.parent
NOTEBOOK_DIR = REPO / "notebooks"
NOTEBOOK_NAME = re.compile(r"^\d\d_[A-Za-z0-9_]+\.ipynb$")
KERNEL_NAME = "python3"
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
# Environment every run gets; the kernel inherits it. notebooks/conftest.py gives nbval's kernels
# the same. One BLAS thread: OpenBLAS threads spin on a busy 2-core machine (16x slower small
# matrix products measured); results do not depend on the thread count. A value already set wins.
DETERMINISTIC_ENV = {"PYTHONHASHSEED": "0"}
DEFAULT_ENV = {"OPENBLAS_NUM_THREADS": "1"}
# Cell metadata worth keeping (tags drive nbval; "jupyter" holds collapsed/hidden flags; "nbgrader"
# marks exercise cells for tools/student.py and nbgrader).
KEEP_CELL_METADATA = ("tags", "jupyter", "collapsed", "scrolled", "editable", "deletable",
                      "nbgrader")
LANGUAGE_INFO = {
    "codemirror_mode": {"name": "ipython", "version": 3},
    "file_extension": ".py",
    "mimetype": "text/x-python",
    "name": "python",
    "nbconvert_exporter": "python",
    "pygments_lexer": "ipython3",
}
KERNELSPEC = {"display_name": "Python 3 (ipykernel)", "language": "python", "name": KERNEL_NAME}


class CurrentEnvKernelSpecManager(KernelSpecManager):
    """Resolves the kernel name "python3" to this interpreter, whatever kernelspecs are installed.

    An installed "python3" kernelspec elsewhere on the Jupyter path could otherwise start another
    environment's Python, where cnnlib is missing or a different version.
    """

    def get_kernel_spec(self, kernel_name):
        import ipykernel.kernelspec

        if kernel_name != KERNEL_NAME:
            return super().get_kernel_spec(kernel_name)
        return self.kernel_spec_class(
            resource_dir=ipykernel.kernelspec.RESOURCES, **ipykernel.kernelspec.get_kernel_dict()
        )


def default_notebooks() -> list[Path]:
    """Every numbered notebook (``notebooks/NN_name.ipynb``), in order."""
    return sorted(p for p in NOTEBOOK_DIR.glob("*.ipynb") if NOTEBOOK_NAME.match(p.name))


def merge_streams(outputs: list) -> list:
    """Join runs of consecutive stream outputs with the same name into one output."""
    merged = []
    for output in outputs:
        previous = merged[-1] if merged else None
        if (output.get("output_type") == "stream" and previous is not None
                and previous.get("output_type") == "stream"
                and previous.get("name") == output.get("name")):
            previous["text"] += output["text"]
        else:
            merged.append(output)
    return merged


def clean_output(output: dict) -> dict | None:
    """One output without noise; None when nothing meaningful is left."""
    if output.get("output_type") in ("display_data", "execute_result"):
        data = output.get("data", {})
        data.pop(WIDGET_VIEW, None)  # random model ids; the widget state is not stored anyway
        if not data:
            return None
        # Keep only non-empty per-output metadata (nbval does not compare it).
        output["metadata"] = {k: v for k, v in output.get("metadata", {}).items() if v}
    return output


def clean_notebook(nb) -> None:
    """Strip run-to-run noise from an executed notebook, in place (see the module docstring)."""
    nb.metadata.pop("widgets", None)
    nb.metadata["kernelspec"] = dict(KERNELSPEC)
    nb.metadata["language_info"] = dict(LANGUAGE_INFO)
    for index, cell in enumerate(nb.cells):
        cell["id"] = f"cell-{index:03d}"
        cell["metadata"] = {k: v for k, v in cell.get("metadata", {}).items()
                            if k in KEEP_CELL_METADATA}
        if "attachments" in cell and not cell["attachments"]:
            del cell["attachments"]
        if cell.cell_type != "code":
            continue
        outputs = [clean_output(o) for o in cell.get("outputs", [])]
        cell["outputs"] = merge_streams([o for o in outputs if o is not None])


def execute(path: Path, timeout: int) -> nbformat.NotebookNode:
    """Run the notebook at ``path`` top to bottom in a fresh kernel; return it cleaned."""
    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:  # a run starts from nothing, so stale outputs cannot survive
        if cell.cell_type == "code":
            cell["outputs"], cell["execution_count"] = [], None
    client = NotebookClient(
        nb,
        timeout=timeout,
        kernel_name=KERNEL_NAME,
        kernel_manager_class=_current_env_kernel_manager(),
        resources={"metadata": {"path": str(path.parent)}},
        record_timing=False,
    )
    client.execute()
    clean_notebook(nb)
    return nb


def _current_env_kernel_manager():
    from jupyter_client.manager import KernelManager

    class CurrentEnvKernelManager(KernelManager):
        def __init__(self, **kwargs):
            kwargs.setdefault("kernel_spec_manager", CurrentEnvKernelSpecManager())
            super().__init__(**kwargs)

    return CurrentEnvKernelManager


def serialize(nb) -> str:
    """The notebook's text as it is stored: nbformat 4 JSON, one-space indent, final newline."""
    nbformat.validate(nb)
    text = nbformat.writes(nb, version=4)
    return text if text.endswith("\n") else text + "\n"


IGNORED_MARK = " (tagged nbval-ignore-output)"


def describe_changes(old_text: str, new_text: str) -> list[str]:
    """Which code cells' outputs differ between two stored versions of one notebook.

    Cells are numbered like nbval numbers them (code cells only, from 0) and marked when tagged
    nbval-ignore-output (their outputs, e.g. timings, may differ on every run).
    """
    try:
        old = nbformat.reads(old_text, as_version=4)
    except Exception as error:  # an unreadable old file: everything changed
        return [f"the stored file could not be read ({type(error).__name__})"]
    new = nbformat.reads(new_text, as_version=4)
    old_code = [c for c in old.cells if c.cell_type == "code"]
    new_code = [c for c in new.cells if c.cell_type == "code"]
    if [c.source for c in old_code] != [c.source for c in new_code]:
        return ["code cells were added, removed or edited since the last run"]
    lines = []
    for index, (before, after) in enumerate(zip(old_code, new_code)):
        if before.get("outputs") != after.get("outputs"):
            ignored = "nbval-ignore-output" in after.metadata.get("tags", [])
            lines.append(f"Cell {index}: outputs differ" + (IGNORED_MARK if ignored else ""))
    if not lines:
        lines.append("outputs are the same; metadata, cell ids or formatting differ")
    return lines


def write_atomically(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file in the same folder and os.replace."""
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as f:
            f.write(text)
        os.chmod(tmp_name, 0o644)
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description="Re-execute course notebooks in place, deterministically, without noise."
    )
    parser.add_argument("notebooks", nargs="*", type=Path,
                        help="notebooks to run (default: every notebooks/NN_*.ipynb)")
    parser.add_argument("--timeout", type=int, default=600,
                        help="seconds one cell may run before the run fails (default 600)")
    parser.add_argument("--check", action="store_true",
                        help="write nothing; exit 1 if re-running would change a notebook in "
                             "more than its nbval-ignore-output cells (timings differ every run)")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    paths = [p.resolve() for p in args.notebooks] or default_notebooks()
    if not paths:
        print(f"no notebooks found in {NOTEBOOK_DIR}", file=sys.stderr)
        return 1
    for path in paths:
        if path.suffix != ".ipynb" or not path.is_file():
            print(f"not a notebook file: {path} (expected an existing .ipynb)", file=sys.stderr)
            return 2
    os.environ.update(DETERMINISTIC_ENV)
    for name, value in DEFAULT_ENV.items():
        os.environ.setdefault(name, value)
    failed, changed = [], []
    for path in paths:
        shown = path.relative_to(REPO) if path.is_relative_to(REPO) else path
        start = time.perf_counter()
        try:
            text = serialize(execute(path, args.timeout))
        except CellExecutionError as error:
            print(f"FAILED {shown}: a cell raised (not tagged raises-exception); the file is "
                  f"unchanged.\n{error}", file=sys.stderr)
            failed.append(shown)
            continue
        seconds = time.perf_counter() - start
        old_text = path.read_text(encoding="utf-8")
        same = old_text == text
        changes = [] if same else describe_changes(old_text, text)
        if args.check:
            only_ignored = bool(changes) and all(IGNORED_MARK in line for line in changes)
            status = "unchanged" if same else "ignored only" if only_ignored else "WOULD CHANGE"
            if not same and not only_ignored:
                changed.append(shown)
        else:
            if not same:
                write_atomically(path, text)
            status = "unchanged" if same else "updated"
        print(f"{status:>12}  {shown}  (run time: {seconds:.1f} s)")
        for line in changes:
            print(f"{'':14}{line}")
    if failed:
        print(f"{len(failed)} notebook(s) failed: {', '.join(map(str, failed))}", file=sys.stderr)
        return 1
    if changed:
        print(f"{len(changed)} notebook(s) would change: {', '.join(map(str, changed))}",
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
