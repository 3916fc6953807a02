"""Saving and loading networks: round trips, the header, and every kind of bad file."""

import json
import re
import zipfile

import numpy as np
import pytest

from cnnlib import __version__, architectures, atomic, serialization
from cnnlib.batchnorm import BatchNorm2d
from cnnlib.layers import Conv2d, Flatten, Linear, MaxPool2d, ReLU, Tanh
from cnnlib.losses import softmax_cross_entropy
from cnnlib.network import Sequential
from cnnlib.paths import shipped_model

SHIPPED = shipped_model("seed-net.npz")


@pytest.fixture
def net():
    return architectures.seed_net(rng=np.random.default_rng(1))


@pytest.fixture
def images():
    return np.random.default_rng(2).random((64, 1, 24, 24), dtype=np.float32)


def test_save_load_round_trip_gives_identical_predictions(net, images, tmp_path):
    path = serialization.save_model(net, tmp_path / "net.npz", test_accuracy=np.float64(0.98),
                                    recipe={"lr": 0.01, "epochs": 2})
    loaded = serialization.load_model(path)
    assert np.array_equal(loaded.predict_proba(images), net.predict_proba(images))
    assert [repr(layer) for layer in loaded] == [repr(layer) for layer in net]
    for (name, param, _), (name2, param2, _) in zip(net.parameters(), loaded.parameters()):
        assert name == name2 and param.dtype == param2.dtype and np.array_equal(param, param2)


def test_header_describes_the_network_and_keeps_info(net, tmp_path):
    path = serialization.save_model(net, tmp_path / "net.npz", test_accuracy=0.9867,
                                    history={"steps": 5000}, note="hello")
    header = serialization.read_header(path)
    assert header["format"] == serialization.FORMAT
    assert header["format_version"] == serialization.FORMAT_VERSION
    assert header["cnnlib_version"] == __version__
    assert re.match(r"\d{4}-\d\d-\d\dT", header["created"])
    assert header["num_parameters"] == 7090
    assert header["info"] == {"test_accuracy": 0.9867, "history": {"steps": 5000}, "note": "hello"}
    assert [layer["type"] for layer in header["architecture"]] == [
        "Conv2d", "ReLU", "MaxPool2d", "Conv2d", "ReLU", "MaxPool2d", "Flatten", "Linear"]
    conv, pool = header["architecture"][0], header["architecture"][2]
    assert (conv["kernel_size"], conv["stride"], conv["padding"]) == (5, 1, 0)
    assert (pool["kernel_size"], pool["stride"], pool["ties"]) == (2, 2, "split")
    assert header["params"]["0.W"] == {"shape": [10, 1, 5, 5], "dtype": "float32"}


def test_round_trip_keeps_every_layer_option_and_buffers(images, tmp_path):
    rng = np.random.default_rng(3)
    net = Sequential(Conv2d(1, 3, 3, stride=2, padding=1, rng=rng), BatchNorm2d(3), Tanh(),
                     MaxPool2d(3, stride=1, ties="first"), Flatten(), Linear(300, 10, rng=rng))
    for _ in range(3):  # training steps move BatchNorm's running statistics off their start
        scores = net.forward(images[:16])
        net.backward(softmax_cross_entropy(scores, np.arange(16) % 10)[1])
    assert not np.allclose(net[1].buffers["running_mean"], 0)
    for save, load, name in [(serialization.save_model, serialization.load_model, "net.npz"),
                             (serialization.export_json, serialization.import_json, "net.json")]:
        loaded = load(save(net, tmp_path / name))
        assert [repr(layer) for layer in loaded] == [repr(layer) for layer in net]
        assert np.array_equal(loaded[1].buffers["running_var"], net[1].buffers["running_var"])
        assert np.array_equal(loaded.predict_proba(images), net.predict_proba(images))


def test_json_export_is_readable_and_round_trips(net, images, tmp_path):
    path = serialization.export_json(net, tmp_path / "net.json", lr=0.01)
    document = json.loads(path.read_text())
    assert document["format"] == serialization.JSON_FORMAT and document["info"] == {"lr": 0.01}
    first = document["architecture"][0]
    assert np.array(first["W"]).shape == (10, 1, 5, 5) and len(first["b"]) == 10
    loaded = serialization.import_json(path)
    assert np.array_equal(loaded.predict_proba(images), net.predict_proba(images))


def test_saving_an_unknown_layer_or_unjsonable_info_is_refused(net, tmp_path):
    class Strange(ReLU):
        pass

    with pytest.raises(ValueError, match="cannot save a Strange layer"):
        serialization.save_model(Sequential(Strange()), tmp_path / "x.npz")
    with pytest.raises(ValueError, match="JSON-friendly"):
        serialization.save_model(net, tmp_path / "x.npz", thing=object())
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------------------------- bad files

def _expect_model_file_error(load, path, *words):
    with pytest.raises(serialization.ModelFileError) as caught:
        load(path)
    message = str(caught.value)
    assert str(path) in message
    for word in words:
        assert word in message
    assert isinstance(caught.value, ValueError)


def test_truncated_file(net, tmp_path):
    path = serialization.save_model(net, tmp_path / "net.npz")
    data = path.read_bytes()
    for keep in (10, len(data) // 2, len(data) - 30):
        bad = tmp_path / f"cut{keep}.npz"
        bad.write_bytes(data[:keep])
        _expect_model_file_error(serialization.load_model, bad, "truncated")


def test_corrupted_file(net, tmp_path):
    path = serialization.save_model(net, tmp_path / "net.npz")
    data = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as archive:  # flip a byte inside the stored weights of conv 2
        info = archive.getinfo("param/3.W.npy")
    data[info.header_offset + 30 + len(info.filename) + info.compress_size // 2] ^= 0xFF
    bad = tmp_path / "flipped.npz"
    bad.write_bytes(bytes(data))
    _expect_model_file_error(serialization.load_model, bad, "corrupted")


def test_foreign_npz_and_non_npz(net, tmp_path):
    foreign = tmp_path / "foreign.npz"
    np.savez(foreign, weights=np.arange(3))
    _expect_model_file_error(serialization.load_model, foreign, "no 'header'", "weights")
    text = tmp_path / "notes.npz"
    text.write_text("hello")
    _expect_model_file_error(serialization.load_model, text, "not an .npz")
    as_json = serialization.export_json(net, tmp_path / "net.json")
    _expect_model_file_error(serialization.load_model, as_json, "import_json")
    odd_header = tmp_path / "odd.npz"
    np.savez(odd_header, header=np.frombuffer(b'{"format": "something-else"}', dtype=np.uint8))
    _expect_model_file_error(serialization.load_model, odd_header, "not a cnnlib model file")


def test_foreign_truncated_and_mismatched_json(net, tmp_path):
    foreign = tmp_path / "foreign.json"
    foreign.write_text(json.dumps({"layers": [{"layer_type": "conv"}]}))
    _expect_model_file_error(serialization.import_json, foreign, "not a cnnlib model file")
    path = serialization.export_json(net, tmp_path / "net.json")
    cut = tmp_path / "cut.json"
    cut.write_text(path.read_text()[:1000])
    _expect_model_file_error(serialization.import_json, cut, "not valid JSON")
    document = json.loads(path.read_text())
    document["architecture"][0]["W"] = [[1.0, 2.0]]
    wrong = tmp_path / "wrong.json"
    wrong.write_text(json.dumps(document))
    _expect_model_file_error(serialization.import_json, wrong, "0.W")
    npz = serialization.save_model(net, tmp_path / "net.npz")
    _expect_model_file_error(serialization.import_json, npz, "read it with cnnlib.serialization.load_model")


@pytest.mark.parametrize("version, advice", [(2, "newer cnnlib"), (0, "re-save")])
def test_other_format_versions(net, tmp_path, version, advice):
    path = serialization.save_model(net, tmp_path / "net.npz")
    with np.load(path) as archive:
        arrays = {name: archive[name] for name in archive.files}
    header = json.loads(arrays["header"].tobytes())
    header["format_version"] = version
    arrays["header"] = np.frombuffer(json.dumps(header).encode(), dtype=np.uint8)
    np.savez(tmp_path / "other.npz", **arrays)
    _expect_model_file_error(serialization.load_model, tmp_path / "other.npz",
                             f"format version {version}", advice)
    document = json.loads(serialization.export_json(net, tmp_path / "net.json").read_text())
    document["format_version"] = version
    (tmp_path / "other.json").write_text(json.dumps(document))
    _expect_model_file_error(serialization.import_json, tmp_path / "other.json", advice)


def test_weights_that_do_not_match_the_header(net, tmp_path):
    path = serialization.save_model(net, tmp_path / "net.npz")
    with np.load(path) as archive:
        arrays = {name: archive[name] for name in archive.files}
    arrays["param/7.W"] = arrays["param/7.W"][:5]
    np.savez(tmp_path / "shape.npz", **arrays)
    _expect_model_file_error(serialization.load_model, tmp_path / "shape.npz", "7.W", "wrong shape")


def test_missing_file_names_the_path(tmp_path):
    for load in (serialization.load_model, serialization.read_header, serialization.import_json):
        with pytest.raises(FileNotFoundError, match=re.escape(str(tmp_path / "none.npz"))):
            load(tmp_path / "none.npz")


def test_a_save_that_fails_midway_leaves_the_old_file_untouched(net, tmp_path, monkeypatch):
    path = serialization.save_model(net, tmp_path / "net.npz", version="old")
    before = path.read_bytes()

    def write_half_then_fail(file, **arrays):
        file.write(b"PK\x03\x04 half a zip")
        raise OSError("No space left on device (simulated)")

    monkeypatch.setattr(serialization.np, "savez_compressed", write_half_then_fail)
    other = architectures.seed_net(rng=np.random.default_rng(9))
    with pytest.raises(OSError, match="simulated"):
        serialization.save_model(other, path, version="new")
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["net.npz"]  # no temporary file left
    assert serialization.read_header(path)["info"] == {"version": "old"}


def test_an_export_that_fails_midway_leaves_the_old_file_untouched(net, tmp_path, monkeypatch):
    path = serialization.export_json(net, tmp_path / "net.json")
    before = path.read_bytes()

    def fail(*args, **kwargs):
        raise OSError("disk went away (simulated)")

    monkeypatch.setattr(atomic.os, "replace", fail)
    with pytest.raises(OSError, match="simulated"):
        serialization.export_json(architectures.seed_net(rng=np.random.default_rng(9)), path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["net.json"]


# ----------------------------------------------------------------------------- shipped network

@pytest.mark.slow
def test_shipped_network_scores_at_least_98_8_percent_on_test():
    from cnnlib import data, train

    net = serialization.load_model(SHIPPED)
    header = serialization.read_header(SHIPPED)
    assert header["info"]["recipe"]["model"] == "seed"
    assert net.num_parameters() == 7090
    _, _, x_test, y_test = data.load_mnist(progress=False)
    accuracy = train.evaluate(net, x_test, y_test)
    assert accuracy >= 0.988, f"shipped network scores {accuracy:.4f} on test"
    assert abs(accuracy - header["info"]["test_accuracy"]) < 0.001


def test_nan_weights_are_neither_saved_nor_loaded(net, tmp_path):
    path = serialization.save_model(net, tmp_path / "net.npz")
    before = path.read_bytes()
    broken = architectures.seed_net(rng=np.random.default_rng(1))
    broken[-1].params["W"][0, 0] = np.nan                     # as a diverged run leaves it
    for write in (serialization.save_model, serialization.export_json):
        with pytest.raises(ValueError, match="7.W holds NaN or inf"):
            write(broken, path)
    assert path.read_bytes() == before                        # the old file is untouched
    with np.load(path) as archive:
        arrays = {name: archive[name] for name in archive.files}
    arrays["param/7.W"] = arrays["param/7.W"].copy()
    arrays["param/7.W"][0, 0] = np.inf
    np.savez(tmp_path / "inf.npz", **arrays)
    _expect_model_file_error(serialization.load_model, tmp_path / "inf.npz", "7.W", "not finite")


def test_a_damaged_header_is_a_model_file_error(net, tmp_path):
    path = serialization.save_model(net, tmp_path / "net.npz")
    with np.load(path) as archive:
        arrays = {name: archive[name] for name in archive.files}
    header = json.loads(arrays["header"].tobytes())
    for damage, words in ((lambda h: h.update(params=[]), "'params' dict"),
                          (lambda h: h["params"].update({"7.W": 3}), "entry for 7.W")):
        damaged = json.loads(json.dumps(header))
        damage(damaged)
        arrays["header"] = np.frombuffer(json.dumps(damaged).encode(), dtype=np.uint8)
        np.savez(tmp_path / "damaged.npz", **arrays)
        _expect_model_file_error(serialization.load_model, tmp_path / "damaged.npz", words)
