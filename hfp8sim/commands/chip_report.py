"""``hfp8sim chip-report``: the reference chip at its published operating points versus the published figures."""

from __future__ import annotations

import argparse
import sys


def register(sub) -> None:
    p = sub.add_parser("chip-report", help="IBM-like 4-core reference chip vs published TFLOPS and TFLOPS/W",
                       description="Simulates the IBM-like 4-core reference chip (arch_configs/ibm_like_4core.yaml) "
                                   "at its two published operating points on a dense GEMM and real networks, and "
                                   "writes reports/chip/: simulated against published TFLOPS and TFLOPS/W, with "
                                   "the ratios.")
    p.add_argument("--out", default="reports/chip", help="output folder (default: reports/chip)")
    p.set_defaults(func=run_chip_report)


def run_chip_report(args: argparse.Namespace) -> int:
    from ..reports.chip import write_chip_report
    from ..studies.chip import comparisons, run_chip_study, write_chip_study

    from ..io.outputs import check_output_dir

    out = check_output_dir(args.out, "--out")
    points = run_chip_study(progress=lambda line: print(f"  {line}", file=sys.stderr))
    table, compare = write_chip_study(points, out)
    written = write_chip_report(table, compare, out)
    print(f"wrote {table}, {compare}, " + ", ".join(str(p) for p in written))
    for row in comparisons(points):
        print(f"  {row['quantity']}: simulated {row['simulated']:.3g}, published {row['published']:.3g}, "
              f"ratio {row['ratio_simulated_to_published']:.2f}")
    return 0
