"""The repository carries everything it runs on: no code, notebook, test or build file reads
outside it (a public clone has no shared/ folder beside it, and no /work)."""

import re
from pathlib import Path

import nbformat
import pytest

REPO = Path(__file__).resolve().parent.parent
OUTSIDE = re.compile(r"""shared/data|\.\./shared|["']shared["']|REPO\.parent\b|["']/work/""")


def _sources():
    """(name, text) of every file that runs: the package, tests, tools, notebooks' code, make, CI."""
    for folder in ("cnnlib", "tests", "tools", "benchmarks"):
        for path in sorted((REPO / folder).rglob("*.py")):
            if path.name != Path(__file__).name:
                yield str(path.relative_to(REPO)), path.read_text(encoding="utf-8")
    for path in sorted((REPO / "notebooks").glob("*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        code = "\n".join(c.source for c in nb.cells if c.cell_type == "code")
        yield str(path.relative_to(REPO)), code
    for name in ("Makefile", ".ci/run", "pyproject.toml"):
        yield name, (REPO / name).read_text(encoding="utf-8")


SOURCES = dict(_sources())


@pytest.mark.parametrize("name", sorted(SOURCES))
def test_nothing_reads_outside_the_repository(name):
    text = SOURCES[name]
    hits = [line.strip() for line in text.splitlines() if OUTSIDE.search(line)]
    assert not hits, f"{name} reaches outside the repository: {hits[:3]}"


def test_the_pattern_would_catch_the_old_readers():
    for line in ['DEV_SET = REPO.parent / "shared" / "data" / "unipen-digits-dev.json"',
                 'def find_dev_set(name="shared/data/unipen-digits-dev.json"):',
                 "open('/work/shared/data/x.json')"]:
        assert OUTSIDE.search(line)
