"""DigitPad: draw a digit in a notebook cell, and the network you derived answers after every stroke.

    from cnnlib.ui.pad import DigitPad
    pad = DigitPad()                 # the shipped network, seed-net.npz (cnnlib.paths)
    pad                              # shows the drawing box, the answer and the panels

The drawing box is an ipycanvas ``Canvas`` (280 x 280, CSS class ``cnnlib-digitpad``). Every mouse
or touch event reaches Python; the stroke is drawn live, segment by segment, and on mouse-up the
strokes go through ``cnnlib.strokes.preprocess`` (the 24 x 24 image the network sees) and one
forward pass. The answer shows the guess in large type, its confidence, "?" when the top
probability is below 2/3 (the original demo's rule), a bar per class and the 24 x 24 input.

Three panels below it do more than the original demo, each computed only while it is open:
activations of every layer, a saliency map (the gradient of the top class score with respect to
the input pixels, from the network's own backward pass) and "Teach it" (a few SGD steps on your
drawing mixed with replayed MNIST digits; "Back to shipped weights" undoes them; Save writes a new
model file and never overwrites an existing one unless asked to).

The event handlers are plain methods (``mouse_down(x, y)``, ``mouse_move``, ``mouse_up``, the
``touch_*`` ones, ``clear()``, ``undo()``, ``teach(label)``...), so tests and notebooks drive the
pad without a browser, and ``draw(strokes)`` replays recorded strokes through them.

What it trades away: every point travels browser -> kernel -> browser before it is drawn (about
the cost of one message round trip), in exchange for keeping the whole pad in Python; pictures
are small PNGs made with numpy and zlib (no PIL, no matplotlib on the per-stroke path).
"""

import copy
import math
import struct
import time
import zlib
from pathlib import Path

import ipywidgets as widgets
import numpy as np
from ipycanvas import Canvas, hold_canvas

from .. import strokes as pen
from ..augment import RandomCrop
from ..data import load_mnist, split_train_validation, to_float
from ..network import Sequential, forward_backward
from ..optim import SGD
from ..paths import mnist_dir
from ..paths import models_dir as default_models_dir
from ..paths import shipped_model, shipped_models
from ..seeding import as_generator
from ..serialization import load_model, save_model
from . import viz

__all__ = [
    "DigitPad", "CANVAS_SIZE", "LINE_WIDTH", "CONFIDENT", "CSS_CLASS", "SHIPPED_MODEL",
    "classify", "answer_for", "saliency_map", "teach_steps",
    "png_bytes", "upscale", "signed_rgb", "saliency_rgb",
]

CANVAS_SIZE = 280
# The original demo drew 28 px wide on a 300 px box; the same proportion on 280 px.
LINE_WIDTH = 26
CONFIDENT = 2 / 3
CSS_CLASS = "cnnlib-digitpad"
HINT = "Draw a digit"
# Mouse points closer than this (canvas pixels, ~0.2 input pixels) to the last kept one are dropped:
# a slow hand sends hundreds of them and they change nothing in the 24 x 24 image.
MIN_STEP = 2.0
SHIPPED_MODEL = shipped_model("seed-net.npz")
# "Teach it": plain SGD at half the training recipe's learning rate on batches of 10 shifted copies
# of the drawing and 10 replayed MNIST digits, until the drawing gets TEACH_UNTIL (at most
# TEACH_STEPS steps); the README's "Drawing a digit" says how these were chosen.
TEACH_STEPS = 20
TEACH_LR = 0.005
TEACH_MOMENTUM = 0.0
TEACH_OWN = 10
TEACH_REPLAY = 10
TEACH_UNTIL = 0.9


# ---------------------------------------------------------------------------------------------
# The numbers behind the pad (pure functions; the tests and the notebook use them directly)


def classify(net, image):
    """Class probabilities for one input image: image (24, 24) -> float64 (10,)."""
    x = np.asarray(image, dtype=_dtype(net))
    if x.ndim != 2:
        raise ValueError(f"classify expects one image of shape (H, W); got {x.shape}")
    return net.predict_proba(x[None, None])[0].astype(np.float64)


def _check_answers(net, path=None):
    """Raise ValueError unless net maps one 24 x 24 image to 10 class probabilities."""
    try:
        shape = classify(net, np.zeros((24, 24))).shape
        problem = None if shape == (10,) else f"it gives scores of shape {shape}, not (10,)"
    except ValueError as error:
        problem = str(error)
    if problem:
        what = path if path is not None else "the network"
        raise ValueError(f"{what} does not classify 24 x 24 digits into 10 classes ({problem}); "
                         "choose a network trained on the course's MNIST crops")


def answer_for(probs, confident=CONFIDENT):
    """What the pad shows for probabilities (10,): {"guess", "top", "probability", "confidence"}.

    guess: the top class as text, or "?" when its probability is below ``confident`` (2/3);
    confidence: the top probability in whole percent, rounded down (0.6665 shows "66%" beside
    its "?", never "67%"; 0.9951 shows "99%"), e.g. "97%".
    """
    probs = np.asarray(probs, dtype=np.float64)
    if probs.ndim != 1 or probs.size == 0:
        raise ValueError(f"answer_for expects probabilities of shape (K,); got {probs.shape}")
    top = int(probs.argmax())
    p = float(probs[top])
    return {"guess": str(top) if p >= confident else "?", "top": top, "probability": p,
            "confidence": percent(p)}


def percent(p):
    """A probability in whole percent, rounded down: 0.6665 -> "66%" (below 2/3 stays below)."""
    return f"{math.floor(100 * p + 1e-4)}%"   # + 1e-4: float32's 0.98999... is still "99%"


def saliency_map(net, image):
    """Gradient of the top class score with respect to the input pixels.

    image: (24, 24). Runs forward, then backward from dscores = one-hot at the top class (the
    score, before the softmax), in evaluation mode. Returns (dx: float (24, 24), top class).
    Overwrites the layers' grads (as any backward pass does).
    """
    x = np.asarray(image, dtype=_dtype(net))[None, None]
    with net.evaluating():
        scores = net.forward(x)
        top = int(scores[0].argmax())
        dscores = np.zeros_like(scores)
        dscores[0, top] = 1
        dx = net.backward(dscores)
    return dx[0, 0], top


def teach_steps(net, image, label, replay=None, *, steps=TEACH_STEPS, until=None, rng=None,
                lr=TEACH_LR, momentum=TEACH_MOMENTUM, own=TEACH_OWN, replayed=TEACH_REPLAY):
    """A few SGD steps that teach ``net`` that ``image`` shows ``label``. Updates net in place.

    image: float (24, 24) in [0, 1], the input the network saw. Each step's batch holds ``own``
    copies of it shifted by up to 2 pixels (random 24 x 24 crops of it padded to 28 x 28, the
    training recipe's augmentation) and ``replayed`` random crops of MNIST training digits from
    replay = (uint8 (N, 28, 28), labels (N,)), so the network does not forget the rest.
    replay=None trains on the drawing alone. until: stop before ``steps`` once the network gives
    the (unshifted) image at least this probability of ``label`` (None: always ``steps``).
    Returns the mean loss of each step taken: (steps taken,).

    The steps run in evaluation mode: dropout is off and BatchNorm keeps its running statistics
    (a few batches dominated by one drawing should not move them), so only the weights change.
    """
    _check_label(label)
    image = np.asarray(image, dtype=_dtype(net))
    if image.shape != (24, 24):
        raise ValueError(f"teach expects the (24, 24) input image; got {image.shape}")
    rng = as_generator(rng)
    optimizer = SGD(lr, momentum=momentum)
    padded = np.broadcast_to(np.pad(image, 2), (own, 1, 28, 28))
    crop = RandomCrop(24)
    losses = []
    with net.evaluating():
        for _ in range(int(steps)):
            if until is not None and classify(net, image)[int(label)] >= until:
                break
            x = crop(padded, rng)
            y = np.full(own, int(label))
            if replay is not None and replayed > 0:
                images, labels = replay
                index = rng.integers(0, len(images), size=replayed)
                crops = crop(to_float(images[index]), rng).astype(x.dtype)
                x = np.concatenate([x, crops])
                y = np.concatenate([y, labels[index].astype(y.dtype)])
            losses.append(forward_backward(net, x, y).loss)
            optimizer.step(net)
    return np.array(losses)


def _check_label(label):
    """Raise ValueError unless label is an integer 0..9 (True is not a 1, nor 3.0 a 3)."""
    if (isinstance(label, (bool, np.bool_)) or not isinstance(label, (int, np.integer))
            or not 0 <= label <= 9):
        raise ValueError(f"teach needs a label 0..9, an integer; got {label!r} "
                         f"({type(label).__name__})")


def _dtype(net):
    params = net.parameters()
    return params[0][1].dtype if params else np.float32


# ---------------------------------------------------------------------------------------------
# Pictures: numpy arrays -> PNG bytes for ipywidgets.Image


def png_bytes(pixels):
    """uint8 (H, W) grey or (H, W, 3) RGB -> the bytes of a PNG file (no filter, zlib level 6)."""
    pixels = np.asarray(pixels)
    if pixels.dtype != np.uint8:
        raise ValueError(f"png_bytes expects uint8 pixels; got dtype {pixels.dtype}")
    if pixels.ndim == 2:
        color_type = 0
    elif pixels.ndim == 3 and pixels.shape[2] == 3:
        color_type = 2
    else:
        raise ValueError(f"png_bytes expects (H, W) or (H, W, 3) pixels; got {pixels.shape}")
    height, width = pixels.shape[:2]
    if height == 0 or width == 0:
        raise ValueError(f"png_bytes cannot encode an empty image {pixels.shape}")
    rows = np.zeros((height, 1 + pixels[0].size), dtype=np.uint8)  # filter byte 0 per row
    rows[:, 1:] = pixels.reshape(height, -1)

    def chunk(tag, data):
        return (struct.pack(">I", len(data)) + tag + data
                + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF))

    header = struct.pack(">IIBBBBB", width, height, 8, color_type, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(rows.tobytes(), 6)) + chunk(b"IEND", b""))


def upscale(pixels, factor):
    """Nearest-neighbour enlargement: (H, W[, 3]) -> (H * factor, W * factor[, 3])."""
    return np.repeat(np.repeat(pixels, factor, axis=0), factor, axis=1)


def signed_rgb(values, scale=None):
    """Values (H, W) -> uint8 (H, W, 3): white at 0, red for positive, blue for negative.

    scale: the magnitude shown at full colour (default: max |values|; all-zero stays white).
    """
    values = np.asarray(values, dtype=np.float64)
    scale = float(np.abs(values).max()) if scale is None else float(scale)
    v = np.clip(values / scale, -1, 1) if scale > 0 else np.zeros_like(values)
    pos, neg = np.maximum(v, 0), np.maximum(-v, 0)
    rgb = np.stack([1 - neg, 1 - np.abs(v), 1 - pos], axis=-1)
    return np.round(255 * rgb).astype(np.uint8)


def saliency_rgb(image, dx):
    """The saliency dx (24, 24) over the drawing image (24, 24): uint8 (24, 24, 3).

    The drawing is light grey on white; each pixel is tinted red where raising it raises the top
    score and blue where it lowers it, by |dx| / max |dx|.
    """
    base = 1 - 0.35 * np.clip(np.asarray(image, dtype=np.float64), 0, 1)
    colour = signed_rgb(dx).astype(np.float64) / 255
    strength = np.abs(np.asarray(dx, dtype=np.float64))
    peak = strength.max()
    strength = strength / peak if peak > 0 else strength
    rgb = (1 - strength[..., None]) * base[..., None] + strength[..., None] * colour
    return np.round(255 * rgb).astype(np.uint8)


def _activation_picture(array, scale):
    """One layer's output as a picture: maps (C, H, W) -> a tiled mosaic, scores (K,) -> a row."""
    if array.ndim == 1:
        maps = array[:, None, None]
    elif array.ndim == 3:
        maps = array
    else:
        raise ValueError(f"expected a layer output of shape (C, H, W) or (K,); got {array.shape}")
    c, h, _ = maps.shape
    size = max(1, 60 // h) if array.ndim == 3 else 24
    mosaic = viz.tile_images(np.stack([upscale(m, size) for m in maps]), ncols=min(c, 10), pad=2,
                         normalize=None)
    gaps = np.isnan(mosaic)
    rgb = signed_rgb(np.where(gaps, 0, mosaic), scale)
    rgb[gaps] = 230     # light grey between tiles
    return rgb


def _bars_html(probs):
    rows = []
    top = None if probs is None else int(np.argmax(probs))
    for k in range(10):
        p = 0.0 if probs is None else float(probs[k])
        colour = "#d62728" if k == top else "#1f77b4"
        rows.append(
            f'<div style="display:flex;align-items:center;height:17px">'
            f'<span style="width:1.1em;text-align:right;margin-right:6px">{k}</span>'
            f'<span style="display:inline-block;width:150px;height:11px;background:#e8e8e8">'
            f'<span style="display:block;width:{100 * p:.1f}%;height:100%;background:{colour}">'
            f'</span></span><span style="margin-left:6px;width:3em">{percent(p)}</span></div>')
    return ('<div class="cnnlib-bars" style="font-family:monospace;font-size:12px">'
            + "".join(rows) + "</div>")


def _table_html(before, after):
    """The ten probabilities before and after teaching, one column per digit."""
    cell = 'style="padding:1px 6px;text-align:right"'
    head = "".join(f"<th {cell}>{k}</th>" for k in range(10))
    rows = "".join(
        f"<tr><th {cell}>{name}</th>" + "".join(f"<td {cell}>{percent(p)}</td>" for p in probs) + "</tr>"
        for name, probs in (("before", before), ("after", after)))
    return ('<table class="cnnlib-teach-table" style="font-family:monospace;font-size:12px;'
            f'border-collapse:collapse"><tr><th {cell}>digit</th>{head}</tr>{rows}</table>')


# ---------------------------------------------------------------------------------------------
# The pad


class DigitPad:
    """A drawing box and the network's answer after every stroke, as one ipywidgets layout.

    model: a ``Sequential`` (the pad works on a copy, so a training thread that keeps using the
    original, as the dashboard's does, never races the pad, and "Teach it" never changes it), a
    path to a model file (``cnnlib.serialization.load_model``), or None for the shipped
    ``seed-net.npz`` (``cnnlib.paths.shipped_model``). "Back to shipped weights" restores the weights the model had
    when the pad took it.
    method: the stroke pre-processing (``cnnlib.strokes.METHODS``; default the module's default).
    models_dir: the folder whose ``*.npz`` files the model picker lists after the shipped
    networks (shown when there are several); default ``cnnlib.paths.models_dir()``, where
    "Save" writes too.
    replay: (uint8 images (N, 28, 28), labels (N,)) replayed by "Teach it"; "mnist" (default): the
    50,000 MNIST training digits, loaded on the first teach from the files already in
    ``cnnlib.paths.mnist_dir()`` (never downloaded here: without them teach goes on without
    replay and says so); None: teach on the drawing alone.
    seed: seeds the random shifts and replay draws of "Teach it".

    State: ``strokes`` (list of strokes, each a list of (x, y) canvas points), ``image`` (the
    (24, 24) input the network saw, or None), ``probs`` ((10,) or None), ``answer`` (see
    ``answer_for``; None when the box is empty), ``stroke_times_ms`` (Python time of each
    mouse-up, from the event to the updated widgets; one per ``draw``, which answers once).
    """

    def __init__(self, model=None, *, method=None, models_dir=None, replay="mnist", seed=0,
                 line_width=LINE_WIDTH):
        self.method = pen.DEFAULT_METHOD if method is None else method
        if self.method not in pen.METHODS:
            raise ValueError(f"unknown stroke method {self.method!r}; "
                             f"choose one of {sorted(pen.METHODS)}")
        self.models_dir = Path(default_models_dir() if models_dir is None else models_dir)
        self.line_width = float(line_width)
        self.strokes = []
        self.image = None
        self.probs = None
        self.answer = None
        self.updates = 0
        self.stroke_times_ms = []
        self.teach_result = None
        self._pen_down = False
        self._replaying = False     # inside draw(): mouse-up does not answer
        if not (replay is None or (isinstance(replay, str) and replay == "mnist")
                or (isinstance(replay, tuple) and len(replay) == 2)):
            raise ValueError('replay must be "mnist", None or (images (N, 28, 28), labels (N,)); '
                             f"got {type(replay).__name__}")
        self._replay = replay
        self._rng = np.random.default_rng(seed)
        self._build_widgets()
        self.use_model(SHIPPED_MODEL if model is None else model)

    # -- model ---------------------------------------------------------------------------------

    def use_model(self, model):
        """Switch to another network (a Sequential, copied, or a model file path); answer again.

        To draw with a network the dashboard is training, pass ``dash.snapshot()``.
        """
        if isinstance(model, Sequential):
            net, path = copy.deepcopy(model), None
        else:
            path = Path(model)
            if not path.is_file():
                raise FileNotFoundError(
                    f"no model file at {path}; train one (python -m cnnlib train ... --out {path})"
                    " or pass DigitPad(model=...) a network or another file")
            net = load_model(path)
        _check_answers(net, path)   # before anything changes: a bad model leaves the pad as it was
        self.net, self.model_path = net, path
        self._shipped = [param.copy() for _, param, _ in net.parameters()]
        self.teach_result = None
        self._teach_table.value = self._status.value = ""
        self._activation_images = None
        self._model_label.value = f"model: {path.name if path else 'in memory'}"
        self._refresh_model_picker()
        self._update_answer()

    def reset_weights(self):
        """Back to the weights the model had when loaded (undoes every "Teach it")."""
        for (_, param, _), saved in zip(self.net.parameters(), self._shipped):
            np.copyto(param, saved)
        self.teach_result = None
        self._teach_table.value = ""
        self._status.value = "back to the shipped weights"
        self._update_answer()

    def save(self, path, overwrite=False):
        """Save the current (taught) network with ``cnnlib.serialization.save_model`` (atomic).

        Refuses to replace an existing file, the shipped model included, unless overwrite=True.
        Returns the path written.
        """
        path = Path(path)
        if path.suffix != ".npz":
            raise ValueError(f"model files end in .npz; got {path}")
        if path.exists() and not overwrite:
            what = "the shipped model" if self._is_shipped(path) else "a file"
            raise FileExistsError(f"{path} is {what} and already exists; choose another path or "
                                  "tick 'overwrite' to replace it")
        taught = 0 if self.teach_result is None else self.teach_result["total_steps"]
        save_model(self.net, path, source="cnnlib.ui.pad.DigitPad", taught_steps=taught)
        self._refresh_model_picker()
        return path

    def _is_shipped(self, path):
        targets = {SHIPPED_MODEL.resolve()}
        if self.model_path is not None:
            targets.add(self.model_path.resolve())
        return path.resolve() in targets

    # -- events --------------------------------------------------------------------------------

    def mouse_down(self, x, y):
        """Pen down at canvas point (x, y): a new stroke, drawn as a dot."""
        point = self._clamp(x, y)
        if point is None:
            return
        x, y = point
        if not self.strokes:
            self.canvas.clear()  # wipe the hint
        self._pen_down = True
        self.strokes.append([(x, y)])
        self.canvas.fill_circle(x, y, self.line_width / 2)

    def mouse_move(self, x, y):
        """Pen moved: extend the stroke by a segment from its last point (when the pen is down)."""
        if not self._pen_down:
            return
        point = self._clamp(x, y)
        if point is None:
            return
        x, y = point
        stroke = self.strokes[-1]
        x0, y0 = stroke[-1]
        if (x - x0) ** 2 + (y - y0) ** 2 < MIN_STEP ** 2:
            return
        stroke.append((x, y))
        self.canvas.stroke_line(x0, y0, x, y)

    def mouse_up(self, x, y):
        """Pen up: the stroke ends and the network answers (during ``draw``: once, at its end)."""
        if not self._pen_down:
            return
        start = time.perf_counter()
        self.mouse_move(x, y)
        self._pen_down = False
        if self._replaying:
            return
        self._update_answer()
        self.stroke_times_ms.append(1e3 * (time.perf_counter() - start))

    def mouse_out(self, x, y):
        """The pointer left the box: a stroke in progress ends there."""
        self.mouse_up(x, y)

    def touch_start(self, touches):
        """touches: [(x, y), ...]; the first finger draws."""
        if touches:
            self.mouse_down(*touches[0])

    def touch_move(self, touches):
        if touches:
            self.mouse_move(*touches[0])

    def touch_end(self, touches):
        """touches: the fingers still down (often none); the stroke ends at its last point."""
        if self._pen_down:
            self.mouse_up(*self.strokes[-1][-1])

    touch_cancel = touch_end

    def draw(self, strokes):
        """Replay strokes [[(x, y), ...], ...] (canvas coordinates) through the mouse handlers.

        The canvas commands of the whole replay go to the browser as one message, and the
        network answers once, after the last stroke: answering after each one pre-processes every
        stroke so far again, which made a long replay take time growing with its square.
        """
        drawn = False
        self._replaying = True
        try:
            with hold_canvas():
                for stroke in strokes:
                    stroke = [point for point in stroke if self._clamp(*point) is not None]
                    if len(stroke) == 0:
                        continue
                    self.mouse_down(*stroke[0])
                    for x, y in stroke[1:]:
                        self.mouse_move(x, y)
                    self.mouse_up(*stroke[-1])
                    drawn = True
        finally:
            self._replaying = False
        if drawn:
            start = time.perf_counter()
            self._update_answer()
            self.stroke_times_ms.append(1e3 * (time.perf_counter() - start))

    def clear(self, *_):
        """Empty the box (the hint shows again)."""
        self.strokes = []
        self._pen_down = False
        self._redraw()
        self._update_answer()

    def undo(self, *_):
        """Remove the last stroke and answer for the ones left."""
        if self.strokes:
            self.strokes.pop()
        self._pen_down = False
        self._redraw()
        self._update_answer()

    def teach(self, label, steps=TEACH_STEPS, until=TEACH_UNTIL):
        """"Teach it": up to ``steps`` SGD steps towards ``label`` on the current drawing, stopping
        once it gets probability ``until`` (see teach_steps).

        Returns {"label", "before" (10,), "after" (10,), "losses" (steps taken,), "replay"
        (bool), "total_steps" (since the last reset)}, also kept as ``teach_result``.
        """
        _check_label(label)
        if self.image is None:
            raise ValueError("draw a digit before teaching: the box is empty")
        replay = self._replay_data()
        before = self.probs.copy()
        losses = teach_steps(self.net, self.image, label, replay, steps=steps, until=until,
                             rng=self._rng)
        self._update_answer()
        total = len(losses) + (0 if self.teach_result is None else self.teach_result["total_steps"])
        self.teach_result = {"label": int(label), "before": before, "after": self.probs.copy(),
                             "losses": losses, "replay": replay is not None, "total_steps": total}
        self._teach_table.value = _table_html(before, self.probs)
        return self.teach_result

    def saliency(self):
        """Gradient of the top class score with respect to the input: (dx (24, 24), top class)."""
        if self.image is None:
            raise ValueError("the box is empty: draw a digit first")
        return saliency_map(self.net, self.image)

    def activations(self):
        """Every layer's output for the current drawing, in evaluation mode:
        [(name, array without the batch axis), ...], from ("input", (1, 24, 24)) to e.g.
        ("7: Linear", (10,)) (``cnnlib.ui.viz.activations``)."""
        if self.image is None:
            raise ValueError("the box is empty: draw a digit first")
        x = np.asarray(self.image, dtype=_dtype(self.net))[None, None]
        return [(name, out[0]) for name, out in viz.activations(self.net, x)]

    # -- display -------------------------------------------------------------------------------

    def _repr_mimebundle_(self, **kwargs):
        return self.widget._repr_mimebundle_(**kwargs)

    def _build_widgets(self):
        self.canvas = Canvas(width=CANVAS_SIZE, height=CANVAS_SIZE,
                             layout=widgets.Layout(width=f"{CANVAS_SIZE}px",
                                                   height=f"{CANVAS_SIZE}px"))
        self.canvas.add_class(CSS_CLASS)
        for event in ("mouse_down", "mouse_move", "mouse_up", "mouse_out",
                      "touch_start", "touch_move", "touch_end", "touch_cancel"):
            getattr(self.canvas, f"on_{event}")(getattr(self, event))
        self.canvas.on_client_ready(self._redraw)
        # The border sits on a wrapper: ipycanvas maps clicks by the canvas's own box.
        box = widgets.Box([self.canvas], layout=widgets.Layout(
            border="2px solid #888", width="fit-content", height="fit-content"))
        self._clear_button = widgets.Button(description="Clear", icon="eraser")
        self._undo_button = widgets.Button(description="Undo last stroke", icon="undo")
        self._clear_button.add_class("cnnlib-clear")
        self._undo_button.add_class("cnnlib-undo")
        self._clear_button.on_click(self.clear)
        self._undo_button.on_click(self.undo)
        self._model_picker = widgets.Dropdown(description="network",
                                              layout=widgets.Layout(display="none"))
        self._model_picker.observe(self._on_pick, names="value")
        self._model_label = widgets.Label()
        self._answer = widgets.HTML()
        self._answer.add_class("cnnlib-answer-box")
        self._bars = widgets.HTML()
        self._seen = widgets.Image(format="png", width=120, height=120)
        left = widgets.VBox([box, widgets.HBox([self._clear_button, self._undo_button]),
                       self._model_picker, self._model_label])
        seen_caption = widgets.HTML("<small>what the network sees (24 x 24)</small>")
        right = widgets.VBox([self._answer, self._bars, seen_caption, self._seen],
                             layout=widgets.Layout(margin="0 0 0 16px"))
        self._panels = widgets.Accordion(children=self._build_panels(),
                                         titles=("Activations of every layer",
                                           "Saliency: which pixels matter", "Teach it"),
                                         selected_index=None)
        self._panels.observe(lambda change: self._refresh_panel(), names="selected_index")
        self.widget = widgets.VBox([widgets.HBox([left, right]), self._panels])
        self._redraw()

    def _build_panels(self):
        self._activation_box = widgets.VBox()
        self._saliency_image = widgets.Image(format="png", width=192, height=192)
        self._saliency_text = widgets.HTML()
        saliency = widgets.VBox([self._saliency_text, self._saliency_image])
        self._label_picker = widgets.Dropdown(options=list(range(10)), value=0,
                                              description="it is a",
                                              layout=widgets.Layout(width="140px"))
        self._teach_button = widgets.Button(description="Teach it", icon="graduation-cap")
        self._reset_button = widgets.Button(description="Back to shipped weights", icon="history",
                                            layout=widgets.Layout(width="220px"))
        self._save_path = widgets.Text(value=str(self.models_dir / "taught.npz"),
                                       description="save to", layout=widgets.Layout(width="460px"))
        self._overwrite = widgets.Checkbox(value=False, description="overwrite", indent=False)
        self._save_button = widgets.Button(description="Save", icon="save")
        self._status = widgets.Label()
        self._teach_table = widgets.HTML()
        self._teach_button.on_click(self._on_teach)
        self._reset_button.on_click(lambda _: self.reset_weights())
        self._save_button.on_click(self._on_save)
        teach = widgets.VBox([
            widgets.HBox([self._label_picker, self._teach_button, self._reset_button]),
            widgets.HBox([self._save_path, self._overwrite, self._save_button]),
            self._status, self._teach_table])
        return [self._activation_box, saliency, teach]

    def _redraw(self, *_):
        """Paint the canvas from ``strokes`` (after undo/clear, or for a new browser view)."""
        c = self.canvas
        with hold_canvas():
            c.clear()
            c.line_width = self.line_width
            c.line_cap = "round"
            c.line_join = "round"
            c.stroke_style = c.fill_style = "black"
            if not self.strokes:
                c.fill_style = "#c8c8c8"
                c.font = "22px sans-serif"
                c.text_align = "center"
                c.fill_text(f"{HINT} here (0-9)", CANVAS_SIZE / 2, CANVAS_SIZE / 2)
                c.fill_style = "black"
            for stroke in self.strokes:
                c.fill_circle(*stroke[0], self.line_width / 2)
                if len(stroke) > 1:
                    c.stroke_lines(stroke)

    def _clamp(self, x, y):
        """(x, y) moved into the box, or None for a point that is not finite (a NaN kept in a
        stroke would make every later answer fail): such an event is dropped."""
        x, y = float(x), float(y)
        if not (math.isfinite(x) and math.isfinite(y)):
            return None
        return (min(max(x, 0.0), CANVAS_SIZE), min(max(y, 0.0), CANVAS_SIZE))

    def _update_answer(self):
        """Pre-process the strokes, classify, and show the answer (the per-stroke work)."""
        if self.strokes:
            self.image = pen.preprocess(self.strokes, (CANVAS_SIZE, CANVAS_SIZE), self.method)
            self.probs = classify(self.net, self.image)
            self.answer = answer_for(self.probs)
            self._seen.value = png_bytes(upscale(np.round(255 * self.image).astype(np.uint8), 5))
        else:
            self.image = self.probs = self.answer = None
            self._seen.value = png_bytes(np.zeros((120, 120), dtype=np.uint8))
        self.updates += 1
        self._bars.value = _bars_html(self.probs)
        self._refresh_panel()
        self._answer.value = self._answer_html()  # last: the browser test waits for it

    def _answer_html(self):
        head = (f'<div class="cnnlib-answer" data-updates="{self.updates}" '
                f'data-strokes="{len(self.strokes)}"')
        if self.answer is None:
            return (f'{head} data-guess=""><div class="cnnlib-hint" style="font-size:28px;'
                    f'color:#888;height:150px;line-height:150px">{HINT}</div></div>')
        a = self.answer
        note = (f"sure it's a {a['top']}" if a["guess"] != "?"
                else f"best guess {a['top']}, below 2/3")
        probs = ",".join(f"{p:.4f}" for p in self.probs)
        return (f'{head} data-guess="{a["guess"]}" data-probs="{probs}">'
                f'<div class="cnnlib-guess" style="font-size:110px;font-weight:bold;'
                f'line-height:120px;height:120px">{a["guess"]}</div>'
                f'<div class="cnnlib-confidence" style="font-size:22px">{a["confidence"]}</div>'
                f'<div style="color:#666">{note}</div></div>')

    def _refresh_panel(self):
        """Render the open panel only (activations and saliency cost a few ms each)."""
        index = self._panels.selected_index
        if index == 0:
            self._render_activations()
        elif index == 1:
            self._render_saliency()
        elif index == 2 and self.answer is not None:
            self._label_picker.value = self.answer["top"]

    def _render_activations(self):
        if self.image is None:
            self._activation_box.children = [widgets.HTML(f"<i>{HINT} to see its activations</i>")]
            self._activation_images = None
            return
        outputs = self.activations()
        if self._activation_images is None:
            self._activation_images = [(widgets.HTML(), widgets.Image(format="png"))
                                       for _ in outputs]
            self._activation_box.children = [widgets.HBox([text, image], layout=widgets.Layout(
                align_items="center")) for text, image in self._activation_images]
        for (name, array), (text, image) in zip(outputs, self._activation_images):
            shape = " x ".join(str(n) for n in array.shape)
            text.value = (f'<div style="width:150px;font-family:monospace;font-size:12px">{name}'
                          f"<br>({shape})</div>")
            # One scale per layer: for the scores row too, so the top class stands out.
            image.value = png_bytes(_activation_picture(array, float(np.abs(array).max())))

    def _render_saliency(self):
        if self.image is None:
            self._saliency_text.value = f"<i>{HINT} to see which pixels matter</i>"
            self._saliency_image.value = png_bytes(np.full((192, 192), 255, dtype=np.uint8))
            return
        dx, top = self.saliency()
        self._saliency_text.value = (
            f"d(score of {top}) / d(input pixel): <span style='color:#d62728'>red</span> pixels "
            f"raise the score of {top} when brighter, <span style='color:#1f77b4'>blue</span> "
            "ones lower it")
        self._saliency_image.value = png_bytes(upscale(saliency_rgb(self.image, dx), 8))

    def _refresh_model_picker(self):
        own = (sorted(f for f in self.models_dir.glob("*.npz") if f.is_file())
               if self.models_dir.is_dir() else [])
        files = shipped_models() + [f for f in own if f.name not in
                                    {shipped.name for shipped in shipped_models()}]
        picker = self._model_picker
        picker.unobserve(self._on_pick, names="value")
        try:
            picker.options = [(f.name, str(f)) for f in files]
            current = str(self.model_path) if self.model_path else None
            picker.value = current if current in [str(f) for f in files] else None
        finally:
            picker.observe(self._on_pick, names="value")
        picker.layout.display = "flex" if len(files) > 1 else "none"

    def _on_pick(self, change):
        if change["new"]:
            try:
                self.use_model(change["new"])
            # ModelFileError is a ValueError; an absurd file can also run out of memory.
            except (ValueError, OSError, MemoryError) as error:
                self._refresh_model_picker()        # back to the model that still answers
                in_use = self.model_path.name if self.model_path else "in memory"
                self._status.value = str(error)
                self._model_label.value = (f"model: {in_use} (could not load "
                                           f"{Path(change['new']).name}: {error})")

    def _on_teach(self, _):
        try:
            result = self.teach(self._label_picker.value)
        except (ValueError, OSError) as error:
            self._status.value = str(error)
            return
        label, taken = result["label"], len(result["losses"])
        note = "" if result["replay"] else " (without MNIST replay: the data is not available)"
        if not result["replay"] and isinstance(self._replay, str):     # "mnist", not on disk
            note = (" (without MNIST replay: the data is not available; `python -m cnnlib data` "
                    f"puts it in {mnist_dir()} and the next teach uses it)")
        if taken == 0:
            self._status.value = (f"it already gives {label} at least {TEACH_UNTIL:.0%}: "
                                  "nothing to teach")
        else:
            self._status.value = (f"{taken} SGD steps towards {label}{note}; "
                                  f"{result['total_steps']} taught since the shipped weights")

    def _on_save(self, _):
        try:
            path = self.save(self._save_path.value, overwrite=self._overwrite.value)
        except (ValueError, OSError) as error:
            self._status.value = str(error)
            return
        self._overwrite.value = False  # a deliberate choice each time
        self._status.value = f"saved to {path}"

    def _replay_data(self):
        """The digits teach replays, (images, labels), or None.

        "mnist": the training digits from the files already in ``cnnlib.paths.mnist_dir()``,
        loaded once. Never downloaded from here: looking for MNIST without a network blocked the
        kernel for over a minute. Without the files this is None (teach goes on at once, without
        replay), and the next teach looks again.
        """
        if isinstance(self._replay, str) and self._replay == "mnist":
            try:
                images, labels, _, _ = load_mnist(mnist_dir(), sources=(), progress=False)
            except (OSError, ValueError, RuntimeError):   # missing, or failing its hash check
                return None
            x_train, y_train, _, _ = split_train_validation(images, labels)
            self._replay = (x_train, y_train)
        return self._replay
