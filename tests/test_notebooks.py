"""Guards on the stored notebooks, read as JSON (fast: no kernel is started).

nbval compares a fresh run against the outputs stored in each notebook, so the stored outputs are
the test's baseline. A baseline can be vacuous (never executed: nbval runs the cells but compares
nothing), stale (executed out of order, or by hand with cells skipped), or fragile (a progress bar
or widget in a checked cell). These tests catch that before nbval runs, and check the re-execution
tool's cleaning (tools/run_notebooks.py) on small hand-made notebooks.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
from pathlib import Path

import nbformat
import pytest

REPO = Path(__file__).resolve().parent.parent
NOTEBOOK_DIR = REPO / "notebooks"
NUMBERED = re.compile(r"^(\d\d)_[A-Za-z0-9_]+\.ipynb$")
LAST_NUMBER = 11  # the course runs 00 .. 11
MIN_CHECKED_TEXT_CELLS = 3
IGNORE_TAGS = {"nbval-ignore-output", "nbval-skip"}
IGNORE_COMMENTS = {"NBVAL_IGNORE_OUTPUT", "PYTEST_VALIDATE_IGNORE_OUTPUT", "NBVAL_SKIP"}


def _all_notebooks() -> list[Path]:
    return sorted(NOTEBOOK_DIR.glob("*.ipynb"))


NOTEBOOKS = _all_notebooks()


def _load(path: Path) -> dict:
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def _source(cell) -> str:
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else source


def _text(value) -> str:
    return "".join(value) if isinstance(value, list) else (value or "")


def _code_cells(nb) -> list[dict]:
    return [c for c in nb["cells"] if c["cell_type"] == "code"]


def _tags(cell) -> set[str]:
    return set(cell.get("metadata", {}).get("tags", []))


def _is_checked(cell) -> bool:
    """True when nbval compares this cell's outputs (no ignore/skip tag or comment marker)."""
    if _tags(cell) & IGNORE_TAGS:
        return False
    comments = {line.strip().lstrip("#").strip() for line in _source(cell).splitlines()
                if line.strip().startswith("#")}
    return not comments & IGNORE_COMMENTS


def _text_outputs(cell) -> list[str]:
    """The text nbval compares: streams, text/plain, text/html, text/latex, error values."""
    texts = []
    for output in cell.get("outputs", []):
        kind = output.get("output_type")
        if kind == "stream":
            texts.append(_text(output.get("text")))
        elif kind in ("execute_result", "display_data"):
            data = output.get("data", {})
            for mime in ("text/plain", "text/html", "text/latex"):
                if mime in data:
                    texts.append(_text(data[mime]))
        elif kind == "error":
            texts.append(f"{output.get('ename')}: {output.get('evalue')}")
    return [t for t in texts if t.strip()]


def _has_figure(cell) -> bool:
    for output in cell.get("outputs", []):
        data = output.get("data", {})
        if "image/png" in data or "<Figure size" in _text(data.get("text/plain")):
            return True
    return False


def _code_lines(source: str) -> list[str]:
    return [line.strip() for line in source.splitlines()
            if line.strip() and not line.strip().startswith("#")]


@pytest.fixture(params=NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def notebook(request):
    return request.param, _load(request.param)


# ------------------------------------------------------------------------------- the sequence

def test_notebook_files_are_numbered_uniquely_and_in_range():
    if not NOTEBOOKS:
        pytest.skip("no notebooks yet")
    numbers = []
    for path in NOTEBOOKS:
        match = NUMBERED.match(path.name)
        assert match, (f"{path.name}: every notebook in notebooks/ is part of the course and "
                       "named NN_topic.ipynb (two digits, underscore, letters/digits/_)")
        numbers.append(int(match.group(1)))
    duplicates = sorted({n for n in numbers if numbers.count(n) > 1})
    assert not duplicates, f"notebook numbers used twice: {duplicates}"
    assert max(numbers) <= LAST_NUMBER, f"the course runs 00..{LAST_NUMBER}; got {max(numbers):02d}"
    assert numbers == sorted(numbers)


def test_course_starts_with_the_derivation_notebooks():
    names = {p.name for p in NOTEBOOKS}
    expected = ["00_mnist.ipynb", "01_gradient_checking.ipynb", "02_linear_and_softmax.ipynb",
                "03_activations_and_a_first_network.ipynb"]
    missing = [n for n in expected if n not in names]
    assert not missing, f"missing notebooks: {missing}"


# -------------------------------------------------------------------------- each notebook

def test_notebook_is_valid_nbformat_4(notebook):
    path, _ = notebook
    nbformat.validate(nbformat.read(path, as_version=4))


def test_every_code_cell_was_executed_in_order(notebook):
    path, nb = notebook
    counts = [c.get("execution_count") for c in _code_cells(nb)]
    assert counts, f"{path.name} has no code cells"
    assert None not in counts, (
        f"{path.name}: code cell {counts.index(None)} was never executed (execution_count null): "
        "nbval would compare nothing there. Re-run: .venv/bin/python tools/run_notebooks.py "
        f"notebooks/{path.name}")
    expected = list(range(1, len(counts) + 1))
    assert counts == expected, (
        f"{path.name}: execution counts {counts} are not 1, 2, 3, ...: the stored outputs do not "
        "come from one fresh top-to-bottom run. Re-run it with tools/run_notebooks.py")


def test_errors_only_in_cells_tagged_raises_exception(notebook):
    path, nb = notebook
    for index, cell in enumerate(_code_cells(nb)):
        errors = [o for o in cell.get("outputs", []) if o.get("output_type") == "error"]
        if errors and "raises-exception" not in _tags(cell):
            first = errors[0]
            pytest.fail(f"{path.name}, code cell {index}: stored error {first.get('ename')}: "
                        f"{first.get('evalue')} in a cell not tagged raises-exception")
        if "raises-exception" in _tags(cell):
            assert errors, (f"{path.name}, code cell {index} is tagged raises-exception but "
                            "stores no error: remove the tag or make the cell show its error")


def test_nbval_has_enough_to_compare(notebook):
    path, nb = notebook
    code = _code_cells(nb)
    checked_text = [c for c in code if _is_checked(c) and _text_outputs(c)]
    assert len(checked_text) >= MIN_CHECKED_TEXT_CELLS, (
        f"{path.name}: only {len(checked_text)} checked code cells have text output; nbval needs "
        f"at least {MIN_CHECKED_TEXT_CELLS} to mean something (print results, assert claims; tag "
        "only timing and widget cells nbval-ignore-output)")
    ignored = [c for c in code if not _is_checked(c)]
    assert len(ignored) <= len(code) // 2, (
        f"{path.name}: {len(ignored)} of {len(code)} code cells are excluded from comparison; "
        "keep most cells checked")


def test_no_clear_output_or_interact_in_checked_cells(notebook):
    path, nb = notebook
    for index, cell in enumerate(_code_cells(nb)):
        source = _source(cell)
        if _is_checked(cell) and ("clear_output" in source or re.search(r"\binteract\(", source)):
            pytest.fail(f"{path.name}, code cell {index}: clear_output/interact( in a checked cell "
                        "(nbval cannot compare them); tag the cell nbval-ignore-output")


def test_plot_cells_end_with_plt_show(notebook):
    path, nb = notebook
    for index, cell in enumerate(_code_cells(nb)):
        lines = _code_lines(_source(cell))
        if _has_figure(cell):
            assert lines and lines[-1] == "plt.show()", (
                f"{path.name}, code cell {index} draws a figure but does not end with plt.show() "
                "(a trailing expression or ';' leaves a repr that nbval compares)")
        for text in _text_outputs(cell):
            assert "<matplotlib." not in text, (
                f"{path.name}, code cell {index} shows a matplotlib repr {text[:60]!r}; end the "
                "cell with plt.show()")


def test_checked_cells_hold_no_progress_bars_or_widget_reprs(notebook):
    path, nb = notebook
    for index, cell in enumerate(_code_cells(nb)):
        if not _is_checked(cell):
            continue
        for output in cell.get("outputs", []):
            if output.get("output_type") == "stream":
                assert "\r" not in _text(output.get("text")), (
                    f"{path.name}, code cell {index}: a progress bar (\\r) in a checked cell; its "
                    "text depends on speed. Pass progress=False or tag the cell "
                    "nbval-ignore-output")
            data = output.get("data", {})
            assert "application/vnd.jupyter.widget-view+json" not in data, (
                f"{path.name}, code cell {index}: a widget view in a checked cell; tag it "
                "nbval-ignore-output (and re-run with tools/run_notebooks.py)")


# A duration as people print it; after sanitizing, none may remain in a checked cell.
TIMING = re.compile(r"\b\d+(?:\.\d+)? ?(?:ms|\u00b5s|us|ns|sec|secs|seconds)\b"
                    r"|\b\d+\.\d+ ?s\b|per loop \(mean")


def test_checked_outputs_hold_no_unsanitized_timings(notebook):
    from nbval.plugin import get_sanitize_patterns

    path, nb = notebook
    patterns = get_sanitize_patterns(
        (NOTEBOOK_DIR / "nbval-sanitize.cfg").read_text(encoding="utf-8"))
    for index, cell in enumerate(_code_cells(nb)):
        if not _is_checked(cell):
            continue
        for text in _text_outputs(cell):
            for regex, replace in patterns:
                text = re.sub(regex, replace, text)
            match = TIMING.search(text)
            assert match is None, (
                f"{path.name}, code cell {index} prints a timing nbval will compare: "
                f"{text[max(0, match.start() - 30):match.end()]!r}. Print it as "
                "'<label> time: 1.23 s' (see notebooks/nbval-sanitize.cfg) or tag the cell "
                "nbval-ignore-output")


def test_notebook_was_saved_by_the_run_tool(notebook):
    """tools/run_notebooks.py output is a fixed point of its own cleaning: no timestamps, no
    widget state, stable cell ids, merged streams."""
    path, _ = notebook
    run_notebooks = _run_notebooks_module()
    nb = nbformat.read(path, as_version=4)
    before = run_notebooks.serialize(nb)
    run_notebooks.clean_notebook(nb)
    after = run_notebooks.serialize(nb)
    assert before == after, (
        f"{path.name} carries run noise (timestamps, widget state, unstable ids or split "
        f"streams): re-execute it with .venv/bin/python tools/run_notebooks.py "
        f"notebooks/{path.name}")
    assert path.read_text(encoding="utf-8") == after, (
        f"{path.name} is not stored in the tool's format; re-run tools/run_notebooks.py on it")


# ---------------------------------------------------------------- the tool's cleaning, in small

def _run_notebooks_module():
    spec = importlib.util.spec_from_file_location("run_notebooks", REPO / "tools" /
                                                  "run_notebooks.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _noisy_notebook():
    nb = nbformat.v4.new_notebook()
    nb.metadata["widgets"] = {"application/vnd.jupyter.widget-state+json": {"state": {}}}
    nb.metadata["language_info"] = {"name": "python", "version": "3.11.7"}
    code = nbformat.v4.new_code_cell("print('a'); print('b')", execution_count=1)
    code.metadata["execution"] = {"iopub.execute_input": "2026-01-01T00:00:00Z"}
    code.metadata["tags"] = ["nbval-ignore-output"]
    code.outputs = [
        nbformat.v4.new_output("stream", name="stdout", text="a\n"),
        nbformat.v4.new_output("stream", name="stdout", text="b\n"),
        nbformat.v4.new_output("stream", name="stderr", text="warning\n"),
        nbformat.v4.new_output("stream", name="stdout", text="c\n"),
        nbformat.v4.new_output("display_data", data={
            "application/vnd.jupyter.widget-view+json": {"model_id": "f00d", "version_major": 2,
                                                         "version_minor": 0},
            "text/plain": "IntSlider(value=0)"}),
    ]
    nb.cells = [nbformat.v4.new_markdown_cell("# title"), code]
    return nb


def test_clean_notebook_strips_noise_and_keeps_meaning():
    tool = _run_notebooks_module()
    nb = _noisy_notebook()
    tool.clean_notebook(nb)
    assert "widgets" not in nb.metadata
    assert "version" not in nb.metadata["language_info"]
    markdown, code = nb.cells
    assert [markdown.id, code.id] == ["cell-000", "cell-001"]
    assert code.metadata == {"tags": ["nbval-ignore-output"]}
    assert [(o.output_type, o.get("name"), o.get("text")) for o in code.outputs[:3]] == [
        ("stream", "stdout", "a\nb\n"), ("stream", "stderr", "warning\n"),
        ("stream", "stdout", "c\n")]
    assert code.outputs[3].data == {"text/plain": "IntSlider(value=0)"}


def test_clean_notebook_is_idempotent():
    tool = _run_notebooks_module()
    nb = _noisy_notebook()
    tool.clean_notebook(nb)
    once = tool.serialize(nb)
    tool.clean_notebook(nb)
    assert tool.serialize(nb) == once


def test_write_atomically_replaces_and_leaves_no_temporary_file(tmp_path):
    tool = _run_notebooks_module()
    target = tmp_path / "x.ipynb"
    target.write_text("old")
    tool.write_atomically(target, "new")
    assert target.read_text() == "new"
    assert [p.name for p in tmp_path.iterdir()] == ["x.ipynb"]


def test_run_tool_rejects_a_missing_notebook(tmp_path, capsys):
    tool = _run_notebooks_module()
    assert tool.main([str(tmp_path / "nope.ipynb")]) == 2
    assert "expected an existing .ipynb" in capsys.readouterr().err


@pytest.mark.slow
def test_run_tool_is_deterministic_and_check_mode_sees_changes(tmp_path, monkeypatch):
    """Run a small notebook (streams, a figure, a widget, a tagged error) twice: the second run
    changes nothing; --check then passes, and fails once the source changes."""
    tool = _run_notebooks_module()
    # main() sets these for the kernels it starts; monkeypatch restores them afterwards.
    monkeypatch.setenv("PYTHONHASHSEED", "0")
    monkeypatch.setenv("OPENBLAS_NUM_THREADS", os.environ.get("OPENBLAS_NUM_THREADS", "1"))
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_markdown_cell("# tiny"),
        nbformat.v4.new_code_cell("import sys\nprint('a')\nprint('b', file=sys.stderr)\n"
                                  "print('c')\nsorted({'x', 'y', 'z'})"),
        nbformat.v4.new_code_cell("import matplotlib.pyplot as plt\nplt.figure(figsize=(2, 2))\n"
                                  "plt.plot([0, 1], [1, 0])\nplt.show()"),
        nbformat.v4.new_code_cell("import ipywidgets\nipywidgets.IntSlider(value=3)"),
        nbformat.v4.new_code_cell("1 / 0"),
    ]
    nb.cells[-1].metadata["tags"] = ["raises-exception"]
    path = tmp_path / "00_tiny.ipynb"
    nbformat.write(nb, path)
    assert tool.main([str(path)]) == 0
    first = path.read_text(encoding="utf-8")
    assert tool.main([str(path)]) == 0
    assert path.read_text(encoding="utf-8") == first
    assert tool.main(["--check", str(path)]) == 0

    stored = json.loads(first)
    counts = [c["execution_count"] for c in stored["cells"] if c["cell_type"] == "code"]
    assert counts == [1, 2, 3, 4]
    assert "widgets" not in stored["metadata"]
    assert stored["cells"][4]["outputs"][0]["ename"] == "ZeroDivisionError"

    changed = nbformat.read(path, as_version=4)
    changed.cells[1].source = changed.cells[1].source.replace("print('c')", "print('d')")
    nbformat.write(changed, path)
    assert tool.main(["--check", str(path)]) == 1
