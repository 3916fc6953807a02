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


@pytest.fixture(scope="session")
def dev_records():
    """The 600 shipped pen digits of 24 writers (``cnnlib.pendigits.load_pen_digits("dev")``)."""
    from cnnlib.pendigits import load_pen_digits

    return load_pen_digits("dev")


@pytest.fixture
def stroke_file(tmp_path):
    """A stroke file of one record: a vertical bar labelled 1."""
    import json

    path = tmp_path / "one.json"
    path.write_text(json.dumps([{"label": 1, "strokes": [[[0, 0], [0, 10]]]}]))
    return path
