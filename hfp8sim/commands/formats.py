"""``hfp8sim formats``: the table of number formats and schemes."""

from __future__ import annotations

import argparse


def register(sub) -> None:
    p = sub.add_parser("formats", help="table of number formats and schemes")
    p.add_argument("names", nargs="*", help="formats to show (default: all registered)")
    p.add_argument("--file", action="append", help="YAML format library to load first (repeatable)")
    p.set_defaults(func=run_formats)


def run_formats(args: argparse.Namespace) -> int:
    from ..config import load_format_library
    from ..formats import get_scheme, scheme_names
    from ..formats.finfo import format_table

    for path in args.file or []:
        load_format_library(path)
    print(format_table(args.names or None))
    if not args.names:
        print()
        print("schemes (forward / backward / accumulate):")
        for name in scheme_names():
            s = get_scheme(name)
            print(f"  {name:<10} {s.forward.name} / {s.backward_name or '-'} / {s.accumulate.name}  - {s.description}")
    return 0
