"""Write the learner edition of the course: `student/`, generated from the instructor's notebooks/.

    .venv/bin/python tools/student.py                 # what `make student` (and `make lab`) runs

For every notebook in notebooks/ it writes student/<same name> through nbgrader's own
preprocessors: ``ClearSolutions`` (the lines between ``### BEGIN SOLUTION`` and ``### END
SOLUTION`` of each solution cell become a stub that names its exercise; the signature and the
docstring above the markers stay), ``ClearHiddenTests``, ``LockCells`` (check cells can be neither
edited nor deleted, solution cells not deleted) and nbconvert's ``ClearOutputPreprocessor``. A
notebook without exercises comes out with its outputs cleared.

It never overwrites a notebook the learner has edited. ``student/.generated.json`` holds the
SHA-256 of each file it wrote; a file whose bytes still have that hash is untouched and is
regenerated (so it follows changes to the source), a missing file is written, and any other file
(edited, or there before this tool) is kept, with a line saying so and how to get a fresh copy.

The learner's notebooks run from student/ as they do from notebooks/: both sit one folder below
the repository root, and cnnlib finds its data through ``cnnlib.paths``, not the working directory.

What it trades away: an edited notebook gets no update at all (no merge of the new source into the
learner's work); the message names it so the learner can rename it and run this again.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path

import nbformat
from nbconvert.preprocessors import ClearOutputPreprocessor
from nbgrader.preprocessors import ClearHiddenTests, ClearSolutions, LockCells

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # cnnlib from this checkout (atomic_write), also when not installed

from cnnlib.atomic import atomic_write  # noqa: E402

SOURCE = REPO / "notebooks"
DESTINATION = REPO / "student"
MANIFEST = ".generated.json"


def stub_for(grade_id: str) -> str:
    """The code that replaces a solution: names the exercise and fails until it is written."""
    return (f"# YOUR CODE HERE (exercise {grade_id}): replace these two lines with your code\n"
            f"raise NotImplementedError(\"exercise {grade_id}: not written yet\")")


class ClearSolutionsNamed(ClearSolutions):
    """nbgrader's ClearSolutions, with a stub that names the cell's exercise (its grade_id)."""

    def preprocess_cell(self, cell, resources, cell_index):
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id", "this exercise")
        self.code_stub = {**self.code_stub, "python": stub_for(grade_id)}
        return super().preprocess_cell(cell, resources, cell_index)


def learner_notebook(source: Path) -> str:
    """The learner edition of the notebook at ``source``, as the text to store."""
    nb = nbformat.read(source, as_version=4)
    resources = {}
    for preprocessor in (ClearSolutionsNamed(), ClearHiddenTests(), LockCells(),
                         ClearOutputPreprocessor()):
        nb, resources = preprocessor.preprocess(nb, resources)
    nbformat.validate(nb)
    text = nbformat.writes(nb, version=4)
    return text if text.endswith("\n") else text + "\n"


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def read_manifest(destination: Path) -> dict:
    try:
        return json.loads((destination / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def generate(source: Path = SOURCE, destination: Path = DESTINATION, out=print) -> dict:
    """Write the learner edition of every notebook in ``source`` into ``destination``.

    Returns {file name: "written" | "updated" | "unchanged" | "kept"}; says what it did through
    ``out`` (a line for each file written, updated or kept).
    """
    notebooks = sorted(source.glob("*.ipynb"))
    if not notebooks:
        raise FileNotFoundError(f"no notebooks in {source}")
    destination.mkdir(parents=True, exist_ok=True)
    recorded = read_manifest(destination)
    manifest, status = {}, {}
    for path in notebooks:
        target = destination / path.name
        data = learner_notebook(path).encode("utf-8")
        if target.exists():
            current = target.read_bytes()
            if recorded.get(path.name) != sha256(current):
                status[path.name] = "kept"
                if path.name in recorded:
                    manifest[path.name] = recorded[path.name]
                out(f"kept {target.relative_to(destination.parent)}: you have edited it, so it is "
                    f"not overwritten. For a fresh copy, rename it (or delete it) and run "
                    f"`make student` again.")
                continue
            status[path.name] = "unchanged" if current == data else "updated"
        else:
            status[path.name] = "written"
        if status[path.name] != "unchanged":
            atomic_write(target, lambda f: f.write(data))
            out(f"{status[path.name]} {target.relative_to(destination.parent)}")
        manifest[path.name] = sha256(data)
    text = json.dumps(manifest, indent=1, sort_keys=True) + "\n"
    atomic_write(destination / MANIFEST, lambda f: f.write(text.encode("utf-8")))
    return status


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="Write the learner edition (student/) of the "
                                                 "course's notebooks; never overwrite an edited one.")
    parser.add_argument("--source", type=Path, default=SOURCE)
    parser.add_argument("--destination", type=Path, default=DESTINATION)
    args = parser.parse_args(argv)
    status = generate(args.source.resolve(), args.destination.resolve())
    counts = {s: list(status.values()).count(s) for s in ("written", "updated", "unchanged", "kept")}
    print(f"learner edition in {args.destination}: " +
          ", ".join(f"{n} {s}" for s, n in counts.items() if n))
    return 0


if __name__ == "__main__":
    sys.exit(main())
