"""The training dashboard: train a network live in a notebook, pause it, poke it, look inside.

    from cnnlib.ui.dashboard import TrainingDashboard
    dash = TrainingDashboard()          # the reference network (seed_net) on MNIST's 50k/10k split
    dash                                # shows it; press Start

The original demo's training page rebuilt with ipywidgets: Start / Pause / Resume / New network;
learning rate, momentum, batch size and weight decay that take effect at the next mini-batch;
live plots of the mini-batch loss (raw and smoothed) and the validation accuracy; examples seen
and forward / backward milliseconds per example; then tabs to draw the filters, follow one test
digit through every layer, run the whole test set (accuracy, confusion matrix, worst mistakes)
and save or load the network (``cnnlib.serialization.save_model`` / ``load_model``).

How it stays responsive: training runs in a background thread that takes one
``Trainer.step()`` at a time while a ``threading.Event`` says "running", so Pause takes effect
after the current mini-batch, mid-epoch. The thread writes its results into widget values (an
``HTML`` table and an ``ipywidgets.Image`` holding a PNG the thread renders with an off-screen
matplotlib ``Figure``): widget values are comm messages the kernel publishes from any thread,
while ``Output`` widgets and pyplot figures belong to whichever cell is running and so are never
touched from the thread. A lock makes every use of the network (a training step, the analysis
buttons, save, load) one at a time, so a button pressed mid-training waits at most one step;
the controls' new values are plain numbers the next step reads. To use the network elsewhere
while it trains (``DigitPad(dash.snapshot())``), take a copy: layers keep their caches on
themselves, so two threads must never run one network. Only one dashboard trains at a time:
Start pauses any other (after a cell is run again, the old dashboard would otherwise keep a
core busy unseen).

What it trades away: one network and one training thread per dashboard; plots are PNGs
re-rendered every ``plot_every`` seconds (no zoom or hover); validation during training uses the
first ``val_size`` validation digits to keep it quick.
"""

from __future__ import annotations

import copy
import html
import threading
import time
import weakref
from pathlib import Path

import numpy as np
import ipywidgets as widgets
from matplotlib.figure import Figure

from .. import architectures, serialization, train
from ..augment import CenterCrop
from ..data import to_float
from ..layers import Conv2d
from ..optim import SGD
from ..paths import SHIPPED_MODELS, models_dir
from . import viz

__all__ = ["TrainingDashboard", "default_model_path"]

def default_model_path():
    """Where Save writes unless told otherwise: ``dashboard-net.npz`` in
    ``cnnlib.paths.models_dir()`` (``data/models/`` of the checkout, or ``$CNNLIB_DATA/models``)."""
    return models_dir() / "dashboard-net.npz"


def _load_default_data():
    from .. import data

    return data.load_mnist_split(progress=False)


class TrainingDashboard:
    """A live training page for a Sequential on MNIST-style data.

    net: the network to train (default: a new ``architectures.seed_net``, 24x24 inputs).
    data: anything with x_train, y_train, x_val, y_val, x_test, y_test (a
    ``cnnlib.data.MnistSplit``): uint8 (N, 28, 28) images and (N,) labels; default: MNIST's
    50k / 10k / 10k split, loaded (and fetched once) now.
    batch_size, lr, momentum, weight_decay: the starting recipe (the original's by default);
    every one can be changed while training runs.
    seed: seeds the shuffling, the crops and every new network ("New network" counts up from it).
    validate_every: examples between validations during training; val_size: how many validation
    digits those use (None: all). plot_every: seconds between plot redraws.
    model_path: the Save / Load path shown at first (default ``default_model_path()``).

    Display it in a notebook (last expression of a cell, or ``display(dash)``). Everything the
    buttons do is also a method: ``start()``, ``pause()``, ``resume()``, ``new_network()``,
    ``validate()``, ``show_filters()``, ``show_activations(index)``, ``run_test_set()``,
    ``save(path)``, ``load(path)``, ``snapshot()``, ``close()``.
    """

    _live = weakref.WeakSet()   # every dashboard not yet closed, so Start can pause the others

    def __init__(self, net=None, data=None, *, batch_size=20, lr=0.01, momentum=0.9,
                 weight_decay=0.0, seed=0, validate_every=5_000, val_size=2_000, plot_every=2.0,
                 smooth_window=100, model_path=None):
        _check_recipe(batch_size, lr, momentum, weight_decay)
        self.data = data if data is not None else _load_default_data()
        for name in ("x_train", "y_train", "x_val", "y_val", "x_test", "y_test"):
            if not hasattr(self.data, name):
                raise ValueError(f"TrainingDashboard data needs x_train, y_train, x_val, y_val, "
                                 f"x_test and y_test (a cnnlib.data.MnistSplit); it has no {name}")
        self.seed = int(seed)
        self.validate_every = int(validate_every)
        self.val_size = val_size
        self.plot_every = float(plot_every)
        self.smooth_window = int(smooth_window)
        self.generation = 0          # how many networks this dashboard has built
        self.plots_drawn = 0         # plot redraws so far (tests and curious learners)
        self.error = None            # the exception that stopped training, if any

        self._lock = threading.RLock()       # one user of the network at a time
        self._running = threading.Event()    # set: the thread trains
        self._closed = threading.Event()
        self._thread = None
        self._last_stats = self._last_plot = 0.0
        self._rate = (0.0, 0)                # (time, examples) where the speed measure started
        self._history_figure = Figure()      # off-screen, drawn under the lock
        self._analysis_figure = Figure()     # off-screen, drawn under the lock

        # Converted once: every new network's Trainer reuses these float32 arrays.
        self._x_train = to_float(self.data.x_train)
        x_val, y_val = self.data.x_val, self.data.y_val
        if val_size is not None:
            x_val, y_val = x_val[:val_size], y_val[:val_size]
        self._x_val, self._y_val = to_float(x_val), y_val

        self._build_widgets(batch_size, lr, momentum, weight_decay, model_path)
        if net is None:
            net = self._new_net()
        else:
            self.generation = 1
        self._set_trainer(net)
        self._draw_stats()
        self._draw_history()
        TrainingDashboard._live.add(self)

    # ------------------------------------------------------------------------- set-up

    def _new_net(self):
        self.generation += 1
        return architectures.seed_net(rng=np.random.default_rng([self.seed, self.generation]))

    def _set_trainer(self, net):
        """A fresh Trainer (empty history) for ``net`` with the recipe the widgets show."""
        optimizer = SGD(self.lr_slider.value, momentum=self.momentum_slider.value,
                        weight_decay=self.weight_decay_box.value)
        self.trainer = train.Trainer(
            net, self._x_train, self.data.y_train, self._x_val, self._y_val, optimizer=optimizer,
            batch_size=self.batch_size_box.value,
            rng=np.random.default_rng([self.seed, self.generation, 1]),
            validate_every=None)  # the dashboard's loop validates, so it can redraw at once
        self.error = None
        self._rate = (time.perf_counter(), 0)

    @property
    def net(self):
        """The network being trained (a Sequential). Not for use while it trains: see snapshot."""
        return self.trainer.net

    def snapshot(self):
        """A copy of the network as it is between two steps, safe to use while training runs."""
        with self._lock:
            return copy.deepcopy(self.net)

    def _build_widgets(self, batch_size, lr, momentum, weight_decay, model_path):
        self.status = widgets.HTML()
        self.run_button = widgets.Button(description="Start", icon="play", button_style="success")
        self.new_button = widgets.Button(description="New network", icon="refresh")
        self.validate_button = widgets.Button(description="Validate now", icon="check")
        self.run_button.on_click(lambda _: self._on_run_clicked())
        self.new_button.on_click(lambda _: self._guard(self.new_network))
        self.validate_button.on_click(lambda _: self._guard(self.validate))

        style = {"description_width": "initial"}
        self.lr_slider = widgets.FloatLogSlider(value=lr, base=10, min=-4, max=0, step=0.1,
                                                description="learning rate", readout_format=".2g",
                                                style=style, continuous_update=False)
        self.momentum_slider = widgets.FloatSlider(value=momentum, min=0.0, max=0.99, step=0.01,
                                                   description="momentum", readout_format=".2f",
                                                   style=style, continuous_update=False)
        self.batch_size_box = widgets.BoundedIntText(value=batch_size, min=1, max=1000,
                                                     description="batch size", style=style,
                                                     layout=widgets.Layout(width="150px"))
        self.weight_decay_box = widgets.BoundedFloatText(
            value=weight_decay, min=0.0, max=1.0, step=1e-4, description="weight decay",
            style=style, layout=widgets.Layout(width="180px"))
        self.lr_slider.observe(self._on_recipe_change, "value")
        self.momentum_slider.observe(self._on_recipe_change, "value")
        self.batch_size_box.observe(self._on_recipe_change, "value")
        self.weight_decay_box.observe(self._on_recipe_change, "value")

        self.stats = widgets.HTML(layout=widgets.Layout(width="300px", flex="0 0 auto"))
        # The plot shrinks with the notebook's width (the PNG keeps its aspect ratio).
        self.plot_image = widgets.Image(format="png",
                                        layout=widgets.Layout(width="100%", max_width="820px"))

        # Analysis tabs: each has a button and an image filled when the button is pressed.
        self.filters_button = widgets.Button(description="Draw filters", icon="th")
        self.filters_box = widgets.VBox()  # one Image per convolution layer, made when drawn
        self.filters_button.on_click(lambda _: self._guard(self.show_filters))

        self.digit_box = widgets.BoundedIntText(
            value=0, min=0, max=max(len(self.data.x_test) - 1, 0), description="test digit #",
            style=style, layout=widgets.Layout(width="180px"))
        self.activations_button = widgets.Button(description="Show activations", icon="eye",
                                                 layout=widgets.Layout(width="auto"))
        self.activations_image = widgets.Image(format="png", layout=widgets.Layout(width="620px"))
        self.activations_button.on_click(
            lambda _: self._guard(lambda: self.show_activations(self.digit_box.value)))

        self.test_button = widgets.Button(description="Run the test set", icon="tasks",
                                          layout=widgets.Layout(width="auto"))
        self.test_result = widgets.HTML()
        self.confusion_image = widgets.Image(format="png", layout=widgets.Layout(width="470px"))
        self.mistakes_image = widgets.Image(format="png", layout=widgets.Layout(width="720px"))
        self.test_button.on_click(lambda _: self._guard(self.run_test_set))

        self.path_box = widgets.Text(value=str(model_path or default_model_path()),
                                     description="file", style=style,
                                     layout=widgets.Layout(width="520px"))
        self.save_button = widgets.Button(description="Save", icon="save")
        self.load_button = widgets.Button(description="Load", icon="folder-open")
        self.file_status = widgets.HTML()
        self.save_button.on_click(lambda _: self._guard(lambda: self.save(self.path_box.value)))
        self.load_button.on_click(lambda _: self._guard(lambda: self.load(self.path_box.value)))

        tabs = widgets.Tab(children=[
            widgets.VBox([self.filters_button, self.filters_box]),
            widgets.VBox([widgets.HBox([self.digit_box, self.activations_button]),
                          self.activations_image]),
            widgets.VBox([self.test_button, self.test_result,
                          widgets.HBox([self.confusion_image]), self.mistakes_image]),
            widgets.VBox([widgets.HBox([self.path_box, self.save_button, self.load_button]),
                          self.file_status]),
        ])
        tabs.titles = ("Filters", "Activations", "Test set", "Save / Load")
        self.widget = widgets.VBox([
            self.status,
            widgets.HBox([self.run_button, self.new_button, self.validate_button]),
            widgets.HBox([self.lr_slider, self.momentum_slider]),
            widgets.HBox([self.batch_size_box, self.weight_decay_box]),
            widgets.HBox([self.stats, widgets.Box([self.plot_image],
                                      layout=widgets.Layout(flex="1 1 0%", min_width="0"))]),
            tabs,
        ])
        # Stable CSS classes, for styling and for the real-browser test.
        self.widget.add_class("cnnlib-dashboard")
        self.run_button.add_class("cnnlib-run")
        self.stats.add_class("cnnlib-stats")
        self.plot_image.add_class("cnnlib-plot")
        self._set_status("ready: press Start")

    def _repr_mimebundle_(self, **kwargs):
        return self.widget._repr_mimebundle_(**kwargs)

    # ------------------------------------------------------------------------- controls

    @property
    def running(self):
        """True while the training thread is asked to train."""
        return self._running.is_set()

    def start(self):
        """Start (or resume) training in the background; returns at once.

        Any other dashboard that is training pauses first: two would share the machine's cores.
        """
        if self._closed.is_set():
            raise RuntimeError("this dashboard was closed; make a new TrainingDashboard")
        for other in list(TrainingDashboard._live):
            if other is not self and other.running:
                other.pause()
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(target=self._train_loop, name="cnnlib-dashboard",
                                            daemon=True)
            self._thread.start()
        with self._lock:
            self.error = None
            self._rate = (time.perf_counter(), self.trainer.examples_seen)
            self._show_run_button("Pause")
            self._set_status("training")
            self._running.set()  # last: a step that fails at once then has the final word

    resume = start

    def pause(self):
        """Stop after the current mini-batch; returns once that step has finished."""
        self._running.clear()
        with self._lock:  # the step in flight, if any, ends before we report
            # The final numbers first: a front end that shows "Resume" has them already
            # (widget updates reach it in the order they are made).
            self._draw_stats()
            self._draw_history()
            self._show_run_button("Resume")
        if self.error is None:
            self._set_status(f"paused after {self.trainer.examples_seen:,} examples")

    def _on_run_clicked(self):
        self._guard(self.pause if self.running else self.start)

    def new_network(self):
        """Pause and replace the network with a new, untrained one (a fresh seed)."""
        self.pause()
        with self._lock:
            self._set_trainer(self._new_net())
            self._show_run_button("Start")
            self._draw_stats()
            self._draw_history()
        self._set_status(f"new network #{self.generation}: press Start")

    def validate(self):
        """Validation accuracy now (recorded in the plot); returns it."""
        with self._lock:
            accuracy = self.trainer.validate()
            self._draw_stats()
            self._draw_history()
        return accuracy

    def _on_recipe_change(self, change):
        """A control moved: the optimizer and trainer take the new value at the next step."""
        optimizer = self.trainer.optimizer
        optimizer.lr = float(self.lr_slider.value)
        optimizer.momentum = float(self.momentum_slider.value)
        optimizer.weight_decay = float(self.weight_decay_box.value)
        self.trainer.batch_size = int(self.batch_size_box.value)
        self._draw_stats()

    def _guard(self, action):
        """Run a button's action; show an error in the status line instead of losing it."""
        try:
            action()
        except Exception as error:  # a button has no caller to raise to
            self._set_status(f"{type(error).__name__}: {error}", error=True)

    def _show_run_button(self, label):
        """The run button as "Start", "Pause" or "Resume"."""
        icon, style = {"Start": ("play", "success"), "Pause": ("pause", "warning"),
                       "Resume": ("play", "success")}[label]
        self.run_button.description, self.run_button.icon = label, icon
        self.run_button.button_style = style

    def _set_status(self, text, error=False):
        color = "#b00020" if error else "#333"
        self.status.value = f'<b style="color:{color}">{html.escape(text)}</b>'

    # ------------------------------------------------------------------------- the thread

    def _train_loop(self):
        """The training thread: one step at a time while running, until closed."""
        while not self._closed.is_set():
            if not self._running.wait(timeout=0.1):
                continue
            try:
                with self._lock:
                    if not self._running.is_set():  # paused while we waited for the lock
                        continue
                    trainer = self.trainer
                    before = trainer.examples_seen
                    # A diverging step overflows before the loss check stops it: no warnings
                    # printed from this thread into whatever cell happens to be running.
                    with np.errstate(over="ignore", invalid="ignore"):
                        trainer.step()
                    every = self.validate_every
                    validated = bool(every) and trainer.examples_seen // every > before // every
                    if validated:
                        trainer.validate()
                    now = time.perf_counter()
                    if now - self._last_stats >= 0.25 or validated:
                        self._draw_stats()
                    if now - self._last_plot >= self.plot_every or validated:
                        self._draw_history()
            except Exception as error:  # e.g. FloatingPointError from a too-high learning rate
                with self._lock:
                    self.error = error
                    self._running.clear()
                    self._show_run_button("Resume")
                    text = f"training stopped: {type(error).__name__}: {error}"
                    if not all(np.isfinite(p).all() for _, p, _ in self.net.parameters()):
                        text += (" The weights are no longer finite: press New network or "
                                 "load a saved one.")
                    self._set_status(text, error=True)

    # ------------------------------------------------------------------------- drawing

    def _draw_stats(self):
        """The numbers table: examples seen, loss, accuracy, speed, recipe."""
        self._last_stats = time.perf_counter()
        trainer, history = self.trainer, self.trainer.history
        recent = slice(-50, None)
        rows = [
            ("network", f"#{self.generation}, {self.net.num_parameters():,} parameters"),
            ("examples seen", f"{trainer.examples_seen:,} (epoch {trainer.epoch:.2f})"),
            ("steps", f"{len(history.loss):,}"),
        ]
        if history.loss:
            smooth = np.mean(history.loss[-self.smooth_window:])
            rows.append(("loss", f"{history.loss[-1]:.3f} (mean of last "
                                 f"{min(self.smooth_window, len(history.loss))}: {smooth:.3f})"))
            rows.append(("forward", f"{np.mean(history.forward_ms[recent]):.3f} ms / example"))
            rows.append(("backward", f"{np.mean(history.backward_ms[recent]):.3f} ms / example"))
            started, at = self._rate
            elapsed = time.perf_counter() - started
            if self.running and elapsed > 0.5 and trainer.examples_seen > at:
                rows.append(("speed", f"{(trainer.examples_seen - at) / elapsed:,.0f} "
                                      "examples / s"))
        if history.val_accuracy:
            rows.append(("validation", f"{history.val_accuracy[-1]:.2%} at "
                                       f"{history.val_examples[-1]:,} examples"))
        optimizer = trainer.optimizer
        rows.append(("SGD", f"lr {optimizer.lr:.3g}, momentum {optimizer.momentum:.2f}"))
        rows.append(("", f"batch {trainer.batch_size}, weight decay {optimizer.weight_decay:g}"))
        cells = "".join(f"<tr><td style='padding-right:1em; white-space:nowrap'>"
                        f"{html.escape(k)}</td>"
                        f"<td><b>{html.escape(v)}</b></td></tr>" for k, v in rows)
        self.stats.value = f"<table style='font-size:90%'>{cells}</table>"

    def _draw_history(self):
        """Re-render the loss / accuracy plot into the Image widget (off-screen figure)."""
        self._last_plot = time.perf_counter()
        history = self.trainer.history
        viz.plot_history(history.examples, history.loss, history.val_examples,
                         history.val_accuracy, fig=self._history_figure,
                         window=self.smooth_window)
        self.plot_image.value = viz.figure_png(self._history_figure)
        self.plots_drawn += 1

    def _render(self, plot, *args, **kwargs):
        """Draw with a ``viz.plot_*`` function into the analysis figure; PNG bytes."""
        return viz.figure_png(plot(*args, fig=self._analysis_figure, **kwargs))

    # ------------------------------------------------------------------------- analysis

    def _test_inputs(self):
        """The test digits as the network sees them: float32 (N, 1, 24, 24), centre crop."""
        x = to_float(self.data.x_test)
        return np.ascontiguousarray(CenterCrop(self.trainer.crop_size)(x))

    def show_filters(self):
        """Draw every convolution layer's kernels (one image each) into the Filters tab."""
        with self._lock:
            convs = [(i, layer) for i, layer in enumerate(self.net) if isinstance(layer, Conv2d)]
            if not convs:
                raise ValueError("this network has no Conv2d layer to draw")
            images = list(self.filters_box.children)
            while len(images) < len(convs):
                images.append(widgets.Image(format="png"))  # natural size: 480 px wide
            for image, (i, layer) in zip(images, convs):
                kernels = layer.params["W"]
                image.value = self._render(
                    viz.plot_filters, kernels,
                    title=f"layer {i}: {layer!r}, W {'x'.join(map(str, kernels.shape))}")
            self.filters_box.children = tuple(images[:len(convs)])

    def show_activations(self, index):
        """Follow test digit ``index`` through every layer into the Activations tab."""
        n = len(self.data.x_test)
        if not 0 <= index < n:
            raise ValueError(f"test digit index must be in [0, {n}); got {index}")
        with self._lock:
            x = to_float(self.data.x_test[index:index + 1])
            x = np.ascontiguousarray(CenterCrop(self.trainer.crop_size)(x))
            self.activations_image.value = self._render(
                viz.plot_activations, self.net, x, label=int(self.data.y_test[index]))

    def run_test_set(self, k=16):
        """Accuracy, confusion matrix and the ``k`` worst mistakes on the whole test set.

        Returns (accuracy, confusion matrix (10, 10) int64, indices of the worst mistakes).
        """
        with self._lock:
            x = self._test_inputs()
            y = np.asarray(self.data.y_test).astype(np.int64)
            probs = self.net.predict_proba(x)
            predicted = probs.argmax(axis=1)
            accuracy = float(np.mean(predicted == y))
            cm = viz.confusion_matrix(y, predicted, num_classes=probs.shape[1])
            worst = viz.worst_mistakes(probs, y, k)
            self.test_result.value = (
                f"<b>test accuracy {accuracy:.2%}</b> ({int(np.sum(predicted == y)):,} of "
                f"{len(y):,}; network #{self.generation} after "
                f"{self.trainer.examples_seen:,} examples)")
            self.confusion_image.value = self._render(viz.plot_confusion, cm)
            self.mistakes_image.value = self._render(viz.plot_mistakes, x, y, probs, worst)
        return accuracy, cm, worst

    # ------------------------------------------------------------------------- files

    def save(self, path):
        """Save the network with ``cnnlib.serialization.save_model`` (atomic) and what trained it.

        Refuses to overwrite a shipped network (``seed-net.npz``, ``deep-net.npz``): save under
        another name. Any other file is replaced, so repeated saves of one run keep one file.
        """
        path = Path(path).expanduser()
        if path.name.lower() in SHIPPED_MODELS:  # also Seed-Net.npz on a case-insensitive disk
            raise ValueError(f"{path} is a shipped network's name; the dashboard does not "
                             f"overwrite those. Choose another file name, e.g. "
                             f"{default_model_path()}")
        with self._lock:
            path.parent.mkdir(parents=True, exist_ok=True)
            trainer, optimizer = self.trainer, self.trainer.optimizer
            accuracy = trainer.history.val_accuracy[-1] if trainer.history.val_accuracy else None
            serialization.save_model(
                self.net, path, source="cnnlib.ui.dashboard",
                hyperparameters={"optimizer": "SGD", "lr": optimizer.lr,
                                 "momentum": optimizer.momentum,
                                 "weight_decay": optimizer.weight_decay,
                                 "batch_size": trainer.batch_size, "seed": self.seed},
                history=trainer.history.summary(),
                val_accuracy=accuracy)
            examples = trainer.examples_seen
        self.file_status.value = (f"saved network #{self.generation} "
                                  f"({examples:,} examples) to "
                                  f"<code>{html.escape(str(path))}</code>")
        return path

    def load(self, path):
        """Pause, and continue with the network in ``path`` (``cnnlib.serialization.load_model``).

        Training starts afresh from it: a new optimizer state and an empty history.
        """
        net = serialization.load_model(path)  # raises a clear error before anything changes
        self.pause()
        with self._lock:
            self.generation += 1
            self._set_trainer(net)
            self._show_run_button("Start")
            self._draw_stats()
            self._draw_history()
        self.file_status.value = (f"loaded <code>{html.escape(str(path))}</code> as network "
                                  f"#{self.generation}")
        self._set_status(f"loaded {Path(path).name}: press Start to train it further")
        return net

    def close(self):
        """Stop the training thread and close the widgets."""
        self._running.clear()
        self._closed.set()
        TrainingDashboard._live.discard(self)
        if self._thread is not None:
            self._thread.join(timeout=10)
        _close_tree(self.widget)


def _check_recipe(batch_size, lr, momentum, weight_decay):
    """The starting recipe must fit the controls' ranges (a slider would silently clamp it)."""
    checks = [("lr", lr, 1e-4, 1.0), ("momentum", momentum, 0.0, 0.99),
              ("batch_size", batch_size, 1, 1000), ("weight_decay", weight_decay, 0.0, 1.0)]
    for name, value, low, high in checks:
        if not (isinstance(value, (int, float, np.number)) and low <= value <= high):
            raise ValueError(f"TrainingDashboard {name} must be in [{low:g}, {high:g}] (the range "
                             f"of its control); got {value!r}")


def _close_tree(widget):
    """Close a widget and, first, every widget inside it (its children, recursively)."""
    for child in getattr(widget, "children", ()):
        _close_tree(child)
    widget.close()
