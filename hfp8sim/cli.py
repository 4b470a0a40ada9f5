"""The ``hfp8sim`` command line: thin subcommands over the public API (one module each in ``commands``).

User mistakes (a bad name, a YAML typo, a missing file) arrive as :class:`~hfp8sim.errors.Hfp8SimError`
and leave as one line on stderr with exit code 2; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from . import __version__
from .commands import COMMAND_MODULES
from .errors import Hfp8SimError

EXIT_USAGE = 2


class _Parser(argparse.ArgumentParser):
    """argparse that reports a usage mistake in one line (its default prints the whole usage block)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="hfp8sim", description="Cycle-level, bit-accurate simulator of an FP8 (HFP8) AI core.")
    parser.add_argument("--version", action="version", version=f"hfp8sim {__version__}")
    sub = parser.add_subparsers(dest="command", parser_class=_Parser)
    for module in COMMAND_MODULES:
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        args = parser.parse_args(["run", *(argv or [])])
    try:
        return int(args.func(args) or 0)
    except Hfp8SimError as exc:
        print(f"hfp8sim: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except BrokenPipeError:  # `hfp8sim formats | head`
        return 0


if __name__ == "__main__":
    sys.exit(main())
