"""Every layer's backward pass against central differences, in float64.

Inputs are drawn away from ReLU kinks and pooling ties, where the function is not differentiable
and a numerical gradient means nothing.
"""

import numpy as np
import pytest

from cnnlib.gradcheck import numerical_gradient, numerical_gradient_array, rel_error
from cnnlib.layers import Conv2d, Flatten, Linear, MaxPool2d, ReLU, Tanh
from cnnlib.losses import softmax_cross_entropy
from cnnlib.network import Sequential

TOL = 1e-7


def check_layer(layer, x, rng):
    """Compare dx and every parameter gradient of ``layer`` at ``x`` with numerical ones."""
    out = layer.forward(x)
    dout = rng.normal(size=out.shape)
    dx = layer.backward(dout)
    assert dx.shape == x.shape and dx.dtype == np.float64
    dx_num = numerical_gradient_array(lambda: layer.forward(x), x, dout)
    assert rel_error(dx, dx_num) < TOL
    layer.forward(x)
    layer.backward(dout)
    for key, param in layer.params.items():
        num = numerical_gradient_array(lambda: layer.forward(x), param, dout)
        assert layer.grads[key].shape == param.shape
        assert rel_error(layer.grads[key], num) < TOL, key


def distinct_values(rng, shape, gap=0.05):
    """Values that are pairwise at least ``gap`` apart: no pooling window has two near-maxima."""
    size = int(np.prod(shape))
    return (rng.permutation(size) * gap - size * gap / 2).reshape(shape).astype(np.float64)


@pytest.mark.parametrize("stride", [1, 2])
@pytest.mark.parametrize("padding", [0, 1, 2])
@pytest.mark.parametrize("kernel_size", [1, 3, 4, 5])
@pytest.mark.parametrize("in_channels", [1, 3])
def test_conv2d(rng, in_channels, kernel_size, padding, stride):
    layer = Conv2d(in_channels, 2, kernel_size, stride, padding, rng=rng, dtype=np.float64)
    layer.params["b"][:] = rng.normal(size=2)
    x = rng.normal(size=(2, in_channels, 7, 6))
    check_layer(layer, x, rng)


@pytest.mark.parametrize("kernel_size, stride", [(2, 2), (3, 2), (3, 1)])
@pytest.mark.parametrize("ties", ["split", "first"])
def test_maxpool2d(rng, kernel_size, stride, ties):
    x = distinct_values(rng, (2, 3, 7, 8))
    check_layer(MaxPool2d(kernel_size, stride, ties), x, rng)


def test_linear(rng):
    layer = Linear(6, 4, rng=rng, dtype=np.float64)
    layer.params["b"][:] = rng.normal(size=4)
    check_layer(layer, rng.normal(size=(5, 6)), rng)


def test_relu(rng):
    x = rng.normal(size=(4, 3, 5, 5))
    x[np.abs(x) < 0.01] = 0.5  # away from the kink
    check_layer(ReLU(), x, rng)


def test_tanh(rng):
    check_layer(Tanh(), rng.normal(size=(4, 7)), rng)


def test_flatten(rng):
    check_layer(Flatten(), rng.normal(size=(3, 2, 4, 5)), rng)


def test_softmax_cross_entropy(rng):
    scores = rng.normal(size=(6, 10))
    y = rng.integers(0, 10, size=6)
    loss, dscores = softmax_cross_entropy(scores, y)
    num = numerical_gradient(lambda: softmax_cross_entropy(scores, y)[0], scores)
    assert rel_error(dscores, num) < TOL
    # Small random scores: the loss starts near ln(K).
    loss, _ = softmax_cross_entropy(1e-3 * scores, y)
    assert abs(loss - np.log(10)) < 1e-2


def test_softmax_cross_entropy_is_stable():
    scores = np.array([[1000.0, 0.0, -1000.0], [0.0, 0.0, 0.0]])
    loss, dscores = softmax_cross_entropy(scores, np.array([2, 0]))
    assert np.isfinite(loss) and np.all(np.isfinite(dscores))
    assert abs(loss - (2000 + np.log(3)) / 2) < 1e-9


def test_reference_network_end_to_end(rng):
    net = Sequential(
        Conv2d(1, 10, 5, rng=rng, dtype=np.float64), ReLU(), MaxPool2d(2),
        Conv2d(10, 20, 5, rng=rng, dtype=np.float64), ReLU(), MaxPool2d(2),
        Flatten(), Linear(180, 10, rng=rng, dtype=np.float64),
    )
    for layer in net:
        if "b" in layer.params:
            layer.params["b"][:] = 0.1 * rng.normal(size=layer.params["b"].shape)
    x = rng.uniform(size=(2, 1, 24, 24))
    y = np.array([3, 7])

    def loss():
        return softmax_cross_entropy(net.forward(x), y)[0]

    _, dscores = softmax_cross_entropy(net.forward(x), y)
    dx = net.backward(dscores)
    assert rel_error(dx, numerical_gradient(loss, x)) < TOL
    for name, param, grad in net.parameters():
        # All 7,090 parameters would be slow; 40 random entries of each array are enough.
        flat, flat_grad = param.reshape(-1), grad.reshape(-1).copy()
        picked = rng.choice(flat.size, size=min(flat.size, 40), replace=False)
        num = np.empty(len(picked))
        for j, i in enumerate(picked):
            old = flat[i]
            flat[i] = old + 1e-5
            plus = loss()
            flat[i] = old - 1e-5
            minus = loss()
            flat[i] = old
            num[j] = (plus - minus) / 2e-5
        assert rel_error(flat_grad[picked], num) < TOL, name


@pytest.mark.parametrize("first", ["conv", "linear", "relu"])
def test_backward_without_input_grad_gives_the_same_parameter_gradients(rng, first):
    def linear(d):
        return Linear(d, 5, rng=rng, dtype=np.float64)

    if first == "conv":
        net = Sequential(Conv2d(1, 3, 3, rng=rng, dtype=np.float64), ReLU(), Flatten(), linear(48))
        x = rng.normal(size=(4, 1, 6, 6))
    elif first == "linear":
        net = Sequential(linear(36))
        x = rng.normal(size=(4, 36))
    else:  # a first layer without parameters still runs, its dx is just not returned
        net = Sequential(ReLU(), Flatten(), linear(36))
        x = rng.normal(size=(4, 1, 6, 6))
    _, dscores = softmax_cross_entropy(net.forward(x), np.array([0, 1, 2, 4]))
    assert net.backward(dscores).shape == x.shape
    full = [grad.copy() for _, _, grad in net.parameters()]
    net.forward(x)
    assert net.backward(dscores, input_grad=False) is None
    for (name, _, grad), expected in zip(net.parameters(), full):
        np.testing.assert_array_equal(grad, expected, err_msg=name)


@pytest.mark.parametrize("ties, expected", [("split", [0.25] * 4), ("first", [1, 0, 0, 0])])
def test_maxpool2d_layer_routes_a_tie_by_its_rule(ties, expected):
    # The gradient checks above avoid ties on purpose; here all four inputs tie.
    layer = MaxPool2d(2, ties=ties)
    layer.forward(np.zeros((1, 1, 2, 2)))
    np.testing.assert_array_equal(layer.backward(np.ones((1, 1, 1, 1))).ravel(), expected)


def test_rel_error_and_numerical_gradient_themselves():
    # The checker is checked too: a broken rel_error would let every gradient test pass.
    x = np.array([1.0, -2.0, 3.0])
    assert rel_error(x, -x) == 1.0                       # same norm, opposite direction
    assert rel_error(x, 1.01 * x) == pytest.approx(0.01 / 2.01)
    assert rel_error(np.zeros(3), np.zeros(3)) == 0.0
    np.testing.assert_allclose(numerical_gradient(lambda: float(np.sum(x ** 3)), x), 3 * x ** 2,
                               rtol=1e-8)
