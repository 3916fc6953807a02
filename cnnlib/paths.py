"""Where cnnlib keeps its files: the one place that finds the data folder and the shipped networks.

    paths.data_dir()                    # e.g. <checkout>/data, or ~/.local/share/cnnlib
    paths.mnist_dir()                   # data_dir() / "mnist": the four MNIST files
    paths.models_dir()                  # data_dir() / "models": networks you train and save
    paths.shipped_model("seed-net.npz") # a network that comes with cnnlib (package data)

The data folder is, in this order:

1. ``$CNNLIB_DATA`` when that environment variable is set (read on every call, so setting it in
   a running notebook takes effect at once);
2. the ``data/`` folder of the source checkout when the package sits in one (the folder above
   ``cnnlib/`` has a pyproject.toml naming cnnlib), whether or not ``data/`` exists yet:
   ``pip install -e .`` and running from the checkout;
3. a per-user folder otherwise (an installed wheel has no checkout beside it):
   ``$XDG_DATA_HOME/cnnlib``, or ``~/.local/share/cnnlib``.

None of these is created here; whoever writes a file creates its folder.

The shipped networks (``SHIPPED_MODELS``) live inside the package, in ``cnnlib/pretrained/``, so
every kind of install has them; they are read-only material, not part of the data folder.

What it trades away: no configuration file and no Windows-specific folder (``%APPDATA%``);
set ``CNNLIB_DATA`` there.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["ENV_VAR", "SHIPPED_MODELS", "data_dir", "mnist_dir", "models_dir", "shipped_model",
           "shipped_models"]

ENV_VAR = "CNNLIB_DATA"
SHIPPED_MODELS = ("seed-net.npz", "deep-net.npz")
"""The networks that come with cnnlib: the reference network and the deeper one (README)."""

_PACKAGE = Path(__file__).resolve().parent


def _checkout_data(package: Path = _PACKAGE) -> Path | None:
    """``<checkout>/data`` when ``package`` sits in a cnnlib source checkout, else None."""
    root = package.parent
    pyproject = root / "pyproject.toml"
    if not pyproject.is_file():
        return None
    try:
        text = pyproject.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None
    return root / "data" if 'name = "cnnlib"' in text else None


def data_dir() -> Path:
    """The data folder (see the module docstring for the order): an absolute Path."""
    override = os.environ.get(ENV_VAR)
    if override:
        return Path(override).expanduser().resolve()
    checkout = _checkout_data()
    if checkout is not None:
        return checkout
    xdg = os.environ.get("XDG_DATA_HOME")
    base = Path(xdg).expanduser() if xdg and Path(xdg).is_absolute() else (
        Path.home() / ".local" / "share")
    return base / "cnnlib"


def mnist_dir() -> Path:
    """The folder of the four MNIST IDX files: ``data_dir() / "mnist"``."""
    return data_dir() / "mnist"


def models_dir() -> Path:
    """The folder for networks you train and save: ``data_dir() / "models"``."""
    return data_dir() / "models"


def shipped_model(name: str = "seed-net.npz") -> Path:
    """The path of a network shipped with cnnlib, one of ``SHIPPED_MODELS``.

    Raises ValueError for another name and FileNotFoundError when the file is missing from the
    installation (a broken install: reinstall cnnlib).
    """
    if name not in SHIPPED_MODELS:
        raise ValueError(f"cnnlib ships no network {name!r}; the shipped ones are "
                         f"{', '.join(SHIPPED_MODELS)} (your own are in {models_dir()})")
    path = _PACKAGE / "pretrained" / name
    if not path.is_file():
        raise FileNotFoundError(f"the shipped network {path} is missing from this installation; "
                                "reinstall cnnlib (pip install --force-reinstall cnnlib)")
    return path


def shipped_models() -> list[Path]:
    """The paths of every shipped network that is present, in ``SHIPPED_MODELS`` order."""
    return [_PACKAGE / "pretrained" / name for name in SHIPPED_MODELS
            if (_PACKAGE / "pretrained" / name).is_file()]
