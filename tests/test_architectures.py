"""The architectures: the registry, and the deeper network's shapes, an end-to-end gradient check
(float64), train/eval behaviour of a saved and loaded network, the CLI's ``--model deep``, and the
shipped weights (slow)."""

import numpy as np
import pytest

from cnnlib import architectures, serialization
from cnnlib.__main__ import main
from cnnlib.architectures import deep_net
from cnnlib.batchnorm import BatchNorm2d
from cnnlib.dropout import Dropout
from cnnlib.gradcheck import numerical_gradient_array, rel_error
from cnnlib.losses import softmax_cross_entropy
from cnnlib.paths import shipped_model

SHIPPED = shipped_model("deep-net.npz")


def test_registry_builds_the_seed_net_and_rejects_unknown_names():
    net = architectures.build_model("seed", rng=np.random.default_rng(0))
    assert net.num_parameters() == 7090
    assert architectures.MODELS["seed"] is architectures.seed_net
    with pytest.raises(ValueError, match="unknown model 'nope'.*seed"):
        architectures.build_model("nope")


def test_shapes_and_size(rng):
    net = deep_net(rng)
    assert net.num_parameters() == 104_650
    assert sum(isinstance(layer, BatchNorm2d) for layer in net) == 3
    assert sum(isinstance(layer, Dropout) for layer in net) == 1
    x = rng.random((3, 1, 24, 24), dtype=np.float32)
    scores = net.forward(x)
    assert scores.shape == (3, 10) and scores.dtype == np.float32
    assert net.backward(np.ones_like(scores)).shape == x.shape
    assert architectures.build_model("deep", rng=rng).num_parameters() == 104_650


def test_whole_network_gradients(rng):
    # Every parameter's gradient, through three batch norms and poolings, in float64. Dropout is
    # off (its mask would change between the numerical evaluations). The biases of the convs
    # feed straight into batch norm, so their true gradient is 0.
    net = deep_net(rng, width=2, dropout=0.0, dtype=np.float64)
    x = rng.random((4, 1, 24, 24))
    y = np.array([0, 3, 5, 9])
    _, dscores = softmax_cross_entropy(net.forward(x), y)
    net.backward(dscores)

    def loss():
        return softmax_cross_entropy(net.forward(x), y)[0]

    for name, param, grad in net.parameters():
        num = numerical_gradient_array(loss, param, np.array(1.0))
        if name.endswith(".b") and name.split(".")[0] in {"0", "4", "8"}:
            assert np.abs(grad).max() < 1e-12 and np.abs(num).max() < 1e-8, name
        else:
            assert rel_error(grad, num) < 1e-7, name


def test_errors():
    with pytest.raises(ValueError, match="width"):
        deep_net(width=0)
    with pytest.raises(ValueError, match="dropout"):
        deep_net(dropout=1.0)
    net = deep_net(np.random.default_rng(0))
    with pytest.raises(ValueError, match="float32"):
        net.forward(np.zeros((2, 1, 24, 24)))


def trained_a_little(rng):
    net = deep_net(rng, width=4)
    for _ in range(3):
        x = rng.random((8, 1, 24, 24), dtype=np.float32)
        _, dscores = softmax_cross_entropy(net.forward(x), rng.integers(0, 10, 8))
        net.backward(dscores)
    return net


def test_saved_network_comes_back_in_eval_mode_with_its_statistics(rng, tmp_path):
    net = trained_a_little(rng)
    x = rng.random((5, 1, 24, 24), dtype=np.float32)
    expected = net.predict_proba(x)
    path = serialization.save_model(net, tmp_path / "deep.npz")
    loaded = serialization.load_model(path)
    assert loaded.training is False and all(not layer.training for layer in loaded)
    np.testing.assert_array_equal(loaded.predict_proba(x), expected)
    # forward() right after loading is already evaluation: one image scores as in its batch.
    # (float32 sums in another order differ in the last bits; batch statistics would differ by far more.)
    np.testing.assert_allclose(loaded.forward(x[:1]), loaded.forward(x)[:1], rtol=1e-4, atol=1e-5)
    # JSON twin too.
    twin = serialization.import_json(serialization.export_json(net, tmp_path / "deep.json"))
    assert twin.training is False
    np.testing.assert_allclose(twin.predict_proba(x), expected, rtol=1e-6)


def test_predicting_in_train_mode_by_mistake_keeps_the_statistics(rng, tmp_path):
    loaded = serialization.load_model(serialization.save_model(trained_a_little(rng), tmp_path / "deep.npz"))
    before = {i: {k: v.copy() for k, v in layer.buffers.items()}
              for i, layer in enumerate(loaded) if isinstance(layer, BatchNorm2d)}
    x = rng.random((5, 1, 24, 24), dtype=np.float32)
    good = loaded.predict_proba(x)
    loaded.train()                      # the mistake: scores from a training-mode forward
    loaded.forward(x)
    loaded.predict(x)                   # predict switches to eval and back by itself
    assert loaded.training is True
    for i, buffers in before.items():
        for key, value in buffers.items():
            np.testing.assert_array_equal(loaded[i].buffers[key], value)
    np.testing.assert_array_equal(loaded.eval().predict_proba(x), good)


@pytest.mark.slow
def test_cli_trains_the_deep_network(tmp_path, capsys):
    out = tmp_path / "deep.npz"
    code = main(["train", "--model", "deep", "--augment", "affine", "--epochs", "1",
                 "--batch-size", "32", "--lr", "0.02", "--train-size", "256", "--val-size", "200",
                 "--test-size", "200", "--validate-every", "256", "--quiet", "--out", str(out)])
    assert code == 0
    text = capsys.readouterr().out
    assert "test accuracy: 0." in text
    header = serialization.read_header(out)
    assert header["info"]["recipe"]["augment"] == "affine"
    assert "--augment affine" in header["info"]["command"]
    assert any(spec["type"] == "BatchNorm2d" for spec in header["architecture"])


@pytest.mark.slow
def test_shipped_network_scores_at_least_99_4_percent_on_test():
    from cnnlib.augment import CenterCrop
    from cnnlib.data import load_mnist, to_float

    net = serialization.load_model(SHIPPED)
    _, _, x_test, y_test = load_mnist(progress=False)
    accuracy = np.mean(net.predict(CenterCrop(24)(to_float(x_test))) == y_test)
    assert accuracy >= 0.994
    assert serialization.read_header(SHIPPED)["info"]["recipe"]["model"] == "deep"
