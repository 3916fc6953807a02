"""The deeper network of notebook 09: how far the same hand-written layers go on MNIST.

Three blocks of convolution -> batch normalization -> ReLU -> 2x2 max-pooling, each doubling the
channels while halving the image, then one linear layer (with dropout before it)::

    (N, 1, 24, 24) -> conv w@3x3 'same' -> BN -> ReLU -> pool -> (N, w, 12, 12)
                   -> conv 2w@3x3 'same' -> BN -> ReLU -> pool -> (N, 2w, 6, 6)
                   -> conv 4w@3x3 'same' -> BN -> ReLU -> pool -> (N, 4w, 3, 3)
                   -> flatten (N, 36w) -> dropout -> linear -> (N, 10) class scores

'same' padding (padding = kernel_size // 2) keeps each convolution's output the size of its
input, so only the pooling shrinks the image. Batch normalization lets a deeper stack train with
a large learning rate from the first step; dropout before the classifier and random affine
augmentation (``cnnlib.augment``) keep it from memorizing the 60,000 digits.

The conv biases are kept (Conv2d always has them) although batch normalization subtracts them
away again: their gradient is exactly 0, so they stay at 0 and cost nothing worth saving.

What it trades away: sized for a 15-minute training run on 2 CPU cores, not for the last 0.1%
(no residual connections, no ensembles, no test-time augmentation).
"""

import numpy as np

from .batchnorm import BatchNorm2d
from .dropout import Dropout
from .layers import Conv2d, Flatten, Linear, MaxPool2d, ReLU
from .network import Sequential

__all__ = ["deep_net"]


def _block(in_channels, out_channels, rng, dtype):
    """conv 3x3 'same' -> batch norm -> ReLU -> max-pool 2: (N, in, H, W) -> (N, out, H/2, W/2)."""
    return [Conv2d(in_channels, out_channels, 3, padding=1, rng=rng, dtype=dtype),
            BatchNorm2d(out_channels, dtype=dtype), ReLU(), MaxPool2d(2)]


def deep_net(rng=None, width=32, dropout=0.25, *, dtype=np.float32):
    """The deeper network for 24x24 digits (float32): with width 32, 104,650 parameters.

    rng: numpy Generator for the initial weights and the dropout masks (None: fresh entropy).
    width: channels of the first block (the next blocks have 2x and 4x as many).
    dropout: drop probability before the linear layer (0: no Dropout layer).
    dtype: np.float32 for training, np.float64 for gradient checks.
    """
    if not isinstance(width, int) or width < 1:
        raise ValueError(f"deep_net needs an integer width >= 1; got {width!r}")
    if not 0 <= dropout < 1:
        raise ValueError(f"deep_net needs a dropout probability in [0, 1); got {dropout!r}")
    layers = (_block(1, width, rng, dtype) + _block(width, 2 * width, rng, dtype)
              + _block(2 * width, 4 * width, rng, dtype) + [Flatten()])
    if dropout:
        layers.append(Dropout(dropout, rng=rng))
    layers.append(Linear(4 * width * 3 * 3, 10, rng=rng, dtype=dtype))
    return Sequential(*layers)
