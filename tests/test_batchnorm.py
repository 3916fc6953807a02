"""Batch normalization: gradients against central differences (float64), train/eval behaviour,
running statistics (updated only by training steps) and clear errors."""

import numpy as np
import pytest

from cnnlib.batchnorm import BatchNorm2d
from cnnlib.checks import check_batchnorm
from cnnlib.functional import batchnorm_backward, batchnorm_forward
from cnnlib.gradcheck import numerical_gradient_array, rel_error
from cnnlib.layers import Conv2d, Flatten, Linear, ReLU
from cnnlib.losses import softmax_cross_entropy
from cnnlib.network import Sequential

TOL = 1e-7


def batch(rng, shape=(4, 3, 5, 5)):
    # Off-centre, scaled inputs: normalization must do real work.
    return rng.normal(size=shape) * 3.0 + 2.0


@pytest.mark.parametrize("shape", [(4, 3, 5, 5), (6, 4)])
def test_functional_gradients_in_training_mode(rng, shape):
    x = batch(rng, shape)
    gamma, beta = rng.normal(size=shape[1]), rng.normal(size=shape[1])
    out, cache = batchnorm_forward(x, gamma, beta)
    dout = rng.normal(size=out.shape)
    dx, dgamma, dbeta = batchnorm_backward(dout, cache)
    f = lambda: batchnorm_forward(x, gamma, beta)[0]
    assert rel_error(dx, numerical_gradient_array(f, x, dout)) < TOL
    assert rel_error(dgamma, numerical_gradient_array(f, gamma, dout)) < TOL
    assert rel_error(dbeta, numerical_gradient_array(f, beta, dout)) < TOL


def test_functional_gradients_in_evaluation_mode(rng):
    x = batch(rng)
    gamma, beta = rng.normal(size=3), rng.normal(size=3)
    mean, var = rng.normal(size=3), rng.uniform(0.5, 2.0, size=3)
    out, cache = batchnorm_forward(x, gamma, beta, mean=mean, var=var)
    dout = rng.normal(size=out.shape)
    dx, dgamma, dbeta = batchnorm_backward(dout, cache)
    f = lambda: batchnorm_forward(x, gamma, beta, mean=mean, var=var)[0]
    assert rel_error(dx, numerical_gradient_array(f, x, dout)) < TOL
    assert rel_error(dgamma, numerical_gradient_array(f, gamma, dout)) < TOL
    assert rel_error(dbeta, numerical_gradient_array(f, beta, dout)) < TOL


def test_training_output_is_normalized_per_channel(rng):
    x = batch(rng, (8, 3, 4, 4))
    gamma, beta = np.array([1.0, 2.0, 0.5]), np.array([0.0, -1.0, 3.0])
    out, _ = batchnorm_forward(x, gamma, beta)
    assert np.allclose(out.mean(axis=(0, 2, 3)), beta)
    assert np.allclose(out.std(axis=(0, 2, 3)), gamma, rtol=1e-4)


def test_layer_gradients_in_a_network(rng):
    # Conv -> BN -> ReLU -> Linear, loss gradient checked end to end through the batch statistics.
    net = Sequential(Conv2d(2, 3, 3, padding=1, rng=rng, dtype=np.float64),
                     BatchNorm2d(3, dtype=np.float64), ReLU(), Flatten(),
                     Linear(3 * 4 * 4, 5, rng=rng, dtype=np.float64))
    net[1].params["W"][...] = rng.uniform(0.5, 1.5, size=3)
    net[1].params["b"][...] = rng.normal(size=3)
    x = rng.normal(size=(4, 2, 4, 4))
    y = rng.integers(0, 5, size=4)

    def loss():
        return softmax_cross_entropy(net.forward(x), y)[0]

    _, dscores = softmax_cross_entropy(net.forward(x), y)
    net.backward(dscores)
    for name, param, grad in net.parameters():
        num = numerical_gradient_array(loss, param, np.array(1.0))
        if name == "0.b":
            # A bias right before batch norm is subtracted away with the mean: gradient 0.
            assert np.abs(grad).max() < 1e-12 and np.abs(num).max() < 1e-9
            continue
        assert rel_error(grad, num) < TOL, name


def test_running_statistics_follow_training_steps(rng):
    bn = BatchNorm2d(3, momentum=0.1, dtype=np.float64)
    x = batch(rng, (8, 3, 4, 4))
    bn.forward(x)
    bn.backward(np.zeros_like(x))
    m = 8 * 4 * 4
    assert np.allclose(bn.buffers["running_mean"], 0.1 * x.mean(axis=(0, 2, 3)))
    expected_var = 0.9 + 0.1 * x.var(axis=(0, 2, 3)) * m / (m - 1)   # unbiased, like PyTorch
    assert np.allclose(bn.buffers["running_var"], expected_var)


def test_running_statistics_converge_to_the_data_statistics(rng):
    bn = BatchNorm2d(2, momentum=0.2, dtype=np.float64)
    for _ in range(100):
        x = rng.normal(size=(16, 2, 3, 3)) * np.array([1.0, 3.0])[None, :, None, None] + 5.0
        bn.forward(x)
        bn.backward(np.zeros_like(x))
    assert np.allclose(bn.buffers["running_mean"], 5.0, atol=0.3)
    assert np.allclose(bn.buffers["running_var"], [1.0, 9.0], rtol=0.25)


def test_forward_without_backward_never_changes_running_statistics(rng):
    # Scoring with a train-mode forward by mistake must not corrupt a trained model.
    bn = BatchNorm2d(3, dtype=np.float64)
    bn.buffers["running_mean"][...] = [0.5, -1.0, 2.0]
    bn.buffers["running_var"][...] = [1.5, 0.5, 4.0]
    before = {key: value.copy() for key, value in bn.buffers.items()}
    for _ in range(3):
        bn.forward(batch(rng))
    for key in before:
        assert np.array_equal(bn.buffers[key], before[key])


def test_each_forward_updates_running_statistics_at_most_once(rng):
    bn = BatchNorm2d(3, dtype=np.float64)
    x = batch(rng)
    bn.forward(x)
    bn.backward(np.ones_like(x))
    once = bn.buffers["running_mean"].copy()
    bn.backward(np.ones_like(x))      # a second backward of the same forward
    assert np.array_equal(bn.buffers["running_mean"], once)


def test_eval_mode_uses_running_statistics_and_does_not_update_them(rng):
    bn = BatchNorm2d(3, dtype=np.float64)
    bn.buffers["running_mean"][...] = [1.0, 2.0, 3.0]
    bn.buffers["running_var"][...] = [4.0, 1.0, 0.25]
    bn.eval()
    x = batch(rng)
    out = bn.forward(x)
    bn.backward(np.ones_like(out))
    expected = (x - np.array([1.0, 2.0, 3.0])[None, :, None, None]) / np.sqrt(
        np.array([4.0, 1.0, 0.25])[None, :, None, None] + bn.eps)
    assert np.allclose(out, expected)
    assert np.array_equal(bn.buffers["running_mean"], [1.0, 2.0, 3.0])
    # One image alone gives the same answer as inside its batch: no dependence on neighbours.
    assert np.allclose(bn.forward(x[:1]), out[:1])


def test_train_and_eval_modes_differ(rng):
    bn = BatchNorm2d(3, dtype=np.float64)
    x = batch(rng)
    train_out = bn.forward(x)
    eval_out = bn.eval().forward(x)
    assert not np.allclose(train_out, eval_out)
    assert np.allclose(eval_out, x / np.sqrt(1.0 + bn.eps))   # fresh running stats: 0 and 1


def test_float32_layer(rng):
    bn = BatchNorm2d(4)
    x = rng.normal(size=(8, 4, 6, 6)).astype(np.float32)
    out = bn.forward(x)
    dx = bn.backward(np.ones_like(out))
    assert out.dtype == np.float32 and dx.dtype == np.float32
    assert bn.buffers["running_var"].dtype == np.float32


def test_errors_say_what_is_expected(rng):
    bn = BatchNorm2d(3)
    with pytest.raises(ValueError, match=r"expects x of shape \(N, 3, H, W\); got \(2, 4, 5, 5\)"):
        bn.forward(np.zeros((2, 4, 5, 5), dtype=np.float32))
    with pytest.raises(ValueError, match="float32"):
        bn.forward(np.zeros((2, 3, 5, 5)))
    with pytest.raises(ValueError, match="more than one value per channel"):
        bn.forward(np.zeros((1, 3, 1, 1), dtype=np.float32))
    with pytest.raises(ValueError, match="more than one value per channel"):
        check_batchnorm(np.zeros((1, 3)), np.ones(3), np.zeros(3))
    with pytest.raises(ValueError, match=r"gamma of shape \(3,\)"):
        check_batchnorm(np.zeros((2, 3, 2, 2)), np.ones(4), np.zeros(3))
    with pytest.raises(ValueError, match="num_features"):
        BatchNorm2d(0)
    with pytest.raises(ValueError, match="momentum"):
        BatchNorm2d(3, momentum=1.5)
    with pytest.raises(RuntimeError, match="before forward"):
        BatchNorm2d(3).backward(np.zeros((2, 3, 2, 2), dtype=np.float32))


def test_recalibrate_sets_the_exact_statistics(rng):
    from cnnlib.batchnorm import recalibrate

    net = Sequential(Conv2d(1, 3, 3, padding=1, rng=rng, dtype=np.float64),
                     BatchNorm2d(3, dtype=np.float64), ReLU(),
                     Conv2d(3, 2, 3, rng=rng, dtype=np.float64), BatchNorm2d(2, dtype=np.float64))
    x = rng.normal(size=(50, 1, 6, 6)) + 1.0
    recalibrate(net, x, batch_size=7)
    assert net.training is False
    h = net[0].forward(x)
    assert np.allclose(net[1].buffers["running_mean"], h.mean(axis=(0, 2, 3)))
    assert np.allclose(net[1].buffers["running_var"], h.var(axis=(0, 2, 3), ddof=1))
    # The second BN sees the first one's output normalized with its new statistics.
    h2 = net[3].forward(net[2].forward(net[1].forward(h)))
    assert np.allclose(net[4].buffers["running_mean"], h2.mean(axis=(0, 2, 3)))
    assert np.allclose(net[4].buffers["running_var"], h2.var(axis=(0, 2, 3), ddof=1))
    with pytest.raises(ValueError, match="at least one image"):
        recalibrate(net, x[:0])


def test_integer_input_and_missing_gamma_are_clear_errors():
    x = np.arange(24).reshape(4, 2, 3, 1)
    with pytest.raises(ValueError, match="floating x"):
        check_batchnorm(x, np.ones(2), np.zeros(2))
    with pytest.raises(ValueError, match="needs gamma and beta"):
        check_batchnorm(x.astype(np.float64), None, np.zeros(2))
