"""`make lab`, the README's main command, reaches a running JupyterLab that serves the course.

The server tests start the command itself through make, on 127.0.0.1 and a free port, as the
current user and without a display (``DISPLAY`` and ``WAYLAND_DISPLAY`` removed), in a session of
its own:

- under the Makefile's own environment (``make test`` runs pytest with ``.venv/bin/python``) they
  run ``make lab`` itself, set-up included (a no-op then: ``make test`` has just done it);
- under any other interpreter they run ``make lab-serve PY=<this interpreter>``, the step ``lab``
  runs after its set-up, so that no test installs packages into someone else's environment.
  ``test_lab_serve_is_what_lab_runs_after_setup`` checks, with ``make -n``, that it is that step.

Each waits for the URL with its token that the command prints, checks that the server answers at
that URL's port, and opens the course's first notebook, ``notebooks/00_mnist.ipynb``, through the
server's contents API with that token. As root (as in CI) this proves the root case: without
``--allow-root`` JupyterLab exits at once. The server is stopped by killing its process group, in a
``finally`` that also runs when the test fails; the test then checks that no process of that
session is left. Jupyter's config, data and runtime folders are a temp dir, so neither a
developer's own settings nor the test's runtime files get in the way.

The unit tests check the decisions of ``tools/lab.py`` for users the test cannot be:
``--allow-root`` for root only, ``--no-browser`` without a display only.
"""

import importlib.util
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
FIRST_NOTEBOOK = REPO / "notebooks" / "00_mnist.ipynb"
ROOT_NOTE = "Running as root, so adding --allow-root"
NO_DISPLAY_NOTE = "No display (DISPLAY and WAYLAND_DISPLAY are unset)"
START_TIMEOUT_S = 120  # a limit for a hung start, not a speed check: JupyterLab takes a few seconds


def _load_lab_tool():
    spec = importlib.util.spec_from_file_location("cnnlib_lab_tool", REPO / "tools" / "lab.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


lab_tool = _load_lab_tool()


# ---------------------------------------------------------------------------------------------
# The decisions, for every kind of user and machine


def test_root_gets_allow_root_and_one_line_why():
    command, notes = lab_tool.lab_command(["notebooks/"], euid=0, environ={"DISPLAY": ":0"},
                                          platform="linux", python="python")
    assert command == ["python", "-m", "jupyterlab", "notebooks/", "--allow-root"]
    assert len(notes) == 1 and notes[0].startswith(ROOT_NOTE)


@pytest.mark.parametrize("euid", [1000, 1, None])
def test_other_users_never_get_allow_root(euid):
    command, notes = lab_tool.lab_command(["notebooks/", "--port=8888"], euid=euid,
                                          environ={"DISPLAY": ":0"}, platform="linux",
                                          python="python")
    assert command == ["python", "-m", "jupyterlab", "notebooks/", "--port=8888"]
    assert notes == []


@pytest.mark.parametrize("environ, platform, opens_browser", [
    ({}, "linux", False),
    ({"DISPLAY": ""}, "linux", False),
    ({"DISPLAY": ":0"}, "linux", True),
    ({"WAYLAND_DISPLAY": "wayland-0"}, "linux", True),
    ({}, "freebsd14", False),
    ({}, "darwin", True),
])
def test_no_browser_exactly_when_there_is_no_display(environ, platform, opens_browser):
    command, notes = lab_tool.lab_command(["notebooks/"], euid=1000, environ=environ,
                                          platform=platform, python="python")
    assert ("--no-browser" not in command) == opens_browser
    assert [note.startswith(NO_DISPLAY_NOTE) for note in notes] == ([] if opens_browser else [True])


def test_options_given_are_kept_and_not_added_twice():
    args = ["student/", "--no-browser", "--allow-root", "--ip=127.0.0.1"]
    command, notes = lab_tool.lab_command(args, euid=0, environ={}, platform="linux",
                                          python="python")
    assert command == ["python", "-m", "jupyterlab", *args]
    assert notes == []
    command, _ = lab_tool.lab_command(["--port=9000"], euid=1000, environ={},
                                      platform="darwin", python="python")
    assert command == ["python", "-m", "jupyterlab", ".", "--port=9000"]


# ---------------------------------------------------------------------------------------------
# The command itself


def _in_makefile_env():
    """Whether this interpreter is the Makefile's own (.venv), as under `make test`."""
    return Path(sys.prefix).resolve() == (REPO / ".venv").resolve()


def _make_env(tmp):
    env = dict(os.environ)
    # No display: the case of CI, containers and ssh sessions. Nothing inherited from an outer
    # make (make test), nor Jupyter settings that would change the port or the token.
    for name in ["DISPLAY", "WAYLAND_DISPLAY", "MAKEFLAGS", "MFLAGS", "MAKELEVEL",
                 "JUPYTER_PORT", "JUPYTER_PORT_RETRIES", "JUPYTER_TOKEN", "JUPYTER_PASSWORD"]:
        env.pop(name, None)
    for name, sub in [("JUPYTER_CONFIG_DIR", "config"), ("JUPYTER_DATA_DIR", "data"),
                      ("JUPYTER_RUNTIME_DIR", "runtime"), ("JUPYTERLAB_SETTINGS_DIR", "settings"),
                      ("JUPYTERLAB_WORKSPACES_DIR", "workspaces"), ("IPYTHONDIR", "ipython")]:
        (tmp / sub).mkdir()
        env[name] = str(tmp / sub)
    return env


def _lab_command(port):
    """The README's main command on 127.0.0.1:port (see the module docstring)."""
    variables = ["LAB_IP=127.0.0.1", f"LAB_PORT={port}"]
    if _in_makefile_env():
        return ["make", "--no-print-directory", "lab", *variables]
    return ["make", "--no-print-directory", "lab-serve", f"PY={sys.executable}", *variables]


def _free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _session_pids(sid):
    """PIDs of the live processes in session ``sid`` (zombies are their parents' to reap)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[3]) == sid and fields[0] != "Z":
            pids.append(int(entry.name))
    return pids


def _stop_session(process, grace=15.0):
    """SIGTERM the process group (make, JupyterLab, anything they started), then SIGKILL what is
    left; reap make."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            pass
        deadline = time.monotonic() + grace
        while _session_pids(process.pid) and time.monotonic() < deadline:
            process.poll()
            time.sleep(0.1)
        if not _session_pids(process.pid):
            break
    try:
        process.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        pass


def _get(url, token, timeout=5):
    request = urllib.request.Request(url, headers={"Authorization": f"token {token}"})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return response.status, json.loads(response.read())


class Lab:
    """The command running in a session of its own; ``url``, ``port`` and ``token`` are the ones
    it printed."""

    def __init__(self, command, env, log_path):
        self.command, self.log_path = command, log_path
        self.url = self.port = self.token = None
        self._log = open(log_path, "wb")
        self.process = subprocess.Popen(command, cwd=REPO, env=env, stdin=subprocess.DEVNULL,
                                        stdout=self._log, stderr=subprocess.STDOUT,
                                        start_new_session=True)

    def output(self):
        return self.log_path.read_text(errors="replace")

    def failure(self, what):
        return f"{what}\ncommand: {' '.join(self.command)}\noutput:\n{self.output()[-4000:]}"

    def wait_until_serving(self):
        """Wait for the printed URL with its token, then for /api/status to answer there."""
        url_pattern = re.compile(r"http://127\.0\.0\.1:(\d+)/lab\?token=([0-9a-f]+)")
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            if self.process.poll() is not None:
                pytest.fail(self.failure(f"make exited with code {self.process.returncode}"))
            if self.token is None:
                found = url_pattern.search(self.output())
                if found:
                    self.url, self.port, self.token = found.group(0), int(found.group(1)), found.group(2)
            if self.token is not None:
                try:
                    if _get(f"http://127.0.0.1:{self.port}/api/status", self.token)[0] == 200:
                        return
                except OSError:
                    pass
            if time.monotonic() > deadline:
                pytest.fail(self.failure(f"no server answered within {START_TIMEOUT_S} s"))
            time.sleep(0.3)

    def stop(self):
        try:
            _stop_session(self.process)
        finally:
            self._log.close()


@pytest.fixture
def start_lab(tmp_path):
    """Starts the command (any number of times); stops every one of them by process group, even
    when the test fails, then checks that no process of theirs is left."""
    env = _make_env(tmp_path)
    started = []

    def start(port):
        lab = Lab(_lab_command(port), env, tmp_path / f"lab-{len(started)}.log")
        started.append(lab)
        return lab

    yield start
    for lab in started:
        lab.stop()
    left = {lab.process.pid: _session_pids(lab.process.pid) for lab in started}
    assert not any(left.values()), f"processes left behind, by session: {left}"


def _check_serves_the_course(lab):
    """The printed URL answers, and the course's first notebook opens through the API."""
    status, _ = _get(f"http://127.0.0.1:{lab.port}/api/status", lab.token)
    assert status == 200
    # The server's root is the repository (`jupyter lab .`): notebooks/ and student/ side by side.
    status, model = _get(f"http://127.0.0.1:{lab.port}/api/contents/"
                         f"{FIRST_NOTEBOOK.relative_to(REPO).as_posix()}"
                         "?type=notebook&content=1", lab.token)
    assert status == 200 and model["type"] == "notebook", model.get("type")
    on_disk = json.loads(FIRST_NOTEBOOK.read_text())
    assert [cell["source"] for cell in model["content"]["cells"]] == \
        ["".join(cell["source"]) for cell in on_disk["cells"]]
    status, specs = _get(f"http://127.0.0.1:{lab.port}/api/kernelspecs", lab.token)
    assert "python3" in specs["kernelspecs"], sorted(specs["kernelspecs"])


def _check_notes(output):
    """As root, one line says why --allow-root was added; for anyone else nothing is said."""
    root_lines = [line for line in output.splitlines() if line.startswith(ROOT_NOTE)]
    assert len(root_lines) == (1 if os.geteuid() == 0 else 0), output[-4000:]
    assert sum(line.startswith(NO_DISPLAY_NOTE) for line in output.splitlines()) == 1
    assert "Running as root is not recommended" not in output
    assert "No web browser found" not in output  # it did not try to open one


@pytest.mark.slow
def test_make_lab_serves_the_first_notebook(start_lab):
    port = _free_port()
    lab = start_lab(port)
    lab.wait_until_serving()
    assert lab.port == port, lab.url
    _check_serves_the_course(lab)
    _check_notes(lab.output())


@pytest.mark.slow
def test_make_lab_moves_to_another_port_when_its_port_is_taken(start_lab):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        lab = start_lab(port)
        lab.wait_until_serving()
        assert lab.port != port, lab.url
        assert f"The port {port} is already in use, trying another port." in lab.output()
        _check_serves_the_course(lab)


def test_lab_serve_is_what_lab_runs_after_setup(tmp_path):
    """`make lab` = the set-up, then exactly the command `make lab-serve` runs (make -n prints
    the commands without running them)."""
    make = shutil.which("make")
    if make is None:
        pytest.skip("make is not installed")
    variables = ["LAB_IP=127.0.0.1", "LAB_PORT=8765", f"PY={sys.executable}"]
    env = _make_env(tmp_path)

    def dry_run(target):
        result = subprocess.run([make, "-n", "--no-print-directory", target, *variables], cwd=REPO,
                                env=env, capture_output=True, text=True, check=True)
        return result.stdout.strip().splitlines()

    lab, serve = dry_run("lab"), dry_run("lab-serve")
    assert serve == [f"{sys.executable} tools/lab.py . --ip=127.0.0.1 --port=8765"]
    assert lab[-1] == serve[0]
    assert f"{sys.executable} tools/student.py" in lab[:-1]  # the learner edition first
    assert f"{sys.executable} -m cnnlib data" in lab[:-1]
