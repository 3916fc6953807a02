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


def linear_backward(dout, cache):
    """dout: (N, M). Returns dx: (N, D) = dout W, dW: (M, D) = dout^T x, db: (M,) = sum_n dout."""
    x, W = cache
    dx = dout @ W
    dW = dout.T @ x
    db = dout.sum(axis=0)
    return dx, dW, db


# ----------------------------------------------------------------------------------- activations

def relu_forward(x):
    """ReLU: ``out = max(x, 0)``, elementwise; any shape. The cache is the mask ``x > 0``."""
    return np.maximum(x, 0), x > 0


def relu_backward(dout, cache):
    """dx = dout where x > 0, else 0 (the subgradient 0 is taken at the kink x = 0)."""
    return dout * cache


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

def _pad(x, padding):
    if padding == 0:
        return x
    return np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))


def _windows(xp, kernel_size, stride):
    """Every k x k window of xp: (N, C, H_out, W_out, k, k), a strided view (no copy)."""
    view = sliding_window_view(xp, (kernel_size, kernel_size), axis=(2, 3))
    return view[:, :, ::stride, ::stride]


def _scatter_windows(dwin, input_shape, stride):
    """The adjoint of ``_windows``: add each window's gradient back where the window came from.

    dwin: (N, C, H_out, W_out, k, k). Returns an array of ``input_shape`` (N, C, H, W). This is
    col2im: one strided slice per kernel offset (k * k additions), each covering every window.
    """
    N, C, H_out, W_out, k, _ = dwin.shape
    dx = np.zeros(input_shape, dtype=dwin.dtype)
    for i in range(k):
        for j in range(k):
            dx[:, :, i:i + stride * H_out:stride, j:j + stride * W_out:stride] += dwin[..., i, j]
    return dx


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

    The windows of xp, gathered into one row each (im2col: (N * H_out * W_out, C * k * k)), times
    the filters as columns ((C * k * k, F)) give every output at once.
    """
    _check_conv(x, W, b, stride, padding)
    N, C, H, Wd = x.shape
    F, _, k, _ = W.shape
    xp = _pad(x, padding)
    windows = _windows(xp, k, stride)                           # (N, C, Ho, Wo, k, k) view
    H_out, W_out = windows.shape[2], windows.shape[3]
    cols = windows.transpose(0, 2, 3, 1, 4, 5).reshape(N * H_out * W_out, C * k * k)  # copy
    out = cols @ W.reshape(F, C * k * k).T                      # (N * Ho * Wo, F)
    out += b
    out = out.reshape(N, H_out, W_out, F).transpose(0, 3, 1, 2)
    cache = (x.shape, xp.shape, cols, W, stride, padding)
    return out, cache


def conv2d_backward(dout, cache):
    """Gradients of the convolution. dout: (N, F, H_out, W_out).

    Returns dx: (N, C, H, W), dW: (F, C, k, k), db: (F,):
      db[f]          = sum_{n, i, j} dout[n, f, i, j]
      dW[f, c, u, v] = sum_{n, i, j} dout[n, f, i, j] * xp[n, c, s*i + u, s*j + v]
      dxp[n, c, y, x] = sum over every (f, i, j, u, v) whose window touches (y, x) of
                        dout[n, f, i, j] * W[f, c, u, v]
    (for stride 1 the last one is the full convolution of dout with the flipped kernels).
    """
    x_shape, xp_shape, cols, W, stride, padding = cache
    N, F, H_out, W_out = dout.shape
    _, C, k, _ = W.shape
    dout_rows = dout.transpose(0, 2, 3, 1).reshape(N * H_out * W_out, F)
    db = dout_rows.sum(axis=0)
    dW = (dout_rows.T @ cols).reshape(W.shape)
    dcols = dout_rows @ W.reshape(F, C * k * k)                 # (N * Ho * Wo, C * k * k)
    dwin = dcols.reshape(N, H_out, W_out, C, k, k).transpose(0, 3, 1, 2, 4, 5)
    dxp = _scatter_windows(dwin, xp_shape, stride)
    H, Wd = x_shape[2], x_shape[3]
    dx = dxp[:, :, padding:padding + H, padding:padding + Wd]
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


def maxpool2d_forward(x, kernel_size, stride=None):
    """Max-pooling over k x k windows. x: (N, C, H, W) -> out: (N, C, H_out, W_out).

    out[n, c, i, j] = max_{u, v} x[n, c, s*i + u, s*j + v], with stride s (default: k).
    Windows may overlap (s < k); rows and columns that no window reaches get no gradient.
    """
    stride = kernel_size if stride is None else stride
    _check_pool(x, kernel_size, stride)
    windows = _windows(x, kernel_size, stride)                  # (N, C, Ho, Wo, k, k) view
    out = windows.max(axis=(4, 5))
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
    windows = _windows(x, k, stride)
    is_max = windows == out[..., None, None]                    # (N, C, Ho, Wo, k, k)
    if ties == "first":
        N, C, H_out, W_out = out.shape
        first = is_max.reshape(N, C, H_out, W_out, k * k).argmax(axis=-1)
        is_max = np.zeros((N, C, H_out, W_out, k * k), dtype=bool)
        np.put_along_axis(is_max, first[..., None], True, axis=-1)
        is_max = is_max.reshape(N, C, H_out, W_out, k, k)
        share = dout
    else:
        share = dout / is_max.sum(axis=(4, 5))
    dwin = is_max * share[..., None, None]
    if k == stride and x.shape[2] % k == 0 and x.shape[3] % k == 0:
        # Windows tile the input exactly: the scatter is a reshape.
        N, C, H, Wd = x.shape
        return dwin.transpose(0, 1, 2, 4, 3, 5).reshape(N, C, H, Wd)
    return _scatter_windows(dwin, x.shape, stride)
