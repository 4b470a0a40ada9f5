"""Argument types shared by the subcommands."""

from __future__ import annotations

import argparse


def _int_at_least(text: str, low: int, what: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
    if value < low:
        raise argparse.ArgumentTypeError(f"expected {what}, got {value}")
    return value


def positive_int(text: str) -> int:
    return _int_at_least(text, 1, "a positive integer")


def positive_int_list(text: str) -> list[int]:
    """Comma-separated positive integers (a sweep axis), e.g. ``8,16,32``."""
    values = [positive_int(part.strip()) for part in text.split(",") if part.strip()]
    if not values:
        raise argparse.ArgumentTypeError(f"expected comma-separated positive integers, got {text!r}")
    return values


def non_negative_int(text: str) -> int:
    return _int_at_least(text, 0, "an integer >= 0")


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}") from None
    if not 0 < value < float("inf"):  # also refuses nan and inf
        raise argparse.ArgumentTypeError(f"expected a positive finite number, got {text!r}")
    return value


def name_list(text: str) -> list[str]:
    """A comma-separated list of names with at least one name (``--compare ""`` or ``,`` is a mistake)."""
    names = [part.strip() for part in text.split(",") if part.strip()]
    if not names:
        raise argparse.ArgumentTypeError(f"expected comma-separated names, e.g. hfp8,fp16, got {text!r}")
    return names


def add_formats_option(parser: argparse.ArgumentParser) -> None:
    """``--formats FILE`` (repeatable): format libraries whose formats and schemes the command may name."""
    parser.add_argument("--formats", action="append", default=[], metavar="FILE",
                        help="YAML format library to load first (repeatable), so --scheme and the arch config "
                             "may name its formats and schemes (see `hfp8sim formats --file`)")


def load_format_files(paths: list[str]) -> None:
    """Register the format libraries given with ``--formats`` (a bad file fails here, located)."""
    from ..config import load_format_library

    for path in paths:
        load_format_library(path)
