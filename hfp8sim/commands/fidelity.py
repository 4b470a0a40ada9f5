"""``hfp8sim fidelity --out reports/fidelity``: FP32-trained MiniLM and EfficientNet-Lite0, and the CNN and
character transformer trained here in FP32, mapped straight onto each scheme, compared with float32 (CSV,
Markdown table and findings, figure)."""

from __future__ import annotations

import argparse
import sys
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
    part = p.add_mutually_exclusive_group()
    part.add_argument("--trained-only", action="store_true",
                      help="run only the networks trained here in FP32 (Fashion-MNIST CNN on the 10,000 test images, "
                           "character transformer on the held-out text); MiniLM/EfficientNet results in --out are kept")
    part.add_argument("--no-trained", action="store_true",
                      help="run only MiniLM and EfficientNet-Lite0 (results of the trained networks in --out are kept)")
    p.add_argument("--retrain", action="store_true",
                   help="train the FP32 CNN and transformer again even when their weights (trained_fp32_*.npz in --out) "
                        "match their config")
    p.add_argument("--report-only", action="store_true",
                   help="rewrite fidelity.md and the figure from the CSVs already in --out, without simulating")
    p.set_defaults(func=run_fidelity)


def run_fidelity(args: argparse.Namespace) -> int:
    from ..errors import Hfp8SimError
    from ..reports.fidelity import write_fidelity_report
    from ..reports.fidelity_trained import RESULTS_FILE, write_trained_only_report

    from ..io.outputs import check_output_dir

    out = check_output_dir(args.out, "--out")  # before minutes of simulation, not after
    start = time.perf_counter()
    tables = []
    if args.report_only:
        if not (out / "fidelity.csv").is_file() and not (out / RESULTS_FILE).is_file():
            raise Hfp8SimError(f"{out / 'fidelity.csv'}: not found; run `hfp8sim fidelity --out {out}` first")
    if not args.report_only and not args.trained_only:
        from ..studies.fidelity import default_cases, run_fidelity_study

        run_fidelity_study(out, arch=args.arch, sentences=args.sentences,
                           cases=default_cases(pair_check=not args.no_pair_check))
        tables += [out / "fidelity.csv", out / "fidelity_layers.csv", out / "fidelity_run.json"]
    if not args.report_only and not args.no_trained:
        from ..studies.fidelity_trained import run_trained_study

        paths = run_trained_study(out, arch=args.arch, retrain=args.retrain,
                                  progress=lambda line: print(line, file=sys.stderr, flush=True))
        tables += list(paths.values())
    written = write_fidelity_report(out) if (out / "fidelity.csv").is_file() else [write_trained_only_report(out)]
    print(f"wrote {', '.join(str(p) for p in tables + written)} in {time.perf_counter() - start:.0f} s")
    return 0
