"""Forward and backward passes of every operation, vectorized.

Each operation is a pair of pure functions::

    out, cache = op_forward(x, ...)
    dx, ... = op_backward(dout, cache)

``cache`` holds what the backward pass needs from the forward pass. Images are NCHW:
``x: (N, C, H, W)``. There is no Python loop over examples or pixels: convolution and pooling look at
their input through a strided *sliding-window view* (no copy) and turn the arithmetic into matrix
products and reductions. The loop versions these are derived from, and checked against, live in
``cnnlib.naive``.

Output size of a convolution or pooling window of size ``k``, stride ``s``, padding ``p``::

    H_out = (H + 2p - k) // s + 1
"""

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

__all__ = [
    "linear_forward", "linear_backward",
    "relu_forward", "relu_backward",
    "tanh_forward", "tanh_backward",
    "conv2d_forward", "conv2d_backward",
    "maxpool2d_forward", "maxpool2d_backward",
    "flatten_forward", "flatten_backward",
    "output_size", "check_floating", "check_rank",
]

TIES = ("split", "first")


# ---------------------------------------------------------------------------------------- checks

def _shape_text(shape):
    return "(" + ", ".join(str(d) for d in shape) + ")"


def check_rank(name, x, expected):
    """Raise ValueError unless ``x.ndim`` matches the letters of ``expected`` (e.g. "N, C, H, W")."""
    x = np.asarray(x)
    if x.ndim != len(expected.split(",")):
        raise ValueError(f"{name} expects x of shape ({expected}); got {_shape_text(x.shape)}")


def check_floating(name, x, dtype=None):
    """Raise ValueError unless ``x`` is a floating array (of ``dtype`` when given)."""
    if not isinstance(x, np.ndarray) or x.dtype.kind != "f":
        got = x.dtype if isinstance(x, np.ndarray) else type(x).__name__
        raise ValueError(
            f"{name} expects a floating numpy array; got {got}. "
            "Convert images with cnnlib.data.to_float (uint8 -> float32 in [0, 1])."
        )
    if dtype is not None and x.dtype != dtype:
        raise ValueError(
            f"{name} has dtype {np.dtype(dtype).name} and expects input of that dtype; got "
            f"{x.dtype.name}. Cast the input (x.astype(np.{np.dtype(dtype).name})) or build the "
            f"layer with dtype=np.{x.dtype.name}."
        )


def output_size(size, kernel_size, stride=1, padding=0):
    """Number of window positions along one axis: ``(size + 2 * padding - kernel_size) // stride + 1``."""
    return (size + 2 * padding - kernel_size) // stride + 1


# ---------------------------------------------------------------------------------------- linear

def linear_forward(x, W, b):
    """Fully connected layer: ``out = x W^T + b``.

    x: (N, D) inputs; W: (M, D) weights (PyTorch's layout: out_features x in_features); b: (M,).
    Returns out: (N, M) and the cache (x, W).
    """
    check_rank("linear", x, "N, D")
    if x.shape[1] != W.shape[1]:
        raise ValueError(
            f"linear expects x of shape (N, {W.shape[1]}); got {_shape_text(x.shape)}"
        )
    out = x @ W.T
    out += b
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
    """ReLU: ``out = max(x, 0)``, elementwise; any shape. The cache is ``x`` itself (no copy):
    the backward pass builds the mask ``x > 0`` when it needs it, so a forward pass alone (as in
    prediction) costs one pass over the data."""
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


# --------------------------------------------------------------------------------------- flatten

def flatten_forward(x):
    """(N, ...) -> (N, D): one row per example. The cache is the input shape."""
    return x.reshape(x.shape[0], -1), x.shape


def flatten_backward(dout, cache):
    """(N, D) -> the input's shape."""
    return dout.reshape(cache)


# ----------------------------------------------------------------------------------- convolution
#
# Memory layout. Every function here takes and returns NCHW arrays, but the convolution's matrix
# product naturally produces channels-last memory (one row per output pixel, one column per
# filter), so its output is a transposed *view* of an (N, H, W, C) array. ReLU and pooling keep
# whatever memory order they get, so the next convolution finds channels-last memory again and
# its im2col copies long runs of consecutive numbers. Any other layout gives the same numbers,
# only more slowly.

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


def _check_conv(x, W, b, stride, padding):
    check_rank("conv2d", x, "N, C, H, W")
    if W.ndim != 4 or W.shape[2] != W.shape[3]:
        raise ValueError(
            f"conv2d expects square kernels W of shape (F, C, k, k); got {_shape_text(W.shape)}"
        )
    F, C, k, _ = W.shape
    N, C_in, H, Wd = x.shape
    if C_in != C:
        raise ValueError(
            f"conv2d with {C} input channels expects x of shape (N, {C}, H, W); "
            f"got {_shape_text(x.shape)}"
        )
    if b.shape != (F,):
        raise ValueError(f"conv2d expects b of shape ({F},); got {_shape_text(b.shape)}")
    if stride < 1 or padding < 0:
        raise ValueError(f"conv2d needs stride >= 1 and padding >= 0; got stride={stride}, "
                         f"padding={padding}")
    if H + 2 * padding < k or Wd + 2 * padding < k:
        raise ValueError(
            f"conv2d kernel {k}x{k} is larger than the padded input: x of shape "
            f"{_shape_text(x.shape)} with padding {padding} is {H + 2 * padding}x"
            f"{Wd + 2 * padding}; expected at least {k}x{k}"
        )


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
    _check_conv(x, W, b, stride, padding)
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
    """Gradients of the convolution. dout: (N, F, H_out, W_out).

    Returns dx: (N, C, H, W), dW: (F, C, k, k), db: (F,):
      db[f]          = sum_{n, i, j} dout[n, f, i, j]
      dW[f, c, u, v] = sum_{n, i, j} dout[n, f, i, j] * xp[n, c, s*i + u, s*j + v]
      dxp[n, c, y, z] = sum over every (f, i, j, u, v) with s*i + u = y and s*j + v = z of
                        dout[n, f, i, j] * W[f, c, u, v]
    (for stride 1 the last one is a full cross-correlation of dout with the flipped kernels,
    which is a true full convolution of dout with W).
    ``input_grad=False`` skips dx (returned as None): a first layer's input needs no gradient.
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

def _check_pool(x, kernel_size, stride):
    check_rank("max_pool2d", x, "N, C, H, W")
    if kernel_size < 1 or stride < 1:
        raise ValueError(f"max_pool2d needs kernel_size >= 1 and stride >= 1; got "
                         f"kernel_size={kernel_size}, stride={stride}")
    if x.shape[2] < kernel_size or x.shape[3] < kernel_size:
        raise ValueError(
            f"max_pool2d window {kernel_size}x{kernel_size} is larger than the input: x of shape "
            f"{_shape_text(x.shape)}; expected H and W of at least {kernel_size}"
        )


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
    _check_pool(x, kernel_size, stride)
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
    if ties not in TIES:
        raise ValueError(f"ties must be one of {TIES}; got {ties!r}")
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
