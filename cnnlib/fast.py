"""The operations of ``cnnlib.functional``, rewritten for speed: same signatures, same results.

``functional`` is what the notebooks derive and print; this module is what training runs by
default (``cnnlib.ops``). Tests hold naive loops == functional == fast for every operation. The
tricks, each for a measured reason:

- Convolution keeps channels-last memory. Its matrix product naturally produces one row per
  output pixel and one column per filter, so its NCHW output is a transposed *view* of an
  (N, H, W, C) array. ReLU and pooling keep whatever memory order they get, so the next
  convolution finds channels-last memory again and its im2col copies long runs of consecutive
  numbers. Any other layout gives the same numbers, only more slowly.
- im2col appends a column of ones (the "bias trick"): one matrix product gives x W + b, and its
  gradient gives db along with dW.
- With one input channel, im2col stores its matrix tap by tap (see ``_tap_major``).
- Max-pooling takes its maximum tap by tap (a running ``np.maximum``, no copy of x), and when the
  windows tile the input (stride = k) the backward pass needs no gathering at all.
- Batch norm sums over channels-last rows with BLAS (a product with a vector of ones) and works
  in place on arrays it owns.

Operations with no trick worth having (ReLU, tanh, flatten, dropout, the loss) are functional's own,
imported here, so this module defines every name of ``cnnlib.ops.OPERATIONS`` (a test checks it).
"""

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from .functional import output_size
from .functional import (  # noqa: F401  (nothing faster to write: these are the derived ones)
    dropout_backward, dropout_forward, flatten_backward, flatten_forward, linear_backward,
    relu_backward, relu_forward, softmax_cross_entropy, tanh_backward, tanh_forward,
)


# ---------------------------------------------------------------------------------------- linear

def linear_forward(x, W, b):
    """As ``functional.linear_forward``; adds b in place (no second (N, M) temporary)."""
    out = x @ W.T
    out += b
    return out, (x, W)


# ----------------------------------------------------------------------------------- convolution
#

def _pad(x_nhwc, padding):
    """Zero-pad the two spatial axes of a channels-last array (N, H, W, C)."""
    if padding == 0:
        return x_nhwc
    return np.pad(x_nhwc, ((0, 0), (padding, padding), (padding, padding), (0, 0)))


def _tap_major(C):
    """Whether im2col stores its matrix tap by tap (True) instead of window by window (False).

    In channels-last memory one window row is k * C consecutive numbers, while one tap (u, v) of
    a whole image row is W_out numbers stride * C apart. Copying runs of consecutive numbers is what is
    fast, so with a single channel (window rows of only k numbers) we copy tap by tap.
    """
    return C == 1


def _im2col(xp, k, stride, H_out, W_out):
    """Every k x k window of the padded channels-last input as one row, plus a column of ones.

    xp: (N, H, W, C). Returns cols: (N * H_out * W_out, k * k * C + 1); row (n, i, j) holds the
    window at output position (i, j) in (u, v, c) order, then a 1 that multiplies the bias (the
    "bias trick": one matrix product gives x W + b, and its gradient gives db along with dW).
    """
    N, C = xp.shape[0], xp.shape[3]
    # (N, Ho, Wo, C, k, k): a strided view, no copy
    windows = sliding_window_view(xp, (k, k), axis=(1, 2))[:, ::stride, ::stride]
    taps, rows = k * k * C, N * H_out * W_out
    if _tap_major(C):
        cols_T = np.empty((taps + 1, rows), dtype=xp.dtype)   # the same matrix, stored transposed
        cols_T[:taps].reshape(k, k, C, N, H_out, W_out)[...] = windows.transpose(4, 5, 3, 0, 1, 2)
        cols_T[taps] = 1
        return cols_T.T
    cols = np.empty((rows, taps + 1), dtype=xp.dtype)
    cols[:, :taps].reshape(N, H_out, W_out, k, k, C)[...] = windows.transpose(0, 1, 2, 4, 5, 3)
    cols[:, taps] = 1
    return cols


def _col2im(dtaps, xp_shape, stride):
    """The adjoint of im2col: add every window's gradient back where the window was copied from.

    dtaps: (k, k, N, H_out, W_out, C), the gradient of each tap (u, v) of every window.
    Returns dxp: (N, H, W, C), the gradient w.r.t. the padded channels-last input: one strided
    slice per tap (k * k additions), each covering every window at once.
    """
    k, _, N, H_out, W_out, C = dtaps.shape
    dxp = np.zeros(xp_shape, dtype=dtaps.dtype)
    for u in range(k):
        for v in range(k):
            dxp[:, u:u + stride * H_out:stride, v:v + stride * W_out:stride] += dtaps[u, v]
    return dxp


def conv2d_forward(x, W, b, stride=1, padding=0):
    """2-D convolution (cross-correlation, as in every deep-learning library).

    x: (N, C, H, W) input; W: (F, C, k, k) filters; b: (F,) biases.
    out[n, f, i, j] = b[f] + sum_{c, u, v} W[f, c, u, v] * xp[n, c, s*i + u, s*j + v],
    where xp is x zero-padded by ``padding`` on each side and s is ``stride``.
    Returns out: (N, F, H_out, W_out) and the cache.

    The windows of xp, gathered into one row each and followed by a 1 (im2col: (N * H_out * W_out,
    k * k * C + 1)), times the filters as columns with their biases below ((k * k * C + 1, F)) give
    every output at once, biases included. The product has one row per output pixel (n, i, j) and
    one column per filter f: channels-last memory, of which the NCHW output is a transposed view
    (the "Memory layout" comment at the top of this section of the module says why).
    """
    N, C, H, Wd = x.shape
    F, _, k, _ = W.shape
    H_out, W_out = output_size(H, k, stride, padding), output_size(Wd, k, stride, padding)
    xp = _pad(x.transpose(0, 2, 3, 1), padding)             # (N, Hp, Wp, C), a view when padding=0
    cols = _im2col(xp, k, stride, H_out, W_out)             # (N * Ho * Wo, k * k * C + 1)
    # Each filter as a row in the windows' (u, v, c) order, followed by its bias.
    Wb = np.concatenate([W.transpose(0, 2, 3, 1).reshape(F, k * k * C), b[:, None]], axis=1)
    out = cols @ Wb.T                                       # (N * Ho * Wo, F) = x W + b
    out = out.reshape(N, H_out, W_out, F).transpose(0, 3, 1, 2)
    cache = (x.shape, xp.shape, cols, W, stride, padding)
    return out, cache


def conv2d_backward(dout, cache, input_grad=True):
    """As ``functional.conv2d_backward`` (the formulas are there). dout: (N, F, H_out, W_out).

    Returns dx: (N, C, H, W), dW: (F, C, k, k), db: (F,); db comes with dW from the bias column.
    ``input_grad=False`` skips dx (returned as None).
    """
    x_shape, xp_shape, cols, W, stride, padding = cache
    N, F, H_out, W_out = dout.shape
    _, C, k, _ = W.shape
    dout_rows = dout.transpose(0, 2, 3, 1).reshape(N * H_out * W_out, F)  # a view if channels-last
    dWb = dout_rows.T @ cols                                # (F, k * k * C + 1): db is the last column
    dW = dWb[:, :-1].reshape(F, k, k, C).transpose(0, 3, 1, 2)
    db = dWb[:, -1]
    if not input_grad:
        return None, dW, db
    # dtaps[u, v] = dout_rows @ W[:, :, u, v]: the gradient of tap (u, v) of every window.
    if _tap_major(C):
        # One channel: a single product, (k * k, F) @ (F, rows), lists the taps one after another.
        dtaps = W.reshape(F, k * k).T @ dout_rows.T
    else:
        dtaps = np.matmul(dout_rows, W.transpose(2, 3, 0, 1))  # (k, k, rows, C), k * k products
    dtaps = dtaps.reshape(k, k, N, H_out, W_out, C)
    dxp = _col2im(dtaps, xp_shape, stride)                  # (N, Hp, Wp, C)
    H, Wd = x_shape[2], x_shape[3]
    dx = dxp[:, padding:padding + H, padding:padding + Wd].transpose(0, 3, 1, 2)
    return dx, dW, db


# ----------------------------------------------------------------------------------- max-pooling

def _tap_slices(k, stride, H_out, W_out):
    """For each tap (u, v) of a k x k window, the slices of (H, W) that it reads in every window."""
    return [(slice(u, u + stride * H_out, stride), slice(v, v + stride * W_out, stride))
            for u in range(k) for v in range(k)]


def _taps(x_nhwc, k, stride, H_out, W_out):
    """Tap (u, v) of every k x k window, for each of the k * k taps: (k * k, N, H_out, W_out, C).

    Tap (u, v) of every window at once is the strided slice x[:, u::s, v::s]; the taps are copied
    one after another into contiguous memory, where the backward pass compares them with the
    maxima."""
    N, _, _, C = x_nhwc.shape
    taps = np.empty((k * k, N, H_out, W_out, C), dtype=x_nhwc.dtype)
    for t, (rows, cols) in enumerate(_tap_slices(k, stride, H_out, W_out)):
        taps[t] = x_nhwc[:, rows, cols]
    return taps


def maxpool2d_forward(x, kernel_size, stride=None):
    """Max-pooling over k x k windows. x: (N, C, H, W) -> out: (N, C, H_out, W_out).

    out[n, c, i, j] = max_{u, v} x[n, c, s*i + u, s*j + v], with stride s (default: k).
    Windows may overlap (s < k); rows and columns that no window reaches get no gradient.

    The maximum is taken tap by tap: tap (u, v) of every window at once is the strided slice
    x[:, :, u::s, v::s], and a running ``np.maximum`` over the k * k taps needs no copy of x. The
    cache keeps x itself (no copy); only the backward pass gathers the taps (see ``_taps``).
    """
    stride = kernel_size if stride is None else stride
    N, C, H, W = x.shape
    H_out, W_out = output_size(H, kernel_size, stride), output_size(W, kernel_size, stride)
    x_nhwc = x.transpose(0, 2, 3, 1)                        # a view, channels-last for our layers
    slices = _tap_slices(kernel_size, stride, H_out, W_out)
    rows, cols = slices[0]
    out_nhwc = x_nhwc[:, rows, cols].copy()                 # (N, H_out, W_out, C)
    for rows, cols in slices[1:]:
        np.maximum(out_nhwc, x_nhwc[:, rows, cols], out=out_nhwc)
    out = out_nhwc.transpose(0, 3, 1, 2)                    # (N, C, H_out, W_out)
    cache = (x, out, kernel_size, stride)
    return out, cache


def maxpool2d_backward(dout, cache, ties="split"):
    """Route each window's gradient to the input(s) that were its maximum.

    dout: (N, C, H_out, W_out). Returns dx: (N, C, H, W).

    ties="split": when m inputs of a window tie for the maximum, each gets dout / m (the original
    demo's rule; the average of the one-hot choices is also a valid subgradient).
    ties="first": the first maximum in row-major order gets all of it (what PyTorch does).
    An input that is the maximum of several overlapping windows collects from each.
    """
    x, out, k, stride = cache
    N, C, H, W = x.shape
    H_out, W_out = out.shape[2], out.shape[3]
    out_nhwc, dout_nhwc = out.transpose(0, 2, 3, 1), dout.transpose(0, 2, 3, 1)
    if stride == k and ties == "split":
        return _maxpool2d_backward_tiles(x.transpose(0, 2, 3, 1), out_nhwc, dout_nhwc, k)
    taps = _taps(x.transpose(0, 2, 3, 1), k, stride, H_out, W_out)
    is_max = taps == out_nhwc                               # (k * k, N, H_out, W_out, C)
    if ties == "first":
        is_max &= np.cumsum(is_max, axis=0) == 1            # only the first tap that is a maximum
        dtaps = is_max * dout_nhwc
    else:
        dtaps = is_max * (dout_nhwc / is_max.sum(axis=0, dtype=dout.dtype))  # count >= 1
    dx_nhwc = np.zeros((N, H, W, C), dtype=dtaps.dtype)
    for t, (rows, cols) in enumerate(_tap_slices(k, stride, H_out, W_out)):
        if stride < k:
            dx_nhwc[:, rows, cols] += dtaps[t]              # overlapping windows: collect from each
        else:
            dx_nhwc[:, rows, cols] = dtaps[t]               # disjoint windows: one write per input
    return dx_nhwc.transpose(0, 3, 1, 2)


def _maxpool2d_backward_tiles(x_nhwc, out_nhwc, dout_nhwc, k):
    """``maxpool2d_backward`` with ties="split" when the windows tile the input (stride = k).

    Then the windows need no gathering: splitting H into (H_out, k) and W into (W_out, k) is a
    view of x in which window (i, j) is x6[:, i, :, j, :], and the maxima and gradients broadcast
    over each window's k x k axes. x_nhwc: (N, H, W, C); out_nhwc, dout_nhwc: (N, H_out, W_out, C).
    Returns dx: (N, C, H, W) (channels-last memory). Rows and columns past the last window get 0.
    """
    N, H, W, C = x_nhwc.shape
    _, H_out, W_out, _ = out_nhwc.shape
    x6 = x_nhwc[:, :H_out * k, :W_out * k].reshape(N, H_out, k, W_out, k, C)   # a view
    is_max = x6 == out_nhwc[:, :, None, :, None]                # (N, H_out, k, W_out, k, C)
    ties = np.zeros(out_nhwc.shape, dtype=dout_nhwc.dtype)      # maxima per window, >= 1
    for u in range(k):                                          # k * k small additions: faster
        for v in range(k):                                      # than a sum over axes (2, 4)
            ties += is_max[:, :, u, :, v]
    dx6 = is_max * (dout_nhwc / ties)[:, :, None, :, None]
    if (H_out * k, W_out * k) == (H, W):
        return dx6.reshape(N, H, W, C).transpose(0, 3, 1, 2)
    dx_nhwc = np.zeros((N, H, W, C), dtype=dx6.dtype)
    dx_nhwc[:, :H_out * k, :W_out * k] = dx6.reshape(N, H_out * k, W_out * k, C)
    return dx_nhwc.transpose(0, 3, 1, 2)


# --------------------------------------------------------------------------- batch normalization

def _channel_view(v, ndim):
    """(C,) -> a shape that broadcasts along axis 1 of an ndim-array: (1, C, 1, 1) for ndim 4."""
    return v.reshape((1, -1) + (1,) * (ndim - 2))


def _reduce_axes(ndim):
    """Every axis except the channel axis 1: (0, 2, 3) for (N, C, H, W)."""
    return (0,) + tuple(range(2, ndim))


def _channel_rows(a):
    """a: (N, C, ...) as a 2-D view (N * ..., C) with one row per position, or None when a's
    memory is not channels-last (then no such view exists without a copy)."""
    rows = np.moveaxis(a, 1, -1)
    return rows.reshape(-1, a.shape[1]) if rows.flags.c_contiguous else None


def _channel_sum(a):
    """sum over every axis but the channel axis 1: (N, C, ...) -> (C,).

    Our convolutions return channels-last memory; there the sum is a matrix-vector product with
    a vector of ones (BLAS, several times faster than numpy's strided reduction)."""
    rows = _channel_rows(a)
    if rows is None:
        return a.sum(axis=_reduce_axes(a.ndim))
    return np.ones(len(rows), dtype=a.dtype) @ rows


def _channel_dot(a, b):
    """sum over every axis but the channel axis 1 of a * b, without the temporary a * b when
    both are channels-last in memory: (N, C, ...), (N, C, ...) -> (C,)."""
    rows_a, rows_b = _channel_rows(a), _channel_rows(b)
    if rows_a is None or rows_b is None:
        return (a * b).sum(axis=_reduce_axes(a.ndim))
    return np.einsum("ij,ij->j", rows_a, rows_b)


def batchnorm_forward(x, gamma, beta, eps=1e-5, mean=None, var=None):
    """As ``functional.batchnorm_forward``: the same statistics and cache, with the channel sums
    done by BLAS on channels-last memory and x_hat computed in place.
    """
    m = x.size // x.shape[1]
    batch_stats = mean is None
    if batch_stats:
        mean = _channel_sum(x) / m
    xc = x - _channel_view(mean, x.ndim)
    if batch_stats:
        var = _channel_dot(xc, xc) / m
    inv_std = (1.0 / np.sqrt(var + eps)).astype(x.dtype)
    x_hat = xc
    x_hat *= _channel_view(inv_std, x.ndim)                     # in place: xc is ours
    out = x_hat * _channel_view(gamma, x.ndim)
    out += _channel_view(beta, x.ndim)
    cache = {"x_hat": x_hat, "inv_std": inv_std, "gamma": gamma, "batch_stats": batch_stats,
             "mean": mean, "var": var, "m": m}
    return out, cache


def batchnorm_backward(dout, cache):
    """As ``functional.batchnorm_backward``, in place on arrays this function owns."""
    x_hat, inv_std, gamma = cache["x_hat"], cache["inv_std"], cache["gamma"]
    ndim = dout.ndim
    dbeta = _channel_sum(dout)
    dgamma = _channel_dot(dout, x_hat)
    scale = _channel_view(gamma * inv_std, ndim)
    if not cache["batch_stats"]:
        return dout * scale, dgamma, dbeta
    m = cache["m"]
    dx = x_hat * _channel_view(dgamma / m, ndim)
    np.subtract(dout, dx, out=dx)
    dx -= _channel_view(dbeta / m, ndim)
    dx *= scale
    return dx, dgamma, dbeta
