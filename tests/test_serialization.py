"""Saving and loading networks: round trips, the header, and every kind of bad file."""

import json
import re
import struct
import tracemalloc
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


# ------------------------------------------------------- hostile files: sizes, bombs, nonsense
#
# Each file here is built by hand, small, so that without the checks the bug shows as an
# attempted huge allocation (caught by tracemalloc, or numpy's MemoryError) or a huge build
# (caught by a Linear that refuses to be built), never as gigabytes really used.

def _arrays_of(path):
    with np.load(path) as archive:
        return {name: archive[name] for name in archive.files}


def _header_bytes(header):
    return np.frombuffer(json.dumps(header).encode(), dtype=np.uint8)


def _npy(shape, descr="<f4", payload=b""):
    """A hand-made .npy: a version 1.0 header declaring ``shape`` and ``descr``, then
    ``payload`` (however short)."""
    text = repr({"descr": descr, "fortran_order": False, "shape": tuple(shape)}).encode()
    text += b" " * (-(len(text) + 11) % 64) + b"\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(text)) + text + payload


def _write_npz(path, arrays, raw=None):
    """An .npz of ``arrays`` (name -> array) plus ``raw`` members (name -> .npy bytes)."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, array in arrays.items():
            archive.writestr(f"{name}.npy", _npy(array.shape, array.dtype.str, array.tobytes()))
        for name, data in (raw or {}).items():
            archive.writestr(f"{name}.npy", data)
    return path


def _claim_unpacked_size(path, member, size):
    """Make the zip directory say ``member`` unpacks to ``size`` bytes, as a zip bomb's does."""
    data = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as archive:
        struct.pack_into("<I", data, archive.getinfo(member).header_offset + 22, size)
    at = data.find(b"PK\x01\x02")
    while at >= 0:  # the central directory: one entry per member
        name_length = struct.unpack_from("<H", data, at + 28)[0]
        if data[at + 46:at + 46 + name_length] == member.encode():
            struct.pack_into("<I", data, at + 24, size)
        at = data.find(b"PK\x01\x02", at + 46)
    path.write_bytes(bytes(data))


def _refused_cheaply(load, path, *words):
    """``load(path)`` raises ModelFileError naming path and words, having allocated little."""
    tracemalloc.start()
    try:
        _expect_model_file_error(load, path, *words)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 50e6, f"{peak / 1e6:.0f} MB allocated before refusing {path.name}"


class _Unbuildable:
    """Stands in for Linear: a file must be refused before any layer is built."""

    def __init__(self, *args, **kwargs):
        raise AssertionError("a layer was built before the file's sizes were checked")


def test_an_npy_declaring_a_huge_shape_is_refused_before_allocating(net, tmp_path):
    # A small file whose weights claim 10**12 numbers (3.64 TiB), followed by the 7,200 bytes
    # their real shape takes: it was a raw MemoryError.
    arrays = _arrays_of(serialization.save_model(net, tmp_path / "net.npz"))
    del arrays["param/7.W"]
    huge = _write_npz(tmp_path / "huge.npz", arrays,
                      {"param/7.W": _npy((10**12,), payload=bytes(7200))})
    assert huge.stat().st_size < 30_000
    for load in (serialization.load_model, serialization.read_header):
        _refused_cheaply(load, huge, "7.W", "(1000000000000,)", "shape (10, 180)")
    header = arrays.pop("header")
    big_header = _write_npz(tmp_path / "big-header.npz", arrays,
                            {"header": _npy((10**12,), "|u1", header.tobytes())})
    _refused_cheaply(serialization.load_model, big_header, "the header", "1,048,576 bytes")


def test_a_header_declaring_an_enormous_layer_is_refused_before_building(tmp_path, monkeypatch):
    # A 1.4 kB file declaring Linear(30000, 30000): it took 72 s and 14 GB to be refused.
    net = Sequential(Flatten(), Linear(3, 2, rng=np.random.default_rng(0)))
    arrays = _arrays_of(serialization.save_model(net, tmp_path / "small.npz"))
    header = json.loads(arrays["header"].tobytes())
    header["architecture"][1].update(in_features=30000, out_features=30000)
    header["params"] = {}  # and no weights stored: nothing to compare before building
    arrays["header"] = _header_bytes(header)
    del arrays["param/1.W"], arrays["param/1.b"]
    bomb = _write_npz(tmp_path / "bomb.npz", arrays)
    assert bomb.stat().st_size < 2000
    document = json.loads(serialization.export_json(net, tmp_path / "small.json").read_text())
    monkeypatch.setitem(serialization.LAYER_TYPES, "Linear",
                        (_Unbuildable, serialization.LAYER_TYPES["Linear"][1]))
    _refused_cheaply(serialization.load_model, bomb, "900,030,000 parameters", "10,000,000")
    document["architecture"][1] = {"type": "Linear", "in_features": 30000,
                                   "out_features": 30000}
    (tmp_path / "bomb.json").write_text(json.dumps(document))
    _refused_cheaply(serialization.import_json, tmp_path / "bomb.json", "900,030,000 parameters")
    with pytest.raises(ValueError, match="900,030,000 parameters"):
        serialization.from_architecture(header["architecture"], {})


def test_a_member_that_would_unpack_to_a_gigabyte_is_refused_unread(net, tmp_path):
    # The zip directory's sizes are checked before a byte is unpacked: a member that claims to
    # unpack to 1 GB (as a 1 MB member of zeros does) is refused, not read whole.
    arrays = _arrays_of(serialization.save_model(net, tmp_path / "net.npz"))
    del arrays["param/7.W"]
    bomb = _write_npz(tmp_path / "bomb.npz", arrays,
                      {"param/7.W": _npy((250_000_000,), payload=bytes(1 << 20))})
    _claim_unpacked_size(bomb, "param/7.W.npy", 10**9 + 128)
    _refused_cheaply(serialization.load_model, bomb, "7.W", "1,000,000,128 bytes")
    header = arrays.pop("header")
    bomb = _write_npz(tmp_path / "header-bomb.npz", {**arrays, "param/7.W": net[7].params["W"]},
                      {"header": _npy((10**9,), "|u1", header.tobytes())})
    _claim_unpacked_size(bomb, "header.npy", 10**9 + 128)
    _refused_cheaply(serialization.load_model, bomb, "the header", "1,000,000,128 bytes")


def test_a_network_beyond_the_limits_is_not_saved(net, tmp_path, monkeypatch):
    with pytest.raises(ValueError, match="more than the 1,048,576 a model file may hold"):
        serialization.save_model(net, tmp_path / "x.npz", notes="x" * (1 << 20))
    monkeypatch.setattr(serialization, "MAX_JSON_BYTES", 10_000)
    with pytest.raises(ValueError, match="save it with save_model"):
        serialization.export_json(net, tmp_path / "x.json")
    monkeypatch.setattr(serialization, "MAX_PARAMETERS", 1000)
    for write in (serialization.save_model, serialization.export_json):
        with pytest.raises(ValueError, match="7,090 parameters, more than the 1,000"):
            write(net, tmp_path / "x.npz")
    assert list(tmp_path.iterdir()) == []


def test_format_version_true_is_not_version_1(net, tmp_path):
    arrays = _arrays_of(serialization.save_model(net, tmp_path / "net.npz"))
    header = json.loads(arrays["header"].tobytes())
    header["format_version"] = True  # True == 1 in Python
    arrays["header"] = _header_bytes(header)
    np.savez(tmp_path / "bool.npz", **arrays)
    _expect_model_file_error(serialization.load_model, tmp_path / "bool.npz",
                             "format version True", "re-save")
    document = json.loads(serialization.export_json(net, tmp_path / "net.json").read_text())
    document["format_version"] = True
    (tmp_path / "bool.json").write_text(json.dumps(document))
    _expect_model_file_error(serialization.import_json, tmp_path / "bool.json",
                             "format version True")


def test_booleans_in_the_architecture_are_not_numbers(net, tmp_path):
    document = json.loads(serialization.export_json(net, tmp_path / "net.json").read_text())
    document["architecture"][0]["stride"] = True
    (tmp_path / "bool.json").write_text(json.dumps(document))
    _expect_model_file_error(serialization.import_json, tmp_path / "bool.json", "stride", "True")


def test_absurd_weights_are_neither_loaded_nor_saved(net, tmp_path, images):
    # A bias of 3e38 made every input read "3" at 100%.
    arrays = _arrays_of(serialization.save_model(net, tmp_path / "net.npz"))
    arrays["param/7.b"] = np.where(np.arange(10) == 3, 3e38, 0).astype(np.float32)
    np.savez(tmp_path / "absurd.npz", **arrays)
    _expect_model_file_error(serialization.load_model, tmp_path / "absurd.npz",
                             "7.b", "3e+38", "1e+06")
    document = json.loads(serialization.export_json(net, tmp_path / "net.json").read_text())
    document["architecture"][7]["b"][3] = 3e38
    (tmp_path / "absurd.json").write_text(json.dumps(document))
    _expect_model_file_error(serialization.import_json, tmp_path / "absurd.json", "7.b", "3e+38")
    net[7].params["b"][3] = 3e38
    for write in (serialization.save_model, serialization.export_json):
        with pytest.raises(ValueError, match=r"7\.b holds 3e\+38, beyond the \+-1e\+06"):
            write(net, tmp_path / "x.npz")


@pytest.mark.parametrize("value, words", [("0.5", ["'0.5'", "str"]), (True, ["True", "bool"]),
                                          (None, ["None", "NoneType"])])
def test_json_weights_must_be_numbers(net, tmp_path, value, words):
    document = json.loads(serialization.export_json(net, tmp_path / "net.json").read_text())
    document["architecture"][7]["b"] = [value] * 10
    (tmp_path / "odd.json").write_text(json.dumps(document))
    _expect_model_file_error(serialization.import_json, tmp_path / "odd.json", "7.b", *words)


def test_malformed_buffers_and_deep_nesting_are_model_file_errors(tmp_path):
    net = Sequential(Conv2d(1, 2, 3, rng=np.random.default_rng(0)), BatchNorm2d(2))
    document = json.loads(serialization.export_json(net, tmp_path / "net.json").read_text())
    document["architecture"][1]["buffers"] = [1, 2]
    (tmp_path / "buffers.json").write_text(json.dumps(document))
    _expect_model_file_error(serialization.import_json, tmp_path / "buffers.json",
                             "'buffers' is list")
    arrays = _arrays_of(serialization.save_model(net, tmp_path / "net.npz"))
    header = json.loads(arrays["header"].tobytes())
    header["buffers"] = [1, 2]
    arrays["header"] = _header_bytes(header)
    np.savez(tmp_path / "buffers.npz", **arrays)
    _expect_model_file_error(serialization.load_model, tmp_path / "buffers.npz", "'buffers' dict")
    (tmp_path / "deep.json").write_text("[" * 100_000 + "]" * 100_000)
    _expect_model_file_error(serialization.import_json, tmp_path / "deep.json", "too deeply")
    arrays["header"] = np.frombuffer(b"[" * 100_000 + b"]" * 100_000, dtype=np.uint8)
    np.savez(tmp_path / "deep.npz", **arrays)
    _expect_model_file_error(serialization.load_model, tmp_path / "deep.npz", "not valid JSON")


def test_nan_in_info_is_written_as_null_so_the_files_are_valid_json(net, tmp_path):
    def strict(text):  # JSON as the standard has it: no NaN, no Infinity
        return json.loads(text, parse_constant=lambda word: pytest.fail(f"{word} in the file"))

    info = {"loss": float("nan"), "history": np.array([1.0, np.inf, -np.inf]), "lr": 0.01}
    expected = {"loss": None, "history": [1.0, None, None], "lr": 0.01}
    path = serialization.export_json(net, tmp_path / "net.json", **info)
    assert strict(path.read_text())["info"] == expected
    assert np.array_equal(serialization.import_json(path)[7].params["W"], net[7].params["W"])
    path = serialization.save_model(net, tmp_path / "net.npz", **info)
    with np.load(path) as archive:
        strict(archive["header"].tobytes().decode())
    assert serialization.read_header(path)["info"] == expected


def test_a_float64_network_loads_faithfully_or_as_float32(tmp_path, images):
    rng = np.random.default_rng(4)
    net = Sequential(Conv2d(1, 4, 5, rng=rng, dtype=np.float64), ReLU(), MaxPool2d(2),
                     Flatten(), Linear(400, 10, rng=rng, dtype=np.float64))
    path = serialization.save_model(net, tmp_path / "f64.npz")
    assert serialization.load_model(path)[0].dtype == np.float64
    as32 = serialization.load_model(path, dtype=np.float32)
    assert [layer.dtype for layer in as32 if hasattr(layer, "dtype")] == [np.float32] * 2
    assert np.allclose(as32.predict_proba(images), net.predict_proba(images.astype(np.float64)),
                       atol=1e-5)


@pytest.mark.slow
def test_evaluate_takes_a_float64_model(tmp_path, capsys, mnist):
    # It said the network "does not take 24x24 MNIST crops": it took float64 ones only.
    from cnnlib.__main__ import main

    rng = np.random.default_rng(4)
    net = Sequential(Conv2d(1, 4, 5, rng=rng, dtype=np.float64), ReLU(), MaxPool2d(2),
                     Flatten(), Linear(400, 10, rng=rng, dtype=np.float64))
    path = serialization.save_model(net, tmp_path / "f64.npz")
    assert main(["evaluate", str(path), "--test-size", "20", "--quiet"]) == 0
    assert "test accuracy: " in capsys.readouterr().out
