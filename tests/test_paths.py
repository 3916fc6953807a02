"""Where cnnlib finds its files: the data folder from any working directory, the CNNLIB_DATA
override, the per-user folder of an install without a checkout, and the shipped networks (also
from a non-editable install)."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from cnnlib import paths

REPO = Path(__file__).resolve().parent.parent
PRINT_PATHS = ("from cnnlib import paths; print(paths.data_dir()); print(paths.mnist_dir()); "
               "print(paths.models_dir()); print(paths.shipped_model('deep-net.npz'))")


def _clean_env(**extra):
    env = {key: value for key, value in os.environ.items()
           if key not in (paths.ENV_VAR, "XDG_DATA_HOME", "PYTHONPATH")}
    env.update(extra)
    return env


def test_the_checkout_data_folder_by_default(monkeypatch):
    monkeypatch.delenv(paths.ENV_VAR, raising=False)
    assert paths.data_dir() == REPO / "data"
    assert paths.mnist_dir() == REPO / "data" / "mnist"
    assert paths.models_dir() == REPO / "data" / "models"


def test_cnnlib_data_overrides_everything(monkeypatch, tmp_path):
    monkeypatch.setenv(paths.ENV_VAR, str(tmp_path))
    assert paths.data_dir() == tmp_path.resolve()
    assert paths.mnist_dir() == tmp_path.resolve() / "mnist"
    assert paths.models_dir() == tmp_path.resolve() / "models"
    monkeypatch.setenv(paths.ENV_VAR, "~/somewhere")
    assert paths.data_dir() == (Path.home() / "somewhere").resolve()


def test_without_a_checkout_the_per_user_folder(monkeypatch, tmp_path):
    monkeypatch.delenv(paths.ENV_VAR, raising=False)
    monkeypatch.setattr(paths, "_checkout_data", lambda: None)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    assert paths.data_dir() == tmp_path / "cnnlib"
    monkeypatch.delenv("XDG_DATA_HOME")
    assert paths.data_dir() == Path.home() / ".local" / "share" / "cnnlib"


def test_a_folder_is_a_checkout_only_with_cnnlibs_pyproject(tmp_path):
    package = tmp_path / "cnnlib"
    package.mkdir()
    assert paths._checkout_data(package) is None                 # nothing beside it
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "other"\n')
    assert paths._checkout_data(package) is None                 # someone else's project
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "cnnlib"\n')
    # A fresh clone has no data/ until the first download: it is still the checkout's folder
    # (a fresh clone's `make test` once put MNIST in ~/.local/share instead).
    assert paths._checkout_data(package) == tmp_path / "data"
    assert not (tmp_path / "data").exists()


def test_shipped_models_are_in_the_package():
    for name in paths.SHIPPED_MODELS:
        path = paths.shipped_model(name)
        assert path.is_file() and path.parent == REPO / "cnnlib" / "pretrained"
    assert paths.shipped_models() == [paths.shipped_model(n) for n in paths.SHIPPED_MODELS]
    with pytest.raises(ValueError, match="ships no network 'mine.npz'; the shipped ones are "
                                         "seed-net.npz, deep-net.npz"):
        paths.shipped_model("mine.npz")


def test_the_same_folders_from_another_working_directory(tmp_path):
    out = subprocess.run([sys.executable, "-c", PRINT_PATHS], cwd=tmp_path, text=True,
                         capture_output=True, env=_clean_env(PYTHONPATH=str(REPO)), check=True)
    data_dir, mnist, models, shipped = out.stdout.splitlines()
    assert Path(data_dir) == REPO / "data" and Path(mnist) == REPO / "data" / "mnist"
    assert Path(models) == REPO / "data" / "models"
    assert Path(shipped) == REPO / "cnnlib" / "pretrained" / "deep-net.npz"
    override = subprocess.run([sys.executable, "-c", PRINT_PATHS], cwd=tmp_path, text=True,
                              capture_output=True, check=True,
                              env=_clean_env(PYTHONPATH=str(REPO), CNNLIB_DATA="elsewhere"))
    assert Path(override.stdout.splitlines()[0]) == tmp_path / "elsewhere"


@pytest.mark.slow
def test_a_non_editable_install_finds_the_shipped_networks_and_a_per_user_folder(tmp_path):
    source = tmp_path / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        if (REPO / name).exists():
            shutil.copy(REPO / name, source / name)
    shutil.copytree(REPO / "cnnlib", source / "cnnlib",
                    ignore=shutil.ignore_patterns("__pycache__"))
    target = tmp_path / "site"
    built = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps",
                            "--target", str(target), str(source)],
                           capture_output=True, text=True, timeout=120)
    if built.returncode != 0 and "No matching distribution" in built.stdout + built.stderr:
        pytest.skip("pip cannot get the build backend (setuptools) here: " + built.stderr[-300:])
    assert built.returncode == 0, built.stdout + built.stderr
    home = tmp_path / "home"
    out = subprocess.run([sys.executable, "-c", PRINT_PATHS], cwd=tmp_path, text=True,
                         capture_output=True, check=True,
                         env=_clean_env(PYTHONPATH=str(target), HOME=str(home)))
    data_dir, _, _, shipped = out.stdout.splitlines()
    assert Path(data_dir) == home / ".local" / "share" / "cnnlib"
    assert Path(shipped) == target / "cnnlib" / "pretrained" / "deep-net.npz"
    assert Path(shipped).is_file()
