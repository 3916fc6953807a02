import numpy as np
import pytest


@pytest.fixture
def rng():
    return np.random.default_rng(0)


@pytest.fixture(scope="session")
def mnist():
    """MNIST's 50k / 10k / 10k split (``cnnlib.data.MnistSplit``), fetched once if need be."""
    from cnnlib import data

    return data.load_mnist_split(progress=False)
