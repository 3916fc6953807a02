"""The seam: layers call their operations through cnnlib.ops, and other implementations plug in."""

import numpy as np
import pytest

from cnnlib import fast, functional, naive
from cnnlib.architectures import seed_net
from cnnlib.layers import Conv2d, MaxPool2d, ReLU
from cnnlib.network import Sequential, forward_backward
from cnnlib.ops import OPERATIONS, ops


@pytest.fixture(autouse=True)
def defaults_afterwards():
    yield
    ops.unplug()


def test_the_defaults_are_the_fast_operations():
    assert ops.plugged() == {}
    for name in OPERATIONS:
        assert getattr(ops, name) is getattr(fast, name)


def test_a_plugged_operation_runs_inside_the_layers_and_comes_out_again(rng):
    calls = []

    def relu_forward(x):
        calls.append("forward")
        return functional.relu_forward(x)

    def relu_backward(dout, cache):
        calls.append("backward")
        return functional.relu_backward(dout, cache)

    layer = ReLU()
    x = rng.normal(size=(2, 3))
    ops.plug(relu_forward=relu_forward, relu_backward=relu_backward)
    layer.backward(layer.forward(x))
    assert calls == ["forward", "backward"]
    assert set(ops.plugged()) == {"relu_forward", "relu_backward"}
    ops.unplug("relu_forward")                 # its backward goes with it
    layer.backward(layer.forward(x))
    assert calls == ["forward", "backward"] and ops.plugged() == {}


def test_plug_as_a_with_block_restores_what_was_there(rng):
    ops.plug(naive)                            # conv and pooling: the loops
    with ops.plug(functional):
        assert ops.conv2d_forward is functional.conv2d_forward
        assert ops.relu_forward is functional.relu_forward
    assert ops.conv2d_forward is naive.conv2d_forward
    assert ops.relu_forward is fast.relu_forward
    assert set(ops.plugged()) == {"conv2d_forward", "conv2d_backward",
                                  "maxpool2d_forward", "maxpool2d_backward"}


@pytest.mark.parametrize("implementation", [functional, naive], ids=["functional", "naive"])
def test_a_network_trains_the_same_on_any_implementation(rng, implementation):
    net = Sequential(Conv2d(1, 2, 3, rng=rng, dtype=np.float64), ReLU(), MaxPool2d(2))
    x = rng.normal(size=(3, 1, 8, 8))
    out = net.forward(x)
    dout = rng.normal(size=out.shape)
    net.backward(dout)
    grads = [grad.copy() for _, _, grad in net.parameters()]
    with ops.plug(implementation):
        np.testing.assert_allclose(net.forward(x), out, rtol=0, atol=1e-12)
        net.backward(dout)
    for (_, _, grad), ref in zip(net.parameters(), grads):
        np.testing.assert_allclose(grad, ref, rtol=0, atol=1e-12)


def test_the_reference_network_steps_the_same_on_the_derived_operations(rng):
    x = rng.random((4, 1, 24, 24)).astype(np.float32)
    y = rng.integers(0, 10, size=4)
    net = seed_net(rng=np.random.default_rng(0))
    loss = forward_backward(net, x, y).loss
    grads = [grad.copy() for _, _, grad in net.parameters()]
    with ops.plug(functional):
        assert forward_backward(net, x, y).loss == pytest.approx(loss, rel=1e-5)
    for (_, _, grad), ref in zip(net.parameters(), grads):
        np.testing.assert_allclose(grad, ref, rtol=1e-4, atol=1e-6)


def test_plug_refuses_what_it_cannot_use():
    with pytest.raises(ValueError, match="no operation 'conv_forward'"):
        ops.plug(conv_forward=functional.conv2d_forward, conv_backward=functional.conv2d_backward)
    with pytest.raises(ValueError, match="plug conv2d_forward and conv2d_backward together"):
        ops.plug(conv2d_forward=functional.conv2d_forward)
    with pytest.raises(ValueError, match="must be a function"):
        ops.plug(relu_forward=1, relu_backward=functional.relu_backward)
    with pytest.raises(ValueError, match="defines none of the operations"):
        ops.plug(np)
    assert ops.plugged() == {}                 # a refused plug changes nothing


def test_worker_processes_refuse_a_plugged_table():
    from cnnlib.parallel import DataParallel

    net = seed_net(rng=np.random.default_rng(0))
    with ops.plug(functional):
        with pytest.raises(ValueError, match="plugged in here; train with workers=1"):
            DataParallel(net, workers=2)
