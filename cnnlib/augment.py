"""Augmentation beyond random crops: small random affine transforms, optionally elastic, batched.

Every training image gets its own small rotation (about +-10 degrees), scale (about +-10%) and
shift (a few pixels), and is resampled onto the network's 24x24 grid, all images at once:

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

``RandomAffine`` has the trainer's augmentation signature ``augment(x, rng)``.

What it trades away: bilinear sampling blurs a little (each output pixel averages up to four
source pixels); no shear or flips (a flipped digit is a different symbol).
"""

import numpy as np

__all__ = ["sample_affine", "elastic_displacement", "warp", "random_affine", "RandomAffine"]


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
    rng = np.random.default_rng(rng)
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
