"""``hfp8sim numerics``: accumulation error versus K by dataflow and accumulator (CSV + figure)."""

from __future__ import annotations

import argparse
import sys
from ..errors import Hfp8SimError
from .args import non_negative_int, positive_int


def register(sub) -> None:
    p = sub.add_parser("numerics", help="accumulation error versus K by dataflow and accumulator (figure + CSV)",
                       description="Accumulation error versus the reduction length K of FP8 GEMMs on the datapath, "
                                   "by dataflow (os chain, os chunks, ws folds) and accumulator (float16, "
                                   "dlfloat16), against an exact float64 reference: a CSV and a figure.")
    p.add_argument("--out", default="reports/numerics", help="output folder (default: reports/numerics)")
    p.add_argument("--size", type=positive_int, default=64, help="M = N of each GEMM (default 64)")
    p.add_argument("--max-k", type=positive_int, default=16384, help="largest reduction length (default 16384)")
    p.add_argument("--seed", type=non_negative_int, default=0,
                   help="seed of the random operands (default 0; the same seed gives the same table)")
    p.set_defaults(func=run_numerics)


def run_numerics(args: argparse.Namespace) -> int:
    from ..reports.numerics import plot_accumulation_error
    from ..studies.accumulation import K_VALUES, run_accumulation_study, write_points

    if args.max_k < K_VALUES[0]:
        raise Hfp8SimError(f"--max-k must be at least {K_VALUES[0]}, got {args.max_k}")
    from ..io.outputs import check_output_dir

    out = check_output_dir(args.out, "--out")
    points = run_accumulation_study(m=args.size, n=args.size, k_values=[k for k in K_VALUES if k <= args.max_k],
                                    seed=args.seed, progress=sys.stderr.isatty())  # no \r in logs
    table = write_points(points, out / "accumulation_error.csv")
    figures = plot_accumulation_error(table, out / "accumulation_error")
    print(f"wrote {table} and {', '.join(str(f) for f in figures)}")
    k_max = max(p.k for p in points)
    print(f"relative error at K={k_max}, all-positive operands:")
    for p in points:
        if p.k == k_max and p.distribution == "positive" and p.order in ("os chain", "os chunk 64", "ws 128 rows"):
            print(f"  {p.acc_format:<10} {p.order:<12} {p.rel_error:.2e}")
    return 0
