"""``hfp8sim distributed-report [--out reports/distributed]``: IBM's HFP8 distributed-training claim, measured."""

from __future__ import annotations

import argparse
import sys


def register(sub) -> None:
    p = sub.add_parser("distributed-report",
                       help="HFP8 protocol vs FP16/FP32 all-reduce on 2..1,024 chips, beside the published 30-60%%",
                       description="Simulates ResNet-50 and BERT-base training steps (32 samples per chip) on the "
                                   "default core, then data-parallel steps on rings of 2 to 1,024 chips at 1.25 to "
                                   "100 GB/s links (and a torus and a hierarchical system) under the HFP8 protocol, "
                                   "FP16 and FP32 all-reduce and an all-FP16 reference system; writes the table, "
                                   "the decomposition of the saving, a figure and a Markdown report beside the "
                                   "published 30-60%% (32-38%% on ResNet-50).  About 2 minutes of CPU.")
    p.add_argument("--out", default="reports/distributed", help="output folder (default: reports/distributed)")
    p.set_defaults(func=run_distributed_report)


def run_distributed_report(args: argparse.Namespace) -> int:
    from ..io.outputs import check_output_dir
    from ..reports.distributed import write_distributed_report
    from ..studies.distributed_claim import ClaimStudy, decompose, run_claim_study, write_claim_study

    out = check_output_dir(args.out, "--out")
    study = ClaimStudy()
    rows = run_claim_study(study, progress=lambda line: print(f"  {line}", file=sys.stderr))
    written = [*write_claim_study(rows, study, out), *write_distributed_report(out)]
    print("wrote " + ", ".join(str(path) for path in written))
    for part in decompose(rows):
        if part["topology"] == "ring" and part["chips"] == 64 and part["baseline"] != "fp16_chip":
            print(f"  {part['workload']} 64 chips {part['link_gb_per_s']:g} GB/s: HFP8 {part['reduction']:.1%} "
                  f"shorter than {part['baseline']}")
    return 0
