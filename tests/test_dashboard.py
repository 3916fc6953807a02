"""cnnlib.ui.dashboard: the training thread, the controls, the analysis tabs and save/load, without a
browser. Button clicks go through ``Button.click()``, which runs the same handlers a click in
JupyterLab does; slider moves set ``.value`` as a front-end change would.

The data are small random digits (no MNIST needed): the logic, not the learning, is under test.
"""

import time

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from cnnlib import architectures, augment, serialization  # noqa: E402
from cnnlib.data import MnistSplit  # noqa: E402
from cnnlib.ui.dashboard import TrainingDashboard  # noqa: E402

PNG = b"\x89PNG\r\n\x1a\n"


def _split(n_train=400, n_val=60, n_test=50, seed=0):
    rng = np.random.default_rng(seed)

    def digits(n):
        return (rng.integers(0, 256, (n, 28, 28), dtype=np.uint8),
                rng.integers(0, 10, n).astype(np.uint8))

    return MnistSplit(*digits(n_train), *digits(n_val), *digits(n_test))


def _wait_until(condition, timeout=60.0, what="condition"):
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.02)


@pytest.fixture
def make_dashboard():
    made = []

    def make(**kwargs):
        kwargs.setdefault("data", _split())
        kwargs.setdefault("plot_every", 0.2)
        dash = TrainingDashboard(**kwargs)
        made.append(dash)
        return dash

    yield make
    for dash in made:
        dash.close()


def test_start_pause_resume_and_live_recipe(make_dashboard):
    dash = make_dashboard(validate_every=100, val_size=None)
    first_plot, drawn = dash.plot_image.value, dash.plots_drawn
    assert bytes(first_plot).startswith(PNG) and dash.run_button.description == "Start"

    dash.run_button.click()                                   # Start
    assert dash.running and dash.run_button.description == "Pause"
    _wait_until(lambda: dash.trainer.examples_seen >= 120, what="120 examples")
    _wait_until(lambda: dash.plots_drawn > drawn + 1, what="a redraw while training")

    dash.run_button.click()                                   # Pause
    assert not dash.running and dash.run_button.description == "Resume"
    seen = dash.trainer.examples_seen
    assert len(dash.trainer.history.loss) == seen // 20       # the step in flight finished
    time.sleep(0.3)
    assert dash.trainer.examples_seen == seen                 # nothing trains while paused
    assert dash.plot_image.value != first_plot                # the curves were drawn
    assert dash.trainer.history.val_examples[:1] == [100]     # validated every 100 examples
    assert "paused after" in dash.status.value
    assert f"{seen:,}" in dash.stats.value

    dash.lr_slider.value = 0.003                              # moved while paused ...
    dash.run_button.click()                                   # ... Resume
    assert dash.run_button.description == "Pause"
    _wait_until(lambda: dash.trainer.examples_seen > seen, what="training to resume")
    assert dash.trainer.optimizer.lr == 0.003
    dash.momentum_slider.value = 0.5                          # moved while it trains
    dash.batch_size_box.value = 10
    _wait_until(lambda: dash.trainer.history.examples[-1] - dash.trainer.history.examples[-2] == 10,
                what="a step of the new batch size")
    assert dash.trainer.optimizer.momentum == 0.5
    assert dash.trainer.history.lr[-1] == 0.003
    dash.pause()
    assert "lr 0.003, momentum 0.50" in dash.stats.value and "batch 10," in dash.stats.value


def test_new_network_starts_over_with_fresh_weights(make_dashboard):
    dash = make_dashboard()
    old_W = dash.net[0].params["W"].copy()
    dash.trainer.run(steps=3)
    dash.new_button.click()
    assert dash.generation == 2 and dash.trainer.examples_seen == 0
    assert dash.trainer.history.loss == []
    assert not np.array_equal(dash.net[0].params["W"], old_W)
    assert dash.run_button.description == "Start" and "new network #2" in dash.status.value


def test_a_given_network_is_the_one_trained(make_dashboard):
    net = architectures.seed_net(rng=np.random.default_rng(5))
    dash = make_dashboard(net=net)
    assert dash.net is net and "#1, 7,090 parameters" in dash.stats.value
    dash.trainer.run(steps=1)
    assert dash.trainer.examples_seen == 20


def test_a_failing_step_stops_training_and_says_why(make_dashboard):
    dash = make_dashboard()

    def broken_augment(x, rng):
        raise RuntimeError("augmentation exploded")

    dash.trainer.augment = broken_augment
    dash.start()
    _wait_until(lambda: dash.error is not None, what="the error")
    _wait_until(lambda: not dash.running, what="training to stop")
    assert "augmentation exploded" in dash.status.value
    assert dash.run_button.description == "Resume"
    dash.trainer.augment = augment.RandomCrop(24)               # fixed: Resume clears the error
    dash.start()
    _wait_until(lambda: dash.trainer.examples_seen > 0, what="training to resume")
    dash.pause()
    assert dash.error is None and "paused" in dash.status.value


def test_a_diverged_network_is_named_in_the_status(make_dashboard):
    dash = make_dashboard()
    dash.net[-1].params["W"][0, 0] = np.nan                   # as a diverged update leaves it
    dash.start()
    _wait_until(lambda: dash.error is not None, what="the error")
    assert "no longer finite" in dash.status.value and "New network" in dash.status.value


def test_the_starting_recipe_must_fit_the_controls():
    for bad in ({"lr": 0}, {"lr": 2}, {"momentum": 0.995}, {"batch_size": 2000},
                {"weight_decay": -0.1}):
        name = next(iter(bad))
        with pytest.raises(ValueError, match=f"{name} must be in"):
            TrainingDashboard(data=_split(), **bad)


def test_a_snapshot_is_a_copy_to_use_while_training(make_dashboard):
    dash = make_dashboard()
    dash.start()
    _wait_until(lambda: dash.trainer.examples_seen > 0, what="training")
    copy = dash.snapshot()
    dash.pause()
    assert copy is not dash.net and copy[0] is not dash.net[0]
    assert copy.num_parameters() == dash.net.num_parameters()


def test_starting_one_dashboard_pauses_the_others(make_dashboard):
    first, second = make_dashboard(), make_dashboard()
    first.start()
    _wait_until(lambda: first.trainer.examples_seen > 0, what="the first to train")
    second.start()
    assert not first.running and first.run_button.description == "Resume"
    _wait_until(lambda: second.trainer.examples_seen > 0, what="the second to train")
    second.pause()


def test_analysis_tabs(make_dashboard):
    dash = make_dashboard()
    dash.trainer.run(steps=2)

    dash.filters_button.click()
    conv1, conv2 = dash.filters_box.children                  # one image per Conv2d
    assert bytes(conv1.value).startswith(PNG) and bytes(conv2.value).startswith(PNG)

    dash.digit_box.value = 7
    dash.activations_button.click()
    assert bytes(dash.activations_image.value).startswith(PNG)
    with pytest.raises(ValueError, match="index must be in \\[0, 50\\)"):
        dash.show_activations(50)

    accuracy, cm, worst = dash.run_test_set(k=5)
    x = dash._test_inputs()
    expected = dash.net.predict(x)
    y = dash.data.y_test.astype(np.int64)
    assert accuracy == np.mean(expected == y)
    assert cm.sum() == 50 and np.trace(cm) == np.sum(expected == y)
    assert len(worst) == min(5, int(np.sum(expected != y)))
    assert all(expected[i] != y[i] for i in worst)
    assert f"test accuracy {accuracy:.2%}" in dash.test_result.value
    assert bytes(dash.confusion_image.value).startswith(PNG)
    assert bytes(dash.mistakes_image.value).startswith(PNG)


def test_save_and_load_round_trip(make_dashboard, tmp_path):
    dash = make_dashboard()
    dash.trainer.run(steps=3)
    path = tmp_path / "models" / "mine.npz"
    dash.path_box.value = str(path)
    dash.save_button.click()
    assert path.is_file() and "saved network #1" in dash.file_status.value
    header = serialization.read_header(path)
    assert header["info"]["hyperparameters"]["lr"] == dash.trainer.optimizer.lr
    assert header["info"]["history"]["steps"] == 3

    other = make_dashboard(data=dash.data)
    other.path_box.value = str(path)
    other.load_button.click()
    x = dash._test_inputs()
    np.testing.assert_array_equal(other.net.predict_proba(x), dash.net.predict_proba(x))
    assert other.trainer.examples_seen == 0 and "loaded" in other.file_status.value
    other.trainer.run(steps=1)                                # the loaded network trains
    assert not np.array_equal(other.net.predict_proba(x), dash.net.predict_proba(x))


def test_save_refuses_the_shipped_file_and_load_reports_missing(make_dashboard, tmp_path):
    dash = make_dashboard()
    for name in ("seed-net.npz", "deep-net.npz", "Seed-Net.npz"):
        with pytest.raises(ValueError, match="shipped network"):
            dash.save(tmp_path / name)
        assert not (tmp_path / name).exists()
    before = dash.net
    dash.path_box.value = str(tmp_path / "nothing-here.npz")
    dash.load_button.click()                                  # a button reports, never raises
    assert "nothing-here.npz" in dash.status.value and "FileNotFoundError" in dash.status.value
    assert dash.net is before


def test_rejects_data_without_a_split():
    with pytest.raises(ValueError, match="no x_test"):
        TrainingDashboard(data=object.__new__(type("Half", (), {
            "x_train": 0, "y_train": 0, "x_val": 0, "y_val": 0})))


def test_closed_dashboard_cannot_start(make_dashboard):
    dash = make_dashboard()
    dash.start()
    dash.close()
    assert not dash._thread.is_alive()
    with pytest.raises(RuntimeError, match="closed"):
        dash.start()


# ------------------------------------------------------------------------------- a real kernel

_KERNEL_SETUP = """
import json
import numpy as np
from IPython.display import display
from cnnlib.data import MnistSplit
from cnnlib.ui.dashboard import TrainingDashboard
rng = np.random.default_rng(0)
def digits(n):
    return (rng.integers(0, 256, (n, 28, 28), dtype=np.uint8),
            rng.integers(0, 10, n).astype(np.uint8))
dash = TrainingDashboard(data=MnistSplit(*digits(2000), *digits(100), *digits(50)),
                         plot_every=0.5, validate_every=200, val_size=None)
display(dash)
print(json.dumps({"run": dash.run_button.model_id, "stats": dash.stats.model_id,
                  "plot": dash.plot_image.model_id}))
"""


def _execute(kc, code, timeout=120):
    """Run code in the kernel; return its stdout. Fails on an error or anything on stderr."""
    msg_id = kc.execute(code)
    out = []
    while True:
        msg = kc.get_iopub_msg(timeout=timeout)
        if msg["parent_header"].get("msg_id") != msg_id:
            continue
        kind, content = msg["msg_type"], msg["content"]
        if kind == "error":
            raise AssertionError(f"kernel error: {content['ename']}: {content['evalue']}")
        if kind == "stream":
            assert content["name"] == "stdout", content["text"]
            out.append(content["text"])
        if kind == "status" and content["execution_state"] == "idle":
            return "".join(out)


@pytest.mark.slow
def test_in_a_kernel_the_thread_updates_widgets_and_a_click_pauses(tmp_path, monkeypatch):
    """The path JupyterLab uses: an ipykernel, widget updates published from the training thread
    while the kernel is idle, and a click arriving as a comm message."""
    import json
    import os
    import queue
    import sys

    from jupyter_client.manager import start_new_kernel

    # This environment's Python as the "python3" kernel, whatever else is installed.
    spec = tmp_path / "kernels" / "python3" / "kernel.json"
    spec.parent.mkdir(parents=True)
    spec.write_text(json.dumps({"argv": [sys.executable, "-m", "ipykernel_launcher", "-f",
                                         "{connection_file}"],
                                "display_name": "Python 3 (ipykernel)", "language": "python"}))
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path))
    km, kc = start_new_kernel(kernel_name="python3",
                              env={**os.environ, "OPENBLAS_NUM_THREADS": "1"})
    try:
        ids = json.loads(_execute(kc, _KERNEL_SETUP).strip().splitlines()[-1])
        _execute(kc, "dash.start()")
        updates = {"stats": 0, "plot": 0}
        names = {ids["stats"]: "stats", ids["plot"]: "plot"}
        deadline = time.monotonic() + 60
        while min(updates.values()) < 2 and time.monotonic() < deadline:  # the kernel is idle
            try:
                msg = kc.get_iopub_msg(timeout=1)
            except queue.Empty:
                continue
            assert msg["msg_type"] not in ("error", "stream"), msg["content"]
            content = msg["content"]
            if msg["msg_type"] == "comm_msg" and content["data"].get("method") == "update":
                if content["comm_id"] in names:
                    updates[names[content["comm_id"]]] += 1
        assert min(updates.values()) >= 2, f"widget updates seen from the thread: {updates}"

        click = kc.session.msg("comm_msg", {"comm_id": ids["run"], "data": {
            "method": "custom", "content": {"event": "click"}}})
        kc.shell_channel.send(click)
        deadline = time.monotonic() + 30
        label = None
        while label != "Resume" and time.monotonic() < deadline:
            try:
                msg = kc.get_iopub_msg(timeout=1)
            except queue.Empty:
                continue
            content = msg["content"]
            if msg["msg_type"] == "comm_msg" and content["comm_id"] == ids["run"]:
                label = content["data"].get("state", {}).get("description", label)
        assert label == "Resume"
        state = json.loads(_execute(kc, (
            "import time\nbefore = dash.trainer.examples_seen\ntime.sleep(0.5)\n"
            "print(json.dumps([dash.running, before, dash.trainer.examples_seen]))")))
        running, before, after = state
        assert not running and before == after > 0
        _execute(kc, "dash.close()")
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)


def test_the_test_set_tab_scores_the_centre_crop():
    # The expected input is built here, not with the dashboard's own helper.
    dash = TrainingDashboard(data=_split(), plot_every=0.2)
    try:
        accuracy, _, _ = dash.run_test_set(k=3)
        x = (dash.data.x_test[:, None, 2:26, 2:26] / np.float32(255)).astype(np.float32)
        assert accuracy == np.mean(dash.net.predict(x) == dash.data.y_test)
    finally:
        dash.close()
