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


# ------------------------------------------------------- notebook 03: activations, the backward loop

__all__ += ["check_relu_backward", "check_relu_forward", "check_sequential_backward",
            "check_tanh_backward", "check_tanh_forward"]


def _activation_data(seed):
    """x and dout of shape (2, 3, 4), none of x within 1e-3 of ReLU's kink."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(2, 3, 4))
    x[np.abs(x) < 1e-3] = 0.5
    return x, rng.normal(size=(2, 3, 4))


def _forward_out(name, forward, x):
    """(out, cache) of the learner's forward on a copy of x; says so when x was changed in place."""
    given = x.copy()
    out, cache = _pair(name, _call(name, forward, given), ("out", "cache"))
    if not np.array_equal(given, x):
        raise AssertionError(f"your {name} changed x in place (e.g. x[x < 0] = 0): work on a "
                             f"new array, the layer below still needs its input")
    _shape("out", out, x.shape, "an elementwise function keeps the input's shape")
    return out, cache


def check_relu_forward(relu_forward):
    """Check ``relu_forward(x) -> (out, cache)``: out = max(x, 0) elementwise, any shape."""
    x, _ = _activation_data(3)
    out, _ = _forward_out("relu_forward", relu_forward, x)
    expected = np.maximum(x, 0)
    if np.allclose(out, expected):
        return "relu_forward: correct (out = max(x, 0), the shape of x)"
    if np.array_equal(np.asarray(out, dtype=float), (x > 0).astype(float)):
        raise AssertionError("your out is the mask [x > 0] (0s and 1s): out is x itself where "
                             "x > 0, and 0 elsewhere")
    if np.allclose(out, np.minimum(x, 0)):
        raise AssertionError("your out keeps the negative inputs and zeroes the positive ones: "
                             "ReLU is max(x, 0)")
    if np.allclose(out, np.abs(x)):
        raise AssertionError("your out is |x|: negative inputs must give 0, not -x")
    raise AssertionError("out has the right shape but wrong values: out = max(x, 0), elementwise")


def check_relu_backward(relu_forward, relu_backward):
    """Check ``relu_backward(dout, cache) -> dx`` against the numerical gradient; ``cache`` comes
    from the learner's own ``relu_forward``, so that is checked first."""
    try:
        check_relu_forward(relu_forward)
    except AssertionError as error:
        raise AssertionError(f"relu_backward is checked with the cache of your relu_forward, "
                             f"which is not right yet: {error}") from None
    x, dout = _activation_data(4)
    _, cache = relu_forward(x.copy())
    given = dout.copy()
    dx = _call("relu_backward", relu_backward, given, cache)
    if not np.array_equal(given, dout):
        raise AssertionError("your relu_backward changed dout in place (e.g. dout[x <= 0] = 0): "
                             "return a new array, dout belongs to the layer above")
    if isinstance(dx, tuple):
        raise AssertionError(f"relu_backward must return dx alone (an array), not a tuple of "
                             f"{len(dx)}")
    _shape("dx", dx, x.shape, "the gradient of x has the shape of x")
    dx = np.asarray(dx, dtype=float)
    numerical = numerical_gradient_array(lambda: functional.relu_forward(x)[0], x, dout)
    error = rel_error(dx, numerical)
    if error < TOLERANCE:
        return "relu_backward: correct (dx = dout where x > 0, 0 elsewhere)"
    positive = x > 0
    if np.allclose(dx, dout * x):
        raise AssertionError("your dx is dout * x: the derivative of ReLU is not x but 1 where "
                             "x > 0 and 0 elsewhere, so dx = dout * (x > 0)")
    if np.allclose(dx, dout):
        raise AssertionError("your dx passes dout through where x < 0 too: ReLU's slope is 0 "
                             "there, so dx must be 0 where x <= 0")
    if np.allclose(dx, positive.astype(float)):
        raise AssertionError("your dx is the mask [x > 0] alone: multiply it by dout (the chain "
                             "rule: dx = dout * derivative)")
    if np.allclose(dx, dout * ~positive):
        raise AssertionError("your mask is reversed: dx passes dout where x < 0 and blocks it "
                             "where x > 0; keep dout where x > 0")
    if _scaled(dx, numerical, -1):
        raise AssertionError("your dx has the wrong sign: it is minus the numerical gradient")
    raise AssertionError(f"your dx differs from the numerical gradient (relative error "
                         f"{error:.1e}); it should be dout where x > 0 and 0 elsewhere")


def check_tanh_forward(tanh_forward):
    """Check ``tanh_forward(x) -> (out, cache)``: out = tanh(x) elementwise, also for large |x|."""
    x, _ = _activation_data(5)
    out, _ = _forward_out("tanh_forward", tanh_forward, x)
    if not np.allclose(out, np.tanh(x), rtol=1e-10, atol=1e-12):
        if np.allclose(out, np.sinh(x)):
            raise AssertionError("your out is (e^x - e^-x) / 2, sinh: divide by e^x + e^-x")
        raise AssertionError("out has the right shape but wrong values: out = (e^x - e^-x) / "
                             "(e^x + e^-x) = np.tanh(x)")
    big = np.array([[-800.0, -30.0, 0.0, 30.0, 800.0]])
    out, _ = _pair("tanh_forward", _call("tanh_forward", tanh_forward, big), ("out", "cache"))
    if not np.all(np.isfinite(out)):
        raise AssertionError(f"with x = +-800 your out is {np.asarray(out).ravel().tolist()}: "
                             f"e^800 overflows to inf and inf / inf is nan; use np.tanh, which "
                             f"handles any x")
    if not np.allclose(out, np.tanh(big)):
        raise AssertionError(f"with x = +-800 your out is {np.asarray(out).ravel().tolist()}; "
                             f"expected -1 and 1 (tanh saturates): use np.tanh")
    return "tanh_forward: correct (out = tanh(x), also for large |x|)"


def check_tanh_backward(tanh_forward, tanh_backward):
    """Check ``tanh_backward(dout, cache) -> dx`` against the numerical gradient; ``cache`` comes
    from the learner's own ``tanh_forward``, so that is checked first."""
    try:
        check_tanh_forward(tanh_forward)
    except AssertionError as error:
        raise AssertionError(f"tanh_backward is checked with the cache of your tanh_forward, "
                             f"which is not right yet: {error}") from None
    x, dout = _activation_data(6)
    _, cache = tanh_forward(x.copy())
    given = dout.copy()
    dx = _call("tanh_backward", tanh_backward, given, cache)
    if not np.array_equal(given, dout):
        raise AssertionError("your tanh_backward changed dout in place (e.g. dout *= ...): "
                             "return a new array, dout belongs to the layer above")
    if isinstance(dx, tuple):
        raise AssertionError(f"tanh_backward must return dx alone (an array), not a tuple of "
                             f"{len(dx)}")
    _shape("dx", dx, x.shape, "the gradient of x has the shape of x")
    dx = np.asarray(dx, dtype=float)
    numerical = numerical_gradient_array(lambda: functional.tanh_forward(x)[0], x, dout)
    error = rel_error(dx, numerical)
    if error < TOLERANCE:
        return "tanh_backward: correct (dx = dout * (1 - out^2))"
    out = np.tanh(x)
    if np.allclose(dx, dout * (1 - x ** 2)):
        raise AssertionError("your dx is dout * (1 - x^2), with the input x: the derivative is "
                             "1 - tanh(x)^2 = 1 - out^2, so square the output (keep out in the "
                             "cache)")
    if np.allclose(dx, dout * out):
        raise AssertionError("your dx is dout * out: the derivative of tanh is 1 - out^2, "
                             "not out")
    if np.allclose(dx, 1 - out ** 2):
        raise AssertionError("your dx is the derivative 1 - out^2 alone: multiply it by dout "
                             "(the chain rule: dx = dout * derivative)")
    if _scaled(dx, numerical, -1):
        raise AssertionError("your dx has the wrong sign: it is minus the numerical gradient, "
                             "dout * (out^2 - 1) instead of dout * (1 - out^2)")
    raise AssertionError(f"your dx differs from the numerical gradient (relative error "
                         f"{error:.1e}); it should be dout * (1 - out^2)")


class _ChainLayer:
    """A float64 layer for check_sequential_backward: params, grads, forward, and a backward that
    notes which layer was called with which dout (cnnlib.layers is a floor above this module)."""

    def __init__(self, index, log, forward, backward, **params):
        self.index, self.log = index, log
        self._forward, self._backward = forward, backward
        self.params = params
        self.grads = {key: np.zeros_like(value) for key, value in params.items()}

    def forward(self, x):
        out, self._cache = self._forward(x, *self.params.values())
        return out

    def backward(self, dout, input_grad=True):
        self.log.append((self.index, dout))
        if not self.params:
            return self._backward(dout, self._cache)
        dx, *grads = functional.linear_backward(dout, self._cache, input_grad)
        for key, grad in zip(self.params, grads):
            self.grads[key] = grad
        return dx


def _chain(log):
    rng = np.random.default_rng(7)
    return [_ChainLayer(0, log, functional.linear_forward, None,
                        W=rng.normal(size=(6, D)), b=rng.normal(size=6)),
            _ChainLayer(1, log, functional.tanh_forward, functional.tanh_backward),
            _ChainLayer(2, log, functional.linear_forward, None,
                        W=rng.normal(size=(M, 6)), b=rng.normal(size=M))]


def check_sequential_backward(sequential_backward):
    """Check ``sequential_backward(layers, dout) -> dx`` on a float64 chain Linear(5, 6), Tanh,
    Linear(6, 3): every layer's backward called once, last to first, each with the gradient the
    layer after it returned; the grads and dx equal those of the loop Sequential.backward runs."""
    name = "sequential_backward"
    x, dout = np.random.default_rng(8).normal(size=(N, D)), np.random.default_rng(9).normal(
        size=(N, M))
    expected_log, log = [], []
    reference, layers = _chain(expected_log), _chain(log)
    for chain in (reference, layers):
        out = x
        for layer in chain:
            out = layer.forward(out)
    expected = dout
    for layer in reversed(reference):            # the loop of Sequential.backward
        expected = layer.backward(expected)
    failure = None
    try:
        dx = _call(name, sequential_backward, layers, dout.copy())
    except AssertionError as error:
        failure = error
    order = [index for index, _ in log]
    last = len(layers) - 1
    if not order:
        raise failure or AssertionError("your sequential_backward called no layer's backward: "
                                        "call layer.backward(dout) for every layer, last first")
    if order[0] == 0:
        raise AssertionError("your sequential_backward starts with the first layer: backward "
                             "goes in reverse, from the last layer to the first "
                             "(for layer in reversed(layers))")
    if order[0] != last:
        raise AssertionError(f"your sequential_backward starts with layer {order[0]}; it must "
                             f"start with the last one, layer {last}")
    for index, given in log[1:]:
        if np.shape(given) == dout.shape and np.allclose(given, dout):
            raise AssertionError(f"layer {index} got the gradient of the network's output, not "
                                 f"the one the layer after it returned: pass the gradient on, "
                                 f"dout = layer.backward(dout)")
    if failure is not None:
        raise failure
    if order != list(range(last, -1, -1)):
        raise AssertionError(f"your sequential_backward called the layers' backward in the "
                             f"order {order}; call each once, {list(range(last, -1, -1))}")
    if dx is None:
        raise AssertionError("your sequential_backward returned None: return the gradient of "
                             "the network's input, what the first layer's backward returned")
    _shape("dx", dx, x.shape, "the gradient of the network's input has the shape of x")
    for mine, theirs in zip(layers, reference):
        for key in theirs.grads:
            if not np.allclose(mine.grads[key], theirs.grads[key], rtol=1e-10, atol=1e-12):
                raise AssertionError(f"layer {mine.index}'s grads[{key!r}] differs from what "
                                     f"Sequential.backward fills in")
    if not np.allclose(dx, expected, rtol=1e-10, atol=1e-12):
        raise AssertionError("your dx differs from the gradient of the network's input that "
                             "Sequential.backward returns")
    return "sequential_backward: correct (every layer, last to first, each gradient passed on)"


# --- Notebook 04: convolution with loops (conv2d_forward, conv2d_backward) -----------------------

__all__ += ["check_conv2d_forward", "check_conv2d_backward"]

# Small sizes, all different (a swapped axis gets a shape of its own); H != W; the settings cover
# no padding, padding, stride, both (their order decides which mistake is seen first).
CONV_SHAPES = dict(N=2, C=3, H=7, Wd=6, F=4, k=3)
CONV_SETTINGS = [(1, 0), (1, 1), (2, 0), (2, 1), (3, 2)]


def _conv_data(seed):
    s = CONV_SHAPES
    rng = np.random.default_rng(seed)
    return (rng.normal(size=(s["N"], s["C"], s["H"], s["Wd"])),
            rng.normal(size=(s["F"], s["C"], s["k"], s["k"])), rng.normal(size=s["F"]), rng)


def _conv_out_shape(stride, padding):
    s = CONV_SHAPES
    return (s["N"], s["F"], functional.output_size(s["H"], s["k"], stride, padding),
            functional.output_size(s["Wd"], s["k"], stride, padding))


def _conv_call(name, where, function, *args):
    """``function(*args)``; a stub or a failing call becomes a message naming the setting."""
    try:
        with np.errstate(all="ignore"):
            return function(*args)
    except NotImplementedError:
        raise AssertionError(f"{name} is not written yet: its body still raises "
                             f"NotImplementedError. Write it in its cell, run that cell, then run "
                             f"this check again.") from None
    except Exception as error:
        raise AssertionError(f"{where}, {name} raised {type(error).__name__}: {error}. The windows "
                             f"are k x k slices of the padded input x_p (N, C, H+2p, W+2p), the "
                             f"window of output (i, j) starting at row stride*i, column "
                             f"stride*j.") from None


def _close(a, b):
    return np.shape(a) == np.shape(b) and np.allclose(a, b, rtol=1e-9, atol=1e-10)


def check_conv2d_forward(conv2d_forward):
    """Check ``conv2d_forward(x, W, b, stride=1, padding=0) -> (out, cache)`` with x: (N, C, H, W),
    W: (F, C, k, k), b: (F,), against cnnlib.functional for several (stride, padding)."""
    name = "conv2d_forward"
    x, W, b, _ = _conv_data(4)
    for stride, padding in CONV_SETTINGS:
        where = f"with stride {stride}, padding {padding}"
        out, _ = _pair(name, _conv_call(name, where, conv2d_forward, x, W, b, stride, padding),
                       ("out", "cache"))
        expected, _ = functional.conv2d_forward(x, W, b, stride, padding)
        shape = np.shape(out)
        if shape != expected.shape:
            hint = ""
            if padding and shape == _conv_out_shape(stride, 0):
                hint = (": that is the size without padding; pad x with `padding` zeros on every "
                        "side, H' = (H + 2p - k) // stride + 1")
            elif stride > 1 and shape == _conv_out_shape(1, padding):
                hint = (": that is the size for stride 1; H' = (H + 2p - k) // stride + 1, the "
                        "window moves stride pixels at a time")
            raise AssertionError(f"{where}: out has shape {shape}; expected {expected.shape} "
                                 f"(N, F, H', W'){hint}")
        if _close(out, expected):
            continue
        flipped, _ = functional.conv2d_forward(x, W[:, :, ::-1, ::-1], b, stride, padding)
        if _close(out, flipped):
            raise AssertionError(f"{where}: out is a true convolution, with the kernel flipped; "
                                 f"the layer computes a cross-correlation: W[f, c, u, v] "
                                 f"multiplies x_p[n, c, stride*i + u, stride*j + v] (u and v "
                                 f"count forwards, not backwards)")
        if _close(out, expected - b[None, :, None, None]):
            raise AssertionError(f"{where}: out has no bias: add b[f] to every output of map f")
        if stride > 1:
            unstrided, _ = functional.conv2d_forward(x, W, b, 1, padding)
            if _close(out, unstrided[:, :, :shape[2], :shape[3]]):
                raise AssertionError(f"{where}: out has the right size but its windows move one "
                                     f"pixel at a time: the window of output (i, j) starts at "
                                     f"(stride*i, stride*j) of x_p, not at (i, j)")
        if padding:
            shifted, _ = functional.conv2d_forward(x, W, b, stride, 0)
            h, w = min(shape[2], shifted.shape[2]), min(shape[3], shifted.shape[3])
            if np.allclose(out[:, :, :h, :w], shifted[:, :, :h, :w], rtol=1e-9, atol=1e-10):
                raise AssertionError(f"{where}: out has the right size but the padding is "
                                     f"ignored: the windows must slide over x_p, x with "
                                     f"`padding` zeros added on every side")
        raise AssertionError(f"{where}: out has the right shape but wrong values: out[n, f, i, j] "
                             f"= b[f] + sum over c, u, v of W[f, c, u, v] x_p[n, c, stride*i + u, "
                             f"stride*j + v]")
    return "conv2d_forward: correct (out for 5 settings of stride and padding)"


def _only_one_term(dx, dout, W, stride, padding):
    """Whether every entry of dx (for a wrong dx) is a single window's contribution, as when the
    scatter assigns (=) instead of adding (+=): one term dout[n, f, i, j] W[f, c, u, v], or one
    window's sum over f."""
    N, C, H, Wd = dx.shape
    k = W.shape[2]
    covered = 0
    for n in range(N):
        for c in range(C):
            for y in range(H):
                for z in range(Wd):
                    terms, window_sums = [], []
                    for i in range(dout.shape[2]):
                        for j in range(dout.shape[3]):
                            u, v = y + padding - stride * i, z + padding - stride * j
                            if 0 <= u < k and 0 <= v < k:
                                parts = dout[n, :, i, j] * W[:, c, u, v]
                                terms.extend(parts)
                                window_sums.append(parts.sum())
                    if len(window_sums) > 1:
                        covered += 1
                    if terms and not np.any(np.isclose(dx[n, c, y, z], terms + window_sums,
                                                       rtol=1e-9, atol=1e-12)):
                        return False
    return covered > 0


def check_conv2d_backward(conv2d_forward, conv2d_backward):
    """Check ``conv2d_backward(dout, cache, input_grad=True) -> (dx, dW, db)`` against numerical
    gradients for several (stride, padding); ``cache`` comes from the learner's own
    ``conv2d_forward``, so that is checked first."""
    name = "conv2d_backward"
    try:
        check_conv2d_forward(conv2d_forward)
    except AssertionError as error:
        raise AssertionError(f"conv2d_backward is checked with the cache of your conv2d_forward, "
                             f"which is not right yet: {error}") from None
    x, W, b, rng = _conv_data(5)
    N = CONV_SHAPES["N"]
    for stride, padding in CONV_SETTINGS[:4]:
        where = f"with stride {stride}, padding {padding}"
        _, cache = conv2d_forward(x, W, b, stride, padding)
        expected_out, reference_cache = functional.conv2d_forward(x, W, b, stride, padding)
        dout = rng.normal(size=expected_out.shape)
        dx, dW, db = _pair(name, _conv_call(name, where, conv2d_backward, dout, cache, True),
                           ("dx", "dW", "db"))
        ref_dx, ref_dW, ref_db = functional.conv2d_backward(dout, reference_cache)
        if np.shape(db) != ref_db.shape:
            raise AssertionError(f"{where}: db has shape {np.shape(db)}; expected {ref_db.shape}, "
                                 f"one number per filter: sum dout over the examples and the "
                                 f"positions (axes 0, 2 and 3)")
        if np.shape(dW) == (N, *W.shape):
            raise AssertionError(f"{where}: dW has shape {np.shape(dW)}, with an axis for the "
                                 f"examples: sum over the batch, dW has the shape of W")
        _shape(f"{where}: dW", dW, W.shape, "the gradient of W has the shape of W")
        padded = (N, x.shape[1], x.shape[2] + 2 * padding, x.shape[3] + 2 * padding)
        if padding and np.shape(dx) == padded:
            raise AssertionError(f"{where}: dx has shape {np.shape(dx)}, the padded input's: cut "
                                 f"off the {padding}-pixel border (the padding zeros are not "
                                 f"inputs), e.g. dx_p[:, :, p:p + H, p:p + W]")
        _shape(f"{where}: dx", dx, x.shape, "the gradient of x has the shape of x")
        forward = lambda: functional.conv2d_forward(x, W, b, stride, padding)[0]
        flipped = functional.conv2d_backward(
            dout, functional.conv2d_forward(x, W[:, :, ::-1, ::-1], b, stride, padding)[1])
        unstrided = None
        if stride > 1:
            spread = np.zeros(_conv_out_shape(1, padding))
            spread[:, :, :dout.shape[2], :dout.shape[3]] = dout
            unstrided = functional.conv2d_backward(
                spread, functional.conv2d_forward(x, W, b, 1, padding)[1])
        for grad, analytic, wrt, reference, index in [("db", db, b, ref_db, 2),
                                                       ("dW", dW, W, ref_dW, 1),
                                                       ("dx", dx, x, ref_dx, 0)]:
            numerical = numerical_gradient_array(forward, wrt, dout)
            error = rel_error(np.asarray(analytic, dtype=float), numerical)
            if error < TOLERANCE:
                continue
            if grad == "db":
                if _close(db, dout[-1, :, -1, -1]):
                    raise AssertionError(f"{where}: db holds only the last dout[n, f, i, j] of "
                                         f"each filter: db[f] is the sum over every example n "
                                         f"and position (i, j); add with +=, do not assign")
                if _close(db, dout[0].sum(axis=(1, 2))) or _close(db, dout[-1].sum(axis=(1, 2))):
                    raise AssertionError(f"{where}: db is summed over the positions of one "
                                         f"example only: sum over the examples n too")
                raise AssertionError(f"{where}: db differs from the numerical gradient "
                                     f"(relative error {error:.1e}): db[f] = sum over n, i, j of "
                                     f"dout[n, f, i, j]")
            if _scaled(analytic, numerical, -1):
                raise AssertionError(f"{where}: your {grad} has the wrong sign: it is minus the "
                                     f"numerical gradient")
            if grad == "dW" and _close(dW, ref_dW[:, :, ::-1, ::-1]) or \
                    _close(analytic, flipped[index]):
                raise AssertionError(f"{where}: your {grad} is the gradient of a flipped kernel "
                                     f"(a true convolution): dout[n, f, i, j] goes to W[f, c, u, "
                                     f"v] and x_p[n, c, stride*i + u, stride*j + v], u and v "
                                     f"counting forwards")
            if unstrided is not None and _close(analytic, unstrided[index]):
                raise AssertionError(f"{where}: your {grad} uses windows that move one pixel at "
                                     f"a time: the window of dout[n, f, i, j] starts at (stride*i, "
                                     f"stride*j) of x_p, not at (i, j)")
            if grad == "dW":
                ones = [functional.conv2d_backward(dout[n:n + 1], functional.conv2d_forward(
                    x[n:n + 1], W, b, stride, padding)[1])[1] for n in range(N)]
                if any(_close(dW, one) for one in ones):
                    raise AssertionError(f"{where}: your dW holds one example's contribution "
                                         f"only: sum over the batch too (dW[f] += ... for every "
                                         f"n, not dW[f] = ...)")
                if _scaled(dW, numerical, 1 / N):
                    raise AssertionError(f"{where}: your dW is N = {N} times too small: sum over "
                                         f"the batch, do not average (the loss already divides "
                                         f"by N)")
            if grad == "dx" and _only_one_term(np.asarray(dx, dtype=float), dout, W, stride,
                                               padding):
                raise AssertionError(f"{where}: where windows overlap, your dx keeps only one "
                                     f"window's contribution: a pixel covered by several windows "
                                     f"gets the sum of all of them; add with +=, do not assign "
                                     f"with =")
            raise AssertionError(f"{where}: your {grad} differs from the numerical gradient "
                                 f"(relative error {error:.1e}); compare it with the formula in "
                                 f"the derivation")
        _, cache = conv2d_forward(x, W, b, stride, padding)
        answer = _pair(f"{name}(dout, cache, input_grad=False)",
                       _conv_call(name, where, conv2d_backward, dout, cache, False),
                       ("dx", "dW", "db"))
        if not (_close(answer[1], dW) and _close(answer[2], db)):
            raise AssertionError(f"{where}: with input_grad=False, dW and db must still be "
                                 f"computed (only dx may be skipped, returned as None)")
    return "conv2d_backward: correct (dx, dW, db match the numerical gradients for 4 settings)"


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
               "H_out = (H - k) // s + 1, W_out = (W - k) // s + 1" +
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
