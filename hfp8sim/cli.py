"""The ``hfp8sim`` command line: thin subcommands over the public API.

User mistakes (a bad name, a YAML typo, a missing file) arrive as :class:`~hfp8sim.errors.Hfp8SimError`
and leave as one line on stderr with exit code 2; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from . import __version__
from .errors import Hfp8SimError

EXIT_USAGE = 2


class _Parser(argparse.ArgumentParser):
    """argparse that reports a usage mistake in one line (its default prints the whole usage block)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _cmd_formats(args: argparse.Namespace) -> int:
    from .config import load_format_library
    from .formats import get_scheme, scheme_names
    from .formats.finfo import format_table

    for path in args.file or []:
        load_format_library(path)
    print(format_table(args.names or None))
    if not args.names:
        print()
        print("schemes (forward / backward / accumulate):")
        for name in scheme_names():
            s = get_scheme(name)
            print(f"  {name:<10} {s.forward.name} / {s.backward.name} / {s.accumulate.name}  - {s.description}")
    return 0


def _cmd_run(args: argparse.Namespace) -> int:
    # Until the timing model lands, the main job is the format reference every later figure rests on.
    ns = argparse.Namespace(file=None, names=None)
    return _cmd_formats(ns)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="hfp8sim", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"hfp8sim {__version__}")
    sub = parser.add_subparsers(dest="command", parser_class=_Parser)

    p = sub.add_parser("formats", help="table of number formats and schemes")
    p.add_argument("names", nargs="*", help="formats to show (default: all registered)")
    p.add_argument("--file", action="append", help="YAML format library to load first (repeatable)")
    p.set_defaults(func=_cmd_formats)

    p = sub.add_parser("run", help="run the main job on the embedded default")
    p.set_defaults(func=_cmd_run)
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
