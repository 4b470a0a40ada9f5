"""``hfp8sim fidelity --out reports/fidelity``: FP32-trained MiniLM and EfficientNet-Lite0 mapped straight onto
each scheme, compared with float32 (CSV, Markdown table and findings, figure)."""

from __future__ import annotations

import argparse
import time
from .args import positive_int


def register(sub) -> None:
    p = sub.add_parser("fidelity", help="inference without retraining: real networks on each scheme vs float32",
                       description="Real trained networks (MiniLM on real sentences, EfficientNet-Lite0 on real "
                                   "photos) run through the bit-accurate datapath in each scheme with FP32 weights "
                                   "mapped straight to FP8/FP16, compared with float32; regenerates "
                                   "reports/fidelity/ (expect several minutes on 2 cores).")
    p.add_argument("--out", default="reports/fidelity", help="output folder (default: reports/fidelity)")
    p.add_argument("--arch", help="arch config file or shipped name (default: the shipped default core)")
    p.add_argument("--sentences", type=positive_int, default=200,
                   help="MiniLM: real sentences (default 200)")
    p.add_argument("--no-pair-check", action="store_true",
                   help="skip the EfficientNet case with the FMMA pair mode on (the slowest case)")
    p.add_argument("--report-only", action="store_true",
                   help="rewrite fidelity.md and the figure from the CSVs already in --out, without simulating")
    p.set_defaults(func=run_fidelity)


def run_fidelity(args: argparse.Namespace) -> int:
    from ..errors import Hfp8SimError
    from ..reports.fidelity import write_fidelity_report

    from ..io.outputs import check_output_dir

    out = check_output_dir(args.out, "--out")  # before minutes of simulation, not after
    start = time.perf_counter()
    if args.report_only:
        if not (out / "fidelity.csv").is_file():
            raise Hfp8SimError(f"{out / 'fidelity.csv'}: not found; run `hfp8sim fidelity --out {out}` first")
    else:
        from ..studies.fidelity import default_cases, run_fidelity_study

        run_fidelity_study(out, arch=args.arch, sentences=args.sentences,
                           cases=default_cases(pair_check=not args.no_pair_check))
    written = write_fidelity_report(out)
    tables = [] if args.report_only else [out / "fidelity.csv", out / "fidelity_layers.csv", out / "fidelity_run.json"]
    print(f"wrote {', '.join(str(p) for p in tables + written)} in {time.perf_counter() - start:.0f} s")
    return 0
