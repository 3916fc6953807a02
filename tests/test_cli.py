"""The command line: its handling of bad input (one ``error: ...`` line, exit code 1, or
argparse's 2, checked before any long work, and no half-written files), then train and evaluate on
real MNIST. Training runs here are tiny (40 to 300 digits)."""

import dataclasses
import os
import re
import stat
import warnings

import numpy as np
import pytest

from cnnlib import architectures, atomic, data, serialization, train
from cnnlib.__main__ import build_parser, main
from cnnlib.layers import Flatten, Linear
from cnnlib.network import Sequential

TINY = ["--train-size", "40", "--val-size", "20", "--test-size", "20", "--quiet"]
ACCURACY_LINE = re.compile(r"^test accuracy: [01]\.\d{4}$", re.MULTILINE)


@pytest.fixture
def seed_model(tmp_path):
    """An untrained seed network saved in the model format (classifies 24x24 crops)."""
    return serialization.save_model(architectures.seed_net(rng=np.random.default_rng(0)), tmp_path / "seed.npz")


@pytest.fixture
def flat_model(tmp_path):
    """A network for flat 28x28 images: it does not take (N, 1, 24, 24) crops."""
    return serialization.save_model(Sequential(Flatten(), Linear(784, 10)), tmp_path / "flat.npz")


@pytest.fixture
def no_mnist(tmp_path, monkeypatch):
    """MNIST is not on disk and no source can fetch it."""
    monkeypatch.setenv("CNNLIB_DATA", str(tmp_path / "empty"))
    monkeypatch.setattr(data, "default_sources", lambda: [])


def _one_error_line(capsys, *words):
    """The command printed exactly one line on stderr, ``error: ...`` holding every word."""
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1, err
    assert all(word in err for word in words), err
    return err


# --------------------------------------------------------------------------- --out destinations

def test_classify_strokes_checks_out_before_classifying(tmp_path, capsys, seed_model,
                                                        stroke_file):
    command = ["classify-strokes", str(stroke_file), "--model", str(seed_model), "--out"]
    assert main(command + [str(tmp_path)]) == 1
    _one_error_line(capsys, "is a folder", str(tmp_path / "predictions.csv"))
    assert capsys.readouterr().out == ""            # nothing classified

    (tmp_path / "file").write_text("")
    assert main(command + [str(tmp_path / "file" / "x.csv")]) == 1
    _one_error_line(capsys, "is a file, not a folder")


def test_classify_strokes_out_is_written_like_a_model_file(tmp_path, capsys, seed_model,
                                                           stroke_file):
    # A missing folder is created (as save_model does); the file is 0644 minus the umask.
    out = tmp_path / "new" / "predictions.csv"
    assert main(["classify-strokes", str(stroke_file), "--model", str(seed_model),
                 "--out", str(out)]) == 0
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(out.stat().st_mode) == 0o644 & ~umask
    assert out.read_text().startswith("index,label,prediction,probability\n0,1,")


def test_classify_strokes_write_failure_is_an_error_and_leaves_nothing(
        tmp_path, capsys, monkeypatch, seed_model, stroke_file):
    def disk_full(path, write):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(atomic, "atomic_write", disk_full)
    out = tmp_path / "predictions.json"
    assert main(["classify-strokes", str(stroke_file), "--model", str(seed_model),
                 "--out", str(out)]) == 1
    _one_error_line(capsys, f"cannot write {out}", "No space left")
    assert not out.exists()


@pytest.mark.parametrize("where", ["folder", "under a file"])
def test_train_checks_out_before_loading_data(tmp_path, capsys, monkeypatch, where):
    def never(*args, **kwargs):
        raise AssertionError("--out must be checked before MNIST is loaded")

    monkeypatch.setattr(data, "load_mnist_split", never)
    (tmp_path / "file").write_text("")
    out = tmp_path if where == "folder" else tmp_path / "file" / "net.npz"
    assert main(["train", *TINY, "--out", str(out)]) == 1
    _one_error_line(capsys, "--out", str(out))


def test_train_into_a_new_folder_and_evaluate_skip_digits_without_examples(tmp_path, capsys):
    out = tmp_path / "new" / "net.npz"
    assert main(["train", *TINY[:4], "--test-size", "3", "--quiet", "--out", str(out)]) == 0
    assert out.is_file()
    trained = capsys.readouterr().out
    assert main(["evaluate", str(out), "--test-size", "3", "--quiet"]) == 0
    evaluated = capsys.readouterr().out
    for printed in (trained, evaluated):
        assert "nan" not in printed and "(0/0)" not in printed
        assert "test accuracy: " in printed
        per_digit = printed.split("per-digit accuracy:\n")[1].splitlines()
        counts = [int(line.split("/")[1].rstrip(")")) for line in per_digit if line[:2] == "  "]
        assert len(counts) <= 3 and sum(counts) == 3


# ------------------------------------------------------------------------------ MNIST errors

@pytest.mark.parametrize("command", [
    ["train", *TINY, "--out", "never.npz"],
    ["evaluate", "SEED", "--quiet"],
    ["data", "--quiet"],
    ["bench", "--seconds", "0.01", "--rounds", "1", "--batch-sizes", "20", "--no-torch",
     "--no-inference", "--recipe"],
])
def test_commands_report_mnist_download_errors(tmp_path, capsys, monkeypatch, no_mnist,
                                               seed_model, command):
    monkeypatch.chdir(tmp_path)
    command = [str(seed_model) if word == "SEED" else word for word in command]
    assert main(command) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: Could not get MNIST") and "Traceback" not in err
    assert not (tmp_path / "never.npz").exists()


@pytest.mark.parametrize("command", ["train", "evaluate"])
def test_train_and_evaluate_report_garbled_mnist_files(tmp_path, capsys, monkeypatch,
                                                       seed_model, command):
    def garbled(path):
        raise data.IdxFormatError(f"{path} is truncated")

    monkeypatch.setattr(data, "read_idx", garbled)
    args = {"train": ["train", *TINY, "--out", str(tmp_path / "x.npz")],
            "evaluate": ["evaluate", str(seed_model), "--quiet"]}[command]
    assert main(args) == 1
    _one_error_line(capsys, "is truncated")


# ---------------------------------------------------------------------------- numeric flags

BAD_NUMBERS = [
    (["train", "--lr", "0"], "--lr: expected a finite number > 0; got 0"),
    (["train", "--lr", "inf"], "--lr: expected a finite number > 0; got inf"),
    (["train", "--lr", "fast"], "--lr: expected a finite number > 0; got fast"),
    (["train", "--epochs", "inf"], "--epochs: expected a finite number > 0; got inf"),
    (["train", "--epochs", "nan"], "--epochs: expected a finite number > 0; got nan"),
    (["train", "--weight-decay", "nan"], "--weight-decay: expected a finite number >= 0"),
    (["train", "--weight-decay", "-1"], "--weight-decay: expected a finite number >= 0"),
    (["train", "--momentum", "1"], "--momentum: expected a number >= 0 and < 1; got 1"),
    (["train", "--momentum", "-0.1"], "--momentum: expected a number >= 0 and < 1"),
    (["train", "--seed", "-1"], "--seed: expected an integer >= 0; got -1"),
    (["train", "--batch-size", "2.5"], "--batch-size: expected an integer >= 1; got 2.5"),
    (["evaluate", "--seed", "-1"], "--seed: expected an integer >= 0; got -1"),
    (["bench", "--seconds", "-1"], "--seconds: expected a finite number > 0; got -1"),
    (["bench", "--seconds", "nan"], "--seconds: expected a finite number > 0; got nan"),
]


@pytest.mark.parametrize("args, expected", BAD_NUMBERS,
                         ids=[" ".join(args) for args, _ in BAD_NUMBERS])
def test_numeric_flags_are_checked(capsys, args, expected):
    with pytest.raises(SystemExit) as exit_:   # a usage error, before the command runs
        build_parser().parse_args(args + (["--out", "x.npz"] if args[0] == "train" else []))
    assert exit_.value.code == 2
    assert expected in capsys.readouterr().err


def test_numeric_flags_accept_their_edges():
    args = build_parser().parse_args(["train", "--lr", "1e-4", "--epochs", "0.5", "--momentum",
                                      "0", "--weight-decay", "0", "--out", "x.npz"])
    assert (args.lr, args.epochs, args.momentum, args.weight_decay) == (1e-4, 0.5, 0.0, 0.0)
    assert build_parser().parse_args(["bench", "--seconds", "0.5"]).seconds == 0.5


def test_a_diverging_run_suggests_a_smaller_learning_rate(tmp_path, capsys):
    out = tmp_path / "net.npz"
    with warnings.catch_warnings():
        warnings.simplefilter("error")              # no numpy overflow warnings either
        assert main(["train", *TINY, "--lr", "1e15", "--out", str(out)]) == 1
    _one_error_line(capsys, "training diverged", "try --lr 1e+14")
    assert not out.exists()


# ------------------------------------------------------------- networks that do not take crops

def test_evaluate_rejects_a_network_that_does_not_take_crops(capsys, monkeypatch, flat_model):
    monkeypatch.setattr(data, "load_mnist", lambda **kwargs: pytest.fail("checked too late"))
    assert main(["evaluate", str(flat_model), "--quiet"]) == 1
    _one_error_line(capsys, f"the network in {flat_model} does not take 24x24 MNIST crops",
                    "(N, 784)")


def test_classify_strokes_rejects_a_network_that_does_not_take_crops(capsys, flat_model,
                                                                     stroke_file):
    assert main(["classify-strokes", str(stroke_file), "--model", str(flat_model)]) == 1
    _one_error_line(capsys, "does not take 24x24 MNIST crops")


# ------------------------------------------------------------------------------------- help

def test_bench_help_names_the_network_it_times(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["bench", "--help"])
    assert exit_.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "of the network chosen with --model" in text
    assert "reference network at each batch size" not in text
    assert "the seed network (whatever --model says)" in text


# ------------------------------------------------------------- train and evaluate on real MNIST

@pytest.mark.slow
def test_cli_train_then_evaluate(tmp_path, capsys, mnist):
    out = tmp_path / "tiny.npz"
    code = main(["train", "--train-size", "300", "--val-size", "200", "--test-size", "500",
                 "--epochs", "1", "--validate-every", "100", "--seed", "3", "--quiet",
                 "--out", str(out)])
    assert code == 0
    printed = capsys.readouterr().out
    assert len(ACCURACY_LINE.findall(printed)) == 1
    assert re.search(r"^validation accuracy: [01]\.\d{4}$", printed, re.MULTILINE)
    header = serialization.read_header(out)
    info = header["info"]
    assert info["recipe"]["seed"] == 3 and info["recipe"]["train_size"] == 300
    assert info["history"]["examples"] == 300 and info["test_examples"] == 500
    accuracy = float(ACCURACY_LINE.search(printed).group().split()[-1])
    assert accuracy == pytest.approx(info["test_accuracy"], abs=5e-5)
    assert info["command"].startswith("python -m cnnlib train --model seed --epochs 1")

    assert main(["evaluate", str(out), "--test-size", "500", "--quiet"]) == 0
    evaluated = capsys.readouterr().out
    assert ACCURACY_LINE.search(evaluated).group() == ACCURACY_LINE.search(printed).group()
    digit_lines = re.findall(r"^  (\d): [01]\.\d{4} \((\d+)/(\d+)\)$", evaluated, re.MULTILINE)
    assert [int(d) for d, _, _ in digit_lines] == list(range(10))
    assert sum(int(total) for _, _, total in digit_lines) == 500

    runs = []
    for seed in ("1", "1", "2"):
        assert main(["evaluate", str(out), "--test-size", "500", "--crops", "4",
                     "--seed", seed, "--quiet"]) == 0
        runs.append(capsys.readouterr().out)
    assert runs[0] == runs[1] and ACCURACY_LINE.search(runs[0])
    assert "4 random crops (seed 2)" in runs[2]


@pytest.mark.slow
def test_cli_train_with_slashed_zeros_adds_them_to_the_training_set(tmp_path, capsys, mnist):
    out = tmp_path / "tiny.npz"
    assert main(["train", "--train-size", "300", "--val-size", "100", "--test-size", "100",
                 "--epochs", "1", "--slashed-zeros", "0.5", "--quiet", "--out", str(out)]) == 0
    zeros = int((mnist.y_train[:300] == 0).sum())
    assert f"on {300 + round(0.5 * zeros)} images" in capsys.readouterr().out
    info = serialization.read_header(out)["info"]
    assert info["recipe"]["slashed_zeros"] == 0.5 and "--slashed-zeros 0.5" in info["command"]
    with pytest.raises(SystemExit):
        main(["train", "--slashed-zeros", "2", "--out", str(out)])
    assert "between 0 and 1" in capsys.readouterr().err


def test_cli_evaluate_missing_file(tmp_path, capsys):
    assert main(["evaluate", str(tmp_path / "none.npz"), "--quiet"]) == 1
    assert f"no model file at {tmp_path / 'none.npz'}" in capsys.readouterr().err


def test_cli_help_mentions_every_option(capsys):
    for command, options in [("train", ["--epochs", "--batch-size", "--lr", "--momentum",
                                        "--weight-decay", "--schedule", "--seed",
                                        "--validate-every", "--full-train", "--out"]),
                             ("evaluate", ["--crops", "--seed"])]:
        with pytest.raises(SystemExit) as exit_:
            main([command, "--help"])
        assert exit_.value.code == 0
        text = capsys.readouterr().out
        assert all(option in text for option in options)


def test_cli_output_into_a_closed_pipe_ends_quietly(monkeypatch):
    # `python -m cnnlib evaluate ... | head -1`: the reader goes away; no traceback, exit code 1.
    import os
    import sys

    from cnnlib.__main__ import cli

    read_end, write_end = os.pipe()
    os.close(read_end)
    closed_pipe = os.fdopen(write_end, "w")
    monkeypatch.setattr(sys, "stdout", closed_pipe)
    monkeypatch.setattr(sys, "argv", ["cnnlib", "train", "--help"])
    try:
        assert cli() == 1
    finally:
        monkeypatch.undo()
        closed_pipe.close()


@pytest.mark.slow
def test_evaluate_prints_the_accuracy_of_the_crops_and_seed_asked_for(tmp_path, capsys, mnist):
    out = serialization.save_model(architectures.seed_net(rng=np.random.default_rng(0)), tmp_path / "n.npz")
    x, y = mnist.x_test[:300], mnist.y_test[:300]
    for crops, seed in [(1, 0), (4, 1), (4, 2)]:
        assert main(["evaluate", str(out), "--test-size", "300", "--crops", str(crops),
                     "--seed", str(seed), "--quiet"]) == 0
        printed = re.search(r"^test accuracy: (\S+)$", capsys.readouterr().out, re.M).group(1)
        expected = train.evaluate(serialization.load_model(out), x, y, crops=crops, seed=seed)
        assert printed == f"{expected:.4f}"


@pytest.mark.slow
def test_cli_train_with_average_last_reports_both_validations(tmp_path, capsys, mnist):
    out = tmp_path / "tiny.npz"
    assert main(["train", "--train-size", "300", "--val-size", "100", "--test-size", "100",
                 "--epochs", "1", "--average-last", "0.5", "--quiet", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "weights averaged over the last 8 steps (0.5 of the run)" in printed
    end = re.search(r"^validation accuracy of the end point, before averaging: (\S+)$",
                    printed, re.M)
    final = re.search(r"^validation accuracy: (\S+)$", printed, re.M)
    assert end and final and len(ACCURACY_LINE.findall(printed)) == 1
    info = serialization.read_header(out)["info"]
    assert info["recipe"]["average_last"] == 0.5 and "--average-last 0.5" in info["command"]
    assert f"{info['validation_accuracy']:.4f}" == final.group(1)


@pytest.mark.slow
def test_cli_train_with_workers_records_them(tmp_path, capsys, mnist):
    out = tmp_path / "tiny.npz"
    assert main(["train", "--train-size", "300", "--val-size", "100", "--test-size", "100",
                 "--epochs", "1", "--workers", "2", "--quiet", "--out", str(out)]) == 0
    assert "test accuracy:" in capsys.readouterr().out
    info = serialization.read_header(out)["info"]
    assert info["recipe"]["workers"] == 2 and "--workers 2" in info["command"]


# ------------------------------------------------------------------ train's options from Recipe

def _recipe_of(argv):
    args = build_parser().parse_args(["train", *argv])
    return args, train.Recipe(**{field.name: getattr(args, field.name)
                                 for field in dataclasses.fields(train.Recipe)})


def test_every_recipe_field_is_a_train_option_with_the_recipe_s_default():
    args, recipe = _recipe_of(["--out", "x.npz"])
    assert recipe == train.Recipe()
    for field in dataclasses.fields(train.Recipe):
        assert field.metadata["help"], field.name


def test_the_command_that_reproduces_a_run_gives_the_same_recipe():
    from cnnlib.__main__ import _train_command

    argv = ["--model", "deep", "--epochs", "2.5", "--batch-size", "64", "--lr", "0.02",
            "--momentum", "0", "--weight-decay", "5e-4", "--schedule", "cosine", "--augment",
            "elastic", "--slashed-zeros", "0.25", "--seed", "3", "--validate-every", "1000000",
            "--full-train", "--train-size", "300", "--val-size", "20", "--test-size", "7",
            "--average-last", "0.5", "--workers", "2", "--out", "y.npz"]
    args, recipe = _recipe_of(argv)
    command = _train_command(recipe, args)
    assert command == (
        "python -m cnnlib train --model deep --epochs 2.5 --batch-size 64 --lr 0.02 --momentum 0 "
        "--weight-decay 0.0005 --schedule cosine --seed 3 --validate-every 1000000 --augment "
        "elastic --slashed-zeros 0.25 --full-train --average-last 0.5 --workers 2 --train-size "
        "300 --val-size 20 --test-size 7 --out y.npz")
    again_args, again = _recipe_of(command.split()[4:])
    assert again == recipe and again_args.test_size == 7
    args, recipe = _recipe_of(["--out", "x.npz"])
    assert _train_command(recipe, args) == (
        "python -m cnnlib train --model seed --epochs 2 --batch-size 20 --lr 0.01 --momentum 0.9 "
        "--weight-decay 0 --schedule constant --seed 0 --validate-every 10000 --out x.npz")
