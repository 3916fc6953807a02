"""Dropout (Srivastava et al., 2014): zero random units while training, nothing at evaluation.

Inverted dropout, as in PyTorch: in training mode each value is kept with probability 1 - p and
scaled by 1 / (1 - p), so its expected value is unchanged and evaluation needs no rescaling::

    mask = (u >= p) / (1 - p),   u ~ Uniform[0, 1) per value
    out  = x * mask              (training)        out = x     (evaluation)
    dx   = dout * mask           (training)        dx  = dout  (evaluation)

The mask is a constant of the forward pass, so the backward pass is the same multiplication.
Randomness comes from the layer's ``numpy.random.Generator`` (pass the training run's one
generator for reproducible runs).
"""

import numpy as np

from . import functional as F
from .layers import Layer

__all__ = ["dropout_forward", "dropout_backward", "Dropout"]


def dropout_forward(x, p, rng, training=True):
    """x: any shape. p: drop probability in [0, 1). rng: numpy Generator.

    Returns out: like x, and the cache (the mask scaled by 1 / (1 - p), or None when nothing is
    dropped: evaluation mode or p == 0).
    """
    if not 0 <= p < 1:
        raise ValueError(f"dropout probability p must be in [0, 1); got {p!r}")
    if not training or p == 0:
        return x, None
    # Draw in x's dtype: float32 draws are half the memory traffic of float64 ones.
    mask = rng.random(x.shape, dtype=x.dtype) >= x.dtype.type(p)
    mask = mask * x.dtype.type(1.0 / (1.0 - p))
    return x * mask, mask


def dropout_backward(dout, cache):
    """dout: like x. Returns dx = dout * mask (dout itself when nothing was dropped)."""
    mask = cache
    if mask is None:
        return dout
    if dout.shape != mask.shape:
        raise ValueError(f"dropout backward expects dout of shape {mask.shape} (the forward "
                         f"output's); got {dout.shape}")
    return dout * mask


class Dropout(Layer):
    """Dropout of each value with probability p in training mode; identity in evaluation mode.

    x: any shape (float32 or float64) -> same shape. No parameters.
    """

    def __init__(self, p=0.5, *, rng=None):
        super().__init__()
        if not isinstance(p, (float, int)) or not 0 <= p < 1:
            raise ValueError(f"Dropout needs a drop probability p in [0, 1); got {p!r}")
        self.p = float(p)
        self.rng = rng if rng is not None else np.random.default_rng()
        self._ran = False      # the cache is legitimately None in evaluation mode

    def forward(self, x):
        F.check_floating("Dropout", x)
        out, self._cache = dropout_forward(x, self.p, self.rng, self.training)
        self._ran = True
        return out

    def backward(self, dout):
        if not self._ran:
            raise RuntimeError("Dropout.backward called before forward")
        return dropout_backward(dout, self._cache)

    def __repr__(self):
        return f"Dropout(p={self.p})"
