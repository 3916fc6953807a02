"""Argument checks for the layer boundary: what a layer verifies before it calls an operation.

The operations (``functional``, ``fast``, a learner's own) hold only the math; a layer checks its
input here first, so a wrong shape or dtype gives an error that says what was expected and what to
do, instead of a broadcasting error deep inside a matrix product.
"""

import numpy as np

__all__ = ["shape_text", "check_rank", "check_floating", "check_linear", "check_conv2d",
           "check_maxpool2d", "check_batchnorm"]


def shape_text(shape):
    """(28, 28) -> "(28, 28)"; (5,) -> "(5)"."""
    return "(" + ", ".join(str(d) for d in shape) + ")"


def check_rank(name, x, expected):
    """Raise ValueError unless ``x.ndim`` matches the letters of ``expected`` (e.g. "N, C, H, W")."""
    x = np.asarray(x)
    if x.ndim != len(expected.split(",")):
        raise ValueError(f"{name} expects x of shape ({expected}); got {shape_text(x.shape)}")


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


def check_linear(x, W):
    """x: (N, D) for W: (M, D)."""
    check_rank("linear", x, "N, D")
    if x.shape[1] != W.shape[1]:
        raise ValueError(f"linear expects x of shape (N, {W.shape[1]}); got {shape_text(x.shape)}")


def check_conv2d(x, W, b, stride, padding):
    """x: (N, C, H, W) for W: (F, C, k, k), b: (F,); the padded input at least k x k."""
    check_rank("conv2d", x, "N, C, H, W")
    if W.ndim != 4 or W.shape[2] != W.shape[3]:
        raise ValueError(
            f"conv2d expects square kernels W of shape (F, C, k, k); got {shape_text(W.shape)}")
    F, C, k, _ = W.shape
    N, C_in, H, Wd = x.shape
    if C_in != C:
        raise ValueError(f"conv2d with {C} input channels expects x of shape (N, {C}, H, W); "
                         f"got {shape_text(x.shape)}")
    if b.shape != (F,):
        raise ValueError(f"conv2d expects b of shape ({F},); got {shape_text(b.shape)}")
    if stride < 1 or padding < 0:
        raise ValueError(f"conv2d needs stride >= 1 and padding >= 0; got stride={stride}, "
                         f"padding={padding}")
    if H + 2 * padding < k or Wd + 2 * padding < k:
        raise ValueError(
            f"conv2d kernel {k}x{k} is larger than the padded input: x of shape "
            f"{shape_text(x.shape)} with padding {padding} is {H + 2 * padding}x"
            f"{Wd + 2 * padding}; expected at least {k}x{k}")


def check_maxpool2d(x, kernel_size, stride):
    """x: (N, C, H, W) with H and W at least kernel_size."""
    check_rank("max_pool2d", x, "N, C, H, W")
    if kernel_size < 1 or stride < 1:
        raise ValueError(f"max_pool2d needs kernel_size >= 1 and stride >= 1; got "
                         f"kernel_size={kernel_size}, stride={stride}")
    if x.shape[2] < kernel_size or x.shape[3] < kernel_size:
        raise ValueError(
            f"max_pool2d window {kernel_size}x{kernel_size} is larger than the input: x of shape "
            f"{shape_text(x.shape)}; expected H and W of at least {kernel_size}")


def check_batchnorm(x, gamma, beta, mean=None, var=None):
    """x: (N, C, ...) floating; gamma, beta (and mean, var when given): (C,); in training mode
    (no mean and var) more than one value per channel."""
    if not isinstance(x, np.ndarray) or x.ndim < 2:
        got = x.shape if isinstance(x, np.ndarray) else type(x).__name__
        raise ValueError(f"batchnorm expects x of shape (N, C, H, W) or (N, C); got {got}")
    if x.dtype.kind != "f":
        raise ValueError(f"batchnorm expects floating x (float32 or float64); got {x.dtype}: "
                         "convert it first, e.g. x.astype(np.float32)")
    if gamma is None or beta is None:
        raise ValueError("batchnorm needs gamma and beta, arrays of shape (C,)")
    C = x.shape[1]
    for name, v in [("gamma", gamma), ("beta", beta), ("running mean", mean),
                    ("running var", var)]:
        if v is not None and np.shape(v) != (C,):
            raise ValueError(f"batchnorm over {C} channels expects {name} of shape ({C},); "
                             f"got {np.shape(v)}")
    if (mean is None) != (var is None):
        raise ValueError("batchnorm needs both mean and var (evaluation) or neither (training)")
    if mean is None and x.size // x.shape[1] < 2:
        raise ValueError(f"batchnorm in training mode needs more than one value per channel "
                         f"to estimate a variance; got x of shape {x.shape}. Use a larger "
                         f"batch, or call eval() to normalize with the running statistics.")
