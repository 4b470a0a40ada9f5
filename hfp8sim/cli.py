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


def _cmd_numerics(args: argparse.Namespace) -> int:
    from pathlib import Path

    from .reports.numerics import plot_accumulation_error
    from .studies.accumulation import K_VALUES, run_accumulation_study, write_points

    if args.max_k < K_VALUES[0]:
        raise Hfp8SimError(f"--max-k must be at least {K_VALUES[0]}, got {args.max_k}")
    out = Path(args.out)
    points = run_accumulation_study(m=args.size, n=args.size, k_values=[k for k in K_VALUES if k <= args.max_k],
                                    seed=args.seed)
    table = write_points(points, out / "accumulation_error.csv")
    figures = plot_accumulation_error(table, out / "accumulation_error")
    print(f"wrote {table} and {', '.join(str(f) for f in figures)}")
    k_max = max(p.k for p in points)
    print(f"relative error at K={k_max}, all-positive operands:")
    for p in points:
        if p.k == k_max and p.distribution == "positive" and p.order in ("os chain", "os chunk 64", "ws 128 rows"):
            print(f"  {p.acc_format:<10} {p.order:<12} {p.rel_error:.2e}")
    return 0


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


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

    p = sub.add_parser("numerics", help="accumulation error versus K by dataflow and accumulator (figure + CSV)")
    p.add_argument("--out", default="reports/numerics", help="output folder (default: reports/numerics)")
    p.add_argument("--size", type=_positive_int, default=64, help="M = N of each GEMM (default 64)")
    p.add_argument("--max-k", type=_positive_int, default=16384, help="largest reduction length (default 16384)")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=_cmd_numerics)

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
