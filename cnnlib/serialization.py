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

A model file is something people download and share, so reading one never trusts its sizes. The
limits (module constants), checked against the header's architecture and the zip directory
before a layer is built or an array allocated, and kept by ``save_model`` and ``export_json`` too
so that everything they write can be read back:

- at most ``MAX_PARAMETERS`` = 10,000,000 parameters (about 100 times the deep network; 40 MB in
  float32), counted from the architecture without building it;
- every parameter and buffer a finite number with |value| <= ``MAX_ABS_VALUE`` = 1e6 (trained
  weights are of order 1; a bias of 3e38 would make every digit read the same);
- in an .npz, the JSON header at most ``MAX_HEADER_BYTES`` = 1 MiB, and each array exactly the
  shape the architecture gives it, of float16/32/64, taking no more room unpacked than those
  numbers need (the sizes in the zip directory are checked before anything is unpacked);
- a JSON network file at most ``MAX_JSON_BYTES`` = 32 MiB (about 1.5 million weights as text;
  use .npz for more), its weights plain JSON numbers (not strings, not booleans).

JSON has no NaN or infinity: a NaN or +-inf in ``info`` is written as null (as JavaScript's
``JSON.stringify`` does), in the .npz header and in the JSON file alike; everything else in
``info`` round-trips.

What it trades away: only the layer types of ``cnnlib.layers`` in a ``Sequential``; no optimizer
state (a loaded network is for predicting or for training afresh, not for resuming a run).
"""

from __future__ import annotations

import datetime
import json
import math
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
    "JSON_FORMAT", "FORMAT_VERSION", "MAX_PARAMETERS", "MAX_ABS_VALUE", "MAX_HEADER_BYTES",
    "MAX_JSON_BYTES",
]


# ------------------------------------------------------------------ architecture <-> Sequential

FORMAT = "cnnlib-model"
JSON_FORMAT = "cnnlib-network-json"
FORMAT_VERSION = 1

# The limits a model file must respect (see the module docstring).
MAX_PARAMETERS = 10_000_000
MAX_ABS_VALUE = 1e6
MAX_HEADER_BYTES = 1 << 20
MAX_JSON_BYTES = 32 << 20
_DTYPES = ("float16", "float32", "float64")


class ModelFileError(ValueError):
    """A model file is truncated, corrupted, foreign, or of an unsupported format version."""


# Layer type name -> (class, constructor arguments read off a layer). A layer is rebuilt as
# ``cls(**arguments)``; its params and buffers (e.g. BatchNorm's running statistics) are then
# filled from the file. ``register_layer`` adds a type.
LAYER_TYPES = {}
# Layer type name -> shapes(spec) -> ({param key: shape}, {buffer key: shape}), computed from the
# spec alone, so that a file's sizes are checked before anything is built.
_SHAPES = {}


def register_layer(cls, arguments=lambda layer: {}, shapes=None):
    """Make layers of ``cls`` savable: ``arguments(layer)`` returns the keyword arguments that
    rebuild it (JSON-friendly values) with ``cls(**arguments)``. ``shapes(spec)``, if given,
    returns ({param key: shape}, {buffer key: shape}) from those arguments without building the
    layer, so that loading checks a file's sizes before allocating anything."""
    LAYER_TYPES[cls.__name__] = (cls, arguments)
    _SHAPES.pop(cls.__name__, None)
    if shapes is not None:
        _SHAPES[cls.__name__] = shapes


def _whole(spec, key, low, default=None):
    """spec[key] as an int >= low (bools are not numbers here); ValueError otherwise."""
    value = spec.get(key, default)
    if type(value) is not int or value < low:
        raise ValueError(f"{spec['type']} needs a whole number {key} >= {low}; got {value!r}")
    return value


def _number(spec, key):
    value = spec.get(key)
    if key in spec and (type(value) not in (int, float) or not math.isfinite(value)):
        raise ValueError(f"{spec['type']} needs a number {key}; got {value!r}")


def _dtype_name(spec):
    if spec.get("dtype", "float32") not in _DTYPES:
        raise ValueError(f"{spec['type']} needs a dtype among {', '.join(_DTYPES)}; got "
                         f"{spec['dtype']!r}")


def _conv2d_shapes(spec):
    ci, co, k = (_whole(spec, key, 1) for key in ("in_channels", "out_channels", "kernel_size"))
    _whole(spec, "stride", 1, 1), _whole(spec, "padding", 0, 0), _dtype_name(spec)
    return {"W": (co, ci, k, k), "b": (co,)}, {}


def _linear_shapes(spec):
    n_in, n_out = _whole(spec, "in_features", 1), _whole(spec, "out_features", 1)
    _dtype_name(spec)
    return {"W": (n_out, n_in), "b": (n_out,)}, {}


def _maxpool2d_shapes(spec):
    _whole(spec, "kernel_size", 1)
    if spec.get("stride") is not None:
        _whole(spec, "stride", 1)
    return {}, {}


def _batchnorm2d_shapes(spec):
    n = _whole(spec, "num_features", 1)
    _number(spec, "eps"), _number(spec, "momentum"), _dtype_name(spec)
    return {"W": (n,), "b": (n,)}, {"running_mean": (n,), "running_var": (n,)}


def _dropout_shapes(spec):
    _number(spec, "p")
    return {}, {}


register_layer(Conv2d, lambda layer: {
    "in_channels": layer.in_channels, "out_channels": layer.out_channels,
    "kernel_size": layer.kernel_size, "stride": layer.stride, "padding": layer.padding,
    "dtype": layer.dtype.name}, _conv2d_shapes)
register_layer(Linear, lambda layer: {
    "in_features": layer.in_features, "out_features": layer.out_features,
    "dtype": layer.dtype.name}, _linear_shapes)
register_layer(MaxPool2d, lambda layer: {
    "kernel_size": layer.kernel_size, "stride": layer.stride, "ties": layer.ties},
    _maxpool2d_shapes)
for _cls in (ReLU, Tanh, Flatten):
    register_layer(_cls, shapes=lambda spec: ({}, {}))
register_layer(BatchNorm2d, lambda layer: {
    "num_features": layer.num_features, "eps": layer.eps, "momentum": layer.momentum,
    "dtype": layer.dtype.name}, _batchnorm2d_shapes)
register_layer(Dropout, lambda layer: {"p": layer.p}, _dropout_shapes)


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


def _plan(specs):
    """The parameter and buffer shapes an architecture will have, from its specs alone:
    ({"<layer index>.<key>": shape}, {"<layer index>.<key>": shape}). Raises ValueError for a
    malformed spec or more than MAX_PARAMETERS parameters, before anything is built. (Layers
    registered without ``shapes`` are left out: they are checked once built.)"""
    if not isinstance(specs, list) or not specs:
        raise ValueError("the architecture must be a non-empty list of layers")
    params, buffers = {}, {}
    for index, spec in enumerate(specs):
        if not isinstance(spec, dict) or not isinstance(spec.get("type"), str):
            raise ValueError(f"layer {index} of the architecture is not a {{'type': ...}} dict; "
                             f"got {str(spec)[:80]}")
        if spec["type"] not in LAYER_TYPES:
            raise ValueError(f"unknown layer type {spec['type']!r} (this cnnlib knows "
                             f"{', '.join(LAYER_TYPES)})")
        shapes = _SHAPES.get(spec["type"])
        if shapes is not None:
            layer_params, layer_buffers = shapes(spec)
            params.update({f"{index}.{key}": shape for key, shape in layer_params.items()})
            buffers.update({f"{index}.{key}": shape for key, shape in layer_buffers.items()})
    total = sum(math.prod(shape) for shape in params.values())
    if total > MAX_PARAMETERS:
        raise ValueError(f"the architecture has {total:,} parameters, more than the "
                         f"{MAX_PARAMETERS:,} a cnnlib model may have")
    return params, buffers


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
    _plan(specs)  # sizes checked before anything is built or allocated
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


def _plain_info(info):
    """``info`` as plain JSON data (numpy values converted, tuples as lists, keys as strings),
    with NaN and +-inf as None: JSON has no such numbers."""
    def finite(value):
        if isinstance(value, float) and not math.isfinite(value):
            return None
        if isinstance(value, dict):
            return {key: finite(item) for key, item in value.items()}
        if isinstance(value, list):
            return [finite(item) for item in value]
        return value

    try:
        return finite(json.loads(json.dumps(info, default=_json_default, allow_nan=True)))
    except TypeError as error:
        raise ValueError(f"model info must be JSON-friendly (numbers, strings, lists, dicts): "
                         f"{error}") from None


def _check_finite(net, what):
    """A network whose weights hold NaN or inf (a diverged run), or absurd magnitudes, or more
    parameters than a model file may have, would not load again: refuse it before writing."""
    if net.num_parameters() > MAX_PARAMETERS:
        raise ValueError(f"{what}: the network has {net.num_parameters():,} parameters, more "
                         f"than the {MAX_PARAMETERS:,} a cnnlib model file may hold")
    for name, param, _ in net.parameters():
        if not np.isfinite(param).all():
            raise ValueError(f"{what}: parameter {name} holds NaN or inf (training diverged); "
                             "this network is not worth keeping — train again with a smaller "
                             "learning rate")
    for name, value in [(name, param) for name, param, _ in net.parameters()] + list(
            buffers(net).items()):
        if value.size and np.abs(value).max() > MAX_ABS_VALUE:
            raise ValueError(f"{what}: {name} holds {float(np.abs(value).max()):.3g}, beyond the "
                             f"+-{MAX_ABS_VALUE:g} a model file may hold (training diverged); "
                             "train again with a smaller learning rate")


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
        "info": _plain_info(info),
    }
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
    if type(version) is not int or version != FORMAT_VERSION:  # True == 1, but is no version
        hint = ("it was written by a newer cnnlib; upgrade cnnlib"
                if isinstance(version, int) and version > FORMAT_VERSION
                else "re-save it with this cnnlib")
        raise ModelFileError(f"{path} has model format version {version!r}; this cnnlib "
                             f"(version {__version__}) reads version {FORMAT_VERSION} only: "
                             f"{hint}")
    for key, kind in (("architecture", list), ("params", dict), ("info", dict),
                      ("buffers", dict)):
        if key == "buffers" and key not in header:
            continue
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
    gives it: dict keys as strings, tuples as lists, NaN and +-inf as None. Refuses (ValueError)
    what ``load_model`` would refuse: weights holding NaN or inf or beyond +-MAX_ABS_VALUE, more
    than MAX_PARAMETERS parameters, a header (with its info) over MAX_HEADER_BYTES.
    """
    _check_finite(net, f"save_model to {path}")
    header = _header(net, FORMAT, info)
    header_bytes = json.dumps(header, indent=1, allow_nan=False).encode("utf-8")
    if len(header_bytes) > MAX_HEADER_BYTES:
        raise ValueError(f"save_model to {path}: the header with its info takes "
                         f"{len(header_bytes):,} bytes, more than the {MAX_HEADER_BYTES:,} a model "
                         "file may hold; keep large things (histories, arrays) in another file")
    arrays = {"header": np.frombuffer(header_bytes, dtype=np.uint8)}
    arrays.update({f"param/{name}": param for name, param, _ in net.parameters()})
    arrays.update({f"buffer/{name}": value for name, value in buffers(net).items()})
    atomic_write(path, lambda f: np.savez_compressed(f, **arrays))
    return Path(path)


def _values_fit(name, array, path, what="the file is damaged"):
    """Raise ModelFileError unless ``array`` is finite floating-point numbers within
    +-MAX_ABS_VALUE."""
    if array.dtype.kind != "f" or not np.isfinite(array).all():
        raise ModelFileError(f"{path}: {name} is not finite floating-point numbers; {what} — "
                             "save the network again")
    if array.size and np.abs(array).max() > MAX_ABS_VALUE:
        raise ModelFileError(f"{path}: {name} holds {float(np.abs(array).max()):.3g}, beyond the "
                             f"+-{MAX_ABS_VALUE:g} a model file may hold (trained weights are of "
                             f"order 1); {what} or not a trained network — do not use it, save or "
                             "download the network again")


def _read_member(archive, member, path, what, shape=None, limit=None):
    """The array stored in zip ``member`` (a .npy), checking its sizes before allocating: the
    unpacked size in the zip directory, then the shape and dtype in the .npy header (exactly
    ``shape`` if given, else at most ``limit`` bytes)."""
    info = archive.getinfo(member)
    # A .npy is a header (numpy's own limit: 10,000 bytes) then the numbers.
    most = (limit if shape is None else math.prod(shape) * 8) + 10_016
    if info.file_size > most:
        raise ModelFileError(f"{path}: {what} would unpack to {info.file_size:,} bytes, more than "
                             f"the {most:,} it may take; the file is damaged or hostile — do not "
                             "use it, save or download the network again")
    with archive.open(info) as f:
        version = np.lib.format.read_magic(f)
        if version not in ((1, 0), (2, 0)):
            raise ValueError(f"{what} is a .npy of version {version}, not 1.0 or 2.0")
        read_header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                       else np.lib.format.read_array_header_2_0)
        found, fortran_order, dtype = read_header(f)
        if shape is None:
            fits = dtype == np.uint8 and len(found) == 1 and found[0] <= limit
        else:
            fits = (dtype.kind == "f" and dtype.itemsize <= 8 and not dtype.fields
                    and found == tuple(shape))
        if not fits:
            need = f"uint8 of at most {limit:,} bytes" if shape is None else f"shape {tuple(shape)}"
            raise ModelFileError(f"{path}: {what} is stored as {dtype} of shape {found}, not "
                                 f"{need}; the file is damaged or hostile (it has the wrong shape "
                                 "for its architecture) — do not use it, save the network again")
        size = math.prod(found) * dtype.itemsize
        data = f.read(size)
        if len(data) != size or f.read(1):  # reading to the end also checks the CRC
            raise EOFError(f"{what} holds {len(data):,} bytes of numbers, not {size:,}")
    return np.frombuffer(data, dtype=dtype).reshape(found, order="F" if fortran_order else "C")


def _read_npz(path):
    """(header, {param name: array}, {buffer name: array}) of a model file; ModelFileError
    if it is not one. Every size is checked against the header's architecture and the limits
    before anything is unpacked or allocated."""
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
        with zipfile.ZipFile(path) as archive:
            members = [name for name in archive.namelist() if name.endswith(".npy")]
            if "header.npy" not in members:
                files = ", ".join(name[:-len(".npy")] for name in members[:5])
                raise ModelFileError(
                    f"{path} is a numpy .npz file but not a cnnlib model (it has no 'header'; "
                    f"it holds {files or 'nothing'}); give a file "
                    "written by cnnlib.serialization.save_model")
            raw = _read_member(archive, "header.npy", path, "the header", limit=MAX_HEADER_BYTES)
            try:
                header = json.loads(raw.tobytes().decode("utf-8"))
            except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as error:
                raise ModelFileError(f"{path}: its header is not valid JSON ({error}); the file "
                                     "is damaged or foreign — save the network again") from None
            _check_header(header, path, FORMAT)
            try:
                plan = _plan(header["architecture"])
            except ValueError as error:
                raise ModelFileError(f"{path}: its architecture cannot be used ({error}); the "
                                     "file is damaged, hostile or from an incompatible cnnlib — "
                                     "do not use it, save or download the network again") from None
            arrays = ({}, {})
            for shapes, found, key in zip(plan, arrays, ("params", "buffers")):
                what = key[:-1]
                stored = {name[len(what) + 1:-len(".npy")]: name for name in members
                          if name.startswith(f"{what}/")}
                declared = header.get(key, {})
                for name in sorted(set(shapes) | set(stored) | set(declared)):
                    if (name not in stored or name not in shapes or name not in declared
                            or declared[name].get("shape") != list(shapes[name])):
                        raise ModelFileError(f"{path}: {what} {name} is missing or has the wrong "
                                             "shape; the file is damaged — save the network "
                                             "again")
                    found[name] = _read_member(archive, stored[name], path, f"{what} {name}",
                                               shape=shapes[name])
                    _values_fit(f"{what} {name}", found[name], path)
            params, buffers = arrays
    except ModelFileError:
        raise
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError, KeyError,
            NotImplementedError, RuntimeError) as error:
        # zipfile and numpy raise these for a file that is not an npz, or whose zip is truncated,
        # fails its CRC check (a flipped byte), is encrypted or oddly compressed.
        raise ModelFileError(f"{path} cannot be read as a cnnlib model file "
                             f"({type(error).__name__}: {error}); it is truncated, corrupted or "
                             "not a model — save or download it again") from None
    return header, params, buffers


def read_header(path):
    """The header of a model file (.npz) as a dict: format, format_version, cnnlib_version,
    created, architecture, params (shapes, dtypes), num_parameters, info."""
    return _read_npz(path)[0]


def load_model(path, dtype=None):
    """The Sequential saved in ``path`` by ``save_model``: same layers, same weights, so the same
    predictions. Raises FileNotFoundError (missing) or ModelFileError (anything else wrong).

    dtype: None keeps the saved dtype (a float64 network stays float64); np.float32 (or
    "float32") gives a network that takes float32 images, as ``cnnlib.data.to_float`` makes them
    (what the CLI's ``evaluate`` uses).
    """
    header, params, buffers = _read_npz(path)
    specs = header["architecture"]
    if dtype is not None:
        dtype = np.dtype(dtype)
        if dtype.name not in _DTYPES:
            raise ValueError(f"load_model dtype must be one of {', '.join(_DTYPES)}; got {dtype}")
        specs = [{**spec, "dtype": dtype.name} if "dtype" in spec else spec for spec in specs]
    try:
        # Evaluation mode: a loaded network predicts; switch to net.train() explicitly to train.
        return from_architecture(specs, params, buffers).eval()
    except (ValueError, KeyError, TypeError, MemoryError) as error:
        raise ModelFileError(f"{path}: the architecture in its header cannot be rebuilt "
                             f"({type(error).__name__}: {error}); the file is damaged or from "
                             "an incompatible cnnlib") from None


# --------------------------------------------------------------------------------- JSON files

def export_json(net, path, **info):
    """Write ``net`` as human-readable JSON, atomically: the header (as in ``save_model``) with
    each layer's weights "W" and "b" as nested lists inside its architecture entry.
    Returns the Path. float32 weights round-trip exactly (shortest repr of each value). Refuses
    (ValueError) what ``import_json`` would refuse: weights holding NaN or inf (JSON has no such
    numbers) or beyond +-MAX_ABS_VALUE, more than MAX_PARAMETERS parameters, a file over
    MAX_JSON_BYTES (use save_model). NaN and +-inf in ``info`` are written as null."""
    _check_finite(net, f"export_json to {path}")
    header = _header(net, JSON_FORMAT, info)
    for spec, layer in zip(header["architecture"], net):
        for key, param in layer.params.items():
            spec[key] = param.astype(np.float64).tolist()
        if getattr(layer, "buffers", None):
            spec["buffers"] = {key: value.astype(np.float64).tolist()
                               for key, value in layer.buffers.items()}
    text = json.dumps(header, indent=1, allow_nan=False).encode("utf-8")
    if len(text) > MAX_JSON_BYTES:
        raise ValueError(f"export_json to {path}: the network takes {len(text):,} bytes as JSON, "
                         f"more than the {MAX_JSON_BYTES:,} a JSON network file may hold; save "
                         "it with save_model (.npz) instead")
    atomic_write(path, lambda f: f.write(text))
    return Path(path)


def _json_array(value, shape, name, path, dtype):
    """A JSON weight (nested lists of numbers) as an array of ``shape``; ModelFileError for
    anything else, found by walking the lists level by level (no recursion, nothing allocated
    beyond the expected size)."""
    level = [value]
    for size in shape:
        if not all(isinstance(item, list) and len(item) == size for item in level):
            raise ModelFileError(f"{path}: {name} is not nested lists of shape {tuple(shape)} "
                                 "(as its architecture needs); the file is damaged — export it "
                                 "again")
        level = [number for item in level for number in item]
    for number in level:
        if type(number) not in (int, float):  # not str, not bool (True is an int in Python)
            raise ModelFileError(f"{path}: {name} holds {str(number)[:40]!r} "
                                 f"({type(number).__name__}); weights must be JSON numbers — the "
                                 "file is damaged, export it again")
    try:
        array = np.array(level, dtype=np.float64).reshape(shape)
    except OverflowError:  # an integer beyond float64
        array = np.full(shape, np.inf)
    _values_fit(name, array, path, "the file is damaged")
    return array.astype(dtype)


def import_json(path):
    """The Sequential written by ``export_json``. Raises FileNotFoundError (missing) or
    ModelFileError (not JSON, foreign, wrong version, weights that do not fit, limits exceeded:
    see the module docstring)."""
    path = Path(path)
    if not path.is_file():
        raise _missing(path)
    if zipfile.is_zipfile(path):  # an .npz is a zip archive
        raise ModelFileError(f"{path} is a zip archive, not JSON: if it is a saved network (.npz), "
                             "read it with cnnlib.serialization.load_model")
    size = path.stat().st_size
    if size > MAX_JSON_BYTES:
        raise ModelFileError(f"{path} takes {size:,} bytes, more than the {MAX_JSON_BYTES:,} a "
                             "JSON network file may hold; save big networks with save_model "
                             "(.npz) and read them with load_model")
    raw = path.read_bytes()
    try:
        header = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ModelFileError(f"{path} is not valid JSON ({error}); it is truncated, corrupted or "
                             "not a network — export it again") from None
    except RecursionError:
        raise ModelFileError(f"{path} nests its JSON too deeply to read (lists or objects inside "
                             "one another thousands of times); it is damaged or hostile, not a "
                             "network — export it again") from None
    _check_header(header, path, JSON_FORMAT)
    try:
        specs = []
        for index, spec in enumerate(header["architecture"]):
            if not isinstance(spec, dict):
                raise ValueError(f"layer {index} of the architecture is not a dict")
            spec = dict(spec)
            weights = {key: spec.pop(key) for key in ("W", "b") if key in spec}
            stored_buffers = spec.pop("buffers", {})
            if not isinstance(stored_buffers, dict):
                raise ModelFileError(f"{path}: layer {index}'s 'buffers' is "
                                     f"{type(stored_buffers).__name__}, not a dict of "
                                     "{name: numbers}; the file is damaged — export it again")
            specs.append((spec, weights, stored_buffers))
        plan = _plan([spec for spec, _, _ in specs])
        params, buffers = {}, {}
        for index, (spec, weights, stored_buffers) in enumerate(specs):
            dtype = spec.get("dtype", "float32")
            for found, stored, shapes in ((params, weights, plan[0]),
                                          (buffers, stored_buffers, plan[1])):
                for key, value in stored.items():
                    name = f"{index}.{key}"
                    if name in shapes:
                        found[name] = _json_array(value, shapes[name], name, path, dtype)
                    elif spec["type"] in _SHAPES:
                        raise ModelFileError(f"{path}: {name} is not part of its architecture (a "
                                             f"{spec['type']} has no {key!r}); the file is "
                                             "damaged — export it again")
                    else:  # a layer registered without shapes: checked once built
                        found[name] = np.asarray(value, dtype=dtype)
    except ModelFileError:
        raise
    except (ValueError, KeyError, TypeError) as error:
        raise ModelFileError(f"{path}: the network in it cannot be rebuilt "
                             f"({type(error).__name__}: {error}); the file is damaged — export "
                             "it again") from None
    try:
        return from_architecture([spec for spec, _, _ in specs], params, buffers).eval()
    except (ValueError, KeyError, TypeError, MemoryError) as error:   # as load_model: predicts
        raise ModelFileError(f"{path}: the network in it cannot be rebuilt "
                             f"({type(error).__name__}: {error}); the file is damaged — export "
                             "it again") from None
