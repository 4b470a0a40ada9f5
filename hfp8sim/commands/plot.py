"""``hfp8sim plot RESULTS [--out DIR] [--x KEY] [--format png,svg]``: figures from result files alone.

``RESULTS`` is a sweep folder (``points.csv``), a run folder (``layers.csv`` + ``summary.json``), a folder of
run folders (``hfp8sim run --compare``) or one sweep point (``points/<id>.json``); every figure that applies is
written (PNG and SVG) and the ones that do not are listed with the reason.
"""

from __future__ import annotations

import argparse


def register(sub) -> None:
    p = sub.add_parser("plot", help="figures from sweep or run results (throughput, utilisation, roofline, ...)")
    p.add_argument("results", help="sweep folder, run folder, folder of runs, or points/<id>.json")
    p.add_argument("--out", help="output folder (default: RESULTS/plots)")
    p.add_argument("--x", help="sweep column on the x axis (default: the array size when it varies, else the "
                               "first swept number)")
    p.add_argument("--format", default="png,svg", help="comma-separated figure formats (default: png,svg)")
    p.set_defaults(func=run_plot)


def run_plot(args: argparse.Namespace) -> int:
    from ..io.outputs import check_output_dir
    from ..reports.plots import plot_results

    if args.out:
        check_output_dir(args.out, "--out")
    formats = [f.strip().lower() for f in args.format.split(",") if f.strip()]
    report = plot_results(args.results, args.out, x=args.x, formats=formats)
    for figure in report.figures:
        print(f"{', '.join(str(p) for p in figure.paths)}")
        print(f"  {figure.caption}")
    for note in report.notes:
        print(f"note: {note}")
    print(f"{len(report.figures)} figures from the {report.kind} results in {args.results}")
    return 0
