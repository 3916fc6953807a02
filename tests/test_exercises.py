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


# ----------------------------------------------------------------------- max-pooling (notebook 05)

import re  # noqa: E402

from cnnlib import naive  # noqa: E402
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
