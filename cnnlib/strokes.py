"""From pen strokes to the 24x24 image the network sees: stroke pre-processing in pure numpy.

A drawing is a list of strokes; a stroke is the pen-down trajectory, a sequence of (x, y) points in
drawing order with y pointing down (screen convention), in any units. ``preprocess`` turns it into
the float32 (24, 24) image in [0, 1] (white ink on black, like MNIST) that the network classifies:

    image = preprocess(strokes, box_size=(280, 280))          # DEFAULT_METHOD
    image = preprocess(strokes, method="original")             # the original demo's recipe

Two methods (``METHODS``):

- ``"original"``, the original webcnn demo's: crop to the bounding box of the drawn ink, redraw the
  strokes with the line width scaled by the crop-to-canvas ratio (so a small drawing is not a
  blob), and fit the crop into 24x24 keeping its aspect ratio with a 1-pixel margin (as the
  demo does it: the margin is taken after scaling, so the shorter side is squeezed slightly).
- ``"mnist"``, MNIST's own normalization: fit the digit into a 20x20 box keeping its aspect ratio,
  place it in a 28x28 field so that its centre of mass is the field's centre, and take the centre
  24x24 (the crop the network is evaluated on).

"original" is ``DEFAULT_METHOD``, chosen with the shipped network (``data/models/seed-net.npz``) on
the 12 tuning writers of 600 real pen digits (UNIPEN, 24 writers; notebook 10): with the network
shipped first it read 97.7% of their digits against 96.4% with "mnist"; with today's the two tie
at 97.0% (293 of 302), and the default stays. On the 12 held-out writers both read 289 of 298
(96.98%, just under the course's 97% goal). Across networks the two trade places by a point or so either way; both are much better
than shrinking the whole drawing box.

Both draw the strokes with ``rasterize``: an anti-aliased thick-line rasterizer with round caps
and joins, vectorized as the distance from every pixel centre to every segment.

Coordinates: in an image, pixel (row r, column c) is the unit square [c, c+1) x [r, r+1); its
centre is (c + 0.5, r + 0.5). Points are (x, y) = (column direction, row direction).

Recorded digits (``load_strokes``) come in any units; ``fit_to_box`` scales one the way a person
would draw it in the 280x280 drawing box, and then it goes through exactly the widget's pipeline.

What it trades away: no pressure or timing information is used; the rasterizer computes every
pixel against every segment (fine for 24x24 or 28x28 targets, not for large images).
"""

from __future__ import annotations

import json
import math
import numbers
from collections.abc import Sequence
from pathlib import Path

import numpy as np

__all__ = [
    "METHODS", "DEFAULT_METHOD", "REJECT_BELOW", "IMAGE_SIZE",
    "as_strokes", "bounding_box", "transform", "fit_to_box", "resample", "rasterize",
    "center_of_mass", "gaussian_blur", "preprocess_original", "preprocess_mnist", "preprocess",
    "load_strokes", "records_to_images", "TUNING_WRITERS", "split_by_writer", "classify_records",
    "score", "RandomThickness", "slashed_zeros",
]

IMAGE_SIZE = 24
"""Side of the image the network sees."""

REJECT_BELOW = 2 / 3
"""The original demo answers "?" when the top class probability is below this."""

ORIGINAL_LINE_WIDTH = 28 / 300
"""The original demo's pen as a fraction of its canvas: a 28 px line on a 300 x 300 canvas."""

MNIST_FIELD = 28
"""MNIST's image side; the digit is centred in it by its centre of mass."""

MNIST_CENTER = (14.5, 14.5)
"""Where MNIST puts a digit's centre of mass, (x, y) in our continuous pixel coordinates: on the
centre of pixel (14, 14), half a pixel past the field's middle (measured in notebook 10)."""

MIN_EXTENT = 0.05
"""A drawing smaller than this fraction of the drawing box is scaled as if it were this big,
so a single click is drawn as a dot, not blown up to fill the box."""

MNIST_WIDTH = 2.0
"""The "mnist" method's pen width in output pixels. Chosen on the tuning writers only: of pen
widths 1.5-3 and boxes 20-22, width 2 in the 20 px box had the best accuracy averaged over four
networks (the shipped one and three 2-epoch ones), so the choice does not hinge on one network."""

MNIST_BOX = 20.0
"""The "mnist" method's box: the ink's longer side in output pixels (MNIST: 20)."""

RESAMPLE_STEP = 0.5
"""Strokes are thinned to about one point per this much path length, in output pixels."""


# ---------------------------------------------------------------------------------------------
# Validating and moving strokes


def as_strokes(strokes, what: str = "strokes") -> list[np.ndarray]:
    """Check a drawing and return it as a list of float64 arrays, one (n_i, 2) array per stroke.

    strokes: a sequence of strokes, each a sequence of (x, y) pairs (or an (n, 2) array).
    what: how to name the drawing in error messages (e.g. "record 12").
    Raises ValueError naming the stroke and point when a point is not two finite numbers, when a
    stroke has no points, or when there are no strokes at all.
    """
    if isinstance(strokes, (str, bytes)) or not isinstance(strokes, (Sequence, np.ndarray)):
        raise ValueError(f"{what}: expected a list of strokes, each a list of [x, y] points; "
                         f"got {type(strokes).__name__}")
    if len(strokes) == 0:
        raise ValueError(f"{what}: nothing drawn (no strokes); draw a digit first")
    result = []
    for k, stroke in enumerate(strokes):
        if isinstance(stroke, np.ndarray) and stroke.dtype.kind in "fiu":
            points = stroke.astype(np.float64)
        else:
            points = _points_from_lists(stroke, f"{what}, stroke {k}")
        if points.ndim != 2 or points.shape[1] != 2:
            raise ValueError(f"{what}, stroke {k}: expected points of shape (n, 2); "
                             f"got {points.shape}")
        if len(points) == 0:
            raise ValueError(f"{what}, stroke {k}: a stroke needs at least one point; got none")
        bad = ~np.isfinite(points).all(axis=1)
        if bad.any():
            i = int(np.argmax(bad))
            raise ValueError(f"{what}, stroke {k}, point {i}: coordinates must be finite numbers; "
                             f"got {points[i].tolist()}")
        result.append(points)
    return result


def _points_from_lists(stroke, what: str) -> np.ndarray:
    if isinstance(stroke, (str, bytes)) or not isinstance(stroke, Sequence):
        raise ValueError(f"{what}: expected a list of [x, y] points; got {type(stroke).__name__}")
    for i, point in enumerate(stroke):
        ok = (isinstance(point, (Sequence, np.ndarray)) and not isinstance(point, (str, bytes))
              and len(point) == 2
              and all(isinstance(v, numbers.Real) and not isinstance(v, bool) for v in point))
        if not ok:
            raise ValueError(f"{what}, point {i}: expected [x, y], two numbers; got {point!r}")
    try:
        return np.array(stroke, dtype=np.float64).reshape(len(stroke), 2)
    except OverflowError:  # a JSON integer too large for a float
        raise ValueError(f"{what}: a coordinate is too large to be a number of pixels "
                         "(more than 1e308)") from None


def bounding_box(strokes) -> tuple[float, float, float, float]:
    """The tight box around every point: (x_min, y_min, x_max, y_max)."""
    points = np.concatenate(as_strokes(strokes))
    x_min, y_min = points.min(axis=0)
    x_max, y_max = points.max(axis=0)
    return float(x_min), float(y_min), float(x_max), float(y_max)


def transform(strokes, scale, offset) -> list[np.ndarray]:
    """Every point p -> p * scale + offset. scale: a number or (sx, sy); offset: (dx, dy)."""
    scale = np.broadcast_to(np.asarray(scale, dtype=np.float64), (2,))
    offset = np.broadcast_to(np.asarray(offset, dtype=np.float64), (2,))
    return [points * scale + offset for points in as_strokes(strokes)]


def fit_to_box(strokes, size: float = 280, fill: float = 0.6) -> list[np.ndarray]:
    """Scale a recorded digit uniformly and centre it in a size x size drawing box.

    The larger side of the digit's bounding box becomes ``fill * size`` (60% of 280 = 168 px by
    default, about how large people draw in the widget). A single point is only centred.
    Returns a list of float64 (n_i, 2) arrays in box coordinates (y down).
    """
    if not (isinstance(size, numbers.Real) and size > 0 and isinstance(fill, numbers.Real)
            and 0 < fill <= 1):
        raise ValueError(f"fit_to_box needs a number size > 0 (the side of the square drawing "
                         f"box) and 0 < fill <= 1; got size={size!r}, fill={fill!r}")
    x_min, y_min, x_max, y_max = bounding_box(strokes)
    extent = max(x_max - x_min, y_max - y_min)
    scale = fill * size / extent if extent > 0 else 1.0
    centre = np.array([(x_min + x_max) / 2, (y_min + y_max) / 2])
    return transform(strokes, scale, size / 2 - centre * scale)


def resample(points: np.ndarray, min_step: float) -> np.ndarray:
    """Thin a stroke to about one point per ``min_step`` of path length (first and last kept).

    points: (n, 2). Returns (m, 2), m <= n: a point is kept when the path length from the start
    reaches the next multiple of ``min_step``. Mouse events a fraction of an output pixel apart
    add nothing to the picture but cost time in ``rasterize``, so they are dropped.
    """
    if len(points) <= 2 or min_step <= 0:
        return points
    step_lengths = np.sqrt((np.diff(points, axis=0) ** 2).sum(axis=1))
    arc = np.concatenate([[0.0], np.cumsum(step_lengths)])
    bucket = np.floor(arc / min_step)
    keep = np.empty(len(points), dtype=bool)
    keep[0] = True
    keep[1:] = bucket[1:] > bucket[:-1]  # the first point past each multiple of min_step
    keep[-1] = True
    return points[keep]


# ---------------------------------------------------------------------------------------------
# Rasterizing


def rasterize(strokes, shape, width: float, *, ramp: float = 1.0,
              chunk: int = 16) -> np.ndarray:
    """Draw strokes as anti-aliased thick lines with round caps and joins.

    strokes: list of (n_i, 2) points (x, y) in pixel units of the output (see the module
        docstring for the pixel convention). A stroke of one point is a round dot.
    shape: (H, W) of the output image.
    width: line width in pixels (the dot's diameter).
    ramp: width of the anti-aliasing ramp in pixels (1: a 1-pixel ramp; smaller: harder edges).
    chunk: consecutive segments per broadcasting step, each step on the pixels they can reach.

    Each pixel's coverage is a function of its centre's distance d to the nearest segment:
    clip((width/2 - d) / ramp + 1/2, 0, 1). For a straight line this sums to ``width`` across it.
    Returns float32 (H, W) in [0, 1]; the max over segments, so crossings do not add up.
    """
    if len(shape) != 2 or any(int(v) != v for v in shape):
        raise ValueError(f"rasterize needs a shape (H, W) of two whole numbers; got {shape!r}")
    height, wide = (int(v) for v in shape)
    if height < 1 or wide < 1:
        raise ValueError(f"rasterize needs a positive shape (H, W); got {tuple(shape)}")
    if not width > 0 or not ramp > 0:
        raise ValueError(f"rasterize needs width > 0 and ramp > 0; got width={width!r}, "
                         f"ramp={ramp!r}")
    strokes = as_strokes(strokes)
    # Segments (S, 2) start a and end b; a one-point stroke is a zero-length segment (a dot).
    starts, ends = [], []
    for points in strokes:
        if len(points) == 1:
            starts.append(points)
            ends.append(points)
        else:
            starts.append(points[:-1])
            ends.append(points[1:])
    a = np.concatenate(starts)
    b = np.concatenate(ends)
    ab = b - a
    length2 = (ab * ab).sum(axis=1)
    inv_length2 = np.divide(1.0, length2, out=np.zeros_like(length2), where=length2 > 0)

    # Pixel centres (P,) per axis; P = H * W.
    # Work chunk by chunk of consecutive segments, each only on the window of pixels it can
    # reach (its box grown by the pen radius and the ramp): drawings are local, so this skips
    # most of the image. min_d2[r, c] is the squared distance from pixel centre (c+.5, r+.5).
    reach = width / 2 + ramp / 2 + 1
    min_d2 = np.full((height, wide), np.inf)
    for start in range(0, len(a), chunk):
        sl = slice(start, start + chunk)
        lo = np.minimum(a[sl], b[sl]).min(axis=0) - reach
        hi = np.maximum(a[sl], b[sl]).max(axis=0) + reach
        c0, r0 = max(0, int(lo[0])), max(0, int(lo[1]))
        c1, r1 = min(wide, int(math.ceil(hi[0]))), min(height, int(math.ceil(hi[1])))
        if c0 >= c1 or r0 >= r1:
            continue  # the chunk is outside the image
        px = (np.arange(c0, c1) + 0.5)[None, None, :]  # (1, 1, w)
        py = (np.arange(r0, r1) + 0.5)[None, :, None]  # (1, h, 1)
        ax, ay = a[sl, 0, None, None], a[sl, 1, None, None]  # (s, 1, 1)
        abx, aby = ab[sl, 0, None, None], ab[sl, 1, None, None]
        rx, ry = px - ax, py - ay  # (s, 1, w), (s, h, 1)
        # Projection of the pixel centre onto the segment, clipped to its ends: (s, h, w).
        t = (rx * abx + ry * aby) * inv_length2[sl, None, None]
        np.clip(t, 0.0, 1.0, out=t)
        dx = rx - t * abx
        dy = ry - t * aby
        d2 = (dx * dx + dy * dy).min(axis=0)
        np.minimum(min_d2[r0:r1, c0:c1], d2, out=min_d2[r0:r1, c0:c1])

    coverage = (width / 2 - np.sqrt(min_d2)) / ramp + 0.5
    np.clip(coverage, 0.0, 1.0, out=coverage)
    return coverage.astype(np.float32)


def center_of_mass(image: np.ndarray) -> tuple[float, float]:
    """Intensity-weighted mean pixel centre (x, y) of a 2-D image (H, W).

    Raises ValueError for an all-zero image (no mass).
    """
    image = np.asarray(image, dtype=np.float64)
    if image.ndim != 2:
        raise ValueError(f"center_of_mass expects an image (H, W); got shape {image.shape}")
    total = image.sum()
    if not total > 0:
        raise ValueError("center_of_mass: the image is empty (all zeros); nothing to centre")
    rows = np.arange(image.shape[0]) + 0.5
    cols = np.arange(image.shape[1]) + 0.5
    x = float(image.sum(axis=0) @ cols / total)
    y = float(image.sum(axis=1) @ rows / total)
    return x, y


def gaussian_blur(image: np.ndarray, sigma: float) -> np.ndarray:
    """Separable Gaussian blur of a 2-D image (H, W), zero outside; sigma in pixels (0: none).

    Returns float32 (H, W), rescaled so its maximum is the input's maximum (ink stays ink).
    """
    image = np.asarray(image, dtype=np.float32)
    if sigma <= 0:
        return image
    radius = max(1, int(math.ceil(3 * sigma)))
    offsets = np.arange(-radius, radius + 1)
    kernel = np.exp(-0.5 * (offsets / sigma) ** 2)
    kernel /= kernel.sum()
    padded = np.pad(image.astype(np.float64), radius)
    # Rows then columns: (H + 2r, W + 2r) -> (H + 2r, W) -> (H, W).
    blurred = sum(k * padded[:, radius + o:radius + o + image.shape[1]]
                  for k, o in zip(kernel, offsets))
    blurred = sum(k * blurred[radius + o:radius + o + image.shape[0], :]
                  for k, o in zip(kernel, offsets))
    peak = blurred.max()
    if peak > 0:
        blurred *= image.max() / peak
    return blurred.astype(np.float32)


# ---------------------------------------------------------------------------------------------
# The methods


def _box_size(box_size) -> tuple[float, float]:
    if isinstance(box_size, numbers.Real):
        box_size = (box_size, box_size)
    try:
        width, height = (float(v) for v in box_size)
    except (TypeError, ValueError):
        raise ValueError(f"box_size must be (width, height) in the strokes' units; "
                         f"got {box_size!r}") from None
    if not (width > 0 and height > 0):
        raise ValueError(f"box_size must be positive; got {box_size!r}")
    return width, height


def _resampled(strokes, scale: float) -> list[np.ndarray]:
    """Resample so points are >= RESAMPLE_STEP output pixels apart (scale: output px per unit)."""
    return [resample(points, RESAMPLE_STEP / scale) for points in strokes]


def preprocess_original(strokes, box_size=(280, 280)) -> np.ndarray:
    """The original webcnn demo's pre-processing, re-done in vector form.

    1. The demo draws with a pen ``ORIGINAL_LINE_WIDTH`` of the canvas width (28 px on 300) and
       crops the canvas to the bounding box of the ink (the points' box grown by half the pen).
    2. It redraws the strokes with the pen scaled by the crop-to-canvas ratio
       ``max(crop_w / W, crop_h / H)`` (at least 1 px), so a small drawing is not a blob.
    3. It scales the crop into 24x24 keeping the aspect ratio, with a 1-pixel margin, centring
       it along the shorter side, and samples it nearest-neighbour (hard edges).

    Here the strokes are drawn straight at 24x24 with the same geometry, including the demo's
    offsets (a square crop sits at the top-left corner, not centred). Nearest-neighbour sampling
    of the anti-aliased canvas is modelled by an anti-aliasing ramp one canvas pixel wide.

    strokes: list of strokes in box coordinates; box_size: (W, H) of the drawing canvas.
    Returns float32 (24, 24) in [0, 1].
    """
    strokes = as_strokes(strokes)
    box_w, box_h = _box_size(box_size)
    pen = ORIGINAL_LINE_WIDTH * box_w
    x_min, y_min, x_max, y_max = bounding_box(strokes)
    # The ink's pixel box on the canvas (the demo scans pixels, clipped to the canvas).
    x_lo = max(0.0, math.floor(x_min - pen / 2))
    y_lo = max(0.0, math.floor(y_min - pen / 2))
    x_hi = min(box_w - 1, math.ceil(x_max + pen / 2) - 1)
    y_hi = min(box_h - 1, math.ceil(y_max + pen / 2) - 1)
    if x_hi < x_lo or y_hi < y_lo:
        raise ValueError(f"no ink inside the {box_w:g} x {box_h:g} box: the strokes span x "
                         f"{x_min:g}..{x_max:g}, y {y_min:g}..{y_max:g}; scale them into the box "
                         "first (fit_to_box) or pass the box they were drawn in as box_size")
    crop_w, crop_h = max(x_hi - x_lo, 1.0), max(y_hi - y_lo, 1.0)
    scaled_pen = max(1.0, math.floor(pen * max(crop_w / box_w, crop_h / box_h)))

    size, pad = IMAGE_SIZE, 1
    # The demo's destination rectangle (x_off, y_off, dest_w, dest_h) for drawImage.
    if crop_w > crop_h:
        x_off = pad
        y_off = size / (crop_w + 2 * pad) * (crop_w - crop_h) / 2 + pad
        dest_w, dest_h = size - 2 * pad, size * crop_h / crop_w - 2 * pad
    elif crop_h > crop_w:
        x_off = size / crop_h * (crop_h - crop_w) / 2 + pad
        y_off = pad
        dest_w, dest_h = size * crop_w / crop_h - 2 * pad, size - 2 * pad
    else:
        x_off = y_off = 0
        dest_w = dest_h = size - 2 * pad
    # (These formulas are the demo's own, margins and offsets included, so the two branches
    # differ: the margin is taken after scaling, which squeezes the shorter side a little.)
    # A very thin crop (a tall straight "1") would be squeezed below one pixel, and a line that
    # thin, centred between two pixel centres, would cover neither: the browser still shows it
    # faintly, so at least one pixel wide it stays.
    dest_w, dest_h = max(dest_w, 1.0), max(dest_h, 1.0)
    sx, sy = dest_w / crop_w, dest_h / crop_h
    scale = math.sqrt(sx * sy)
    moved = transform(_resampled(strokes, scale), (sx, sy), (x_off - x_lo * sx, y_off - y_lo * sy))
    return rasterize(moved, (size, size), max(1.0, scaled_pen * scale), ramp=min(1.0, scale))


def preprocess_mnist(strokes, box_size=(280, 280), *, width: float = MNIST_WIDTH,
                     box: float = MNIST_BOX, blur: float = 0.0, center: str = "mass") -> np.ndarray:
    """MNIST's normalization applied to strokes.

    1. Scale the digit uniformly so its ink (the points' bounding box grown by the pen) fits a
       ``box`` x ``box`` square (20x20 in MNIST), the longer side filling it: aspect kept.
    2. Draw it with a pen ``width`` pixels wide whatever the drawing's size (MNIST strokes are
       about 2-3 px wide), optionally blurred (``blur``: Gaussian sigma in pixels).
    3. Translate it (sub-pixel) so its centre of mass is where MNIST puts it in the 28x28 field
       (``MNIST_CENTER``), and keep the centre 24x24, the crop the network is evaluated on.

    strokes: list of strokes in box coordinates; box_size: (W, H) of the drawing box (only used
    to keep a tiny drawing, such as a click, from being blown up: see ``MIN_EXTENT``).
    Returns float32 (24, 24) in [0, 1].
    """
    if not (0 < width < box <= MNIST_FIELD):
        raise ValueError(f"preprocess_mnist needs 0 < width < box <= {MNIST_FIELD} (pixels); got "
                         f"width={width!r}, box={box!r}")
    if not blur >= 0:
        raise ValueError(f"blur is a Gaussian sigma in pixels, >= 0; got {blur!r}")
    strokes = as_strokes(strokes)
    box_w, box_h = _box_size(box_size)
    x_min, y_min, x_max, y_max = bounding_box(strokes)
    extent = max(x_max - x_min, y_max - y_min, MIN_EXTENT * max(box_w, box_h))
    if not math.isfinite(extent):
        raise ValueError(f"the strokes span more than a float can hold (x {x_min:g}..{x_max:g}, "
                         f"y {y_min:g}..{y_max:g}); scale them down first")
    scale = (box - width) / extent  # output pixels per input unit
    strokes = _resampled(strokes, scale)
    field = MNIST_FIELD
    centre = np.array([(x_min + x_max) / 2, (y_min + y_max) / 2])
    # First pass: the box centred in the 28x28 field, to find the centre of mass.
    first = rasterize(transform(strokes, scale, field / 2 - centre * scale), (field, field), width)
    first = gaussian_blur(first, blur)
    if center == "mass":
        com = np.array(center_of_mass(first))
    elif center == "box":
        com = np.array([field / 2, field / 2])
    else:
        raise ValueError(f'center must be "mass" or "box"; got {center!r}')
    # Second pass: shift so the centre of mass lands where MNIST puts it, drawn straight into
    # the centre 24x24 crop (its origin is 2 px into the field).
    crop_origin = (field - IMAGE_SIZE) / 2
    offset = field / 2 - centre * scale + (np.array(MNIST_CENTER) - com) - crop_origin
    image = rasterize(transform(strokes, scale, offset), (IMAGE_SIZE, IMAGE_SIZE), width)
    return gaussian_blur(image, blur)


METHODS = {
    "original": preprocess_original,
    "mnist": preprocess_mnist,
}
"""Pre-processing methods by name: function(strokes, box_size) -> float32 (24, 24)."""

DEFAULT_METHOD = "original"
"""The method the widget and ``classify-strokes`` use: the more accurate one for the shipped
network on the tuning writers' pen digits (see the module docstring)."""


def preprocess(strokes, box_size=(280, 280), method: str = DEFAULT_METHOD) -> np.ndarray:
    """The exact image the network sees for a drawing.

    strokes: list of strokes, each a list of (x, y) points in drawing-box coordinates, y down.
    box_size: (width, height) of the drawing box (the widget's canvas is 280x280).
    method: a key of ``METHODS``.
    Returns float32 (24, 24) in [0, 1], white ink on black. Raises ValueError for an empty
    drawing (no strokes), a stroke without points, or a point that is not two finite numbers.
    """
    try:
        function = METHODS[method]
    except (KeyError, TypeError):
        raise ValueError(f"unknown pre-processing method {method!r}; "
                         f"expected one of {sorted(METHODS)}") from None
    return function(strokes, box_size)


# ---------------------------------------------------------------------------------------------
# Recorded digits


def load_strokes(path) -> list[dict]:
    """Read a stroke file: a JSON list of ``{"label": int (optional), "strokes": [[[x, y], ...],
    ...]}`` records in any units, y down; extra keys (such as "writer") are kept.

    Returns a list of dicts, one per record, with "strokes" as a list of float64 (n_i, 2) arrays
    and "label" an int in 0..9 or None when absent. Raises FileNotFoundError for a missing file
    and ValueError naming the path and the record index for anything malformed (not JSON, no
    records, a point that is not two finite numbers, a label outside 0-9...).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"stroke file {path} does not exist (or is not a file)")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        raise ValueError(f"stroke file {path} is not UTF-8 text ({error.reason} at byte "
                         f"{error.start}); expected a JSON list of stroke records") from None
    if not text.strip():
        raise ValueError(f"stroke file {path} is empty; expected a JSON list of records "
                         '{"label": 0-9, "strokes": [[[x, y], ...], ...]}')
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise ValueError(f"stroke file {path} is not valid JSON: {error}") from None
    if not isinstance(data, list):
        raise ValueError(f"stroke file {path}: expected a JSON list of records; "
                         f"got a JSON {type(data).__name__}")
    if not data:
        raise ValueError(f"stroke file {path} holds no records (an empty list)")
    records = []
    for index, raw in enumerate(data):
        what = f"stroke file {path}, record {index}"
        if not isinstance(raw, dict) or "strokes" not in raw:
            raise ValueError(f"{what}: expected an object with a \"strokes\" key; got {raw!r:.80}")
        label = raw.get("label")
        if label is not None and (isinstance(label, bool) or not isinstance(label, int)
                                  or not 0 <= label <= 9):
            raise ValueError(f"{what}: label must be an integer 0-9 (or absent); got {label!r}")
        record = dict(raw)
        record["label"] = label
        record["strokes"] = as_strokes(raw["strokes"], what)
        records.append(record)
    return records


def records_to_images(records, method: str = DEFAULT_METHOD, box_size: float = 280,
                      **options) -> np.ndarray:
    """Replay recorded digits through the widget's pipeline: ``fit_to_box`` then the method.

    records: dicts with "strokes" (as from ``load_strokes``). ``options`` go to the method's
    function (e.g. ``width=2.5`` for "mnist") for tuning; without them this is ``preprocess``.
    Returns float32 (N, 1, 24, 24), ready for ``net.predict_proba``.
    """
    if method not in METHODS:
        raise ValueError(f"unknown pre-processing method {method!r}; "
                         f"expected one of {sorted(METHODS)}")
    function = METHODS[method]
    images = np.empty((len(records), 1, IMAGE_SIZE, IMAGE_SIZE), dtype=np.float32)
    for i, record in enumerate(records):
        fitted = fit_to_box(record["strokes"], box_size)
        images[i, 0] = function(fitted, (box_size, box_size), **options)
    return images


# ---------------------------------------------------------------------------------------------
# The writer split of the real pen digits (shared/data/unipen-digits-dev.json)

TUNING_WRITERS = frozenset({
    "aga/AnnZchrl", "apa/JeanHale", "apb/Diane_Figueira", "app/BryanMacDonald", "art/writer01",
    "ced/AYML3525", "ibm/r01-04", "ibm/r02-04", "ibm/r03-12", "imp/ostrowski", "pri/150",
    "syn/lvh",
})
"""The 12 writers whose digits the pre-processing was tuned on: the dev set's 24 writers sorted
by name, every other one starting with the first. The other 12 are held out: never looked at
while tuning, only measured."""


def split_by_writer(records) -> tuple[list[dict], list[dict]]:
    """(tuning records, held-out records) by ``TUNING_WRITERS``; records need a "writer" key."""
    tuning, held_out = [], []
    for index, record in enumerate(records):
        if "writer" not in record:
            raise ValueError(f"record {index} has no \"writer\"; split_by_writer needs one")
        (tuning if record["writer"] in TUNING_WRITERS else held_out).append(record)
    return tuning, held_out


# ---------------------------------------------------------------------------------------------
# Classifying recorded digits and scoring the result


def classify_records(net, records, method: str = DEFAULT_METHOD, box_size: float = 280,
                     **options) -> np.ndarray:
    """Class probabilities (N, 10) for recorded digits, through exactly the widget's pipeline.

    net: anything with ``predict_proba(x: (N, 1, 24, 24)) -> (N, 10)`` (a ``Sequential``).
    records, method, box_size, options: as in ``records_to_images``.
    """
    return net.predict_proba(records_to_images(records, method, box_size, **options))


def score(probabilities: np.ndarray, records) -> dict:
    """Accuracy figures of predictions on recorded digits.

    probabilities: (N, 10) from ``classify_records``; records: the N records (labels may be None).
    Returns a dict:
        n: number of digits; labelled: how many have a label
        accuracy: fraction right among the labelled digits (None without labels)
        per_digit: {digit: (right, count)} for the labelled digits
        multi_stroke / single_stroke: (right, count) over labelled digits of 2+ strokes / 1 stroke
        rejection_rate: fraction of all digits whose top probability is below ``REJECT_BELOW``
            (the original demo answers "?" for those)
    Rejected digits still count in the accuracy with their top guess.
    """
    probabilities = np.asarray(probabilities)
    if probabilities.ndim != 2 or len(probabilities) != len(records):
        raise ValueError(f"score expects probabilities (N, K) for N = {len(records)} records; "
                         f"got shape {probabilities.shape}")
    predictions = probabilities.argmax(axis=1)
    labels = np.array([-1 if r.get("label") is None else r["label"] for r in records])
    n_strokes = np.array([len(r["strokes"]) for r in records])
    labelled = labels >= 0
    right = (predictions == labels) & labelled

    def tally(mask):
        return int(right[mask].sum()), int((mask & labelled).sum())

    return {
        "n": len(records),
        "labelled": int(labelled.sum()),
        "accuracy": float(right.sum() / labelled.sum()) if labelled.any() else None,
        "per_digit": {d: tally(labels == d) for d in range(10) if (labels == d).any()},
        "multi_stroke": tally(n_strokes > 1),
        "single_stroke": tally(n_strokes == 1),
        "rejection_rate": float((probabilities.max(axis=1) < REJECT_BELOW).mean()),
    }


# ---------------------------------------------------------------------------------------------
# Training augmentation: drawn strokes are thinner or thicker than MNIST's


class RandomThickness:
    """Make each training digit's strokes randomly thinner or thicker, as drawn digits vary.

    Call: ``RandomThickness(amount)(x, rng)``, x: float (B, 1, H, W) in [0, 1] -> same shape.
    Each image gets its own t ~ U(-amount, amount) and becomes
        x + t (dilate(x) - x)   for t > 0 (thicker: towards the grey-level dilation),
        x + t (x - erode(x))    for t < 0 (thinner: towards the grey-level erosion),
    where dilate/erode take the max/min over each pixel and its 4 neighbours (a plus-shaped
    structuring element, about one pixel on each side of a stroke). It has the trainer's
    augmentation signature; put it before the crop:
    ``train.Compose(RandomThickness(0.75), RandomCrop(24))``.
    """

    def __init__(self, amount: float = 0.75):
        if not 0 <= amount <= 1:
            raise ValueError(f"RandomThickness amount must be in [0, 1]; got {amount!r}")
        self.amount = float(amount)

    def __repr__(self):
        return f"RandomThickness({self.amount})"

    def __call__(self, x, rng):
        if not isinstance(x, np.ndarray) or x.ndim != 4 or x.dtype.kind != "f":
            raise ValueError("RandomThickness expects float images (B, C, H, W); got "
                             f"{getattr(x, 'dtype', type(x).__name__)} {getattr(x, 'shape', '')}")
        padded = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
        neighbours = np.stack([padded[..., 1:-1, :-2], padded[..., 1:-1, 2:],
                               padded[..., :-2, 1:-1], padded[..., 2:, 1:-1], x])
        dilated, eroded = neighbours.max(axis=0), neighbours.min(axis=0)
        t = rng.uniform(-self.amount, self.amount, size=(len(x), 1, 1, 1)).astype(x.dtype)
        return np.where(t > 0, x + t * (dilated - x), x + t * (x - eroded)).astype(x.dtype)


def slashed_zeros(images, labels, fraction: float, rng) -> tuple[np.ndarray, np.ndarray]:
    """Extra training digits in a style MNIST hardly has: zeros with a slash through them (Ø).

    Some people cross their zeros so they are not read as the letter O; a network that never saw
    one reads the crossed loop as an 8 (4 of the 30 tuning writers' zeros are written so; notebook
    10). For ``fraction`` of the zeros in ``images``, picked at random, this draws a "/" across the
    digit's ink box, from just below its bottom-left corner to just above its top-right one (each
    end moved by up to 1.5 pixels), with a pen 1.5-2.5 pixels wide, and returns the copies.

    images: uint8 (N, 28, 28); labels: (N,); fraction in [0, 1]; rng: a numpy Generator.
    Returns (uint8 (M, 28, 28), labels (M,) all 0), M = round(fraction * number of zeros), to be
    added to the training set (``cnnlib.train.Recipe.slashed_zeros``).
    """
    images, labels = np.asarray(images), np.asarray(labels)
    if images.dtype != np.uint8 or images.ndim != 3 or len(images) != len(labels):
        raise ValueError("slashed_zeros expects uint8 images (N, H, W) and labels (N,); got "
                         f"{images.dtype} {images.shape} and labels {labels.shape}")
    if not 0 <= fraction <= 1:
        raise ValueError(f"fraction must be in [0, 1]; got {fraction!r}")
    # Zeros with ink to cross (every MNIST zero has; a blank image would have no ink box).
    zeros = np.flatnonzero((labels == 0) & (images.max(axis=(1, 2)) > 0.3 * 255))
    picked = rng.choice(zeros, size=int(round(fraction * len(zeros))), replace=False)
    out = np.empty((len(picked),) + images.shape[1:], dtype=np.uint8)
    for k, i in enumerate(picked):
        image = images[i].astype(np.float32) / 255
        rows, cols = np.nonzero(image > 0.3)
        x0, x1, y0, y1 = cols.min(), cols.max() + 1, rows.min(), rows.max() + 1
        margin = rng.uniform(0, 2, 2)
        start = np.array([x0 - margin[0], y1 + margin[0]]) + rng.uniform(-1.5, 1.5, 2)
        end = np.array([x1 + margin[1], y0 - margin[1]]) + rng.uniform(-1.5, 1.5, 2)
        slash = rasterize([np.stack([start, end])], image.shape, rng.uniform(1.5, 2.5))
        out[k] = np.round(255 * np.maximum(image, slash))
    return out, np.zeros(len(picked), dtype=labels.dtype)
