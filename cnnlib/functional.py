"""Every operation as derived: one forward/backward pair each, one readable path each.

Each operation is a pair of pure functions::

    out, cache = op_forward(x, ...)
    dx, ... = op_backward(dout, cache)

``cache`` holds what the backward pass needs from the forward pass. Images are NCHW:
``x: (N, C, H, W)``. Each function mirrors the derivation the notebooks print beside it, line by
line; there are no argument checks here (the layers check their inputs before calling) and no
speed tricks. ``cnnlib.fast`` has the same functions with the same signatures, rewritten for
speed; ``cnnlib.naive`` has the loops both are checked against; the layers call whichever
``cnnlib.ops`` holds (``fast`` by default).

Letters from the math: N examples, C input channels, F filters (output channels), k the kernel
size, s the stride, p the padding. Output size of a window of size k along an axis of size H::

    H_out = (H + 2p - k) // s + 1
"""

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

__all__ = [
    "output_size", "TIES",
    "linear_forward", "linear_backward",
    "relu_forward", "relu_backward",
    "tanh_forward", "tanh_backward",
    "flatten_forward", "flatten_backward",
    "im2col", "col2im", "conv2d_forward", "conv2d_backward",
    "maxpool2d_forward", "maxpool2d_backward",
    "batchnorm_forward", "batchnorm_backward",
    "dropout_forward", "dropout_backward",
    "softmax", "softmax_cross_entropy",
]

TIES = ("split", "first")   # who gets a max-pool window's gradient when several inputs tie


def output_size(size, kernel_size, stride=1, padding=0):
    """Number of window positions along one axis: ``(size + 2 * padding - kernel_size) // stride + 1``."""
    return (size + 2 * padding - kernel_size) // stride + 1


# ---------------------------------------------------------------------------------------- linear

def linear_forward(x, W, b):
    """Fully connected layer: ``out = x W^T + b``.

    x: (N, D) inputs; W: (M, D) weights (PyTorch's layout: out_features x in_features); b: (M,).
    Returns out: (N, M) and the cache (x, W).
    """
    out = x @ W.T + b
    return out, (x, W)


def linear_backward(dout, cache, input_grad=True):
    """dout: (N, M). Returns dx: (N, D) = dout W, dW: (M, D) = dout^T x, db: (M,) = sum_n dout.

    ``input_grad=False`` skips dx (returned as None): a first layer's input needs no gradient.
    """
    x, W = cache
    dx = dout @ W if input_grad else None
    dW = dout.T @ x
    db = dout.sum(axis=0)
    return dx, dW, db


# ----------------------------------------------------------------------------------- activations

def relu_forward(x):
    """ReLU: ``out = max(x, 0)``, elementwise; any shape. The cache is x itself."""
    return np.maximum(x, 0), x


def relu_backward(dout, cache):
    """dx = dout where x > 0, else 0 (the subgradient 0 is taken at the kink x = 0)."""
    x = cache
    return dout * (x > 0)


def tanh_forward(x):
    """tanh, elementwise; any shape. The cache is the output, since tanh' = 1 - tanh^2."""
    out = np.tanh(x)
    return out, out


def tanh_backward(dout, cache):
    """dx = dout * (1 - out^2)."""
    out = cache
    return dout * (1 - out * out)


def flatten_forward(x):
    """(N, ...) -> (N, D): one row per example. The cache is the input shape."""
    return x.reshape(x.shape[0], -1), x.shape


def flatten_backward(dout, cache):
    """(N, D) -> the input's shape."""
    return dout.reshape(cache)


# ----------------------------------------------------------------------------------- convolution

def _windows(xp, k, stride):
    """Every k x k window of xp: (N, C, Hp, Wp) -> (N, C, H_out, W_out, k, k), a view (no copy)."""
    return sliding_window_view(xp, (k, k), axis=(2, 3))[:, :, ::stride, ::stride]


def im2col(x, k, stride=1, padding=0):
    """Every k x k window of the zero-padded x as one row.

    x: (N, C, H, W). Returns cols: (N * H_out * W_out, C * k * k); row (n, i, j) holds the window
    at output position (i, j) of example n, in (c, u, v) order: the order of W[f].ravel().
    """
    xp = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    windows = _windows(xp, k, stride)                    # (N, C, H_out, W_out, k, k)
    N, C, H_out, W_out = windows.shape[:4]
    return windows.transpose(0, 2, 3, 1, 4, 5).reshape(N * H_out * W_out, C * k * k)


def col2im(dcols, x_shape, k, stride=1, padding=0):
    """The adjoint of im2col: add every row's gradient back where its window was copied from.

    dcols: (N * H_out * W_out, C * k * k), the gradient of each entry of im2col's matrix.
    Returns dx: x_shape = (N, C, H, W). Tap (u, v) of every window at once is the strided slice
    xp[:, :, u::s, v::s], so the scatter is k * k slice additions; overlapping windows add up.
    """
    N, C, H, W = x_shape
    H_out, W_out = output_size(H, k, stride, padding), output_size(W, k, stride, padding)
    dwindows = dcols.reshape(N, H_out, W_out, C, k, k).transpose(0, 3, 1, 2, 4, 5)
    dxp = np.zeros((N, C, H + 2 * padding, W + 2 * padding), dtype=dcols.dtype)
    for u in range(k):
        for v in range(k):
            dxp[:, :, u:u + stride * H_out:stride, v:v + stride * W_out:stride] += \
                dwindows[:, :, :, :, u, v]
    return dxp[:, :, padding:padding + H, padding:padding + W]


def conv2d_forward(x, W, b, stride=1, padding=0):
    """2-D convolution (cross-correlation, as in every deep-learning library).

    x: (N, C, H, W) input; W: (F, C, k, k) filters; b: (F,) biases.
    out[n, f, i, j] = b[f] + sum_{c, u, v} W[f, c, u, v] * xp[n, c, s*i + u, s*j + v],
    where xp is x zero-padded by p on each side. Returns out: (N, F, H_out, W_out) and the cache.

    With the windows as rows (im2col) and the filters as rows of W_rows: (F, C * k * k), the sum
    over (c, u, v) is one matrix product: out_rows = cols W_rows^T + b, one row per output pixel.
    """
    N, C, H, Wd = x.shape
    F, _, k, _ = W.shape
    H_out, W_out = output_size(H, k, stride, padding), output_size(Wd, k, stride, padding)
    cols = im2col(x, k, stride, padding)                 # (N * H_out * W_out, C * k * k)
    W_rows = W.reshape(F, C * k * k)
    out_rows = cols @ W_rows.T + b                       # (N * H_out * W_out, F)
    out = out_rows.reshape(N, H_out, W_out, F).transpose(0, 3, 1, 2)
    cache = (x.shape, cols, W, stride, padding)
    return out, cache


def conv2d_backward(dout, cache, input_grad=True):
    """Gradients of the convolution. dout: (N, F, H_out, W_out).

    Returns dx: (N, C, H, W), dW: (F, C, k, k), db: (F,):
      db[f]           = sum_{n, i, j} dout[n, f, i, j]
      dW[f, c, u, v]  = sum_{n, i, j} dout[n, f, i, j] * xp[n, c, s*i + u, s*j + v]
      dxp[n, c, y, z] = sum over every (f, i, j, u, v) with s*i + u = y and s*j + v = z of
                        dout[n, f, i, j] * W[f, c, u, v]
    In the matrix form out_rows = cols W_rows^T + b these are the linear layer's three gradients,
    and col2im adds each window's row of dcols back where the window came from.
    ``input_grad=False`` skips dx (returned as None): a first layer's input needs no gradient.
    """
    x_shape, cols, W, stride, padding = cache
    F, C, k, _ = W.shape
    dout_rows = dout.transpose(0, 2, 3, 1).reshape(-1, F)   # (N * H_out * W_out, F)
    db = dout_rows.sum(axis=0)
    dW = (dout_rows.T @ cols).reshape(W.shape)
    if not input_grad:
        return None, dW, db
    dcols = dout_rows @ W.reshape(F, C * k * k)             # (N * H_out * W_out, C * k * k)
    dx = col2im(dcols, x_shape, k, stride, padding)
    return dx, dW, db


# ----------------------------------------------------------------------------------- max-pooling

def maxpool2d_forward(x, kernel_size, stride=None):
    """Max-pooling over k x k windows. x: (N, C, H, W) -> out: (N, C, H_out, W_out).

    out[n, c, i, j] = max_{u, v} x[n, c, s*i + u, s*j + v], with stride s (default: k).
    Returns out and the cache (x, out, k, s).
    """
    k = kernel_size
    stride = k if stride is None else stride
    out = _windows(x, k, stride).max(axis=(4, 5))
    return out, (x, out, k, stride)


def maxpool2d_backward(dout, cache, ties="split"):
    """Route each window's gradient to the input(s) that were its maximum.

    dout: (N, C, H_out, W_out). Returns dx: (N, C, H, W).
    ties="split": when m inputs of a window tie for the maximum, each gets dout / m (the original
    demo's rule; the average of the one-hot choices is also a valid subgradient).
    ties="first": the first maximum in row-major order gets all of it (what PyTorch does).
    An input that is the maximum of several overlapping windows collects from each; inputs no
    window reaches get 0.
    """
    x, out, k, stride = cache
    N, C, H_out, W_out = out.shape
    is_max = _windows(x, k, stride) == out[..., None, None]      # (N, C, H_out, W_out, k, k)
    if ties == "first":
        flat = is_max.reshape(N, C, H_out, W_out, k * k)
        is_max = (flat & (np.cumsum(flat, axis=-1) == 1)).reshape(is_max.shape)
    m = is_max.sum(axis=(4, 5), keepdims=True, dtype=dout.dtype)  # maxima per window, >= 1
    share = is_max / m
    dwindows = share * dout[..., None, None]
    dx = np.zeros_like(x, dtype=dwindows.dtype)
    for u in range(k):
        for v in range(k):
            dx[:, :, u:u + stride * H_out:stride, v:v + stride * W_out:stride] += \
                dwindows[:, :, :, :, u, v]
    return dx


# --------------------------------------------------------------------------- batch normalization

def _channels(v, ndim):
    """(C,) -> a shape that broadcasts along axis 1 of an ndim-array: (1, C, 1, 1) for ndim 4."""
    return v.reshape((1, -1) + (1,) * (ndim - 2))


def batchnorm_forward(x, gamma, beta, eps=1e-5, mean=None, var=None):
    """Normalize each channel, then scale by gamma and shift by beta.

    x: (N, C, H, W) (or (N, C)); gamma, beta: (C,). Over the m = N * H * W values of channel c:
        mu = mean(x),  var = mean((x - mu)^2),  x_hat = (x - mu) / sqrt(var + eps),
        out = gamma * x_hat + beta
    mean, var: (C,) statistics to use instead (evaluation mode), or None for the batch's own.
    Returns out: like x, and the cache, a dict; ``cache["mean"]``, ``cache["var"]`` are the
    statistics used and ``cache["m"]`` the number of values per channel.
    """
    axes = (0,) + tuple(range(2, x.ndim))
    m = x.size // x.shape[1]
    batch_stats = mean is None
    if batch_stats:
        mean = x.mean(axis=axes)
        var = ((x - _channels(mean, x.ndim)) ** 2).mean(axis=axes)
    inv_std = (1.0 / np.sqrt(var + eps)).astype(x.dtype)
    x_hat = (x - _channels(mean, x.ndim)) * _channels(inv_std, x.ndim)
    out = _channels(gamma, x.ndim) * x_hat + _channels(beta, x.ndim)
    cache = {"x_hat": x_hat, "inv_std": inv_std, "gamma": gamma, "batch_stats": batch_stats,
             "mean": mean, "var": var, "m": m}
    return out, cache


def batchnorm_backward(dout, cache):
    """dout: like x. Returns dx: like x, dgamma: (C,), dbeta: (C,).

        dbeta  = sum dout,   dgamma = sum dout * x_hat          (sums over the m values)
        dx     = gamma / std * (dout - mean(dout) - x_hat * mean(dout * x_hat))
    The last two terms are there because mu and var depend on every x of the batch. With fixed
    statistics (evaluation mode) they are constants, and dx = gamma / std * dout.
    """
    x_hat, inv_std, gamma = cache["x_hat"], cache["inv_std"], cache["gamma"]
    axes = (0,) + tuple(range(2, dout.ndim))
    dbeta = dout.sum(axis=axes)
    dgamma = (dout * x_hat).sum(axis=axes)
    scale = _channels(gamma * inv_std, dout.ndim)
    if not cache["batch_stats"]:
        return dout * scale, dgamma, dbeta
    m = cache["m"]
    dx = scale * (dout - _channels(dbeta / m, dout.ndim) - x_hat * _channels(dgamma / m, dout.ndim))
    return dx, dgamma, dbeta


# --------------------------------------------------------------------------------------- dropout

def dropout_forward(x, p, rng, training=True):
    """Inverted dropout. x: any shape; p: drop probability in [0, 1); rng: numpy Generator.

    Training: each value is kept with probability 1 - p and scaled by 1 / (1 - p), so its expected
    value is unchanged:  mask = (u >= p) / (1 - p), u ~ Uniform[0, 1);  out = x * mask.
    Evaluation (or p == 0): out = x. Returns out and the cache (the mask, or None).
    """
    if not training or p == 0:
        return x, None
    # Draw in x's dtype: float32 draws are half the memory traffic of float64 ones.
    mask = (rng.random(x.shape, dtype=x.dtype) >= x.dtype.type(p)) * x.dtype.type(1 / (1 - p))
    return x * mask, mask


def dropout_backward(dout, cache):
    """dout: like x. Returns dx = dout * mask (dout itself when nothing was dropped)."""
    mask = cache
    return dout if mask is None else dout * mask


# ------------------------------------------------------------------------------------------ loss

def softmax(scores):
    """Row-wise softmax of scores: (N, K) -> probabilities (N, K), each row summing to 1.

    Subtracting each row's maximum first changes nothing mathematically (softmax is invariant to
    adding a constant to a row) and keeps exp() from overflowing.
    """
    shifted = scores - scores.max(axis=1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=1, keepdims=True)


def softmax_cross_entropy(scores, y):
    """Mean cross-entropy of the softmax of ``scores`` against integer labels ``y``.

    scores: (N, K) unnormalized class scores; y: (N,) integers in [0, K).
    loss = -(1/N) sum_n log p[n, y_n], with p = softmax(scores).
    Returns (loss, dscores) with dscores: (N, K) = (p - onehot(y)) / N.
    The log-probabilities are computed as shifted - log(sum(exp(shifted))), never as log(p), so a
    confident wrong answer gives a large finite loss instead of log(0) = -inf.
    """
    N = scores.shape[0]
    shifted = scores - scores.max(axis=1, keepdims=True)
    log_p = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    rows = np.arange(N)
    loss = -log_p[rows, y].mean()
    dscores = np.exp(log_p)
    dscores[rows, y] -= 1
    dscores /= N
    return float(loss), dscores
