"""Network architectures used by the course."""

from .layers import Conv2d, Flatten, Linear, MaxPool2d, ReLU
from .network import Sequential


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
