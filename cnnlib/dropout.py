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

from . import checks
from .layers import Layer
from .ops import ops
from .seeding import as_generator

__all__ = ["Dropout"]


class Dropout(Layer):
    """Dropout of each value with probability p in training mode; identity in evaluation mode.

    x: any shape (float32 or float64) -> same shape. No parameters.
    """

    def __init__(self, p=0.5, *, rng=None):
        super().__init__()
        if not isinstance(p, (float, int)) or not 0 <= p < 1:
            raise ValueError(f"Dropout needs a drop probability p in [0, 1); got {p!r}")
        self.p = float(p)
        self.rng = as_generator(rng)

    def forward(self, x):
        checks.check_floating("Dropout", x)
        out, self._cache = ops.dropout_forward(x, self.p, self.rng, self.training)
        self._out_shape = out.shape
        return out

    def _backward(self, dout, cache, input_grad):
        if dout.shape != self._out_shape:
            raise ValueError(f"Dropout backward expects dout of shape {self._out_shape} (the "
                             f"forward output's); got {dout.shape}")
        return ops.dropout_backward(dout, cache)

    def __repr__(self):
        return f"Dropout(p={self.p})"
