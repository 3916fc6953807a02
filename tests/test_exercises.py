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
