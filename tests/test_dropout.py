"""Dropout: the mask's statistics, train versus eval, the gradient, reproducibility, errors."""

import numpy as np
import pytest

from cnnlib.dropout import Dropout
from cnnlib.functional import dropout_backward, dropout_forward
from cnnlib.gradcheck import numerical_gradient_array, rel_error


def test_training_drops_about_p_and_keeps_the_expectation(rng):
    layer = Dropout(0.3, rng=rng)
    x = np.ones((200, 500), dtype=np.float32)
    out = layer.forward(x)
    dropped = np.mean(out == 0)
    assert abs(dropped - 0.3) < 0.01
    assert np.allclose(out[out != 0], 1 / 0.7)
    assert abs(out.mean() - 1.0) < 0.01
    assert out.dtype == np.float32


def test_eval_mode_is_the_identity(rng):
    layer = Dropout(0.5, rng=rng).eval()
    x = rng.normal(size=(4, 10))
    assert np.array_equal(layer.forward(x), x)
    assert np.array_equal(layer.backward(np.ones_like(x)), np.ones_like(x))
    layer.train()
    assert np.mean(layer.forward(np.ones((100, 100))) == 0) > 0.3


def test_gradient_matches_central_differences(rng):
    x = rng.normal(size=(3, 4, 5))
    out, mask = dropout_forward(x, 0.4, rng)
    dout = rng.normal(size=out.shape)
    dx = dropout_backward(dout, mask)
    # With the mask held fixed, dropout is x * mask: check against that function.
    num = numerical_gradient_array(lambda: x * mask, x, dout)
    assert rel_error(dx, num) < 1e-7
    assert np.array_equal(dx == 0, out == 0)


def test_layer_backward_uses_the_forward_mask(rng):
    layer = Dropout(0.5, rng=rng)
    x = rng.normal(size=(6, 8))
    out = layer.forward(x)
    dx = layer.backward(np.ones_like(x))
    assert np.array_equal(dx, np.where(out == 0, 0.0, 2.0))


def test_same_seed_same_mask():
    x = np.ones((10, 10))
    a = Dropout(0.5, rng=np.random.default_rng(3)).forward(x)
    b = Dropout(0.5, rng=np.random.default_rng(3)).forward(x)
    c = Dropout(0.5, rng=np.random.default_rng(4)).forward(x)
    assert np.array_equal(a, b) and not np.array_equal(a, c)


def test_p_zero_is_the_identity(rng):
    x = rng.normal(size=(5, 5))
    assert np.array_equal(Dropout(0.0, rng=rng).forward(x), x)


@pytest.mark.parametrize("p", [-0.1, 1.0, 2, "0.5"])
def test_bad_probability(p):
    with pytest.raises(ValueError, match=r"p in \[0, 1\)"):
        Dropout(p)


def test_backward_before_forward_and_integer_input():
    with pytest.raises(RuntimeError, match="before forward"):
        Dropout(0.5).backward(np.ones(3))
    with pytest.raises(ValueError, match="floating"):
        Dropout(0.5).forward(np.ones((2, 2), dtype=np.uint8))
