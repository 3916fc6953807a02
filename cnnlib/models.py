"""Network architectures used by the course, and saving / loading trained networks.

Architectures by name (the CLI's ``--model``)::

    net = build_model("seed", rng=np.random.default_rng(0))      # MODELS["seed"] is seed_net

One file format, ``.npz`` (a zip of numpy arrays, read with ``allow_pickle=False``): the weights as
arrays "param/<layer index>.<W|b>" plus "header", a UTF-8 JSON document (as uint8 bytes) with the
format name and version, the architecture layer by layer (enough to rebuild the Sequential:
kernel sizes, strides, paddings, pooling ties), the shapes and dtypes of the weights, the cnnlib
version, the date, and whatever ``**info`` the caller adds (hyper-parameters, history summary,
accuracies)::

    save_model(net, "data/models/seed-net.npz", test_accuracy=0.9891, recipe={...})
    net = load_model("data/models/seed-net.npz")       # a Sequential, identical predictions
    read_header("data/models/seed-net.npz")["info"]["test_accuracy"]

A human-readable JSON twin, like the original demo's "Download Network" / "Load Network from
JSON": ``export_json(net, path, **info)`` writes the same header with every layer's weights as
nested lists; ``import_json(path)`` rebuilds the network.

Writes are atomic (a temporary file in the destination folder, then ``os.replace``), so a failed
save never leaves a half-written file and never harms a file already there. A truncated,
corrupted or foreign file, or one of an unknown format version, raises ``ModelFileError`` (a
ValueError) naming the path, what is wrong and what to do.

What it trades away: only the layer types of ``cnnlib.layers`` in a ``Sequential``; no optimizer
state (a loaded network is for predicting or for training afresh, not for resuming a run).
"""

from __future__ import annotations

import datetime
import json
import os
import tempfile
import zipfile
import zlib
from pathlib import Path

import numpy as np

from . import __version__
from .layers import Conv2d, Flatten, Linear, MaxPool2d, ReLU, Tanh
from .network import Sequential

__all__ = [
    "seed_net", "MODELS", "build_model",
    "ModelFileError", "save_model", "load_model", "read_header", "export_json", "import_json",
    "architecture", "from_architecture", "FORMAT", "JSON_FORMAT", "FORMAT_VERSION",
]


# ------------------------------------------------------------------------------- architectures

def seed_net(rng=None):
    """The original demo's network, for 24x24 grey-level digits: 7,090 parameters.

    (N, 1, 24, 24) -> conv 10@5x5 -> ReLU -> max-pool 2 -> (N, 10, 10, 10)
                   -> conv 20@5x5 -> ReLU -> max-pool 2 -> (N, 20, 3, 3)
                   -> flatten (N, 180) -> linear -> (N, 10) class scores (softmax in the loss).
    """
    return Sequential(
        Conv2d(1, 10, 5, rng=rng), ReLU(), MaxPool2d(2),
        Conv2d(10, 20, 5, rng=rng), ReLU(), MaxPool2d(2),
        Flatten(), Linear(180, 10, rng=rng),
    )


# Architectures by name: name -> constructor(rng=None) -> Sequential. Other issues add theirs.
MODELS = {"seed": seed_net}


def build_model(name, rng=None):
    """A freshly initialized network from ``MODELS`` by name (weights drawn from ``rng``)."""
    try:
        constructor = MODELS[name]
    except KeyError:
        raise ValueError(f"unknown model {name!r}; choose one of: {', '.join(MODELS)}") from None
    return constructor(rng=rng)


# ------------------------------------------------------------------ architecture <-> Sequential

FORMAT = "cnnlib-model"
JSON_FORMAT = "cnnlib-network-json"
FORMAT_VERSION = 1


class ModelFileError(ValueError):
    """A model file is truncated, corrupted, foreign, or of an unsupported format version."""


def _layer_spec(layer):
    """One layer as a JSON-friendly dict: its type and constructor arguments."""
    if isinstance(layer, Conv2d):
        return {"type": "Conv2d", "in_channels": layer.in_channels,
                "out_channels": layer.out_channels, "kernel_size": layer.kernel_size,
                "stride": layer.stride, "padding": layer.padding, "dtype": layer.dtype.name}
    if isinstance(layer, Linear):
        return {"type": "Linear", "in_features": layer.in_features,
                "out_features": layer.out_features, "dtype": layer.dtype.name}
    if isinstance(layer, MaxPool2d):
        return {"type": "MaxPool2d", "kernel_size": layer.kernel_size, "stride": layer.stride,
                "ties": layer.ties}
    for cls in (ReLU, Tanh, Flatten):
        if type(layer) is cls:
            return {"type": cls.__name__}
    raise ValueError(f"cannot save a {type(layer).__name__} layer; the model format knows "
                     "Conv2d, Linear, MaxPool2d, ReLU, Tanh and Flatten")


def architecture(net):
    """The architecture of a Sequential as a list of layer dicts (type + constructor arguments)."""
    if not isinstance(net, Sequential):
        raise ValueError(f"expected a cnnlib Sequential; got {type(net).__name__}")
    return [_layer_spec(layer) for layer in net]


def _build_layer(spec):
    kind = spec["type"]
    if kind == "Conv2d":
        return Conv2d(spec["in_channels"], spec["out_channels"], spec["kernel_size"],
                      spec["stride"], spec["padding"], dtype=spec.get("dtype", "float32"))
    if kind == "Linear":
        return Linear(spec["in_features"], spec["out_features"],
                      dtype=spec.get("dtype", "float32"))
    if kind == "MaxPool2d":
        return MaxPool2d(spec["kernel_size"], spec["stride"], spec.get("ties", "split"))
    if kind in ("ReLU", "Tanh", "Flatten"):
        return {"ReLU": ReLU, "Tanh": Tanh, "Flatten": Flatten}[kind]()
    raise ValueError(f"unknown layer type {kind!r}")


def from_architecture(specs, params):
    """Rebuild a Sequential from ``architecture(net)`` and its weights.

    params: {"<layer index>.<W|b>": array} with exactly the shapes the layers need. Raises
    ValueError (or KeyError/TypeError for a malformed spec) naming what does not fit.
    """
    if not isinstance(specs, list) or not specs:
        raise ValueError("the architecture must be a non-empty list of layers")
    layers = [_build_layer(spec) for spec in specs]
    net = Sequential(*layers)
    expected = {name for name, _, _ in net.parameters()}
    if set(params) != expected:
        raise ValueError(f"the weights do not match the architecture: expected "
                         f"{sorted(expected)}, found {sorted(params)}")
    for name, param, _ in net.parameters():
        value = np.asarray(params[name])
        if value.shape != param.shape:
            raise ValueError(f"weight {name} has shape {value.shape}; the architecture needs "
                             f"{param.shape}")
        param[...] = value  # in place: the layer's grads and an optimizer's state stay paired
    return net


# -------------------------------------------------------------------------------- the header

def _json_default(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def _header(net, fmt, info):
    header = {
        "format": fmt,
        "format_version": FORMAT_VERSION,
        "cnnlib_version": __version__,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "architecture": architecture(net),
        "params": {name: {"shape": list(param.shape), "dtype": param.dtype.name}
                   for name, param, _ in net.parameters()},
        "num_parameters": int(net.num_parameters()),
        "info": info,
    }
    try:
        json.dumps(header, default=_json_default, allow_nan=True)
    except TypeError as error:
        raise ValueError(f"model info must be JSON-friendly (numbers, strings, lists, dicts): "
                         f"{error}") from None
    return header


def _atomic_write(path, write):
    """Call ``write(file object)`` on a temporary file beside ``path``, then rename it onto path.

    On any failure the temporary file is removed and an existing file at ``path`` is untouched.
    """
    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    folder.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=folder, prefix=path.name + ".", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp_name, 0o644)  # mkstemp makes files private; model files are for sharing
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise


def _check_header(header, path, fmt):
    """Raise ModelFileError unless ``header`` is a dict of format ``fmt`` that we can read."""
    if not isinstance(header, dict) or header.get("format") not in (FORMAT, JSON_FORMAT):
        raise ModelFileError(f"{path} is not a cnnlib model file (its header does not say "
                             f"format {fmt!r}); give a file written by cnnlib's save_model or "
                             "export_json")
    if header["format"] != fmt:
        other = "load_model" if header["format"] == FORMAT else "import_json"
        raise ModelFileError(f"{path} is a {header['format']!r} file, not {fmt!r}; read it "
                             f"with cnnlib.models.{other}")
    version = header.get("format_version")
    if version != FORMAT_VERSION:
        hint = ("it was written by a newer cnnlib; upgrade cnnlib"
                if isinstance(version, int) and version > FORMAT_VERSION
                else "re-save it with this cnnlib")
        raise ModelFileError(f"{path} has model format version {version!r}; this cnnlib "
                             f"(version {__version__}) reads version {FORMAT_VERSION} only: "
                             f"{hint}")
    for key in ("architecture", "params", "info"):
        if key not in header:
            raise ModelFileError(f"{path}: the header has no {key!r}; the file is damaged — "
                                 "save or export the network again")


def _missing(path):
    return FileNotFoundError(f"no model file at {path}; check the path, or train one with "
                             f"`python -m cnnlib train --out {path}`")


# ---------------------------------------------------------------------------------- .npz files

def save_model(net, path, **info):
    """Save ``net`` (a Sequential) to ``path`` (.npz), atomically. Returns the Path.

    info: anything JSON-friendly to keep in the header's "info" (hyper-parameters, history
    summary, accuracies, ...); numpy scalars and arrays are converted.
    """
    header = _header(net, FORMAT, info)
    header_bytes = json.dumps(header, default=_json_default, indent=1).encode("utf-8")
    arrays = {"header": np.frombuffer(header_bytes, dtype=np.uint8)}
    arrays.update({f"param/{name}": param for name, param, _ in net.parameters()})
    _atomic_write(path, lambda f: np.savez_compressed(f, **arrays))
    return Path(path)


def _read_npz(path):
    """(header dict, {param name: array}) of a model file; ModelFileError if it is not one."""
    path = Path(path)
    if not path.is_file():
        raise _missing(path)
    with open(path, "rb") as f:
        start = f.read(4)
    if start != b"PK\x03\x04":  # every .npz is a zip file, and zip files start so
        hint = (" (it looks like JSON: read it with cnnlib.models.import_json)"
                if start[:1] in (b"{", b"[") else "")
        raise ModelFileError(f"{path} is not a cnnlib model file: not an .npz (zip) file"
                             f"{hint}; give a file written by cnnlib.models.save_model")
    try:
        with np.load(path, allow_pickle=False) as archive:
            if "header" not in archive.files:
                raise ModelFileError(
                    f"{path} is a numpy .npz file but not a cnnlib model (it has no 'header'; "
                    f"it holds {', '.join(archive.files[:5]) or 'nothing'}); give a file "
                    "written by cnnlib.models.save_model")
            raw = archive["header"]
            try:
                header = json.loads(raw.tobytes().decode("utf-8"))
            except (UnicodeDecodeError, json.JSONDecodeError) as error:
                raise ModelFileError(f"{path}: its header is not valid JSON ({error}); the file "
                                     "is damaged or foreign — save the network again") from None
            _check_header(header, path, FORMAT)
            params = {name[len("param/"):]: archive[name]
                      for name in archive.files if name.startswith("param/")}
    except ModelFileError:
        raise
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError, KeyError) as error:
        # np.load raises these for a file that is not an npz, or whose zip is truncated or fails
        # its CRC check (a flipped byte).
        raise ModelFileError(f"{path} cannot be read as a cnnlib model file "
                             f"({type(error).__name__}: {error}); it is truncated, corrupted or "
                             "not a model — save or download it again") from None
    for name, meta in header["params"].items():
        if name not in params or list(params[name].shape) != meta.get("shape"):
            raise ModelFileError(f"{path}: weight {name} is missing or has the wrong shape; the "
                                 "file is damaged — save the network again")
    return header, params


def read_header(path):
    """The header of a model file (.npz) as a dict: format, format_version, cnnlib_version,
    created, architecture, params (shapes, dtypes), num_parameters, info."""
    return _read_npz(path)[0]


def load_model(path):
    """The Sequential saved in ``path`` by ``save_model``: same layers, same weights, so the same
    predictions. Raises FileNotFoundError (missing) or ModelFileError (anything else wrong)."""
    header, params = _read_npz(path)
    try:
        return from_architecture(header["architecture"], params)
    except (ValueError, KeyError, TypeError) as error:
        raise ModelFileError(f"{path}: the architecture in its header cannot be rebuilt "
                             f"({type(error).__name__}: {error}); the file is damaged or from "
                             "an incompatible cnnlib") from None


# --------------------------------------------------------------------------------- JSON files

def export_json(net, path, **info):
    """Write ``net`` as human-readable JSON, atomically: the header (as in ``save_model``) with
    each layer's weights "W" and "b" as nested lists inside its architecture entry.
    Returns the Path. float32 weights round-trip exactly (shortest repr of each value)."""
    header = _header(net, JSON_FORMAT, info)
    for spec, layer in zip(header["architecture"], net):
        for key, param in layer.params.items():
            spec[key] = param.astype(np.float64).tolist()
    text = json.dumps(header, default=_json_default, indent=1)
    _atomic_write(path, lambda f: f.write(text.encode("utf-8")))
    return Path(path)


def import_json(path):
    """The Sequential written by ``export_json``. Raises FileNotFoundError (missing) or
    ModelFileError (not JSON, foreign, wrong version, weights that do not fit)."""
    path = Path(path)
    if not path.is_file():
        raise _missing(path)
    try:
        header = json.loads(path.read_bytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ModelFileError(f"{path} is not valid JSON ({error}); it is truncated, corrupted or "
                             "not a network — export it again") from None
    _check_header(header, path, JSON_FORMAT)
    try:
        specs, params = [], {}
        for index, spec in enumerate(header["architecture"]):
            spec = dict(spec)
            dtype = spec.get("dtype", "float32")
            for key in ("W", "b"):
                if key in spec:
                    params[f"{index}.{key}"] = np.asarray(spec.pop(key), dtype=dtype)
            specs.append(spec)
        return from_architecture(specs, params)
    except (ValueError, KeyError, TypeError) as error:
        raise ModelFileError(f"{path}: the network in it cannot be rebuilt "
                             f"({type(error).__name__}: {error}); the file is damaged — export "
                             "it again") from None
