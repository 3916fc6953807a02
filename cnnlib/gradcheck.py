"""Numerical gradients by central differences, to check the hand-derived backward passes.

    df/dx_i ~ (f(x + h e_i) - f(x - h e_i)) / (2h)

The error of this estimate is O(h^2) plus rounding of order eps * |f| / h; with float64
(eps ~ 1e-16) and h = 1e-5 both are tiny. In float32 (eps ~ 1e-7) rounding swamps the estimate,
which is why gradient checks run in float64.
"""

import numpy as np


def numerical_gradient(f, x, h=1e-5):
    """Gradient of a scalar function ``f()`` with respect to the array ``x``, perturbed in place.

    f: a function of no arguments that reads x and returns a float. Returns an array like x.
    """
    grad = np.zeros_like(x)
    it = np.nditer(x, flags=["multi_index"])
    for _ in it:
        i = it.multi_index
        old = x[i]
        x[i] = old + h
        f_plus = f()
        x[i] = old - h
        f_minus = f()
        x[i] = old
        grad[i] = (f_plus - f_minus) / (2 * h)
    return grad


def numerical_gradient_array(f, x, dout, h=1e-5):
    """Gradient of sum(f() * dout) with respect to ``x``, for an array-valued ``f()``.

    This is what a backward pass computes given the upstream gradient dout (same shape as f()).
    """
    grad = np.zeros_like(x)
    it = np.nditer(x, flags=["multi_index"])
    for _ in it:
        i = it.multi_index
        old = x[i]
        x[i] = old + h
        f_plus = np.array(f(), copy=True)
        x[i] = old - h
        f_minus = np.array(f(), copy=True)
        x[i] = old
        grad[i] = np.sum((f_plus - f_minus) * dout) / (2 * h)
    return grad


def rel_error(a, b):
    """Relative error ||a - b|| / (||a|| + ||b||), 0 when both are zero.

    Taken over the whole array rather than element by element: an entry whose true gradient is
    zero has an estimate of order 1e-11, which element by element would look like a 100% error.
    """
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"rel_error compares arrays of one shape; got {a.shape} and {b.shape}")
    scale = np.linalg.norm(a) + np.linalg.norm(b)
    return 0.0 if scale == 0 else float(np.linalg.norm(a - b) / scale)
