"""Batch normalization (Ioffe and Szegedy, 2015) for convolutional feature maps.

Each channel c of a mini-batch x: (N, C, H, W) is normalized with the mean and variance of its
m = N * H * W values, then scaled and shifted by two learned numbers::

    mu_c    = (1/m) sum_{n,h,w} x[n, c, h, w]
    var_c   = (1/m) sum_{n,h,w} (x[n, c, h, w] - mu_c)^2          (biased: divide by m)
    x_hat   = (x - mu_c) / sqrt(var_c + eps)
    out     = gamma_c * x_hat + beta_c

Backward (the derivation is in notebook 09): with g = dout,

    dbeta_c  = sum_{n,h,w} g
    dgamma_c = sum_{n,h,w} g * x_hat
    dx       = gamma_c / sqrt(var_c + eps) * (g - mean(g) - x_hat * mean(g * x_hat))

where the means run over the same m values. The last two terms are there because mu and var
depend on every x of the batch: moving one input moves the statistics that normalize all others.

Training versus evaluation: in training mode the layer normalizes with the statistics of the
current batch; in evaluation mode with *running* averages collected during training, so a
prediction for one image does not depend on which other images share its batch.

When the running statistics change: only in training *steps*. A training-mode forward pass
computes the batch statistics; the backward pass that follows it (which only training does)
folds them into the running averages::

    running_mean = (1 - momentum) * running_mean + momentum * mu
    running_var  = (1 - momentum) * running_var  + momentum * var * m / (m - 1)   (unbiased)

so a forward pass made in training mode by mistake (say, scoring images with ``net.forward`` on
a network that was never switched to ``eval()``) gives batch-dependent scores but never corrupts
the statistics of a trained model. PyTorch updates them in the forward pass instead; the values
after a training step are the same.

The learned parameters follow ``cnnlib.layers``: ``params["W"]`` is gamma, ``params["b"]`` is
beta, both (C,). The running averages are *buffers* (``layer.buffers``): saved with the model,
never touched by the optimizer.

After training, ``recalibrate(net, x)`` can replace the running averages by the exact statistics
of images ``x`` (e.g. un-augmented training digits): the running averages trail the weights while
the learning rate is high, and augmented images (resampled, so slightly blurred) have a little
less contrast than the digits the network is tested on.

What it trades away: only 4-D inputs in the layer class (the functions accept (N, C) too); no
per-group or per-layer variants; float32 statistics in float32 training (BLAS and numpy sum in
blocks, which keeps them accurate enough for MNIST-sized batches).
"""

import numpy as np

from . import checks
from .layers import Layer
from .ops import ops

__all__ = ["BatchNorm2d", "recalibrate"]


class BatchNorm2d(Layer):
    """Batch normalization of NCHW feature maps, one (gamma, beta) pair per channel.

    x: (N, num_features, H, W) -> out: same shape.
    params: W = gamma (num_features,), initialized to 1; b = beta (num_features,), 0.
    buffers: running_mean (0s) and running_var (1s), (num_features,), used in evaluation mode
    and updated with ``momentum`` by each training step (forward in training mode, then backward).
    """

    def __init__(self, num_features, eps=1e-5, momentum=0.1, *, dtype=np.float32):
        super().__init__()
        if not isinstance(num_features, (int, np.integer)) or num_features < 1:
            raise ValueError(f"BatchNorm2d needs an integer num_features >= 1; "
                             f"got {num_features!r}")
        if not eps > 0:
            raise ValueError(f"BatchNorm2d needs eps > 0; got {eps!r}")
        if not 0 <= momentum <= 1:
            raise ValueError(f"BatchNorm2d momentum must be in [0, 1]; got {momentum!r}")
        dtype = np.dtype(dtype)
        if dtype.kind != "f":
            raise ValueError(f"BatchNorm2d holds floating parameters; got dtype={dtype.name}. "
                             "Use np.float32 (training) or np.float64 (gradient checks).")
        self.num_features, self.eps, self.momentum = num_features, eps, momentum
        self.params = {"W": np.ones(num_features, dtype=dtype),
                       "b": np.zeros(num_features, dtype=dtype)}
        self.grads = {key: np.zeros_like(value) for key, value in self.params.items()}
        self.buffers = {"running_mean": np.zeros(num_features, dtype=dtype),
                        "running_var": np.ones(num_features, dtype=dtype)}

    @property
    def dtype(self):
        return self.params["W"].dtype

    def forward(self, x):
        """x: (N, num_features, H, W) -> same shape. Training mode: batch statistics;
        evaluation mode: running statistics."""
        checks.check_floating("BatchNorm2d", x, self.dtype)
        if x.ndim != 4 or x.shape[1] != self.num_features:
            raise ValueError(f"BatchNorm2d({self.num_features}) expects x of shape "
                             f"(N, {self.num_features}, H, W); got {x.shape}")
        gamma, beta = self.params["W"], self.params["b"]
        mean, var = ((None, None) if self.training
                     else (self.buffers["running_mean"], self.buffers["running_var"]))
        checks.check_batchnorm(x, gamma, beta, mean, var)
        out, self._cache = ops.batchnorm_forward(x, gamma, beta, self.eps, mean, var)
        self._out_shape = out.shape
        return out

    def _backward(self, dout, cache, input_grad):
        """dout: (N, num_features, H, W) -> dx: same shape; fills grads and, after a
        training-mode forward, updates the running statistics (once per forward)."""
        if dout.shape != self._out_shape:
            raise ValueError(f"BatchNorm2d backward expects dout of shape {self._out_shape} (the "
                             f"forward output's); got {dout.shape}")
        dx, dgamma, dbeta = ops.batchnorm_backward(dout, cache)
        self.grads["W"][...] = dgamma
        self.grads["b"][...] = dbeta
        if cache["batch_stats"] and not cache.get("committed", False):
            self._update_running(cache["mean"], cache["var"], cache["m"])
            cache["committed"] = True
        return dx

    def _update_running(self, mean, var, m):
        keep = 1.0 - self.momentum
        self.buffers["running_mean"] *= keep
        self.buffers["running_mean"] += self.momentum * mean
        self.buffers["running_var"] *= keep
        self.buffers["running_var"] += self.momentum * var * (m / (m - 1))

    def __repr__(self):
        return f"BatchNorm2d({self.num_features}, eps={self.eps}, momentum={self.momentum})"


def recalibrate(net, x, batch_size=500):
    """Set every BatchNorm2d's running statistics to the exact statistics of ``x`` in ``net``.

    net: a Sequential; x: (N, ...) float inputs of the network (e.g. centre crops of training
    digits, never test digits). Layer by layer, the inputs of each BatchNorm2d are computed in
    evaluation mode (with the BatchNorm2d layers below it already recalibrated), ``batch_size``
    images at a time; their per-channel mean and unbiased variance over all N images replace the
    running averages. The network is left in evaluation mode. Returns net.
    """
    if len(x) == 0:
        raise ValueError("recalibrate needs at least one image; got x of length 0")
    net.eval()
    layers = list(net)
    for k, bn in enumerate(layers):
        if not isinstance(bn, BatchNorm2d):
            continue
        total = total_sq = 0.0
        count = 0
        for start in range(0, len(x), batch_size):
            h = x[start:start + batch_size]
            for layer in layers[:k]:
                h = layer.forward(h)
            h64 = h.astype(np.float64)
            total = total + h64.sum(axis=(0, 2, 3))
            total_sq = total_sq + (h64 * h64).sum(axis=(0, 2, 3))
            count += h.size // h.shape[1]
        mean = total / count
        var = np.maximum(total_sq / count - mean * mean, 0.0) * (count / max(count - 1, 1))
        bn.buffers["running_mean"][...] = mean
        bn.buffers["running_var"][...] = var
    return net
