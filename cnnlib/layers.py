"""Layers: thin classes around the forward/backward pairs of the operations (``cnnlib.ops``).

Named and shaped like PyTorch's ``torch.nn`` layers so what the learner knows carries over: NCHW
images, ``Conv2d(in_channels, out_channels, kernel_size, stride=1, padding=0)``,
``Linear(in_features, out_features)`` with ``W`` of shape (out_features, in_features).

Every layer has::

    out = layer.forward(x)       # also layer(x); remembers what backward needs
    dx = layer.backward(dout)    # fills layer.grads, returns the gradient for the layer below
    layer.params, layer.grads    # dicts with the same keys ("W", "b"); empty for ReLU and friends

``backward`` must follow the ``forward`` whose gradient it computes. Parameters are float32 by
default (training); pass ``dtype=np.float64`` for gradient checks.

A layer checks its arguments (``cnnlib.checks``), then calls its operation through the seam
``cnnlib.ops.ops``, never an implementation by name: that is how a learner's own functions, plugged
into the seam, run inside these layers.
"""

import numpy as np

from . import checks
from .functional import TIES
from .ops import ops
from .seeding import as_generator

__all__ = ["Layer", "Conv2d", "MaxPool2d", "Linear", "ReLU", "Tanh", "Flatten"]


_NOTHING = object()   # the cache before the first forward (None is a legitimate cache)


class Layer:
    """Base class: no parameters, train mode, callable.

    A subclass writes ``forward(x)``, which stores what backward needs in ``self._cache``, and
    ``_backward(dout, cache, input_grad) -> dx``. The public ``backward`` is the same for every
    layer: it checks that a forward came first and decides about the input gradient.
    """

    def __init__(self):
        self.params = {}
        self.grads = {}
        self.training = True
        self._cache = _NOTHING

    def __call__(self, x):
        return self.forward(x)

    def forward(self, x):
        raise NotImplementedError

    def backward(self, dout, input_grad=True):
        """dout: the gradient w.r.t. the last forward's output -> dx, the gradient w.r.t. its input.

        Fills ``grads``. ``input_grad=False`` returns None instead of dx: a network's first layer
        needs no gradient w.r.t. the images, and a layer with parameters then skips computing it
        (a third of a first convolution's work); a layer without parameters does nothing at all.
        """
        if self._cache is _NOTHING:
            raise RuntimeError(f"{type(self).__name__}.backward called before forward")
        if not input_grad and not self.params:
            return None
        dx = self._backward(dout, self._cache, input_grad)
        return dx if input_grad else None

    def _backward(self, dout, cache, input_grad):
        raise NotImplementedError

    def train(self, mode=True):
        """Switch to training mode (``mode=False``: evaluation mode). Returns self."""
        self.training = bool(mode)
        return self

    def eval(self):
        """Switch to evaluation mode. Returns self."""
        return self.train(False)

    def __repr__(self):
        return f"{type(self).__name__}()"


class _ParamLayer(Layer):
    """A layer with weights ``W`` and biases ``b`` of one floating dtype."""

    def __init__(self, W, b):
        super().__init__()
        self.params = {"W": W, "b": b}
        self.grads = {"W": np.zeros_like(W), "b": np.zeros_like(b)}

    @property
    def dtype(self):
        return self.params["W"].dtype

    def _set_grads(self, dW, db):
        # Write into the existing arrays so optimizers may hold on to them.
        self.grads["W"][...] = dW
        self.grads["b"][...] = db


def _check_dtype(dtype):
    dtype = np.dtype(dtype)
    if dtype.kind != "f":
        raise ValueError(f"layers hold floating parameters; got dtype={dtype.name}. "
                         "Use np.float32 (training) or np.float64 (gradient checks).")
    return dtype


class Conv2d(_ParamLayer):
    """2-D convolution over NCHW images with square kernels.

    x: (N, in_channels, H, W) -> (N, out_channels, H_out, W_out),
    H_out = (H + 2 * padding - kernel_size) // stride + 1 (likewise W_out).
    params: W (out_channels, in_channels, k, k), b (out_channels,). He initialization:
    W ~ Normal(0, 2 / (in_channels * k * k)), b = 0.
    """

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, *,
                 rng=None, dtype=np.float32):
        for name, value, low in [("in_channels", in_channels, 1), ("out_channels", out_channels, 1),
                                 ("kernel_size", kernel_size, 1), ("stride", stride, 1),
                                 ("padding", padding, 0)]:
            if not isinstance(value, (int, np.integer)) or value < low:
                raise ValueError(f"Conv2d needs an integer {name} >= {low}; got {value!r}")
        dtype = _check_dtype(dtype)
        fan_in = in_channels * kernel_size * kernel_size
        W = as_generator(rng).normal(0.0, np.sqrt(2.0 / fan_in),
                                   (out_channels, in_channels, kernel_size, kernel_size))
        super().__init__(W.astype(dtype), np.zeros(out_channels, dtype=dtype))
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size, self.stride, self.padding = kernel_size, stride, padding

    def forward(self, x):
        """x: (N, in_channels, H, W) -> (N, out_channels, H_out, W_out)."""
        W, b = self.params["W"], self.params["b"]
        checks.check_floating("Conv2d", x, self.dtype)
        checks.check_conv2d(x, W, b, self.stride, self.padding)
        out, self._cache = ops.conv2d_forward(x, W, b, self.stride, self.padding)
        return out

    def _backward(self, dout, cache, input_grad):
        """dout: (N, out_channels, H_out, W_out) -> dx: (N, in_channels, H, W); fills grads."""
        dx, dW, db = ops.conv2d_backward(dout, cache, input_grad)
        self._set_grads(dW, db)
        return dx

    def __repr__(self):
        return (f"Conv2d({self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
                f"stride={self.stride}, padding={self.padding})")


class Linear(_ParamLayer):
    """Fully connected layer: x: (N, in_features) -> x W^T + b: (N, out_features).

    params: W (out_features, in_features), b (out_features,). He initialization:
    W ~ Normal(0, 2 / in_features), b = 0.
    """

    def __init__(self, in_features, out_features, *, rng=None, dtype=np.float32):
        for name, value in [("in_features", in_features), ("out_features", out_features)]:
            if not isinstance(value, (int, np.integer)) or value < 1:
                raise ValueError(f"Linear needs an integer {name} >= 1; got {value!r}")
        dtype = _check_dtype(dtype)
        W = as_generator(rng).normal(0.0, np.sqrt(2.0 / in_features), (out_features, in_features))
        super().__init__(W.astype(dtype), np.zeros(out_features, dtype=dtype))
        self.in_features, self.out_features = in_features, out_features

    def forward(self, x):
        """x: (N, in_features) -> (N, out_features)."""
        checks.check_floating("Linear", x, self.dtype)
        checks.check_linear(x, self.params["W"])
        out, self._cache = ops.linear_forward(x, self.params["W"], self.params["b"])
        return out

    def _backward(self, dout, cache, input_grad):
        """dout: (N, out_features) -> dx: (N, in_features); fills grads."""
        dx, dW, db = ops.linear_backward(dout, cache, input_grad)
        self._set_grads(dW, db)
        return dx

    def __repr__(self):
        return f"Linear({self.in_features}, {self.out_features})"


class MaxPool2d(Layer):
    """Max-pooling over kernel_size x kernel_size windows, ``stride`` apart (default: kernel_size).

    x: (N, C, H, W) -> (N, C, H_out, W_out). ``ties`` decides who gets the gradient when several
    inputs of a window share its maximum: "split" (evenly, the original demo's rule) or "first"
    (one of them, as PyTorch does).
    """

    def __init__(self, kernel_size, stride=None, ties="split"):
        super().__init__()
        stride = kernel_size if stride is None else stride
        for name, value in [("kernel_size", kernel_size), ("stride", stride)]:
            if not isinstance(value, (int, np.integer)) or value < 1:
                raise ValueError(f"MaxPool2d needs an integer {name} >= 1; got {value!r}")
        if ties not in TIES:
            raise ValueError(f"MaxPool2d ties must be one of {TIES}; got {ties!r}")
        self.kernel_size, self.stride, self.ties = kernel_size, stride, ties

    def forward(self, x):
        """x: (N, C, H, W) -> (N, C, H_out, W_out)."""
        checks.check_floating("MaxPool2d", x)
        checks.check_maxpool2d(x, self.kernel_size, self.stride)
        out, self._cache = ops.maxpool2d_forward(x, self.kernel_size, self.stride)
        return out

    def _backward(self, dout, cache, input_grad):
        """dout: (N, C, H_out, W_out) -> dx: (N, C, H, W)."""
        return ops.maxpool2d_backward(dout, cache, self.ties)

    def __repr__(self):
        return f"MaxPool2d(kernel_size={self.kernel_size}, stride={self.stride}, ties={self.ties!r})"


class ReLU(Layer):
    """max(x, 0), elementwise; any shape."""

    def forward(self, x):
        checks.check_floating("ReLU", x)
        out, self._cache = ops.relu_forward(x)
        return out

    def _backward(self, dout, cache, input_grad):
        return ops.relu_backward(dout, cache)


class Tanh(Layer):
    """tanh(x), elementwise; any shape."""

    def forward(self, x):
        checks.check_floating("Tanh", x)
        out, self._cache = ops.tanh_forward(x)
        return out

    def _backward(self, dout, cache, input_grad):
        return ops.tanh_backward(dout, cache)


class Flatten(Layer):
    """(N, C, H, W) (or any (N, ...)) -> (N, C * H * W)."""

    def forward(self, x):
        out, self._cache = ops.flatten_forward(x)
        return out

    def _backward(self, dout, cache, input_grad):
        return ops.flatten_backward(dout, cache)
