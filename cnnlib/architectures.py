"""The networks of the course, by name: the reference network and the deeper one of notebook 09.

    net = build_model("seed", rng=np.random.default_rng(0))   # MODELS["seed"] is seed_net
    net = deep_net(rng, width=32)                               # MODELS["deep"]

``seed_net``, the original demo's network::

    (N, 1, 24, 24) -> conv 10@5x5 -> ReLU -> max-pool 2 -> (N, 10, 10, 10)
                   -> conv 20@5x5 -> ReLU -> max-pool 2 -> (N, 20, 3, 3)
                   -> flatten (N, 180) -> linear -> (N, 10) class scores (softmax in the loss)

``deep_net``: three blocks of convolution -> batch normalization -> ReLU -> 2x2 max-pooling, each
doubling the channels while halving the image, then one linear layer (with dropout before it)::

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

Saving and loading a built network is ``cnnlib.serialization``.

What it trades away: the deep network is sized for a 15-minute training run on 2 CPU cores, not
for the last 0.1% (no residual connections, no ensembles, no test-time augmentation).
"""

import numpy as np

from .batchnorm import BatchNorm2d
from .dropout import Dropout
from .layers import Conv2d, Flatten, Linear, MaxPool2d, ReLU
from .network import Sequential

__all__ = ["seed_net", "deep_net", "MODELS", "build_model"]


def seed_net(rng=None):
    """The original demo's network, for 24x24 grey-level digits: 7,090 parameters.

    (N, 1, 24, 24) -> conv 10@5x5 -> ReLU -> max-pool 2 -> (N, 10, 10, 10)
                   -> conv 20@5x5 -> ReLU -> max-pool 2 -> (N, 20, 3, 3)
                   -> flatten (N, 180) -> linear -> (N, 10) class scores (softmax in the loss).
    """
    return Sequential(
        Conv2d(1, 10, 5, rng=rng), ReLU(), MaxPool2d(2),
        Conv2d(10, 20, 5, rng=rng), ReLU(), MaxPool2d(2),
        Flatten(), Linear(180, 10, rng=rng),
    )


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


# Architectures by name (the CLI's ``--model``): name -> constructor(rng=None) -> Sequential.
MODELS = {"seed": seed_net, "deep": deep_net}


def build_model(name, rng=None):
    """A freshly initialized network from ``MODELS`` by name (weights drawn from ``rng``)."""
    try:
        constructor = MODELS[name]
    except KeyError:
        raise ValueError(f"unknown model {name!r}; choose one of: {', '.join(MODELS)}") from None
    return constructor(rng=rng)
