"""``hfp8sim run``: the main job on the embedded default."""

from __future__ import annotations

import argparse


def register(sub) -> None:
    p = sub.add_parser("run", help="run the main job on the embedded default")
    p.set_defaults(func=run_main_job)


def run_main_job(args: argparse.Namespace) -> int:
    # Until the timing model lands, the main job is the format reference every later figure rests on.
    from .formats import run_formats

    return run_formats(argparse.Namespace(file=None, names=None))
