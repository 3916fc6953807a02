"""The loss: checked at the boundary, then computed by the operation the seam holds.

``softmax_cross_entropy(scores, y) -> (loss, dscores)`` checks its arguments, then calls
``cnnlib.ops.ops.softmax_cross_entropy`` (the math is in ``cnnlib.functional``).
"""

import numpy as np

from .checks import check_floating, check_rank
from .functional import softmax
from .ops import ops

__all__ = ["softmax", "softmax_cross_entropy"]


def softmax_cross_entropy(scores, y):
    """Mean cross-entropy of the softmax of ``scores`` against integer labels ``y``, checked.

    scores: (N, K) floating class scores; y: (N,) integers in [0, K). Returns (loss, dscores) with
    dscores: (N, K); the math is ``cnnlib.functional.softmax_cross_entropy``.
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
    return ops.softmax_cross_entropy(scores, y)
