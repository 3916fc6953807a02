"""Sequential, the optimizers and the layers' bad-input errors."""

import numpy as np
import pytest

from cnnlib.layers import Conv2d, Flatten, Linear, MaxPool2d, ReLU
from cnnlib.losses import softmax_cross_entropy
from cnnlib.network import Sequential
from cnnlib.optim import SGD, Adam


def small_net(rng, dtype=np.float32):
    return Sequential(Conv2d(1, 4, 3, rng=rng, dtype=dtype), ReLU(), MaxPool2d(2), Flatten(),
                      Linear(4 * 3 * 3, 3, rng=rng, dtype=dtype))


def test_parameters_and_count(rng):
    net = small_net(rng)
    names = [name for name, _, _ in net.parameters()]
    assert names == ["0.W", "0.b", "4.W", "4.b"]
    assert net.num_parameters() == 4 * 9 + 4 + 36 * 3 + 3
    assert net[0].params["W"].shape == (4, 1, 3, 3) and net[0].params["W"].dtype == np.float32


def test_he_initialization(rng):
    W = Conv2d(10, 64, 5, rng=rng).params["W"]
    assert abs(W.std() - np.sqrt(2 / 250)) < 0.05 * np.sqrt(2 / 250)


def test_predict_proba_in_batches_equals_one_batch(rng):
    net = small_net(rng)
    x = rng.uniform(size=(25, 1, 8, 8)).astype(np.float32)
    p = net.predict_proba(x, batch_size=7)
    np.testing.assert_allclose(p, net.predict_proba(x, batch_size=100), rtol=1e-6)
    np.testing.assert_allclose(p.sum(axis=1), 1, rtol=1e-6)
    assert net.predict(x).shape == (25,) and net.training


@pytest.mark.parametrize("make", [lambda: SGD(0.1, momentum=0.9), lambda: Adam(0.01)])
def test_optimizers_fit_a_small_problem(rng, make):
    net = small_net(rng)
    x = rng.uniform(size=(30, 1, 8, 8)).astype(np.float32)
    y = rng.integers(0, 3, size=30)
    optimizer = make()
    first, _ = softmax_cross_entropy(net.forward(x), y)
    for _ in range(200):
        loss, dscores = softmax_cross_entropy(net.forward(x), y)
        net.backward(dscores)
        optimizer.step(net)
    assert loss < 0.1 * first


def test_sgd_update_rule():
    layer = Linear(2, 1, dtype=np.float64)
    layer.params["W"][:] = [[1.0, -2.0]]
    layer.params["b"][:] = [0.5]
    layer.grads["W"][:] = [[0.1, 0.2]]
    layer.grads["b"][:] = [1.0]
    net = Sequential(layer)
    opt = SGD(lr=0.1, momentum=0.9, weight_decay=0.01)
    opt.step(net)  # v = -lr * (g + wd * w); biases are not decayed
    np.testing.assert_allclose(layer.params["W"], [[1 - 0.1 * 0.11, -2 - 0.1 * 0.18]])
    np.testing.assert_allclose(layer.params["b"], [0.5 - 0.1])
    opt.step(net)  # the velocity carries on
    v_b = 0.9 * -0.1 - 0.1
    np.testing.assert_allclose(layer.params["b"], [0.4 + v_b])


def test_layer_input_errors(rng):
    conv = Conv2d(3, 4, 5, rng=rng)
    with pytest.raises(ValueError, match=r"expects x of shape \(N, C, H, W\); got \(28, 28\)"):
        conv.forward(np.zeros((28, 28), np.float32))
    with pytest.raises(ValueError, match=r"\(N, 3, H, W\); got \(1, 1, 28, 28\)"):
        conv.forward(np.zeros((1, 1, 28, 28), np.float32))
    with pytest.raises(ValueError, match="expects input of that dtype; got float64"):
        conv.forward(np.zeros((1, 3, 28, 28)))
    with pytest.raises(ValueError, match="floating numpy array; got uint8"):
        conv.forward(np.zeros((1, 3, 28, 28), np.uint8))
    with pytest.raises(ValueError, match="kernel 5x5 is larger than the padded input"):
        conv.forward(np.zeros((1, 3, 4, 4), np.float32))
    with pytest.raises(ValueError, match=r"Linear.*float32"):
        Linear(4, 2, rng=rng).forward(np.zeros((3, 4), np.float64))
    with pytest.raises(ValueError, match="integer kernel_size >= 1"):
        Conv2d(1, 1, 0)
    with pytest.raises(ValueError, match="ties must be one of"):
        MaxPool2d(2, ties="last")
    with pytest.raises(RuntimeError, match="backward called before forward"):
        ReLU().backward(np.zeros(3))
    with pytest.raises(ValueError, match=r"labels in \[0, 3\)"):
        softmax_cross_entropy(np.zeros((2, 3)), np.array([0, 3]))


def test_predict_is_the_argmax_of_predict_proba(rng):
    from cnnlib.architectures import seed_net
    net = seed_net(rng=rng)
    x = rng.random((30, 1, 24, 24), dtype=np.float32)
    np.testing.assert_array_equal(net.predict(x), net.predict_proba(x).argmax(axis=1))


def test_adam_matches_its_formula_with_weight_decay():
    rng = np.random.default_rng(0)
    layer = Linear(3, 2, rng=rng, dtype=np.float64)
    net = Sequential(layer)
    W, b = layer.params["W"].copy(), layer.params["b"].copy()
    moments = {key: (np.zeros_like(p), np.zeros_like(p)) for key, p in (("W", W), ("b", b))}
    optimizer = Adam(lr=0.05, betas=(0.9, 0.99), eps=1e-8, weight_decay=0.1)
    for t in range(1, 6):
        gW, gb = rng.normal(size=W.shape), rng.normal(size=b.shape)
        layer.grads["W"][...], layer.grads["b"][...] = gW, gb
        optimizer.step(net)
        for key, p, g in (("W", W, gW + 0.1 * W), ("b", b, gb)):   # L2 on weights, not biases
            m, v = moments[key]
            m[...] = 0.9 * m + 0.1 * g
            v[...] = 0.99 * v + 0.01 * g * g
            p -= 0.05 * (m / (1 - 0.9 ** t)) / (np.sqrt(v / (1 - 0.99 ** t)) + 1e-8)
    np.testing.assert_allclose(layer.params["W"], W, rtol=1e-12)
    np.testing.assert_allclose(layer.params["b"], b, rtol=1e-12)


def test_sgd_without_momentum_still_decays_weights():
    layer = Linear(2, 1, dtype=np.float64)
    layer.params["W"][:] = [[1.0, -2.0]]
    layer.grads["W"][:] = [[0.1, 0.2]]
    SGD(lr=0.1, weight_decay=0.01).step(Sequential(layer))
    np.testing.assert_allclose(layer.params["W"], [[1 - 0.1 * 0.11, -2 - 0.1 * 0.18]])


def test_evaluating_restores_the_mode_even_after_an_error():
    from cnnlib.architectures import seed_net
    net = seed_net(rng=np.random.default_rng(0)).train()
    with pytest.raises(RuntimeError):
        with net.evaluating():
            assert not net.training and not any(layer.training for layer in net)
            raise RuntimeError("inside")
    assert net.training and all(layer.training for layer in net)
    net.eval()
    with net.evaluating():
        pass
    assert not net.training
