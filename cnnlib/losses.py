"""Loss functions: a scalar loss and its gradient with respect to the scores, in one call."""

import numpy as np

from .functional import check_floating, check_rank


def softmax(scores):
    """Row-wise softmax of scores: (N, K) -> probabilities (N, K), each row summing to 1.

    Subtracting each row's maximum first changes nothing mathematically (softmax is invariant to
    adding a constant to a row) and keeps exp() from overflowing.
    """
    shifted = scores - scores.max(axis=1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=1, keepdims=True)


def softmax_cross_entropy(scores, y):
    """Mean cross-entropy of the softmax of ``scores`` against integer labels ``y``.

    scores: (N, K) unnormalized class scores; y: (N,) integers in [0, K).
    loss = -(1/N) sum_n log p[n, y_n], with p = softmax(scores).
    Returns (loss, dscores) with dscores: (N, K) = (p - onehot(y)) / N.

    The log-probabilities are computed as shifted - log(sum(exp(shifted))), never as log(p), so a
    confident wrong answer gives a large finite loss instead of log(0) = -inf.
    """
    check_floating("softmax_cross_entropy", scores)
    check_rank("softmax_cross_entropy", scores, "N, K")
    y = np.asarray(y)
    N, K = scores.shape
    if y.shape != (N,) or y.dtype.kind not in "iu":
        raise ValueError(f"softmax_cross_entropy expects integer labels y of shape ({N},); got "
                         f"{y.dtype.name} array of shape {tuple(y.shape)}")
    if N and (y.min() < 0 or y.max() >= K):
        raise ValueError(f"softmax_cross_entropy expects labels in [0, {K}); got values from "
                         f"{y.min()} to {y.max()}")
    shifted = scores - scores.max(axis=1, keepdims=True)
    log_sum_exp = np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    log_p = shifted - log_sum_exp
    rows = np.arange(N)
    loss = -log_p[rows, y].mean()
    dscores = np.exp(log_p)
    dscores[rows, y] -= 1
    dscores /= N
    return float(loss), dscores
