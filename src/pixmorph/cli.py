"""The `pixmorph` command: one subcommand per module in pixmorph.commands."""

from __future__ import annotations

import argparse
import logging
import sys

from pixmorph.commands import (
    data,
    demo,
    evaluate,
    export,
    generate,
    import_weights,
    project,
    report,
    serve,
    train,
    translate,
)
from pixmorph.commands.console import setup_logging
from pixmorph.errors import CheckpointError, ConfigError, DataError
from pixmorph.version import __version__

COMMANDS = [
    train,
    translate,
    generate,
    project,
    evaluate,
    report,
    import_weights,
    export,
    data,
    demo,
    serve,
]
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every subcommand."""
    parser = argparse.ArgumentParser(
        prog="pixmorph",
        description="GAN image-to-image translation: train, translate, evaluate.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"pixmorph {__version__}")
    parser.add_argument("-q", "--quiet", action="store_true", help="only warnings and errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module in COMMANDS:
        module.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the console script and of `python -m pixmorph`."""
    parser = build_parser()
    # key=value overrides may stand between flags; argparse leaves the later ones over
    args, extra = parser.parse_known_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    if extra:
        if not hasattr(args, "items") or any(x.startswith("-") for x in extra):
            parser.error(f"unrecognized arguments: {' '.join(extra)}")
        args.items = list(args.items) + extra
    setup_logging(logging.WARNING if args.quiet else logging.INFO)
    try:
        return int(args.run(args) or 0)
    except (ConfigError, DataError, CheckpointError, FileExistsError) as e:
        print(f"pixmorph {args.command}: error: {e}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print(f"pixmorph {args.command}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
