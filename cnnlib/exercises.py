"""The checks behind the notebooks' exercises: is the learner's function right, and if not, what is wrong.

    from cnnlib.exercises import check_linear_forward
    print(check_linear_forward(linear_forward))     # "linear_forward: correct ..." or AssertionError

Each ``check_*`` calls the learner's function on small float64 arrays with a fixed seed (N, D, M all
different, so a transposed or wrongly summed array has a shape of its own), compares it with
reference values and with numerical gradients, and raises ``AssertionError`` with a message in the
learner's words (which output, what shape, what was probably forgotten) at the first thing wrong.
When everything is right it returns one short line saying so.

The reference values come from ``cnnlib.functional`` and ``cnnlib.gradcheck``, inside this module:
the notebook's namespace holds no reference implementation while the learner writes theirs.

What it trades away: a check recognises the common mistakes it was written for
(tests/test_exercises.py feeds it each one); any other mistake gets a general "differs from the
numerical gradient" message with the relative error.
"""

from __future__ import annotations

import numpy as np

from . import functional
from .gradcheck import numerical_gradient, numerical_gradient_array, rel_error

__all__ = ["check_linear_forward", "check_linear_backward", "check_softmax_cross_entropy"]

N, D, M, K = 4, 5, 3, 10
TOLERANCE = 1e-7


def _call(name, function, *args):
    """``function(*args)``, with a message for a stub that is still empty or a call that fails."""
    try:
        with np.errstate(all="ignore"):
            return function(*args)
    except NotImplementedError:
        raise AssertionError(f"{name} is not written yet: its body still raises "
                             f"NotImplementedError. Write it in its cell, run that cell, then run "
                             f"this check again.") from None
    except Exception as error:
        raise AssertionError(f"{name} raised {type(error).__name__}: {error}. Check the shapes "
                             f"of the arrays you multiply (the docstring lists them).") from None


def _pair(name, answer, what):
    if not isinstance(answer, tuple) or len(answer) != len(what):
        got = (f"a tuple of {len(answer)}" if isinstance(answer, tuple)
               else type(answer).__name__)
        raise AssertionError(f"{name} must return a tuple ({', '.join(what)}); got {got}")
    return answer


def _shape(name, array, expected, hint=""):
    shape = np.shape(array)
    if shape != expected:
        raise AssertionError(f"{name} has shape {shape}; expected {expected}" +
                             (f": {hint}" if hint else ""))


def _scaled(actual, expected, factor):
    return np.allclose(actual, factor * expected, rtol=1e-6, atol=1e-12)


def _linear_data(seed=0):
    rng = np.random.default_rng(seed)
    return (rng.normal(size=(N, D)), rng.normal(size=(M, D)), rng.normal(size=M),
            rng.normal(size=(N, M)))


def check_linear_forward(linear_forward):
    """Check ``linear_forward(x, W, b) -> (out, cache)`` with x: (N, D), W: (M, D), b: (M,)."""
    x, W, b, _ = _linear_data()
    out, _ = _pair("linear_forward", _call("linear_forward", linear_forward, x, W, b),
                   ("out", "cache"))
    if np.shape(out) == (M, N):
        raise AssertionError(f"out has shape {(M, N)}, the transpose of the expected (N, M) = "
                             f"{(N, M)}: one row per example, so out = x W^T + b")
    _shape("out", out, (N, M), "one row per example (N), one column per output (M)")
    expected, _ = functional.linear_forward(x, W, b)
    if np.allclose(out, expected - b):
        raise AssertionError("out is x W^T without the bias: add b (it is broadcast to every row)")
    if not np.allclose(out, expected, rtol=1e-10, atol=1e-12):
        raise AssertionError("out has the right shape but wrong values: out[n, m] = "
                             "sum_d x[n, d] W[m, d] + b[m]")
    return "linear_forward: correct (out = x W^T + b, shape (N, M))"


def check_linear_backward(linear_forward, linear_backward):
    """Check ``linear_backward(dout, cache, input_grad=True) -> (dx, dW, db)`` against numerical
    gradients; ``cache`` comes from the learner's own ``linear_forward``, so that is checked
    first."""
    try:
        check_linear_forward(linear_forward)
    except AssertionError as error:
        raise AssertionError(f"linear_backward is checked with the cache of your linear_forward, "
                             f"which is not right yet: {error}") from None
    x, W, b, dout = _linear_data(1)
    _, cache = linear_forward(x, W, b)
    dx, dW, db = _pair("linear_backward",
                       _call("linear_backward", linear_backward, dout, cache, True),
                       ("dx", "dW", "db"))
    _shape("dx", dx, (N, D), "the gradient of x has the shape of x")
    if np.shape(dW) == (D, M):
        raise AssertionError(f"dW has shape {(D, M)}, the transpose of W's shape (M, D) = "
                             f"{(M, D)}: dW = dout^T x, not x^T dout")
    _shape("dW", dW, (M, D), "the gradient of W has the shape of W")
    if np.shape(db) == (N, M):
        raise AssertionError(f"db has shape {(N, M)}, the shape of dout: your db is not summed "
                             f"over the batch (sum dout over axis 0, the examples)")
    if np.shape(db) == (N,):
        raise AssertionError(f"db has shape {(N,)}: you summed over the outputs; sum over the "
                             f"batch instead (axis 0), one number per output")
    _shape("db", db, (M,), "one number per output, like b")
    forward = lambda: functional.linear_forward(x, W, b)[0]
    for name, analytic, wrt in [("dx", dx, x), ("dW", dW, W), ("db", db, b)]:
        numerical = numerical_gradient_array(forward, wrt, dout)
        error = rel_error(np.asarray(analytic, dtype=float), numerical)
        if error < TOLERANCE:
            continue
        if _scaled(analytic, numerical, -1):
            raise AssertionError(f"your {name} has the wrong sign: it is minus the numerical "
                                 f"gradient")
        if _scaled(analytic, numerical, 1 / N):
            raise AssertionError(f"your {name} is N = {N} times too small: sum over the batch, "
                                 f"do not average (the loss already divides by N)")
        raise AssertionError(f"your {name} differs from the numerical gradient (relative error "
                             f"{error:.1e}); compare it with the formula in the derivation")
    _, cache = linear_forward(x, W, b)
    answer = _pair("linear_backward(dout, cache, input_grad=False)",
                   _call("linear_backward", linear_backward, dout, cache, False),
                   ("dx", "dW", "db"))
    if not all(np.shape(got) == np.shape(want) and np.allclose(got, want)
               for got, want in [(answer[1], dW), (answer[2], db)]):
        raise AssertionError("with input_grad=False, dW and db must still be computed (only dx "
                             "may be skipped, returned as None)")
    return "linear_backward: correct (dx, dW, db match the numerical gradients)"


def check_softmax_cross_entropy(softmax_cross_entropy):
    """Check ``softmax_cross_entropy(scores, y) -> (loss, dscores)`` with scores: (N, K),
    y: (N,) integers: the loss value, ln K for equal scores, the gradient against central
    differences, and large scores (no overflow)."""
    name = "softmax_cross_entropy"
    rng = np.random.default_rng(2)
    n = N + 1
    scores = rng.normal(size=(n, K))
    y = rng.integers(0, K, size=n)
    given = scores.copy()
    loss, dscores = _pair(name, _call(name, softmax_cross_entropy, scores, y),
                          ("loss", "dscores"))
    if not np.array_equal(scores, given):
        raise AssertionError("your function changed scores in place (e.g. scores -= max): work "
                             "on a copy, the caller still needs its scores")
    if np.ndim(loss) != 0:
        raise AssertionError(f"loss must be one number, the mean over the batch; got an array of "
                             f"shape {np.shape(loss)}")
    expected_loss, expected_dscores = functional.softmax_cross_entropy(scores, y)
    loss = float(loss)
    if not np.isclose(loss, expected_loss, rtol=1e-9):
        if np.isclose(loss, -expected_loss, rtol=1e-9):
            raise AssertionError("your loss has the wrong sign: it is -(1/N) sum_n log p[n, y_n], "
                                 "a positive number")
        if np.isclose(loss, n * expected_loss, rtol=1e-9):
            raise AssertionError(f"your loss is the sum over the batch, N = {n} times too "
                                 f"large: you forgot the 1/N (the loss is the mean)")
        raise AssertionError(f"your loss is {loss:.6f}; expected {expected_loss:.6f}, the mean "
                             f"of -log p[n, y_n]")
    uniform, _ = _call(name, softmax_cross_entropy, np.zeros((n, K)), y)
    if not np.isclose(float(uniform), np.log(K)):
        raise AssertionError(f"with all scores equal the loss should be ln {K} = "
                             f"{np.log(K):.6f}; got {float(uniform):.6f}")
    _shape("dscores", dscores, (n, K), "the gradient of scores has the shape of scores")
    numerical = numerical_gradient(lambda: functional.softmax_cross_entropy(scores, y)[0],
                                   scores)
    error = rel_error(np.asarray(dscores, dtype=float), numerical)
    if error >= TOLERANCE:
        p = functional.softmax(scores)
        if _scaled(dscores, numerical, -1):
            raise AssertionError("your dscores has the wrong sign: it is (p - Y) / N, the "
                                 "probabilities minus the one-hot labels")
        if _scaled(dscores, numerical, n):
            raise AssertionError(f"your dscores is N = {n} times too large: you forgot the 1/N")
        if np.allclose(dscores, p / n) or np.allclose(dscores, p):
            raise AssertionError("your dscores is the probabilities p without subtracting the "
                                 "one-hot labels Y: subtract 1 at each example's correct class")
        raise AssertionError(f"your dscores differs from the numerical gradient (relative error "
                             f"{error:.1e}); it should be (p - Y) / N")
    big = np.array([[1000.0, 1001.0, 1002.0], [0.0, 800.0, -800.0]])
    big_y = np.array([2, 0])
    big_loss, big_dscores = _call(name, softmax_cross_entropy, big, big_y)
    expected_big, expected_big_dscores = functional.softmax_cross_entropy(big, big_y)
    if not np.all(np.isfinite(big_dscores)):
        raise AssertionError("with scores around 1000 your dscores is inf or nan: exp overflows; "
                             "subtract each row's maximum before exp")
    if not np.isfinite(big_loss):
        raise AssertionError(f"with a confident wrong answer your loss is {float(big_loss)}: p "
                             f"rounds to 0 and log 0 = -inf; take log p as shifted - "
                             f"log(sum(exp(shifted))), not log of p")
    if not (np.isclose(big_loss, expected_big) and np.allclose(big_dscores, expected_big_dscores)):
        raise AssertionError(f"with large scores your loss is {float(big_loss):.4f}; expected "
                             f"{expected_big:.4f} (a confident wrong answer costs about 400 per "
                             f"example here): compute log p as shifted - log(sum(exp(shifted))), "
                             f"not log of p, which rounds to log 0")
    return "softmax_cross_entropy: correct (loss, ln K for equal scores, dscores, large scores)"


# ----------------------------------------------------------------------- max-pooling (notebook 05)

__all__ += ["check_maxpool2d_forward", "check_maxpool2d_backward"]

POOL_CASES = [(2, None), (3, 2), (3, 1)]        # tiling windows, then two overlapping cases


def _pool_call(name, function, *args):
    """``function(*args)`` with the learner's words for a stub or a crash (indices, shapes)."""
    try:
        with np.errstate(all="ignore"):
            return function(*args)
    except NotImplementedError:
        raise AssertionError(f"{name} is not written yet: its body still raises "
                             f"NotImplementedError. Write it in its cell, run that cell, then run "
                             f"this check again.") from None
    except Exception as error:
        raise AssertionError(f"{name} raised {type(error).__name__}: {error}. Check the window "
                             f"bounds s*i .. s*i+k and the output size (the docstring gives "
                             f"them); stride=None means stride = k.") from None


def _distinct(seed, shape=(2, 3, 8, 9)):
    """Distinct values at least 0.01 apart, so no window has a tie and central differences with
    h = 1e-5 never change which input is a window's maximum."""
    rng = np.random.default_rng(seed)
    return rng.permutation(int(np.prod(shape))).reshape(shape) * 0.01 - 0.5


def _with_ties():
    """A ReLU-like input (many zeros) with windows of 2, 3 and 4 tied positive maxima."""
    rng = np.random.default_rng(7)
    x = np.maximum(rng.normal(size=(2, 3, 8, 9)), 0.0)
    x[0, 0, 0:2, 0:2] = [[2.0, 2.0], [1.0, 0.5]]            # two tied maxima
    x[0, 1, 2:4, 2:4] = [[3.0, 3.0], [3.0, -1.0]]           # three
    x[1, 2, 4:6, 4:6] = 1.5                                 # four
    x[1, 0, 0:2, 0:2] = 0.0                                 # four zeros
    return x


def _scatter(dwindows, shape, k, stride):
    """Add dwindows (N, C, H_out, W_out, k, k) back onto the inputs of their windows."""
    dx = np.zeros(shape)
    H_out, W_out = dwindows.shape[2:4]
    for u in range(k):
        for v in range(k):
            dx[:, :, u:u + stride * H_out:stride, v:v + stride * W_out:stride] += \
                dwindows[:, :, :, :, u, v]
    return dx


def _windows_of(x, k, stride):
    view = np.lib.stride_tricks.sliding_window_view(x, (k, k), axis=(2, 3))
    return view[:, :, ::stride, ::stride]


def check_maxpool2d_forward(maxpool2d_forward):
    """Check ``maxpool2d_forward(x, kernel_size, stride=None) -> (out, cache)`` with x: (N, C, H, W)
    on tiling (k = s = 2, stride left to its default) and overlapping windows (k = 3, s = 2 and 1)."""
    name = "maxpool2d_forward"
    x = _distinct(3)
    for k, stride in POOL_CASES:
        args = (x, k) if stride is None else (x, k, stride)
        given = x.copy()
        out, _ = _pair(name, _pool_call(name, maxpool2d_forward, *args), ("out", "cache"))
        if not np.array_equal(x, given):
            raise AssertionError("your maxpool2d_forward changed x in place: leave the input as "
                                 "it is")
        expected, _ = functional.maxpool2d_forward(x, k, stride)
        call = f"maxpool2d_forward(x, {k})" if stride is None else \
            f"maxpool2d_forward(x, {k}, stride={stride})"
        s = k if stride is None else stride
        _shape(f"out of {call} with x of shape {x.shape}", out, expected.shape,
               f"H_out = (H - k) // s + 1, W_out = (W - k) // s + 1" +
               (" (stride=None means s = k)" if stride is None else ""))
        if not np.allclose(out, expected, rtol=0, atol=0):
            raise AssertionError(f"{call}: out has the right shape but wrong values: out[n, c, i, "
                                 f"j] is the max of x[n, c, s*i : s*i+k, s*j : s*j+k] with "
                                 f"k = {k}, s = {s}")
    return "maxpool2d_forward: correct (tiling and overlapping windows, shape (N, C, H_out, W_out))"


def check_maxpool2d_backward(maxpool2d_forward, maxpool2d_backward):
    """Check ``maxpool2d_backward(dout, cache, ties="split") -> dx`` against numerical gradients on
    inputs without ties (tiling and overlapping windows), then on inputs with ties against the
    rule: the m tied maxima of a window get dout / m each. ``cache`` comes from the learner's own
    ``maxpool2d_forward``, so that is checked first."""
    try:
        check_maxpool2d_forward(maxpool2d_forward)
    except AssertionError as error:
        raise AssertionError(f"maxpool2d_backward is checked with the cache of your "
                             f"maxpool2d_forward, which is not right yet: {error}") from None
    name = "maxpool2d_backward"
    rng = np.random.default_rng(4)
    x = _distinct(5)
    for k, stride in POOL_CASES:
        s = k if stride is None else stride
        where = f"k = {k}, stride = {s}"
        _, cache = maxpool2d_forward(x, k, stride)
        expected_out, _ = functional.maxpool2d_forward(x, k, stride)
        dout = rng.normal(size=expected_out.shape)
        dx = _pool_call(name, maxpool2d_backward, dout, cache, "split")
        _shape(f"dx ({where})", dx, x.shape, "the gradient of x has the shape of x")
        numerical = numerical_gradient_array(lambda: functional.maxpool2d_forward(x, k, stride)[0],
                                             x, dout)
        dx = np.asarray(dx, dtype=float)
        error = rel_error(dx, numerical)
        if error < TOLERANCE:
            continue
        everywhere = np.broadcast_to(dout[..., None, None], dout.shape + (k, k))
        if np.allclose(dx, _scatter(everywhere, x.shape, k, s)) or \
                np.allclose(dx, _scatter(everywhere / (k * k), x.shape, k, s)):
            raise AssertionError(f"{where}: your dx sends each window's gradient to every input "
                                 f"of the window; only the window's maximum gets it (the others "
                                 f"did not change out)")
        if _scaled(dx, numerical, 1 / (k * k)):
            raise AssertionError(f"{where}: your dx is k*k = {k * k} times too small: a window "
                                 f"with one maximum gives it all of dout. Divide by the number m "
                                 f"of tied maxima (dout / m each), not by the window size")
        if _scaled(dx, numerical, -1):
            raise AssertionError(f"{where}: your dx has the wrong sign: it is minus the numerical "
                                 f"gradient")
        if s < k:
            raise AssertionError(f"{where}: windows overlap and your dx is wrong there (without "
                                 f"overlap it was right): an input that is the maximum of several "
                                 f"windows collects the gradient of each; add (+=), do not "
                                 f"overwrite (=)")
        raise AssertionError(f"{where}: your dx differs from the numerical gradient (relative "
                             f"error {error:.1e}); each window's dout goes to its maximum")
    x = _with_ties()
    for k, stride in [(2, None), (3, 1)]:
        s = k if stride is None else stride
        where = f"k = {k}, stride = {s}"
        _, cache = maxpool2d_forward(x, k, stride)
        expected_out, expected_cache = functional.maxpool2d_forward(x, k, stride)
        dout = rng.normal(size=expected_out.shape)
        dx = _pool_call(name, maxpool2d_backward, dout, cache, "split")
        _shape(f"dx ({where}, with ties)", dx, x.shape, "the gradient of x has the shape of x")
        dx = np.asarray(dx, dtype=float)
        if np.allclose(dx, functional.maxpool2d_backward(dout, expected_cache, "split"),
                       rtol=1e-9, atol=1e-12):
            continue
        is_max = _windows_of(x, k, s) == expected_out[..., None, None]
        if np.allclose(dx, functional.maxpool2d_backward(dout, expected_cache, "first")):
            raise AssertionError("your ties go to the first maximum; split the gradient evenly "
                                 "among tied inputs (m tied maxima get dout / m each)")
        if np.allclose(dx, _scatter(is_max * dout[..., None, None] / (k * k), x.shape, k, s)):
            raise AssertionError(f"{where}: with ties you split the gradient by the window size "
                                 f"k*k = {k * k}; split it by the number m of tied maxima in "
                                 f"the window (dout / m each)")
        if np.allclose(dx, _scatter(is_max * dout[..., None, None], x.shape, k, s)):
            raise AssertionError(f"{where}: with ties each tied maximum got all of dout, so the "
                                 f"window passed on m times its gradient; split it evenly "
                                 f"(dout / m each)")
        raise AssertionError(f"{where}: with tied maxima your dx is wrong: the m inputs equal to "
                             f"a window's maximum get dout / m each, the others nothing")
    return ("maxpool2d_backward: correct (matches the numerical gradients away from ties; tied "
            "maxima share dout evenly; overlapping windows add up)")
