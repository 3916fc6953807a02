"""Loop versions of convolution and max-pooling, written the way the notebooks derive them.

Slow and obvious: one Python loop per index of the formula. They are the reference that the
vectorized versions in ``cnnlib.functional`` and ``cnnlib.fast`` are tested against, and they take
and return the same things (``out, cache = *_forward(...)``, ``dx, ... = *_backward(dout, cache)``).
"""

import numpy as np

from .functional import output_size


def conv2d_forward(x, W, b, stride=1, padding=0):
    """x: (N, C, H, W); W: (F, C, k, k); b: (F,). Returns out: (N, F, H_out, W_out) and the cache.

    out[n, f, i, j] = b[f] + sum_{c, u, v} W[f, c, u, v] * xp[n, c, s*i + u, s*j + v]
    """
    N, C, H, Wd = x.shape
    F, _, k, _ = W.shape
    xp = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    H_out = output_size(H, k, stride, padding)
    W_out = output_size(Wd, k, stride, padding)
    out = np.zeros((N, F, H_out, W_out), dtype=x.dtype)
    for n in range(N):
        for f in range(F):
            for i in range(H_out):
                for j in range(W_out):
                    window = xp[n, :, stride * i:stride * i + k, stride * j:stride * j + k]
                    out[n, f, i, j] = np.sum(window * W[f]) + b[f]
    return out, (x, W, stride, padding)


def conv2d_backward(dout, cache, input_grad=True):
    """dout: (N, F, H_out, W_out). Returns dx: (N, C, H, W), dW: (F, C, k, k), db: (F,).

    Each output out[n, f, i, j] was made from one window of xp and the filter W[f], so it sends
    dout[n, f, i, j] * W[f] back to that window, dout[n, f, i, j] * window to W[f], and
    dout[n, f, i, j] to b[f]. ``input_grad=False`` returns None for dx.
    """
    x, W, stride, padding = cache
    N, C, H, Wd = x.shape
    F, _, k, _ = W.shape
    _, _, H_out, W_out = dout.shape
    xp = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    dxp = np.zeros_like(xp)
    dW = np.zeros_like(W)
    db = np.zeros(F, dtype=dout.dtype)
    for n in range(N):
        for f in range(F):
            for i in range(H_out):
                for j in range(W_out):
                    rows = slice(stride * i, stride * i + k)
                    cols = slice(stride * j, stride * j + k)
                    dxp[n, :, rows, cols] += dout[n, f, i, j] * W[f]
                    dW[f] += dout[n, f, i, j] * xp[n, :, rows, cols]
                    db[f] += dout[n, f, i, j]
    dx = dxp[:, :, padding:padding + H, padding:padding + Wd] if input_grad else None
    return dx, dW, db


def maxpool2d_forward(x, kernel_size, stride=None):
    """x: (N, C, H, W). Returns out: (N, C, H_out, W_out), the max of each k x k window."""
    k = kernel_size
    stride = k if stride is None else stride
    N, C, H, Wd = x.shape
    H_out = output_size(H, k, stride)
    W_out = output_size(Wd, k, stride)
    out = np.zeros((N, C, H_out, W_out), dtype=x.dtype)
    for n in range(N):
        for c in range(C):
            for i in range(H_out):
                for j in range(W_out):
                    window = x[n, c, stride * i:stride * i + k, stride * j:stride * j + k]
                    out[n, c, i, j] = window.max()
    return out, (x, k, stride)


def maxpool2d_backward(dout, cache, ties="split"):
    """dout: (N, C, H_out, W_out). Returns dx: (N, C, H, W).

    Each window sends its gradient to the input(s) holding its maximum: split evenly among tied
    maxima (ties="split") or all to the first in row-major order (ties="first").
    """
    x, k, stride = cache
    N, C, H_out, W_out = dout.shape
    dx = np.zeros_like(x)
    for n in range(N):
        for c in range(C):
            for i in range(H_out):
                for j in range(W_out):
                    window = x[n, c, stride * i:stride * i + k, stride * j:stride * j + k]
                    is_max = window == window.max()
                    if ties == "first":
                        first = np.zeros_like(is_max)
                        first.flat[np.argmax(is_max)] = True
                        is_max = first
                    dx[n, c, stride * i:stride * i + k, stride * j:stride * j + k] += (
                        is_max * dout[n, c, i, j] / is_max.sum()
                    )
    return dx
