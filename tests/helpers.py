"""Helpers shared by several test files (plain functions; fixtures live in conftest.py)."""

import numpy as np

from cnnlib import architectures, train


def fake_digits(n, seed=0):
    """uint8 (n, 28, 28) images and labels: a bright square whose position depends on the label,
    on noise, so a network can learn it in a few steps."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 10, n)
    images = rng.integers(0, 40, (n, 28, 28)).astype(np.uint8)
    for digit in range(10):
        row, col = 4 + 4 * (digit // 5), 4 + 4 * (digit % 5)
        images[labels == digit, row:row + 6, col:col + 6] = 255
    return images, labels


def make_trainer(n=200, seed=0, **kwargs):
    """A Trainer of a fresh seed_net on n fake digits, validating on 100 more."""
    images, labels = fake_digits(n + 100, seed=seed)
    rng = np.random.default_rng(seed)
    net = architectures.seed_net(rng=rng)
    return train.Trainer(net, images[:n], labels[:n], images[n:], labels[n:], rng=rng, **kwargs)
