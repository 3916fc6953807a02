"""The exercise checks (cnnlib.exercises): right answers pass; each plausible wrong answer fails with
the message that names its mistake; an empty stub fails with "not written yet", not a crash."""

import numpy as np
import pytest

from cnnlib import functional
from cnnlib.exercises import (check_linear_backward, check_linear_forward,
                              check_softmax_cross_entropy)


def stub(*args):
    raise NotImplementedError()


def linear_forward(x, W, b):
    return x @ W.T + b, (x, W)


def linear_backward(dout, cache, input_grad=True):
    x, W = cache
    return (dout @ W if input_grad else None), dout.T @ x, dout.sum(axis=0)


def backward_with(dx=None, dW=None, db=None):
    """linear_backward with one gradient replaced by a wrong formula."""
    def wrong(dout, cache, input_grad=True):
        x, W = cache
        right = linear_backward(dout, cache)
        return tuple(right[i] if f is None else f(dout, x, W) for i, f in enumerate([dx, dW, db]))
    return wrong


def softmax_cross_entropy(scores, y):
    return functional.softmax_cross_entropy(scores, y)


def loss_with(loss=None, dscores=None):
    """softmax_cross_entropy with the loss or the gradient replaced by a wrong formula."""
    def wrong(scores, y):
        n = scores.shape[0]
        p = functional.softmax(scores)
        onehot = np.eye(scores.shape[1])[y]
        right_loss, right_dscores = functional.softmax_cross_entropy(scores, y)
        return (right_loss if loss is None else loss(p, onehot, n, right_loss),
                right_dscores if dscores is None else dscores(p, onehot, n))
    return wrong


def softmax_cross_entropy_unshifted(scores, y):
    n = scores.shape[0]
    e = np.exp(scores)
    p = e / e.sum(axis=1, keepdims=True)
    return -np.log(p[np.arange(n), y]).mean(), (p - np.eye(scores.shape[1])[y]) / n


def softmax_cross_entropy_log_of_p(scores, y):
    n = scores.shape[0]
    p = functional.softmax(scores)
    return -np.log(p[np.arange(n), y]).mean(), (p - np.eye(scores.shape[1])[y]) / n


def softmax_cross_entropy_in_place(scores, y):
    scores -= scores.max(axis=1, keepdims=True)
    return functional.softmax_cross_entropy(scores, y)


def test_right_answers_pass():
    assert check_linear_forward(linear_forward).startswith("linear_forward: correct")
    assert check_linear_backward(linear_forward, linear_backward).startswith(
        "linear_backward: correct")
    assert check_softmax_cross_entropy(softmax_cross_entropy).startswith(
        "softmax_cross_entropy: correct")
    # The library's own (the solutions' formulas) pass too, and so does a float32-free dx skip.
    assert check_linear_backward(functional.linear_forward, functional.linear_backward)


@pytest.mark.parametrize("wrong, message", [
    (stub, "linear_forward is not written yet"),
    (lambda x, W, b: x @ W.T + b, "must return a tuple (out, cache)"),
    (lambda x, W, b: (x @ W + b, (x, W)), "linear_forward raised ValueError"),       # W not transposed
    (lambda x, W, b: ((W @ x.T).T.T + b[:, None], (x, W)), "the transpose of the expected"),
    (lambda x, W, b: (x @ W.T, (x, W)), "without the bias"),
    (lambda x, W, b: (x @ W.T + b.sum(), (x, W)), "wrong values"),
])
def test_linear_forward_mistakes(wrong, message):
    with pytest.raises(AssertionError, match=message.replace("(", r"\(").replace(")", r"\)")):
        check_linear_forward(wrong)


@pytest.mark.parametrize("forward, backward, message", [
    (linear_forward, stub, "linear_backward is not written yet"),
    (stub, stub, "linear_backward is checked with the cache of your linear_forward, which is not "
                 "right yet: linear_forward is not written yet"),
    (linear_forward, backward_with(db=lambda dout, x, W: dout), "not summed over the batch"),
    (linear_forward, backward_with(db=lambda dout, x, W: dout.sum(axis=1)),
     "you summed over the outputs"),
    (linear_forward, backward_with(db=lambda dout, x, W: dout.mean(axis=0)),
     "your db is N = 4 times too small"),
    (linear_forward, backward_with(dW=lambda dout, x, W: x.T @ dout), "the transpose of W's shape"),
    (linear_forward, backward_with(dW=lambda dout, x, W: -dout.T @ x), "your dW has the wrong sign"),
    (linear_forward, backward_with(dx=lambda dout, x, W: -dout @ W), "your dx has the wrong sign"),
    (linear_forward, backward_with(dx=lambda dout, x, W: dout @ W / len(x)),
     "your dx is N = 4 times too small"),
    (linear_forward, backward_with(dx=lambda dout, x, W: dout @ W + 1),
     "your dx differs from the numerical gradient"),
    (linear_forward, backward_with(dx=lambda dout, x, W: dout @ W.T), "linear_backward raised"),
    (linear_forward, lambda dout, cache: linear_backward(dout, cache), "linear_backward raised TypeError"),
    (linear_forward, lambda dout, cache, input_grad=True: (None, None, None) if not input_grad
     else linear_backward(dout, cache), "with input_grad=False, dW and db must still be computed"),
])
def test_linear_backward_mistakes(forward, backward, message):
    with pytest.raises(AssertionError, match=message):
        check_linear_backward(forward, backward)


@pytest.mark.parametrize("wrong, message", [
    (stub, "softmax_cross_entropy is not written yet"),
    (lambda scores, y: functional.softmax_cross_entropy(scores, y)[0], "must return a tuple"),
    (loss_with(loss=lambda p, onehot, n, right: -np.log(p[onehot == 1])), "loss must be one number"),
    (loss_with(loss=lambda p, onehot, n, right: -right), "your loss has the wrong sign"),
    (loss_with(loss=lambda p, onehot, n, right: n * right), "you forgot the 1/N"),
    (loss_with(loss=lambda p, onehot, n, right: -np.log(p).mean()), "your loss is"),
    (loss_with(dscores=lambda p, onehot, n: p - onehot), "N = 5 times too large: you forgot the 1/N"),
    (loss_with(dscores=lambda p, onehot, n: p / n), "without subtracting the one-hot labels"),
    (loss_with(dscores=lambda p, onehot, n: p), "without subtracting the one-hot labels"),
    (loss_with(dscores=lambda p, onehot, n: (onehot - p) / n), "your dscores has the wrong sign"),
    (loss_with(dscores=lambda p, onehot, n: (p - onehot) / n ** 2), "differs from the numerical"),
    (loss_with(dscores=lambda p, onehot, n: (p - onehot).T), "dscores has shape (10, 5)"),
    (softmax_cross_entropy_unshifted, "dscores is inf or nan: exp overflows"),
    (softmax_cross_entropy_log_of_p, "not log of p"),
    (softmax_cross_entropy_in_place, "changed scores in place"),
])
def test_softmax_cross_entropy_mistakes(wrong, message):
    with pytest.raises(AssertionError, match=message.replace("(", r"\(").replace(")", r"\)")):
        check_softmax_cross_entropy(wrong)


# ------------------------------------------------------- notebook 03: activations, the backward loop

import re
from types import SimpleNamespace

from cnnlib.exercises import (check_relu_backward, check_relu_forward,
                              check_sequential_backward, check_tanh_backward, check_tanh_forward)
from cnnlib.network import Sequential


def relu_forward(x):
    return np.maximum(x, 0), x


def relu_forward_caching_out(x):
    out = np.maximum(x, 0)
    return out, out


def relu_backward(dout, cache):
    return dout * (cache > 0)


def relu_forward_in_place(x):
    x[x < 0] = 0
    return x, x


def relu_backward_in_place(dout, cache):
    dout[cache <= 0] = 0
    return dout


def tanh_forward(x):
    out = np.tanh(x)
    return out, out


def tanh_forward_caching_x(x):
    return np.tanh(x), x


def tanh_forward_exp(x):
    return (np.exp(x) - np.exp(-x)) / (np.exp(x) + np.exp(-x)), None


def tanh_backward(dout, cache):
    return dout * (1 - cache ** 2)


def sequential_backward(layers, dout):
    for layer in reversed(layers):
        dout = layer.backward(dout)
    return dout


def test_right_answers_pass_03():
    assert check_relu_forward(relu_forward).startswith("relu_forward: correct")
    # relu_backward with out > 0 (the cache holds the output) is as right as with x > 0.
    for forward in (relu_forward, relu_forward_caching_out, functional.relu_forward):
        assert check_relu_backward(forward, relu_backward).startswith("relu_backward: correct")
    assert check_tanh_forward(tanh_forward).startswith("tanh_forward: correct")
    assert check_tanh_backward(tanh_forward, tanh_backward).startswith("tanh_backward: correct")
    assert check_tanh_backward(functional.tanh_forward, functional.tanh_backward)
    assert check_sequential_backward(sequential_backward).startswith("sequential_backward: correct")
    # The loop Sequential.backward itself runs passes.
    assert check_sequential_backward(
        lambda layers, dout: Sequential.backward(SimpleNamespace(layers=layers), dout))


@pytest.mark.parametrize("wrong, message", [
    (stub, "relu_forward is not written yet"),
    (lambda x: np.maximum(x, 0), "must return a tuple (out, cache)"),
    (relu_forward_in_place, "changed x in place"),
    (lambda x: ((x > 0).astype(float), x), "the mask [x > 0]"),
    (lambda x: (np.minimum(x, 0), x), "keeps the negative inputs"),
    (lambda x: (np.abs(x), x), "your out is |x|"),
    (lambda x: (np.maximum(x, 1), x), "wrong values"),
    (lambda x: (np.maximum(x, 0).ravel(), x), "out has shape (24,)"),
])
def test_relu_forward_mistakes(wrong, message):
    with pytest.raises(AssertionError, match=re.escape(message)):
        check_relu_forward(wrong)


@pytest.mark.parametrize("forward, backward, message", [
    (relu_forward, stub, "relu_backward is not written yet"),
    (stub, relu_backward, ("relu_backward is checked with the cache of your relu_forward, which "
                           "is not right yet: relu_forward is not written yet")),
    (relu_forward, lambda dout, x: dout * x, "your dx is dout * x"),
    (relu_forward, lambda dout, x: dout.copy(), "passes dout through where x < 0 too"),
    (relu_forward, lambda dout, x: np.where(x > 0, dout, 0.01 * dout),
     "differs from the numerical gradient"),
    (relu_forward, lambda dout, x: -dout * (x > 0), "your dx has the wrong sign"),
    (relu_forward, lambda dout, x: (x > 0).astype(float), "the mask [x > 0] alone"),
    (relu_forward, lambda dout, x: dout * (x < 0), "your mask is reversed"),
    (relu_forward, relu_backward_in_place, "changed dout in place"),
    (relu_forward, lambda dout, x: (dout * (x > 0), None), "must return dx alone"),
])
def test_relu_backward_mistakes(forward, backward, message):
    with pytest.raises(AssertionError, match=re.escape(message)):
        check_relu_backward(forward, backward)


@pytest.mark.parametrize("wrong, message", [
    (stub, "tanh_forward is not written yet"),
    (lambda x: np.tanh(x), "must return a tuple (out, cache)"),
    (lambda x: ((np.exp(x) - np.exp(-x)) / 2, x), "sinh: divide by e^x + e^-x"),
    (lambda x: (1 / (1 + np.exp(-x)), x), "wrong values"),
    (tanh_forward_exp, "e^800 overflows to inf"),
])
def test_tanh_forward_mistakes(wrong, message):
    with pytest.raises(AssertionError, match=re.escape(message)):
        check_tanh_forward(wrong)


@pytest.mark.parametrize("forward, backward, message", [
    (tanh_forward, stub, "tanh_backward is not written yet"),
    (tanh_forward_exp, tanh_backward, ("tanh_backward is checked with the cache of your "
                                       "tanh_forward, which is not right yet: with x = +-800")),
    (tanh_forward_caching_x, tanh_backward, "your dx is dout * (1 - x^2), with the input x"),
    (tanh_forward, lambda dout, out: dout * out, "your dx is dout * out"),
    (tanh_forward, lambda dout, out: 1 - out ** 2, "the derivative 1 - out^2 alone"),
    (tanh_forward, lambda dout, out: dout * (out ** 2 - 1), "your dx has the wrong sign"),
    (tanh_forward, lambda dout, out: dout * (1 - out), "differs from the numerical gradient"),
])
def test_tanh_backward_mistakes(forward, backward, message):
    with pytest.raises(AssertionError, match=re.escape(message)):
        check_tanh_backward(forward, backward)


def sequential_backward_forward_order(layers, dout):
    for layer in layers:
        dout = layer.backward(dout)
    return dout


def sequential_backward_not_passed_on(layers, dout):
    for layer in reversed(layers):
        dx = layer.backward(dout)
    return dx


def sequential_backward_no_return(layers, dout):
    for layer in reversed(layers):
        dout = layer.backward(dout)


def sequential_backward_skips_first(layers, dout):
    for layer in reversed(layers[1:]):
        dout = layer.backward(dout)
    return dout


@pytest.mark.parametrize("wrong, message", [
    (stub, "sequential_backward is not written yet"),
    (sequential_backward_forward_order, "starts with the first layer: backward goes in reverse"),
    (sequential_backward_not_passed_on, "pass the gradient on, dout = layer.backward(dout)"),
    (sequential_backward_no_return, "returned None"),
    (sequential_backward_skips_first, "in the order [2, 1]"),
    (lambda layers, dout: None, "called no layer's backward"),
])
def test_sequential_backward_mistakes(wrong, message):
    with pytest.raises(AssertionError, match=re.escape(message)):
        check_sequential_backward(wrong)


# --- Notebook 04: convolution with loops ---------------------------------------------------------

from cnnlib import naive  # noqa: E402
from cnnlib.exercises import check_conv2d_backward, check_conv2d_forward  # noqa: E402


def conv_pair(flip=False, pad=True, stride_in_position=True, db_sum=True, dx_accumulate=True,
              dW_batch=True, crop=True):
    """A learner's loop conv2d_forward / conv2d_backward, with one mistake switched on."""
    def window(stride, i, j, k):
        step = stride if stride_in_position else 1
        return slice(step * i, step * i + k), slice(step * j, step * j + k)

    def forward(x, W, b, stride=1, padding=0):
        N, C, H, Wd = x.shape
        F, _, k, _ = W.shape
        p = padding if pad else 0
        xp = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)))
        kernel = W[:, :, ::-1, ::-1] if flip else W
        H_out, W_out = (H + 2 * p - k) // stride + 1, (Wd + 2 * p - k) // stride + 1
        out = np.zeros((N, F, H_out, W_out))
        for n in range(N):
            for f in range(F):
                for i in range(H_out):
                    for j in range(W_out):
                        rows, cols = window(stride, i, j, k)
                        out[n, f, i, j] = np.sum(xp[n, :, rows, cols] * kernel[f]) + b[f]
        return out, (x, W, stride, padding)

    def backward(dout, cache, input_grad=True):
        x, W, stride, padding = cache
        N, C, H, Wd = x.shape
        F, _, k, _ = W.shape
        p = padding if pad else 0
        xp = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)))
        kernel = W[:, :, ::-1, ::-1] if flip else W
        dxp, dW, db = np.zeros_like(xp), np.zeros_like(W), np.zeros(F)
        for n in range(N):
            dW_n = np.zeros_like(W)
            for f in range(F):
                for i in range(dout.shape[2]):
                    for j in range(dout.shape[3]):
                        rows, cols = window(stride, i, j, k)
                        if db_sum:
                            db[f] += dout[n, f, i, j]
                        else:
                            db[f] = dout[n, f, i, j]
                        contribution = xp[n, :, rows, cols] * dout[n, f, i, j]
                        dW_n[f] += contribution[:, ::-1, ::-1] if flip else contribution
                        if dx_accumulate:
                            dxp[n, :, rows, cols] += dout[n, f, i, j] * kernel[f]
                        else:
                            dxp[n, :, rows, cols] = dout[n, f, i, j] * kernel[f]
            dW = dW + dW_n if dW_batch else dW_n
        dx = dxp[:, :, p:p + H, p:p + Wd] if crop else dxp
        return (dx if input_grad else None), dW, db

    return forward, backward


CONV_RIGHT = conv_pair()


def test_conv_right_answers_pass():
    assert check_conv2d_forward(CONV_RIGHT[0]).startswith("conv2d_forward: correct")
    assert check_conv2d_backward(*CONV_RIGHT).startswith("conv2d_backward: correct")
    # The library's loops and its vectorized version pass too.
    assert check_conv2d_backward(naive.conv2d_forward, naive.conv2d_backward)
    assert check_conv2d_backward(functional.conv2d_forward, functional.conv2d_backward)


def conv_forward_unpadded_size(x, W, b, stride=1, padding=0):
    return CONV_RIGHT[0](x, W, b, stride, 0)


def conv_forward_unstrided_size(x, W, b, stride=1, padding=0):
    return CONV_RIGHT[0](x, W, b, 1, padding)


def conv_forward_no_bias(x, W, b, stride=1, padding=0):
    return CONV_RIGHT[0](x, W, np.zeros_like(b), stride, padding)


def conv_forward_padded_but_unpadded_windows(x, W, b, stride=1, padding=0):
    """The output has the padded size, but the windows slide over x itself (clipped)."""
    out, cache = CONV_RIGHT[0](x, W, b, stride, padding)
    inner, _ = CONV_RIGHT[0](x, W, b, stride, 0)
    out[:] = 0
    out[:, :, :inner.shape[2], :inner.shape[3]] = inner
    return out, cache


@pytest.mark.parametrize("wrong, message", [
    (stub, "conv2d_forward is not written yet"),
    (lambda x, W, b, stride=1, padding=0: CONV_RIGHT[0](x, W, b, stride, padding)[0],
     "must return a tuple (out, cache)"),
    (conv_pair(flip=True)[0], "with stride 1, padding 0: out is a true convolution, with the "
                              "kernel flipped"),
    (conv_forward_no_bias, "with stride 1, padding 0: out has no bias"),
    (conv_pair(pad=False)[0], "with stride 1, padding 1: out has shape (2, 4, 5, 4); expected "
                              "(2, 4, 7, 6) (N, F, H', W'): that is the size without padding"),
    (conv_forward_unpadded_size, "with stride 1, padding 1: out has shape (2, 4, 5, 4)"),
    (conv_forward_padded_but_unpadded_windows, "with stride 1, padding 1: out has the right size "
                                               "but the padding is ignored"),
    (conv_forward_unstrided_size, "with stride 2, padding 0: out has shape (2, 4, 5, 4); expected "
                                  "(2, 4, 3, 2) (N, F, H', W'): that is the size for stride 1"),
    (conv_pair(stride_in_position=False)[0], "with stride 2, padding 0: out has the right size "
                                             "but its windows move one pixel at a time"),
    (lambda x, W, b, stride=1, padding=0: CONV_RIGHT[0](x, W, b + 1, stride, padding),
     "with stride 1, padding 0: out has the right shape but wrong values"),
])
def test_conv2d_forward_mistakes(wrong, message):
    with pytest.raises(AssertionError) as raised:
        check_conv2d_forward(wrong)
    assert message in str(raised.value)


def backward_replacing(index, value):
    """The right backward with one of (dx, dW, db) replaced by value(dout, cache, right)."""
    def wrong(dout, cache, input_grad=True):
        right = list(CONV_RIGHT[1](dout, cache, input_grad))
        right[index] = value(dout, cache, right)
        return tuple(right)
    return wrong


@pytest.mark.parametrize("forward, backward, message", [
    (CONV_RIGHT[0], stub, "conv2d_backward is not written yet"),
    (stub, stub, "conv2d_backward is checked with the cache of your conv2d_forward, which is not "
                 "right yet: conv2d_forward is not written yet"),
    # The kernel flipped in backward only (dx and dW), and in both passes.
    (CONV_RIGHT[0], conv_pair(flip=True)[1], "with stride 1, padding 0: your dW is the gradient "
                                             "of a flipped kernel"),
    (*conv_pair(flip=True), "which is not right yet: with stride 1, padding 0: out is a true "
                            "convolution"),
    (CONV_RIGHT[0], backward_replacing(0, lambda dout, cache, right: naive.conv2d_backward(
        dout, naive.conv2d_forward(cache[0], cache[1][:, :, ::-1, ::-1], np.zeros(4),
                                   *cache[2:])[1])[0]),
     "with stride 1, padding 0: your dx is the gradient of a flipped kernel"),
    # Padding: ignored by backward (it then raises), or dx left padded.
    (CONV_RIGHT[0], conv_pair(pad=False)[1], "with stride 1, padding 1, conv2d_backward raised"),
    (CONV_RIGHT[0], conv_pair(crop=False)[1], "with stride 1, padding 1: dx has shape "
                                              "(2, 3, 9, 8), the padded input's: cut off"),
    # Stride ignored in the window position.
    (CONV_RIGHT[0], conv_pair(stride_in_position=False)[1],
     "with stride 2, padding 0: your dW uses windows that move one pixel at a time"),
    (CONV_RIGHT[0], backward_replacing(0, lambda dout, cache, right: conv_pair(
        stride_in_position=False)[1](dout, cache)[0]),
     "with stride 2, padding 0: your dx uses windows that move one pixel at a time"),
    # db not summed over examples and positions.
    (CONV_RIGHT[0], conv_pair(db_sum=False)[1], "with stride 1, padding 0: db holds only the "
                                                "last dout[n, f, i, j]"),
    (CONV_RIGHT[0], backward_replacing(2, lambda dout, cache, right: dout.sum(axis=(2, 3))),
     "with stride 1, padding 0: db has shape (2, 4); expected (4,), one number per filter"),
    (CONV_RIGHT[0], backward_replacing(2, lambda dout, cache, right: dout.sum(axis=0)),
     "db has shape (4, 5, 4)"),
    (CONV_RIGHT[0], backward_replacing(2, lambda dout, cache, right: dout[-1].sum(axis=(1, 2))),
     "db is summed over the positions of one example only"),
    # dx not accumulated over overlapping windows.
    (CONV_RIGHT[0], conv_pair(dx_accumulate=False)[1], "with stride 1, padding 0: where windows "
                                                       "overlap, your dx keeps only one window's"),
    # dW without the sum over the batch.
    (CONV_RIGHT[0], conv_pair(dW_batch=False)[1], "with stride 1, padding 0: your dW holds one "
                                                  "example's contribution only"),
    (CONV_RIGHT[0], backward_replacing(1, lambda dout, cache, right: right[1] / 2),
     "your dW is N = 2 times too small"),
    (CONV_RIGHT[0], backward_replacing(1, lambda dout, cache, right: np.stack([right[1]] * 2)),
     "dW has shape (2, 4, 3, 3, 3), with an axis for the examples"),
    (CONV_RIGHT[0], backward_replacing(0, lambda dout, cache, right: -right[0]),
     "your dx has the wrong sign"),
    (CONV_RIGHT[0], backward_replacing(0, lambda dout, cache, right: right[0] + 1),
     "your dx differs from the numerical gradient"),
    (CONV_RIGHT[0], lambda dout, cache: CONV_RIGHT[1](dout, cache), "conv2d_backward raised "
                                                                    "TypeError"),
    (CONV_RIGHT[0], lambda dout, cache, input_grad=True: (None, None, None) if not input_grad
     else CONV_RIGHT[1](dout, cache), "with input_grad=False, dW and db must still be computed"),
])
def test_conv2d_backward_mistakes(forward, backward, message):
    with pytest.raises(AssertionError) as raised:
        check_conv2d_backward(forward, backward)
    assert message in str(raised.value)


# ----------------------------------------------------------------------- max-pooling (notebook 05)

from cnnlib.exercises import check_maxpool2d_backward, check_maxpool2d_forward  # noqa: E402


def maxpool_forward_loops(x, kernel_size, stride=None, size=lambda H, k, s: (H - k) // s + 1,
                          reduce=np.max):
    k = kernel_size
    s = k if stride is None else stride
    N, C, H, W = x.shape
    out = np.zeros((N, C, size(H, k, s), size(W, k, s)))
    for n in range(N):
        for c in range(C):
            for i in range(out.shape[2]):
                for j in range(out.shape[3]):
                    out[n, c, i, j] = reduce(x[n, c, s * i:s * i + k, s * j:s * j + k])
    return out, (x, k, s)


def maxpool_backward_loops(dout, cache, ties="split", share=None, overwrite=False):
    """The loop backward; share(window) -> the fraction of dout each input gets."""
    x, k, s = cache
    share = share or (lambda w: (w == w.max()) / np.sum(w == w.max()))
    dx = np.zeros_like(x)
    N, C, H_out, W_out = dout.shape
    for n in range(N):
        for c in range(C):
            for i in range(H_out):
                for j in range(W_out):
                    rows, cols = slice(s * i, s * i + k), slice(s * j, s * j + k)
                    g = dout[n, c, i, j] * share(x[n, c, rows, cols])
                    if overwrite:
                        dx[n, c, rows, cols] = g
                    else:
                        dx[n, c, rows, cols] += g
    return dx


def backward_sharing(share=None, overwrite=False):
    return lambda dout, cache, ties="split": maxpool_backward_loops(dout, cache, ties, share,
                                                                    overwrite)


def first_only(w):
    first = np.zeros(w.shape)
    first.flat[np.argmax(w)] = 1.0
    return first


def last_only(w):
    last = np.zeros(w.size)
    last[w.size - 1 - np.argmax(w.ravel()[::-1])] = 1.0
    return last.reshape(w.shape)


def vectorized_overwrite(dout, cache, ties="split"):
    """functional's backward with the tap-by-tap scatter assigning instead of adding."""
    x, out, k, s = cache
    H_out, W_out = out.shape[2:]
    windows = np.lib.stride_tricks.sliding_window_view(x, (k, k), axis=(2, 3))[:, :, ::s, ::s]
    is_max = windows == out[..., None, None]
    d = is_max / is_max.sum(axis=(4, 5), keepdims=True) * dout[..., None, None]
    dx = np.zeros_like(x)
    for u in range(k):
        for v in range(k):
            dx[:, :, u:u + s * H_out:s, v:v + s * W_out:s] = d[:, :, :, :, u, v]
    return dx


def test_maxpool_right_answers_pass():
    loops_backward = backward_sharing()
    assert check_maxpool2d_forward(maxpool_forward_loops).startswith("maxpool2d_forward: correct")
    assert check_maxpool2d_backward(maxpool_forward_loops, loops_backward).startswith(
        "maxpool2d_backward: correct")
    for module in (functional, naive):          # vectorized and loops, the learner may write either
        assert check_maxpool2d_backward(module.maxpool2d_forward, module.maxpool2d_backward)


@pytest.mark.parametrize("wrong, message", [
    (stub, "maxpool2d_forward is not written yet"),
    (lambda x, k, stride=None: maxpool_forward_loops(x, k, stride)[0], "must return a tuple"),
    (lambda x, k, stride=None: maxpool_forward_loops(x, k, stride, size=lambda H, k, s: H // s),
     "H_out = (H - k) // s + 1"),
    (lambda x, k, stride=None: maxpool_forward_loops(x, k, stride, size=lambda H, k, s: (H - k) // s),
     "H_out = (H - k) // s + 1"),
    (lambda x, k, stride=None: maxpool_forward_loops(x, k, k if stride is None else stride,
                                                     size=lambda H, k, s: (H - k) // k + 1),
     "expected (2, 3, 3, 4)"),
    (lambda x, k, stride=None: functional.maxpool2d_forward(x, k, stride or 1),
     "stride=None means s = k"),
    (lambda x, k, stride=None: maxpool_forward_loops(x, k, stride, reduce=np.mean), "wrong values"),
    (lambda x, k, stride=None: maxpool_forward_loops(x, k, stride, reduce=np.min), "wrong values"),
])
def test_maxpool_forward_mistakes(wrong, message):
    with pytest.raises(AssertionError, match=re.escape(message)):
        check_maxpool2d_forward(wrong)


def split_by_window_size(w):
    return (w == w.max()) / w.size


@pytest.mark.parametrize("forward, backward, message", [
    (maxpool_forward_loops, stub, "maxpool2d_backward is not written yet"),
    (stub, stub, "maxpool2d_backward is checked with the cache of your maxpool2d_forward, which is "
                 "not right yet: maxpool2d_forward is not written yet"),
    (maxpool_forward_loops, lambda dout, cache: backward_sharing()(dout, cache),
     "maxpool2d_backward raised TypeError"),
    # ties: the first maximum takes everything (loops and the library's "first")
    (maxpool_forward_loops, backward_sharing(first_only),
     "your ties go to the first maximum; split the gradient evenly among tied inputs"),
    (functional.maxpool2d_forward, lambda dout, cache, ties="split":
     functional.maxpool2d_backward(dout, cache, "first"),
     "your ties go to the first maximum; split the gradient evenly among tied inputs"),
    (maxpool_forward_loops, backward_sharing(last_only), "with tied maxima your dx is wrong"),
    # ties split by the window size instead of the number of maxima (caught on untied windows too)
    (maxpool_forward_loops, backward_sharing(split_by_window_size), "not by the window size"),
    (maxpool_forward_loops, backward_sharing(lambda w: (w == w.max()) * 1.0),
     "each tied maximum got all of dout"),
    # overlapping windows overwrite instead of adding (stride < k), loops and vectorized
    (maxpool_forward_loops, backward_sharing(overwrite=True), "add (+=), do not overwrite (=)"),
    (functional.maxpool2d_forward, vectorized_overwrite, "add (+=), do not overwrite (=)"),
    # the gradient sent to every input of the window (with or without / k^2)
    (maxpool_forward_loops, backward_sharing(lambda w: np.ones(w.shape)),
     "sends each window's gradient to every input of the window"),
    (maxpool_forward_loops, backward_sharing(lambda w: np.ones(w.shape) / w.size),
     "sends each window's gradient to every input of the window"),
    (maxpool_forward_loops, backward_sharing(lambda w: -1.0 * (w == w.max()) / np.sum(w == w.max())),
     "your dx has the wrong sign"),
    # wrong output size: dx of the shape of out, or of the windows' extent only
    (maxpool_forward_loops, lambda dout, cache, ties="split": dout, "dx (k = 2, stride = 2) has shape"),
    (maxpool_forward_loops, lambda dout, cache, ties="split":
     backward_sharing()(dout, cache)[:, :, :-1], "the gradient of x has the shape of x"),
])
def test_maxpool_backward_mistakes(forward, backward, message):
    with pytest.raises(AssertionError, match=re.escape(message)):
        check_maxpool2d_backward(forward, backward)
