"""The learner edition (tools/student.py, `make student`): stubs instead of solutions, each stub
failing its own check with the check's message, the solutions put back passing, and a learner's
edited notebook never overwritten.

The exercise notebooks (02, 05) are executed with nbclient from the generated student/ folder (as the
learner runs them); one run takes a few seconds. Their last cell saves the learner's functions
(cnnlib.learner) into the temporary student/ folder.
"""

import importlib.util
import re
import shutil
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from cnnlib import exercises

REPO = Path(__file__).resolve().parent.parent
NOTEBOOK = "02_linear_and_softmax.ipynb"
NOTEBOOK_03 = "03_activations_and_a_first_network.ipynb"
NOTEBOOK_04 = "04_convolution.ipynb"
NOTEBOOK_05 = "05_max_pooling.ipynb"


def _load(name):
    spec = importlib.util.spec_from_file_location(f"cnnlib_{name}_tool", REPO / "tools" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


student = _load("student")
run_notebooks = _load("run_notebooks")


def _grading(cell):
    return cell.metadata.get("nbgrader", {})


@pytest.fixture(scope="module")
def edition(tmp_path_factory):
    """The learner edition of the course, generated into a temporary student/ folder."""
    destination = tmp_path_factory.mktemp("course") / "student"
    student.generate(destination=destination, out=lambda line: None)
    return destination


def _execute(nb, folder):
    client = NotebookClient(nb, timeout=300, kernel_name=run_notebooks.KERNEL_NAME,
                            kernel_manager_class=run_notebooks._current_env_kernel_manager(),
                            resources={"metadata": {"path": str(folder)}}, allow_errors=True)
    client.execute()
    return nb


def _errors(nb):
    """[(cell, error output)] in cell order."""
    return [(cell, output) for cell in nb.cells if cell.cell_type == "code"
            for output in cell.get("outputs", []) if output.output_type == "error"]


def test_every_notebook_is_generated_without_outputs(edition):
    for source in sorted((REPO / "notebooks").glob("*.ipynb")):
        nb = nbformat.read(edition / source.name, as_version=4)
        assert all(not c.get("outputs") and c.get("execution_count") is None
                   for c in nb.cells if c.cell_type == "code"), source.name


def _stub(*args):
    raise NotImplementedError("exercise: not written yet")


# Per exercise notebook: its exercises in order, what each check says to a stub, the file its last
# cell saves and a line that file must hold.
EXERCISES = {
    NOTEBOOK: dict(
        exercises=["linear_forward", "linear_backward", "softmax_cross_entropy"],
        checks={
            "check_linear_forward": lambda: exercises.check_linear_forward(_stub),
            "check_linear_backward": lambda: exercises.check_linear_backward(_stub, _stub),
            "check_softmax_cross_entropy": lambda: exercises.check_softmax_cross_entropy(_stub),
        },
        saved=("my_ops_02.py", "def linear_backward(dout, cache, input_grad=True):")),
    NOTEBOOK_03: dict(
        exercises=["relu_forward", "relu_backward", "tanh_forward", "tanh_backward",
                   "sequential_backward"],
        checks={
            "check_relu_forward": lambda: exercises.check_relu_forward(_stub),
            "check_relu_backward": lambda: exercises.check_relu_backward(_stub, _stub),
            "check_tanh_forward": lambda: exercises.check_tanh_forward(_stub),
            "check_tanh_backward": lambda: exercises.check_tanh_backward(_stub, _stub),
            "check_sequential_backward": lambda: exercises.check_sequential_backward(_stub),
        },
        saved=("my_ops_03.py", "def tanh_backward(dout, cache):")),
    NOTEBOOK_04: dict(
        exercises=["conv2d_forward", "conv2d_backward"],
        checks={
            "check_conv2d_forward": lambda: exercises.check_conv2d_forward(_stub),
            "check_conv2d_backward": lambda: exercises.check_conv2d_backward(_stub, _stub),
        },
        saved=("my_ops_04.py", "def conv2d_backward(dout, cache, input_grad=True):")),
    NOTEBOOK_05: dict(
        exercises=["maxpool2d_forward", "maxpool2d_backward"],
        checks={
            "check_maxpool2d_forward": lambda: exercises.check_maxpool2d_forward(_stub),
            "check_maxpool2d_backward": lambda: exercises.check_maxpool2d_backward(_stub, _stub),
        },
        saved=("my_ops_05.py", 'def maxpool2d_backward(dout, cache, ties="split"):')),
}


@pytest.mark.parametrize("notebook", sorted(EXERCISES))
def test_solutions_are_replaced_by_stubs_that_name_the_exercise(edition, notebook):
    instructor = nbformat.read(REPO / "notebooks" / notebook, as_version=4)
    learner = nbformat.read(edition / notebook, as_version=4)
    solutions = [c for c in instructor.cells if _grading(c).get("solution")]
    assert [_grading(c)["grade_id"] for c in solutions] == EXERCISES[notebook]["exercises"]
    by_id = {_grading(c).get("grade_id"): c for c in learner.cells if _grading(c)}
    for cell in solutions:
        grade_id = _grading(cell)["grade_id"]
        inside = cell.source.split("### BEGIN SOLUTION")[1].split("### END SOLUTION")[0]
        solution_lines = [line.strip() for line in inside.splitlines() if line.strip()]
        stubbed = by_id[grade_id].source
        assert not [line for line in solution_lines if line in stubbed], grade_id
        assert student.stub_for(grade_id).splitlines()[1] in stubbed
        assert stubbed.split("    # YOUR CODE HERE")[0] == cell.source.split("    ### BEGIN")[0]
    text = (edition / notebook).read_text()
    assert "BEGIN SOLUTION" not in text and "END SOLUTION" not in text
    checks = [c for c in learner.cells if _grading(c).get("grade")]
    assert [_grading(c)["grade_id"] for c in checks] == list(EXERCISES[notebook]["checks"])
    assert all(c.metadata.get("editable") is False and c.metadata.get("deletable") is False
               for c in checks)


@pytest.mark.parametrize("notebook", sorted(EXERCISES))
def test_no_reference_implementation_is_in_scope_before_the_exercises(notebook):
    cells = nbformat.read(REPO / "notebooks" / notebook, as_version=4).cells
    first = next(i for i, c in enumerate(cells) if _grading(c).get("solution"))
    before = "\n".join(c.source for c in cells[:first] if c.cell_type == "code")
    for module in ("functional", "naive", "fast", "losses"):
        assert not re.search(rf"import cnnlib\.{module}\b|from cnnlib import .*\b{module}\b",
                             before), (notebook, module)
    for name in EXERCISES[notebook]["exercises"]:
        assert not re.search(rf"\bimport\b.*\b{name}\b", before), (notebook, name)


def _message(check):
    with pytest.raises(AssertionError) as raised:
        check()
    return str(raised.value)


@pytest.mark.parametrize("notebook", sorted(EXERCISES))
def test_each_stub_fails_its_own_check_with_its_message(edition, notebook):
    expected = EXERCISES[notebook]["checks"]
    nb = _execute(nbformat.read(edition / notebook, as_version=4), edition)
    errors = _errors(nb)
    assert errors, "the learner edition ran without an error: the stubs do nothing"
    first_cell, _ = errors[0]
    assert _grading(first_cell).get("grade_id") == list(expected)[0], first_cell.source
    failed_checks = {_grading(cell)["grade_id"]: output for cell, output in errors
                     if _grading(cell).get("grade")}
    assert sorted(failed_checks) == sorted(expected)
    for grade_id, output in failed_checks.items():
        assert output.ename == "AssertionError", (grade_id, output.ename, output.evalue)
        assert output.evalue == _message(expected[grade_id])
        assert "not written yet" in output.evalue
    # Cells after a check that call the learner's functions fail in the stub itself, saying so
    # (later cells then miss what those cells would have made).
    others = [output for cell, output in errors if not _grading(cell).get("grade")]
    assert others[0].ename == "NotImplementedError", (others[0].ename, others[0].evalue)
    assert others[0].evalue.startswith("exercise ") and "not written yet" in others[0].evalue


@pytest.mark.parametrize("notebook", sorted(EXERCISES))
def test_the_learner_edition_passes_with_the_solutions_put_back(edition, notebook):
    instructor = nbformat.read(REPO / "notebooks" / notebook, as_version=4)
    solutions = {_grading(c)["grade_id"]: c.source for c in instructor.cells
                 if _grading(c).get("solution")}
    nb = nbformat.read(edition / notebook, as_version=4)
    for cell in nb.cells:
        if _grading(cell).get("solution"):
            cell.source = solutions[_grading(cell)["grade_id"]]
    nb = _execute(nb, edition)
    assert not _errors(nb), [(o.ename, o.evalue) for _, o in _errors(nb)]
    printed = "".join(o.get("text", "") for c in nb.cells if _grading(c).get("grade")
                      for o in c.outputs)
    assert printed.count(": correct") == len(EXERCISES[notebook]["checks"]), printed
    # The last cell saved the learner's functions beside the notebook, without the markers.
    filename, line = EXERCISES[notebook]["saved"]
    saved = (edition / filename).read_text()
    assert line in saved
    assert "SOLUTION" not in saved and "NotImplementedError" not in saved


def test_an_edited_notebook_is_kept_and_the_rest_follows_the_source(tmp_path):
    source = tmp_path / "notebooks"
    source.mkdir()
    for name in ["01_gradient_checking.ipynb", NOTEBOOK, "03_activations_and_a_first_network.ipynb"]:
        shutil.copy(REPO / "notebooks" / name, source / name)
    destination = tmp_path / "student"
    lines = []
    status = student.generate(source, destination, out=lines.append)
    assert set(status.values()) == {"written"}

    edited = destination / NOTEBOOK
    mine = edited.read_text().replace("# YOUR CODE HERE", "# my attempt", 1)
    edited.write_text(mine)
    (destination / "01_gradient_checking.ipynb").unlink()
    changed = nbformat.read(source / "03_activations_and_a_first_network.ipynb", as_version=4)
    changed.cells.append(nbformat.v4.new_markdown_cell("A new paragraph from the teacher."))
    nbformat.write(changed, source / "03_activations_and_a_first_network.ipynb")
    lines.clear()
    status = student.generate(source, destination, out=lines.append)
    assert status == {"01_gradient_checking.ipynb": "written", NOTEBOOK: "kept",
                      "03_activations_and_a_first_network.ipynb": "updated"}
    assert edited.read_text() == mine
    kept = [line for line in lines if line.startswith("kept")]
    assert len(kept) == 1 and NOTEBOOK in kept[0] and "you have edited it" in kept[0]
    assert "A new paragraph from the teacher." in \
        (destination / "03_activations_and_a_first_network.ipynb").read_text()

    # Still kept on the next run (the edit is remembered by its hash, not by the last run).
    lines.clear()
    assert student.generate(source, destination, out=lines.append)[NOTEBOOK] == "kept"
    assert edited.read_text() == mine
    # A file that was there before any run is the learner's too.
    (destination / ".generated.json").unlink()
    assert set(student.generate(source, destination, out=lines.append).values()) == {"kept"}
