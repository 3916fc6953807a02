"""Every training augmentation: crops, random affine transforms (optionally elastic), stroke
thickness, slashed zeros, and their composition, all batched.

An augmentation has the trainer's signature ``augment(x, rng) -> x_aug``: float images
x: (B, 1, H, W) in [0, 1] (``cnnlib.data.to_float``) and a numpy Generator (or a seed for one,
``cnnlib.seeding.as_generator``) -> (B, 1, size, size)::

    RandomCrop(24)(x, rng)              # the original demo's: one random 24x24 crop per image
    CenterCrop(24)(x)                   # evaluation: the central 24x24 (no randomness)
    Compose(RandomThickness(0.75), RandomCrop(24))(x, rng)
    make_augment("affine")              # by name, the CLI's --augment (AUGMENTATIONS)

``slashed_zeros`` is different: it adds training examples (zeros crossed with a slash) once,
before training, rather than changing each batch.

Random affine transforms: every training image gets its own small rotation (about +-10 degrees),
scale (about +-10%) and shift (a few pixels), and is resampled onto the network's 24x24 grid, all
images at once:

1. *Inverse mapping.* For each output pixel p (coordinates relative to the output's centre) we
   ask where it comes from in the source image: q = A p + t, with A = R(-theta) / s the inverse of
   "rotate by theta, scale by s" and t = c - A d the source centre c moved by the inverse of the
   shift d. Asking "where from" (instead of pushing source pixels forward) gives every output
   pixel exactly one value and no holes.
2. *Bilinear sampling.* q falls between pixels; its value mixes the 4 neighbours, weighted by
   how close q is to each: (1 - fy)(1 - fx) I[y0, x0] + (1 - fy) fx I[y0, x0 + 1] + ...
   Outside the source image the value is 0 (background).
3. *Elastic distortion* (Simard, Steinkraus and Platt, 2003), optional: a random displacement
   per pixel, uniform in [-1, 1], smoothed with a Gaussian of width sigma and scaled by alpha,
   added to q before sampling. The smoothing is a matrix product with a Gaussian matrix on each
   side (G D G^T), so it is batched too.

With no rotation, no scale, no shift and no distortion, a 24x24 output of a 28x28 input is exactly
the centre crop. The whole batch is one set of array operations: no Python loop over images.

    augment = RandomAffine(size=24, rotation=10, scale=0.1, shift=2)
    x_aug = augment(x, rng)        # x: (B, 1, 28, 28) float32 -> (B, 1, 24, 24) float32

What it trades away: bilinear sampling blurs a little (each output pixel averages up to four
source pixels); no shear or flips (a flipped digit is a different symbol).
"""

import numpy as np

from .seeding import as_generator
from .strokes import rasterize

__all__ = ["RandomCrop", "CenterCrop", "Compose", "AUGMENTATIONS", "make_augment",
           "sample_affine", "elastic_displacement", "warp", "random_affine", "RandomAffine",
           "RandomThickness", "slashed_zeros"]


# ---------------------------------------------------------------------------------------- crops

def _crop_size_check(x, size, what):
    if x.ndim != 4 or not 1 <= size <= min(x.shape[-2:]):
        raise ValueError(f"{what}: expected images (N, C, H, W) with H, W >= {size}; "
                         f"got {x.shape}")


class RandomCrop:
    """One random ``size`` x ``size`` crop per image, in one vectorized gather.

    Call: ``RandomCrop(24)(x, rng)``, x: (B, C, H, W) -> (B, C, size, size), a new array of x's
    dtype; each image's top-left corner is uniform over the (H - size + 1) x (W - size + 1)
    valid positions, drawn from rng (a Generator, or a seed for one).
    """

    def __init__(self, size=24):
        self.size = int(size)
        self._offsets = {}  # (C, H, W) -> flat offsets of a crop's pixels from its corner

    def _crop_offsets(self, channels, height, width):
        key = (channels, height, width)
        if key not in self._offsets:
            c, i, j = np.ogrid[:channels, :self.size, :self.size]
            self._offsets[key] = (c * height * width + i * width + j)[None]  # (1, C, size, size)
        return self._offsets[key]

    def __call__(self, x, rng):
        _crop_size_check(x, self.size, "RandomCrop")
        rng = as_generator(rng)
        n, channels, height, width = x.shape
        top = rng.integers(0, height - self.size + 1, size=n)
        left = rng.integers(0, width - self.size + 1, size=n)
        # One flat gather: pixel (c, i, j) of crop k is element corner_k + offset(c, i, j) of x.
        # (Same result as indexing a sliding_window_view, at a fraction of the Python overhead.)
        corners = (np.arange(n) * (channels * height * width) + top * width + left)
        flat = np.ascontiguousarray(x).reshape(-1)
        return flat[corners[:, None, None, None] + self._crop_offsets(channels, height, width)]

    def __repr__(self):
        return f"RandomCrop({self.size})"


class CenterCrop:
    """The central ``size`` x ``size`` crop (for 28 -> 24: rows/cols 2..25).

    Call: ``CenterCrop(24)(x)``, x: (B, C, H, W) -> (B, C, size, size), a view of x (copy it with
    ``np.ascontiguousarray`` to keep it). Takes and ignores an rng, to fit ``augment(x, rng)``.
    """

    def __init__(self, size=24):
        self.size = int(size)

    def __call__(self, x, rng=None):
        _crop_size_check(x, self.size, "CenterCrop")
        top = (x.shape[-2] - self.size) // 2
        left = (x.shape[-1] - self.size) // 2
        return x[..., top:top + self.size, left:left + self.size]

    def __repr__(self):
        return f"CenterCrop({self.size})"


class Compose:
    """Apply augmentations in order: ``Compose(f, g)(x, rng) == g(f(x, rng), rng)``."""

    def __init__(self, *augmentations):
        self.augmentations = augmentations

    def __call__(self, x, rng):
        for augment in self.augmentations:
            x = augment(x, rng)
        return x

    def __repr__(self):
        return "Compose(" + ", ".join(map(repr, self.augmentations)) + ")"


# --------------------------------------------------------------------------------------- affine

def _check_images(images, what):
    if not isinstance(images, np.ndarray) or images.dtype.kind != "f":
        got = images.dtype if isinstance(images, np.ndarray) else type(images).__name__
        raise ValueError(f"{what} expects floating images; got {got}. Convert uint8 digits "
                         "with cnnlib.data.to_float first.")
    if images.ndim == 4 and images.shape[1] == 1:
        return images[:, 0]
    if images.ndim == 3:
        return images
    raise ValueError(f"{what} expects images of shape (N, H, W) or (N, 1, H, W); "
                     f"got {images.shape}")


def sample_affine(n, rng, rotation=10.0, scale=0.1, shift=2.0):
    """Draw n random transforms and return their inverse maps, output pixel -> source pixel.

    rotation: degrees, theta ~ U(-rotation, rotation); scale: s ~ U(1 - scale, 1 + scale);
    shift: pixels, d ~ U(-shift, shift) along each axis.
    Returns A: (n, 2, 2) and d: (n, 2), float64, such that the output pixel at offset p = (row,
    col) from the output centre reads the source at offset A (p - d) from the source centre.
    """
    if not (rotation >= 0 and 0 <= scale < 1 and shift >= 0):
        raise ValueError(f"sample_affine needs rotation >= 0 (degrees), 0 <= scale < 1 and "
                         f"shift >= 0 (pixels); got rotation={rotation!r}, scale={scale!r}, "
                         f"shift={shift!r}")
    theta = np.deg2rad(rng.uniform(-rotation, rotation, size=n))
    s = rng.uniform(1.0 - scale, 1.0 + scale, size=n)
    d = rng.uniform(-shift, shift, size=(n, 2))
    cos, sin = np.cos(theta) / s, np.sin(theta) / s
    # R(-theta) / s in (row, col) coordinates: the inverse of rotating by theta, scaling by s.
    A = np.stack([np.stack([cos, sin], axis=-1), np.stack([-sin, cos], axis=-1)], axis=-2)
    return A, d


def _gaussian_matrix(size, sigma):
    """G: (size, size), G[i, j] = exp(-(i - j)^2 / (2 sigma^2)), rows summing to 1 (blurring)."""
    offsets = np.arange(size)[:, None] - np.arange(size)[None, :]
    G = np.exp(-offsets ** 2 / (2.0 * sigma ** 2))
    return G / G.sum(axis=1, keepdims=True)


def elastic_displacement(n, size, rng, alpha=8.0, sigma=3.0):
    """Smooth random displacement fields: (n, 2, size, size) float64, in pixels.

    Each field is alpha * G U G^T with U ~ Uniform[-1, 1] per pixel and G the Gaussian blur
    matrix of width sigma (pixels): nearby pixels move together, so strokes bend, not tear.
    alpha is a gain, not a distance: the blur averages the noise down, so the typical
    displacement is about alpha / (2 sqrt(3 pi) sigma) pixels in the middle of the image (0.43 px
    at alpha 8, sigma 3) and up to about twice that near the edges, where the rows of G, each
    normalized, average fewer samples.
    """
    if not (alpha >= 0 and sigma > 0):
        raise ValueError(f"elastic_displacement needs alpha >= 0 and sigma > 0; "
                         f"got alpha={alpha!r}, sigma={sigma!r}")
    G = _gaussian_matrix(size, sigma)
    U = rng.uniform(-1.0, 1.0, size=(n, 2, size, size))
    return alpha * (G @ U @ G.T)


def warp(images, A, d, size=None, displacement=None):
    """Resample every image through its own inverse map, bilinearly, zeros outside.

    images: (N, H, W) or (N, 1, H, W) floating. A: (N, 2, 2), d: (N, 2) from ``sample_affine``.
    size: the output's height and width (default: H; must be square images' size or less).
    displacement: optional (N, 2, size, size) extra source offsets (elastic distortion).
    Returns (N, size, size) or (N, 1, size, size), in the images' dtype.
    """
    x = _check_images(images, "warp")
    A, d = np.asarray(A), np.asarray(d)
    N, H, W = x.shape
    size = H if size is None else size
    if A.shape != (N, 2, 2) or d.shape != (N, 2):
        raise ValueError(f"warp of {N} images expects A of shape ({N}, 2, 2) and d of shape "
                         f"({N}, 2); got {A.shape} and {d.shape}")
    if displacement is not None and displacement.shape != (N, 2, size, size):
        raise ValueError(f"warp expects displacement of shape ({N}, 2, {size}, {size}); "
                         f"got {displacement.shape}")
    # Output pixel offsets from the output centre, p: (2, size * size) as (row, col).
    grid = np.arange(size) - (size - 1) / 2.0
    p = np.stack(np.meshgrid(grid, grid, indexing="ij")).reshape(2, -1)
    # Source coordinates q = c + A (p - d): (N, 2, size * size).
    q = A @ (p[None] - d[:, :, None])
    q[:, 0] += (H - 1) / 2.0
    q[:, 1] += (W - 1) / 2.0
    if displacement is not None:
        q += displacement.reshape(N, 2, -1)
    # Pad by 2 zero pixels so every neighbour of a clipped coordinate is a valid index.
    pad = 2
    xp = np.pad(x, ((0, 0), (pad, pad), (pad, pad)))
    Hp, Wp = H + 2 * pad, W + 2 * pad
    qy = np.clip(q[:, 0], -1.5, H + 0.5) + pad
    qx = np.clip(q[:, 1], -1.5, W + 0.5) + pad
    y0, x0 = np.floor(qy), np.floor(qx)
    fy, fx = (qy - y0).astype(x.dtype), (qx - x0).astype(x.dtype)
    # One flat index per (image, output pixel) into the padded batch, for the top-left neighbour.
    top_left = (np.arange(N)[:, None] * (Hp * Wp) + y0.astype(np.intp) * Wp
                + x0.astype(np.intp))
    flat = xp.reshape(-1)
    out = ((1 - fy) * ((1 - fx) * flat[top_left] + fx * flat[top_left + 1])
           + fy * ((1 - fx) * flat[top_left + Wp] + fx * flat[top_left + Wp + 1]))
    out = out.reshape(N, size, size)
    return out[:, None] if images.ndim == 4 else out


def random_affine(images, rng, size=24, rotation=10.0, scale=0.1, shift=2.0,
                  elastic_alpha=0.0, elastic_sigma=3.0):
    """A random rotation, scale and shift (and optional elastic distortion) per image.

    images: (N, H, W) or (N, 1, H, W) floating, e.g. float32 28x28 digits in [0, 1].
    Returns (N, size, size) or (N, 1, size, size) in the images' dtype. Angles in degrees,
    shifts in pixels; elastic_alpha is the distortion's gain (``elastic_displacement``), 0 turns
    it off. rng: a numpy Generator or a seed.
    """
    if not elastic_alpha >= 0:
        raise ValueError(f"random_affine needs elastic_alpha >= 0 (0: no distortion); got "
                         f"{elastic_alpha!r}")
    rng = as_generator(rng)
    x = _check_images(images, "random_affine")
    A, d = sample_affine(len(x), rng, rotation, scale, shift)
    displacement = None
    if elastic_alpha > 0:
        displacement = elastic_displacement(len(x), size, rng, elastic_alpha, elastic_sigma)
    return warp(images, A, d, size, displacement)


class RandomAffine:
    """The trainer's augmentation ``augment(x, rng)``: ``random_affine`` with fixed settings.

    x: (B, 1, 28, 28) floating -> (B, 1, size, size).
    """

    def __init__(self, size=24, rotation=10.0, scale=0.1, shift=2.0, elastic_alpha=0.0,
                 elastic_sigma=3.0):
        if not isinstance(size, (int, np.integer)) or size < 1:
            raise ValueError(f"RandomAffine needs an integer output size >= 1; got {size!r}")
        # Validate the settings now rather than at the first training step.
        sample_affine(0, np.random.default_rng(0), rotation, scale, shift)
        if elastic_alpha < 0 or elastic_sigma <= 0:
            raise ValueError(f"RandomAffine needs elastic_alpha >= 0 and elastic_sigma > 0; "
                             f"got {elastic_alpha!r}, {elastic_sigma!r}")
        self.size, self.rotation, self.scale, self.shift = size, rotation, scale, shift
        self.elastic_alpha, self.elastic_sigma = elastic_alpha, elastic_sigma

    def __call__(self, x, rng):
        return random_affine(x, rng, self.size, self.rotation, self.scale, self.shift,
                             self.elastic_alpha, self.elastic_sigma)

    def __repr__(self):
        text = (f"RandomAffine(size={self.size}, rotation={self.rotation}, scale={self.scale}, "
                f"shift={self.shift}")
        if self.elastic_alpha:
            text += f", elastic_alpha={self.elastic_alpha}, elastic_sigma={self.elastic_sigma}"
        return text + ")"


AUGMENTATIONS = ("crop", "affine", "elastic")


def make_augment(name, size=24):
    """An augmentation by name (the CLI's ``--augment``): "crop" (``RandomCrop(size)``, the
    original's); "affine" (``RandomAffine``: rotation +-10 degrees, scale +-10%, shift +-2 pixels,
    resampled onto the size x size grid); "elastic" (affine plus an elastic distortion, alpha 8,
    sigma 3)."""
    if name == "crop":
        return RandomCrop(size)
    if name == "affine":
        return RandomAffine(size, rotation=10, scale=0.1, shift=2)
    if name == "elastic":
        return RandomAffine(size, rotation=10, scale=0.1, shift=2, elastic_alpha=8, elastic_sigma=3)
    raise ValueError(f"unknown augmentation {name!r}; choose one of {', '.join(AUGMENTATIONS)}")


# ------------------------------------------------------------- drawn digits: thickness, slashes

class RandomThickness:
    """Make each training digit's strokes randomly thinner or thicker, as drawn digits vary.

    Call: ``RandomThickness(amount)(x, rng)``, x: float (B, 1, H, W) in [0, 1] -> same shape.
    Each image gets its own t ~ U(-amount, amount) and becomes
        x + t (dilate(x) - x)   for t > 0 (thicker: towards the grey-level dilation),
        x + t (x - erode(x))    for t < 0 (thinner: towards the grey-level erosion),
    where dilate/erode take the max/min over each pixel and its 4 neighbours (a plus-shaped
    structuring element, about one pixel on each side of a stroke). It has the trainer's
    augmentation signature; put it before the crop:
    ``Compose(RandomThickness(0.75), RandomCrop(24))``. Drawn strokes are thinner or thicker
    than MNIST's.
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
        t = as_generator(rng).uniform(-self.amount, self.amount, size=(len(x), 1, 1, 1)).astype(x.dtype)
        return np.where(t > 0, x + t * (dilated - x), x + t * (x - eroded)).astype(x.dtype)


def slashed_zeros(images, labels, fraction: float, rng) -> tuple[np.ndarray, np.ndarray]:
    """Extra training digits in a style MNIST hardly has: zeros with a slash through them (Ø).

    Some people cross their zeros so they are not read as the letter O; a network that never saw
    one reads the crossed loop as an 8 (4 of the 30 tuning writers' zeros are written so; notebook
    10). For ``fraction`` of the zeros in ``images``, picked at random, this draws a "/" across the
    digit's ink box, from just below its bottom-left corner to just above its top-right one (each
    end moved by up to 1.5 pixels), with a pen 1.5-2.5 pixels wide, and returns the copies.

    images: uint8 (N, 28, 28); labels: (N,); fraction in [0, 1]; rng: a numpy Generator (or a
    seed for one).
    Returns (uint8 (M, 28, 28), labels (M,) all 0), M = round(fraction * number of zeros), to be
    added to the training set (``cnnlib.train.Recipe.slashed_zeros``).
    """
    images, labels = np.asarray(images), np.asarray(labels)
    if images.dtype != np.uint8 or images.ndim != 3 or len(images) != len(labels):
        raise ValueError("slashed_zeros expects uint8 images (N, H, W) and labels (N,); got "
                         f"{images.dtype} {images.shape} and labels {labels.shape}")
    if not 0 <= fraction <= 1:
        raise ValueError(f"fraction must be in [0, 1]; got {fraction!r}")
    rng = as_generator(rng)
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
