"""Saving and loading trained networks: the model-file format.

(The architectures themselves, ``seed_net``, ``deep_net`` and the registry ``build_model``, are in
``cnnlib.architectures``.)

One file format, ``.npz`` (a zip of numpy arrays, read with ``allow_pickle=False``): the weights as
arrays "param/<layer index>.<W|b>" (and "buffer/<layer index>.<key>" for state such as
BatchNorm2d's running statistics) plus "header", a UTF-8 JSON document (as uint8 bytes) with the
format name and version, the architecture layer by layer (enough to rebuild the Sequential:
kernel sizes, strides, paddings, pooling ties), the shapes and dtypes of the weights, the cnnlib
version, the date, and whatever ``**info`` the caller adds (hyper-parameters, history summary,
accuracies)::

    save_model(net, "data/models/my-net.npz", test_accuracy=0.9891, recipe={...})
    net = load_model("data/models/my-net.npz")         # a Sequential, identical predictions
    read_header("data/models/my-net.npz")["info"]["test_accuracy"]

A human-readable JSON twin, like the original demo's "Download Network" / "Load Network from
JSON": ``export_json(net, path, **info)`` writes the same header with every layer's weights as
nested lists; ``import_json(path)`` rebuilds the network.

Writes are atomic (``cnnlib.atomic.atomic_write``: a temporary file in the destination folder,
then ``os.replace``), so a failed
save never leaves a half-written file and never harms a file already there. A truncated,
corrupted or foreign file, or one of an unknown format version, raises ``ModelFileError`` (a
ValueError) naming the path, what is wrong and what to do.

What it trades away: only the layer types of ``cnnlib.layers`` in a ``Sequential``; no optimizer
state (a loaded network is for predicting or for training afresh, not for resuming a run).
"""

from __future__ import annotations

import datetime
import json
import zipfile
import zlib
from pathlib import Path

import numpy as np

from . import __version__
from .atomic import atomic_write
from .batchnorm import BatchNorm2d
from .dropout import Dropout
from .layers import Conv2d, Flatten, Linear, MaxPool2d, ReLU, Tanh
from .network import Sequential

__all__ = [
    "ModelFileError", "save_model", "load_model", "read_header", "export_json", "import_json",
    "architecture", "from_architecture", "buffers", "register_layer", "LAYER_TYPES", "FORMAT",
    "JSON_FORMAT", "FORMAT_VERSION",
]


# ------------------------------------------------------------------ architecture <-> Sequential

FORMAT = "cnnlib-model"
JSON_FORMAT = "cnnlib-network-json"
FORMAT_VERSION = 1


class ModelFileError(ValueError):
    """A model file is truncated, corrupted, foreign, or of an unsupported format version."""


# Layer type name -> (class, constructor arguments read off a layer). A layer is rebuilt as
# ``cls(**arguments)``; its params and buffers (e.g. BatchNorm's running statistics) are then
# filled from the file. ``register_layer`` adds a type.
LAYER_TYPES = {}


def register_layer(cls, arguments=lambda layer: {}):
    """Make layers of ``cls`` savable: ``arguments(layer)`` returns the keyword arguments that
    rebuild it (JSON-friendly values) with ``cls(**arguments)``."""
    LAYER_TYPES[cls.__name__] = (cls, arguments)


register_layer(Conv2d, lambda layer: {
    "in_channels": layer.in_channels, "out_channels": layer.out_channels,
    "kernel_size": layer.kernel_size, "stride": layer.stride, "padding": layer.padding,
    "dtype": layer.dtype.name})
register_layer(Linear, lambda layer: {
    "in_features": layer.in_features, "out_features": layer.out_features,
    "dtype": layer.dtype.name})
register_layer(MaxPool2d, lambda layer: {
    "kernel_size": layer.kernel_size, "stride": layer.stride, "ties": layer.ties})
for _cls in (ReLU, Tanh, Flatten):
    register_layer(_cls)
register_layer(BatchNorm2d, lambda layer: {
    "num_features": layer.num_features, "eps": layer.eps, "momentum": layer.momentum,
    "dtype": layer.dtype.name})
register_layer(Dropout, lambda layer: {"p": layer.p})


def _layer_spec(layer):
    """One layer as a JSON-friendly dict: its type and constructor arguments."""
    entry = LAYER_TYPES.get(type(layer).__name__)
    if entry is None or type(layer) is not entry[0]:
        raise ValueError(f"cannot save a {type(layer).__name__} layer; the model format knows "
                         f"{', '.join(LAYER_TYPES)} (add others with register_layer)")
    return {"type": type(layer).__name__, **entry[1](layer)}


def architecture(net):
    """The architecture of a Sequential as a list of layer dicts (type + constructor arguments)."""
    if not isinstance(net, Sequential):
        raise ValueError(f"expected a cnnlib Sequential; got {type(net).__name__}")
    return [_layer_spec(layer) for layer in net]


def _build_layer(spec):
    kind = spec["type"]
    if kind not in LAYER_TYPES:
        raise ValueError(f"unknown layer type {kind!r} (this cnnlib knows "
                         f"{', '.join(LAYER_TYPES)})")
    return LAYER_TYPES[kind][0](**{key: value for key, value in spec.items() if key != "type"})


def buffers(net):
    """Every buffer of a Sequential (state that is not learned, e.g. BatchNorm2d's running
    statistics) as {"<layer index>.<key>": array}, the arrays themselves (not copies)."""
    return {f"{i}.{key}": value for i, layer in enumerate(net)
            for key, value in getattr(layer, "buffers", {}).items()}


_buffers_of = buffers  # for from_architecture, whose argument ``buffers`` hides the function


def _fill(what, arrays, targets):
    """Copy arrays into targets ({name: array}) in place, checking names and shapes."""
    if set(arrays) != set(targets):
        raise ValueError(f"the {what} do not match the architecture: expected "
                         f"{sorted(targets)}, found {sorted(arrays)}")
    for name, target in targets.items():
        value = np.asarray(arrays[name])
        if value.shape != target.shape:
            raise ValueError(f"{what[:-1]} {name} has shape {value.shape}; the architecture "
                             f"needs {target.shape}")
        target[...] = value  # in place: grads and any optimizer state stay paired with params


def from_architecture(specs, params, buffers=None):
    """Rebuild a Sequential from ``architecture(net)`` and its weights.

    params: {"<layer index>.<W|b>": array}; buffers: {"<layer index>.<key>": array} for layers
    with buffers (BatchNorm2d's running statistics), exactly the names and shapes the layers
    need. Raises ValueError (or KeyError/TypeError for a malformed spec) naming what does not fit.
    """
    if not isinstance(specs, list) or not specs:
        raise ValueError("the architecture must be a non-empty list of layers")
    net = Sequential(*[_build_layer(spec) for spec in specs])
    _fill("weights", params, {name: param for name, param, _ in net.parameters()})
    _fill("buffers", buffers or {}, _buffers_of(net))
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


def _check_finite(net, what):
    """A network whose weights hold NaN or inf (a diverged run) is not worth a file."""
    for name, param, _ in net.parameters():
        if not np.isfinite(param).all():
            raise ValueError(f"{what}: parameter {name} holds NaN or inf (training diverged); "
                             "this network is not worth keeping — train again with a smaller "
                             "learning rate")


def _header(net, fmt, info):
    header = {
        "format": fmt,
        "format_version": FORMAT_VERSION,
        "cnnlib_version": __version__,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "architecture": architecture(net),
        "params": {name: {"shape": list(param.shape), "dtype": param.dtype.name}
                   for name, param, _ in net.parameters()},
        "buffers": {name: {"shape": list(value.shape), "dtype": value.dtype.name}
                    for name, value in buffers(net).items()},
        "num_parameters": int(net.num_parameters()),
        "info": info,
    }
    try:
        json.dumps(header, default=_json_default, allow_nan=True)
    except TypeError as error:
        raise ValueError(f"model info must be JSON-friendly (numbers, strings, lists, dicts): "
                         f"{error}") from None
    return header


def _check_header(header, path, fmt):
    """Raise ModelFileError unless ``header`` is a dict of format ``fmt`` that we can read."""
    if not isinstance(header, dict) or header.get("format") not in (FORMAT, JSON_FORMAT):
        raise ModelFileError(f"{path} is not a cnnlib model file (its header does not say "
                             f"format {fmt!r}); give a file written by cnnlib's save_model or "
                             "export_json")
    if header["format"] != fmt:
        other = "load_model" if header["format"] == FORMAT else "import_json"
        raise ModelFileError(f"{path} is a {header['format']!r} file, not {fmt!r}; read it "
                             f"with cnnlib.serialization.{other}")
    version = header.get("format_version")
    if version != FORMAT_VERSION:
        hint = ("it was written by a newer cnnlib; upgrade cnnlib"
                if isinstance(version, int) and version > FORMAT_VERSION
                else "re-save it with this cnnlib")
        raise ModelFileError(f"{path} has model format version {version!r}; this cnnlib "
                             f"(version {__version__}) reads version {FORMAT_VERSION} only: "
                             f"{hint}")
    for key, kind in (("architecture", list), ("params", dict), ("info", dict)):
        if not isinstance(header.get(key), kind):
            raise ModelFileError(f"{path}: the header has no {key!r} {kind.__name__}; the file "
                                 "is damaged — save or export the network again")
    for key in ("params", "buffers"):
        for name, meta in header.get(key, {}).items():
            if not (isinstance(meta, dict) and isinstance(meta.get("shape"), list)):
                raise ModelFileError(f"{path}: the header's entry for {name} is damaged — save "
                                     "or export the network again")


def _missing(path):
    return FileNotFoundError(f"no model file at {path}; check the path, or train one with "
                             f"`python -m cnnlib train --out {path}`")


# ---------------------------------------------------------------------------------- .npz files

def save_model(net, path, **info):
    """Save ``net`` (a Sequential) to ``path`` (.npz), atomically. Returns the Path.

    info: anything JSON-friendly to keep in the header's "info" (hyper-parameters, history
    summary, accuracies, ...); numpy scalars and arrays are converted, and it comes back as JSON
    gives it: dict keys as strings, tuples as lists. Refuses (ValueError) a
    network whose weights hold NaN or inf.
    """
    _check_finite(net, f"save_model to {path}")
    header = _header(net, FORMAT, info)
    header_bytes = json.dumps(header, default=_json_default, indent=1).encode("utf-8")
    arrays = {"header": np.frombuffer(header_bytes, dtype=np.uint8)}
    arrays.update({f"param/{name}": param for name, param, _ in net.parameters()})
    arrays.update({f"buffer/{name}": value for name, value in buffers(net).items()})
    atomic_write(path, lambda f: np.savez_compressed(f, **arrays))
    return Path(path)


def _read_npz(path):
    """(header, {param name: array}, {buffer name: array}) of a model file; ModelFileError
    if it is not one."""
    path = Path(path)
    if not path.is_file():
        raise _missing(path)
    with open(path, "rb") as f:
        start = f.read(4)
    if start != b"PK\x03\x04":  # every .npz is a zip file, and zip files start so
        hint = (" (it looks like JSON: read it with cnnlib.serialization.import_json)"
                if start[:1] in (b"{", b"[") else "")
        raise ModelFileError(f"{path} is not a cnnlib model file: not an .npz (zip) file"
                             f"{hint}; give a file written by cnnlib.serialization.save_model")
    try:
        with np.load(path, allow_pickle=False) as archive:
            if "header" not in archive.files:
                raise ModelFileError(
                    f"{path} is a numpy .npz file but not a cnnlib model (it has no 'header'; "
                    f"it holds {', '.join(archive.files[:5]) or 'nothing'}); give a file "
                    "written by cnnlib.serialization.save_model")
            raw = archive["header"]
            try:
                header = json.loads(raw.tobytes().decode("utf-8"))
            except (UnicodeDecodeError, json.JSONDecodeError) as error:
                raise ModelFileError(f"{path}: its header is not valid JSON ({error}); the file "
                                     "is damaged or foreign — save the network again") from None
            _check_header(header, path, FORMAT)
            params = {name[len("param/"):]: archive[name]
                      for name in archive.files if name.startswith("param/")}
            buffers = {name[len("buffer/"):]: archive[name]
                       for name in archive.files if name.startswith("buffer/")}
    except ModelFileError:
        raise
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError, KeyError) as error:
        # np.load raises these for a file that is not an npz, or whose zip is truncated or fails
        # its CRC check (a flipped byte).
        raise ModelFileError(f"{path} cannot be read as a cnnlib model file "
                             f"({type(error).__name__}: {error}); it is truncated, corrupted or "
                             "not a model — save or download it again") from None
    for arrays, key in ((params, "params"), (buffers, "buffers")):
        for name, meta in header.get(key, {}).items():
            if name not in arrays or list(arrays[name].shape) != meta.get("shape"):
                raise ModelFileError(f"{path}: {key[:-1]} {name} is missing or has the wrong "
                                     "shape; the file is damaged — save the network again")
            if arrays[name].dtype.kind != "f" or not np.isfinite(arrays[name]).all():
                raise ModelFileError(f"{path}: {key[:-1]} {name} is not finite floating-point "
                                     "numbers; the file is damaged — save the network again")
    return header, params, buffers


def read_header(path):
    """The header of a model file (.npz) as a dict: format, format_version, cnnlib_version,
    created, architecture, params (shapes, dtypes), num_parameters, info."""
    return _read_npz(path)[0]


def load_model(path):
    """The Sequential saved in ``path`` by ``save_model``: same layers, same weights, so the same
    predictions. Raises FileNotFoundError (missing) or ModelFileError (anything else wrong)."""
    header, params, buffers = _read_npz(path)
    try:
        # Evaluation mode: a loaded network predicts; switch to net.train() explicitly to train.
        return from_architecture(header["architecture"], params, buffers).eval()
    except (ValueError, KeyError, TypeError, MemoryError) as error:  # MemoryError: absurd sizes
        raise ModelFileError(f"{path}: the architecture in its header cannot be rebuilt "
                             f"({type(error).__name__}: {error}); the file is damaged or from "
                             "an incompatible cnnlib") from None


# --------------------------------------------------------------------------------- JSON files

def export_json(net, path, **info):
    """Write ``net`` as human-readable JSON, atomically: the header (as in ``save_model``) with
    each layer's weights "W" and "b" as nested lists inside its architecture entry.
    Returns the Path. float32 weights round-trip exactly (shortest repr of each value). Refuses
    (ValueError) a network whose weights hold NaN or inf: JSON has no such numbers."""
    _check_finite(net, f"export_json to {path}")
    header = _header(net, JSON_FORMAT, info)
    for spec, layer in zip(header["architecture"], net):
        for key, param in layer.params.items():
            spec[key] = param.astype(np.float64).tolist()
        if getattr(layer, "buffers", None):
            spec["buffers"] = {key: value.astype(np.float64).tolist()
                               for key, value in layer.buffers.items()}
    text = json.dumps(header, default=_json_default, indent=1)
    atomic_write(path, lambda f: f.write(text.encode("utf-8")))
    return Path(path)


def import_json(path):
    """The Sequential written by ``export_json``. Raises FileNotFoundError (missing) or
    ModelFileError (not JSON, foreign, wrong version, weights that do not fit)."""
    path = Path(path)
    if not path.is_file():
        raise _missing(path)
    raw = path.read_bytes()
    if zipfile.is_zipfile(path):  # an .npz is a zip archive
        raise ModelFileError(f"{path} is a zip archive, not JSON: if it is a saved network (.npz), "
                             "read it with cnnlib.serialization.load_model")
    try:
        header = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ModelFileError(f"{path} is not valid JSON ({error}); it is truncated, corrupted or "
                             "not a network — export it again") from None
    _check_header(header, path, JSON_FORMAT)
    try:
        specs, params, buffers = [], {}, {}
        for index, spec in enumerate(header["architecture"]):
            spec = dict(spec)
            dtype = spec.get("dtype", "float32")
            for key in ("W", "b"):
                if key in spec:
                    params[f"{index}.{key}"] = np.asarray(spec.pop(key), dtype=dtype)
            for key, value in spec.pop("buffers", {}).items():
                buffers[f"{index}.{key}"] = np.asarray(value, dtype=dtype)
            specs.append(spec)
        for name, array in {**params, **buffers}.items():
            if not np.isfinite(array).all():
                raise ModelFileError(f"{path}: {name} holds NaN or inf; the file is damaged — "
                                     "export it again")
        return from_architecture(specs, params, buffers).eval()   # as load_model: predicts
    except (ValueError, KeyError, TypeError, MemoryError) as error:
        raise ModelFileError(f"{path}: the network in it cannot be rebuilt "
                             f"({type(error).__name__}: {error}); the file is damaged — export "
                             "it again") from None
