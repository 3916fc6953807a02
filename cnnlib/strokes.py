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

"original" is ``DEFAULT_METHOD``, chosen with the shipped network on the tuning writers of real
pen digits (``cnnlib.pendigits``; the measurements are in the README).

Both draw the strokes with ``rasterize``: an anti-aliased thick-line rasterizer with round caps
and joins, vectorized as the distance from every pixel centre to every segment.

Coordinates: in an image, pixel (row r, column c) is the unit square [c, c+1) x [r, r+1); its
centre is (c + 0.5, r + 0.5). Points are (x, y) = (column direction, row direction).

Recorded digits (``cnnlib.pendigits.load_strokes``) come in any units; ``fit_to_box`` scales one
the way a person would draw it in the 280x280 drawing box, and then it goes through exactly the
widget's pipeline.

What it trades away: no pressure or timing information is used; the rasterizer computes every
pixel against every segment (fine for 24x24 or 28x28 targets, not for large images).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence

import numpy as np

__all__ = [
    "METHODS", "DEFAULT_METHOD", "REJECT_BELOW", "IMAGE_SIZE",
    "as_strokes", "bounding_box", "transform", "fit_to_box", "resample", "rasterize",
    "center_of_mass", "gaussian_blur", "preprocess_original", "preprocess_mnist", "preprocess",
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
    default, about how large people draw in the widget). A single point is only centred, and so
    is a drawing too small to scale up (its extent below about 1e-306 units, where
    ``fill * size / extent`` overflows): it becomes a dot at the centre, as a click does.
    Returns a list of float64 (n_i, 2) arrays in box coordinates (y down).
    """
    if not (isinstance(size, numbers.Real) and size > 0 and isinstance(fill, numbers.Real)
            and 0 < fill <= 1):
        raise ValueError(f"fit_to_box needs a number size > 0 (the side of the square drawing "
                         f"box) and 0 < fill <= 1; got size={size!r}, fill={fill!r}")
    x_min, y_min, x_max, y_max = bounding_box(strokes)
    # Halves first: x_max - x_min and x_min + x_max overflow for points near +-1.8e308.
    half_extent = max(x_max / 2 - x_min / 2, y_max / 2 - y_min / 2)
    scale = fill * size / 2 / half_extent if half_extent > 0 else 1.0
    if not math.isfinite(scale):
        scale = 1.0   # too small to scale up: a dot, like a single point
    centre = np.array([x_min / 2 + x_max / 2, y_min / 2 + y_max / 2])
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


