"""The drawing widget in a real browser: JupyterLab + headless Chromium, real pen digits replayed.

pytest starts an isolated Jupyter server on 127.0.0.1 (random port, token, its own config/data/
runtime/settings/workspaces/IPython folders in a temp dir) serving a temp copy of
``notebooks/11_draw_a_digit.ipynb`` and ``08_training_the_network.ipynb`` (laid out as in the
repository: ``notebooks/`` beside a link to ``data/``), and opens them in Debian's Chromium through
Playwright.

Notebook 11 opens once in JupyterLab 4 and once in Notebook 7, the two front ends the course
supports, each with a fresh kernel; it is run with Run > Run All Cells, and recorded UNIPEN digits
are drawn on the DigitPad canvas as mouse down/move/up. The test checks the answer shown for clear
cases (a 0, a 1, a 7), that the answer refreshes after each stroke of a two-stroke digit, Undo and
Clear, and prints the mouse-up -> answer latency (browser clock) and the paths of the screenshots
(build/browser/). Notebook 08's training dashboard is run in JupyterLab: Resume trains in a
background thread (the kernel stays idle, the numbers and the plot move) and Pause stops it.

Servers and browsers are stopped by PID in a teardown that survives errors.

Skipped when /usr/bin/chromium is missing, except under CI=true, where that is a failure.
"""

import contextlib
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.browser

REPO = Path(__file__).resolve().parent.parent
NOTEBOOK = REPO / "notebooks" / "11_draw_a_digit.ipynb"
DASHBOARD_NOTEBOOK = REPO / "notebooks" / "08_training_the_network.ipynb"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"]
KERNEL_IDLE = "Python 3 (ipykernel) | Idle"
SCREENSHOTS = REPO / "build" / "browser"  # build/ is git-ignored; kept for people to look at
IN_CI = os.environ.get("CI", "").lower() not in ("", "0", "false", "no")


def _require(condition, reason):
    """Skip for a missing tool on a developer's machine; under CI the same gap is a failure."""
    if not condition:
        if IN_CI:
            pytest.fail(f"{reason} (CI=true: the browser test must run)")
        pytest.skip(reason)


# ---------------------------------------------------------------------------------------------
# Processes: found and stopped by PID, never by name


def _children_of():
    """{parent pid: [child pids]} from /proc."""
    children = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    return children


def _descendants(pid):
    children, found, todo = _children_of(), [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def _pids_mentioning(text):
    """PIDs whose command line mentions ``text`` (our temp folder: a helper that re-parented)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            try:
                if text in (entry / "cmdline").read_bytes().decode(errors="replace"):
                    pids.append(int(entry.name))
            except OSError:
                continue
    return pids


def _alive(pid):
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _stop(pids, grace=5.0):
    """SIGTERM each pid, wait up to ``grace`` seconds, then SIGKILL the ones left."""
    pids = [pid for pid in set(pids) if pid != os.getpid()]
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in pids:
            try:
                os.kill(pid, sig)
            except (ProcessLookupError, PermissionError):
                pass
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline and any(_alive(pid) for pid in pids):
            time.sleep(0.1)
        pids = [pid for pid in pids if _alive(pid)]
        if not pids:
            return


# ---------------------------------------------------------------------------------------------
# JupyterLab


def _free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _write_json(path, data):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))


def _request(url, token, method="GET", timeout=5):
    request = urllib.request.Request(url, method=method, data=b"" if method == "POST" else None,
                                     headers={"Authorization": f"token {token}"})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return response.status


def _get_json(url, token, timeout=5):
    request = urllib.request.Request(url, headers={"Authorization": f"token {token}"})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return json.loads(response.read())


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """A JupyterLab server serving a temp copy of the notebook: yields (base url, token, temp dir,
    server pid)."""
    _require(CHROMIUM.exists(), f"{CHROMIUM} is missing (apt-get install chromium)")
    tmp = tmp_path_factory.mktemp("lab")
    root = tmp / "root"
    (root / "notebooks").mkdir(parents=True)
    for notebook in (NOTEBOOK, DASHBOARD_NOTEBOOK):
        _require(notebook.is_file(), f"{notebook} is missing")
        shutil.copy(notebook, root / "notebooks" / notebook.name)
    (root / "data").symlink_to(REPO / "data")  # notebook 08 finds the shipped model at ../data
    env = dict(os.environ)
    for name, sub in [("JUPYTER_CONFIG_DIR", "config"), ("JUPYTER_DATA_DIR", "data"),
                      ("JUPYTER_RUNTIME_DIR", "runtime"), ("JUPYTERLAB_SETTINGS_DIR", "settings"),
                      ("JUPYTERLAB_WORKSPACES_DIR", "workspaces"), ("IPYTHONDIR", "ipython"),
                      ("XDG_CONFIG_HOME", "xdg")]:
        (tmp / sub).mkdir()
        env[name] = str(tmp / sub)
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    # This environment's kernel, under the name and display name the notebook asks for.
    _write_json(tmp / "data" / "kernels" / "python3" / "kernel.json", {
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "Python 3 (ipykernel)", "language": "python"})
    settings = tmp / "settings"
    _write_json(settings / "@jupyterlab" / "docmanager-extension" / "plugin.jupyterlab-settings",
                {"autosave": False})
    _write_json(settings / "@jupyterlab" / "apputils-extension"
                / "notification.jupyterlab-settings",
                {"fetchNews": "false", "checkForUpdates": False})
    # Every cell stays in the DOM (no virtual scrolling), so the widget can be found at once.
    _write_json(settings / "@jupyterlab" / "notebook-extension" / "tracker.jupyterlab-settings",
                {"windowingMode": "none"})
    port, token = _free_port(), os.urandom(16).hex()
    command = [sys.executable, "-m", "jupyterlab", "--no-browser", "--ip=127.0.0.1",
               f"--port={port}", "--ServerApp.port_retries=0", f"--IdentityProvider.token={token}",
               f"--ServerApp.root_dir={root}", "--LabApp.news_url=None"]
    if os.geteuid() == 0:
        command.append("--allow-root")
    log = open(tmp / "jupyterlab.log", "wb")
    server = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT,
                              stdin=subprocess.DEVNULL, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            if server.poll() is not None:
                raise RuntimeError(f"JupyterLab exited with code {server.returncode}:\n"
                                   + (tmp / "jupyterlab.log").read_text()[-3000:])
            try:
                if _request(f"{base}/api/status", token) == 200:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("JupyterLab did not answer /api/status within 90 s:\n"
                                   + (tmp / "jupyterlab.log").read_text()[-3000:])
            time.sleep(0.3)
        yield base, token, tmp, server.pid
    finally:
        try:
            _request(f"{base}/api/shutdown", token, method="POST")
            server.wait(timeout=15)
        except (OSError, subprocess.TimeoutExpired):
            pass
        leftovers = [server.pid] + _descendants(server.pid) + _pids_mentioning(str(tmp))
        _stop([pid for pid in leftovers if _alive(pid)])
        log.close()


# ---------------------------------------------------------------------------------------------
# Chromium through Playwright


@pytest.fixture(scope="module")
def browser(lab):
    _require(CHROMIUM.exists(), f"{CHROMIUM} is missing (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    _, _, tmp, server_pid = lab
    before = set(_descendants(os.getpid()))
    seen = set()
    playwright = sync_playwright().start()
    chromium = None
    try:
        env = dict(os.environ, XDG_CONFIG_HOME=str(tmp / "xdg"))
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True,
                                              args=CHROMIUM_ARGS, env=env)
        seen |= set(_descendants(os.getpid())) - before
        yield chromium
    finally:
        seen |= set(_descendants(os.getpid())) - before
        seen -= {server_pid, *_descendants(server_pid)}  # the kernel is the server's to stop
        try:
            if chromium is not None:
                chromium.close()
        finally:
            playwright.stop()
            _stop([pid for pid in seen | set(_pids_mentioning(str(tmp / "xdg"))) if _alive(pid)])


# The two front ends: where the notebook opens, and how to tell that its kernel is ready.
# JupyterLab's status bar says "Python 3 (ipykernel) | Idle"; Notebook 7 has no such text, so
# there the toolbar's kernel name (it reads "No Kernel" until a session exists) and the server's
# view of the kernel (GET /api/kernels) are used.
# JupyterLab opens each notebook in a workspace of its own, so that a page does not restore the
# tabs (and start the kernels) of the notebooks opened before it.
FRONT_ENDS = {
    "jupyterlab": "/lab/workspaces/{stem}/tree/notebooks/{name}",
    "notebook7": "/notebooks/notebooks/{name}",
}


def _wait_kernel_idle(page, front_end, base, token, timeout_s=90):
    if front_end == "jupyterlab":
        page.get_by_text(KERNEL_IDLE).wait_for(timeout=timeout_s * 1000)
        return
    page.locator(".jp-Toolbar-kernelName", has_text="Python 3 (ipykernel)").wait_for(
        timeout=timeout_s * 1000)
    deadline = time.monotonic() + timeout_s
    while True:
        kernels = _get_json(f"{base}/api/kernels", token)
        if kernels and all(k["execution_state"] == "idle" for k in kernels):
            return
        if time.monotonic() > deadline:
            pytest.fail(f"the kernel did not become idle within {timeout_s} s: {kernels}")
        page.wait_for_timeout(200)


# Notes whether any code cell's prompt ever shows [*]: proof that Run All started this time
# (the stored notebook already shows [n]: prompts).
WATCH_RUN = """() => {
    window.__cnnlibRunStarted = false;
    const check = () => {
        if ([...document.querySelectorAll('.jp-CodeCell .jp-InputArea-prompt')]
                .some(p => p.textContent.includes('*'))) window.__cnnlibRunStarted = true;
    };
    new MutationObserver(check).observe(document.body,
        {subtree: true, childList: true, characterData: true});
    check();
}"""


def _run_all(page):
    """Run > Run All Cells, clicked again if the run does not start (a click that lands before
    the front end has connected to the kernel is silently dropped)."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    page.evaluate(WATCH_RUN)
    for attempt in range(3):
        page.locator(".lm-MenuBar-itemLabel", has_text="Run").first.click()
        page.locator('li.lm-Menu-item[data-command="runmenu:run-all"]').click()
        try:
            page.wait_for_function("() => window.__cnnlibRunStarted", timeout=20_000)
            return
        except PlaywrightTimeout:
            continue
    pytest.fail("Run > Run All Cells did not start the notebook (tried 3 times)")


@contextlib.contextmanager
def _notebook_page(browser, lab, front_end, notebook, ready_selector):
    """Open ``notebook`` in ``front_end``, Run All, wait until ``ready_selector`` is visible and
    the kernel is idle: yields (page, that locator). Afterwards the page is closed and every
    session deleted, so the next page starts with a fresh kernel."""
    base, token, _, _ = lab
    page = browser.new_page(viewport={"width": 1300, "height": 1000})
    page.set_default_timeout(30_000)
    try:
        url = FRONT_ENDS[front_end].format(name=notebook.name, stem=notebook.stem)
        page.goto(f"{base}{url}?token={token}")
        _wait_kernel_idle(page, front_end, base, token)
        _run_all(page)
        ready = _wait_for_run(page, ready_selector)
        _wait_kernel_idle(page, front_end, base, token, timeout_s=60)
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        yield page, ready
    finally:
        page.close()
        for session in _get_json(f"{base}/api/sessions", token):
            _request(f"{base}/api/sessions/{session['id']}", token, method="DELETE")


@pytest.fixture(scope="module", params=sorted(FRONT_ENDS))
def pad_page(request, lab, browser):
    """Notebook 11 opened in one front end and run in a fresh kernel: yields a ``Pad``."""
    with _notebook_page(browser, lab, request.param, NOTEBOOK,
                        "canvas.cnnlib-digitpad") as (page, canvas):
        yield Pad(page, canvas, SCREENSHOTS, request.param)


ERRORS_JS = """() => [...document.querySelectorAll(
    '.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]')]
    .map(e => e.innerText).filter(t => /Error|Traceback/.test(t))"""


def _wait_for_run(page, ready_selector):
    """Wait until every code cell has run; fail with the error the page shows. Returns the
    locator of ``ready_selector`` (a widget's element, e.g. the pad's canvas).

    The stored notebook already shows [n]: prompts, so "all numbered" alone proves nothing: a
    widget's element exists only once its cell has run in this kernel (widget state is not
    stored), and both front ends mark every queued cell [*]: until it has run.
    """
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    try:
        page.wait_for_function(
            f"() => document.querySelector('{ready_selector}') || ({ERRORS_JS})().length",
            timeout=120_000)
        page.wait_for_function(
            f"""() => {{
                const prompts = [...document.querySelectorAll('.jp-CodeCell .jp-InputArea-prompt')];
                return ({ERRORS_JS})().length ||
                       (prompts.length > 0 && prompts.every(p => /\\[\\d+\\]/.test(p.textContent)));
            }}""", timeout=120_000)
    except PlaywrightTimeout:
        errors = page.evaluate(ERRORS_JS)
        pytest.fail("Run All did not finish within the time limit"
                    + (f"; the page shows:\n{errors[0]}" if errors else ""))
    errors = page.evaluate(ERRORS_JS)
    assert not errors, f"the notebook failed in the browser:\n{errors[0]}"
    ready = page.locator(ready_selector)
    ready.wait_for(state="visible")
    return ready


INSTRUMENT = """() => {
    const box = document.querySelector('.cnnlib-answer-box');
    const log = window.__cnnlib = {ups: [], answers: []};
    window.addEventListener('mouseup', () => log.ups.push(performance.now()), true);
    const record = () => {
        const el = box.querySelector('.cnnlib-answer');
        if (!el) return;
        const entry = {t: performance.now(), updates: +el.dataset.updates,
                       strokes: +el.dataset.strokes, guess: el.dataset.guess,
                       probs: el.dataset.probs || ''};
        const last = log.answers[log.answers.length - 1];
        if (!last || last.updates !== entry.updates) log.answers.push(entry);
    };
    new MutationObserver(record).observe(box, {subtree: true, childList: true,
                                               characterData: true, attributes: true});
    record();
}"""


class Pad:
    """Drives the DigitPad on the page: strokes as mouse events, buttons, the shown answer."""

    def __init__(self, page, canvas, screens, front_end):
        self.page, self.canvas, self.screens, self.front_end = page, canvas, screens, front_end
        self.latencies_ms = []
        canvas.scroll_into_view_if_needed()
        page.evaluate(INSTRUMENT)

    def state(self):
        return self.page.evaluate("() => window.__cnnlib.answers.at(-1)")

    def _wait_update(self, previous, strokes):
        self.page.wait_for_function(
            "([u, s]) => { const a = window.__cnnlib.answers.at(-1);"
            " return a && a.updates > u && a.strokes === s; }",
            arg=[previous, strokes], timeout=20_000)
        return self.state()

    def stroke(self, points):
        """Draw one stroke (canvas coordinates); returns the answer shown after mouse-up."""
        box = self.canvas.bounding_box()
        scale_x, scale_y = box["width"] / 280, box["height"] / 280
        to_page = [(box["x"] + x * scale_x, box["y"] + y * scale_y) for x, y in points]
        before = self.state()
        ups = self.page.evaluate("() => window.__cnnlib.ups.length")
        mouse = self.page.mouse
        mouse.move(*to_page[0])
        mouse.down()
        for x, y in to_page[1:]:
            mouse.move(x, y)
        mouse.up()
        after = self._wait_update(before["updates"], before["strokes"] + 1)
        up_time = self.page.evaluate(f"() => window.__cnnlib.ups[{ups}]")
        first = self.page.evaluate(
            "(u) => window.__cnnlib.answers.find(a => a.updates > u)", before["updates"])
        self.latencies_ms.append(first["t"] - up_time)
        return after

    def draw(self, strokes):
        return [self.stroke(points) for points in strokes]

    def click(self, css_class, strokes_after):
        before = self.state()
        self.page.locator(f"button.{css_class}").click()
        return self._wait_update(before["updates"], strokes_after)

    def screenshot(self, name):
        path = self.screens / f"{self.front_end}-{name}"
        self.page.screenshot(path=str(path), full_page=False)
        return path


# ---------------------------------------------------------------------------------------------
# The digits to draw: chosen with the same pipeline in Python, so the expectations are real


@pytest.fixture(scope="module")
def digits():
    """Clear dev-set cases, chosen with the same pipeline in Python (DigitPad without a browser):
    {0, 1, 7: (label, strokes, p)} drawn in one stroke and recognized with p >= 0.95, and "two":
    a two-stroke digit recognized with p >= 0.95 whose first stroke alone shows something else."""
    from cnnlib.pendigits import load_pen_digits
    from cnnlib.strokes import fit_to_box
    from cnnlib.ui.pad import DigitPad

    pad = DigitPad(replay=None)
    best = {}
    for record in load_pen_digits("dev"):
        label = record["label"]
        strokes = [np.asarray(s, dtype=float).tolist() for s in fit_to_box(record["strokes"])]
        if len(strokes) == 1 and label in (0, 1, 7):
            key = label
        elif len(strokes) == 2:
            key = "two"
        else:
            continue
        if sum(len(s) for s in strokes) > 150:
            continue  # keep the replay short
        pad.clear()
        pad.draw(strokes[:1])
        first_guess = pad.answer["guess"]
        pad.draw(strokes[1:])
        answer = pad.answer
        if answer["top"] != label or answer["probability"] < 0.95:
            continue
        if key == "two" and first_guess == str(label):
            continue
        if key not in best or answer["probability"] > best[key][2]:
            best[key] = (label, strokes, answer["probability"])
    missing = {0, 1, 7, "two"} - set(best)
    assert not missing, f"no clear dev-set case for {missing} with the shipped model"
    return best


# ---------------------------------------------------------------------------------------------
# Tests


def test_draws_and_recognizes_real_digits(pad_page, digits):
    pad = pad_page
    for key in (0, 1, 7):
        label, strokes, p = digits[key]
        pad.click("cnnlib-clear", 0)
        shown = pad.draw(strokes)[-1]
        assert shown["guess"] == str(label), (
            f"drew a dev-set {label} (Python pipeline: {p:.0%}); the page shows {shown['guess']!r}")
    path = pad.screenshot("digitpad-7.png")
    print(f"\nscreenshot: {path}")


def test_each_stroke_refreshes_the_answer_and_undo_clear_work(pad_page, digits):
    pad = pad_page
    label, strokes, _ = digits["two"]
    pad.click("cnnlib-clear", 0)
    first = pad.stroke(strokes[0])
    assert first["strokes"] == 1 and first["probs"], first
    second = pad.stroke(strokes[1])
    assert second["strokes"] == 2 and second["updates"] > first["updates"]
    assert second["probs"] != first["probs"], "the second stroke did not change the answer"
    assert second["guess"] == str(label)
    print(f"\n{pad.front_end}: two-stroke {label}: after stroke 1 {first['guess']!r}, "
          f"after stroke 2 {second['guess']!r}")
    path = pad.screenshot("digitpad-two-strokes.png")
    print(f"screenshot: {path}")

    undone = pad.click("cnnlib-undo", 1)
    assert undone["probs"] == first["probs"], "Undo did not bring back the one-stroke answer"
    cleared = pad.click("cnnlib-clear", 0)
    assert cleared["guess"] == "" and cleared["probs"] == ""
    assert pad.page.locator(".cnnlib-answer-box .cnnlib-hint").inner_text() == "Draw a digit"


def test_latency_mouse_up_to_answer(pad_page):
    """Ten more dev-set digits, then the mouse-up -> answer latency of every stroke drawn here."""
    from cnnlib.pendigits import load_pen_digits
    from cnnlib.strokes import fit_to_box

    pad = pad_page
    for record in load_pen_digits("dev")[100:110]:
        pad.click("cnnlib-clear", 0)
        strokes = fit_to_box(record["strokes"])
        shown = pad.draw([np.asarray(s, dtype=float).tolist() for s in strokes])
        assert shown[-1]["strokes"] == len(record["strokes"])
    latencies = pad.latencies_ms
    quartiles = statistics.quantiles(latencies, n=4)
    print(f"\n{pad.front_end}: mouse-up -> answer (browser clock) over {len(latencies)} strokes: "
          f"median {statistics.median(latencies):.0f} ms, "
          f"quartiles {quartiles[0]:.0f}-{quartiles[2]:.0f} ms, "
          f"min {min(latencies):.0f} ms, max {max(latencies):.0f} ms")
    assert max(latencies) < 5000
    print(f"screenshot: {pad.screenshot('digitpad-last.png')}")


EXAMPLES_SEEN_JS = """() => {
    const m = /examples seen\\s+([\\d,]+)/.exec(document.querySelector('.cnnlib-stats').innerText);
    return m ? +m[1].replace(/,/g, '') : -1;
}"""


def test_training_dashboard_trains_in_the_background_and_pauses(lab, browser):
    """Notebook 08's dashboard in JupyterLab: its own cell trained 200 examples and paused; Resume
    trains in a thread while the kernel stays idle (the numbers and the plot move), Pause stops
    it and the numbers stay put."""
    with _notebook_page(browser, lab, "jupyterlab", DASHBOARD_NOTEBOOK,
                        ".cnnlib-dashboard") as (page, dashboard):
        run = page.locator("button.cnnlib-run")
        run.scroll_into_view_if_needed()
        assert run.inner_text().strip() == "Resume"
        before = page.evaluate(EXAMPLES_SEEN_JS)
        assert before >= 200
        plot_before = page.locator(".cnnlib-plot").get_attribute("src")
        run.click()
        page.wait_for_function(f"() => ({EXAMPLES_SEEN_JS})() >= {before + 5000}",
                               timeout=60_000)
        page.get_by_text(KERNEL_IDLE).wait_for(timeout=10_000)  # training does not block it
        assert run.inner_text().strip() == "Pause"
        page.wait_for_function(
            "(src) => document.querySelector('.cnnlib-plot').getAttribute('src') !== src",
            arg=plot_before, timeout=20_000)
        page.screenshot(path=str(SCREENSHOTS / "jupyterlab-dashboard-training.png"))
        run.click()
        page.wait_for_function(
            "() => document.querySelector('button.cnnlib-run').innerText.trim() === 'Resume'")
        paused_at = page.evaluate(EXAMPLES_SEEN_JS)
        page.wait_for_timeout(1500)
        assert page.evaluate(EXAMPLES_SEEN_JS) == paused_at, "training went on after Pause"
        print(f"\ndashboard: {before:,} -> {paused_at:,} examples in the browser, then paused; "
              f"screenshot: {SCREENSHOTS / 'jupyterlab-dashboard-training.png'}")
