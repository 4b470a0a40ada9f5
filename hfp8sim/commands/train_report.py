"""``hfp8sim train-report [--quick] [--out reports/training] [--jobs N] [--report-only]``: the training study
(every scheme trains the MLP, the depthwise CNN and the character transformer from the same seeds on the
bit-accurate datapath), then its report (curves, table with the spread over seeds, loss scale, underflow)."""

from __future__ import annotations

import argparse
import sys
import time

from .args import positive_int


def register(sub) -> None:
    p = sub.add_parser("train-report", help="training study: every scheme on the same networks and seeds, and its "
                                            "report (reports/training)",
                       description=__doc__.split("\n\n")[0].replace("``", "'"))
    p.add_argument("--out", default="reports/training", help="output folder (default: reports/training)")
    p.add_argument("--quick", action="store_true",
                   help="test-sized study (digits, a few steps per run); its report says so")
    p.add_argument("--jobs", type=positive_int, default=1, help="runs in parallel, one process each (default 1)")
    p.add_argument("--seeds", type=positive_int, default=3, help="seeds 0..N-1 per task and scheme (default 3)")
    p.add_argument("--rerun", action="store_true",
                   help="train every run again (by default a run whose record for the same config is in --out "
                        "is kept)")
    p.add_argument("--report-only", action="store_true",
                   help="rewrite the report from the records already in --out, without training")
    p.set_defaults(func=run_train_report)


def run_train_report(args: argparse.Namespace) -> int:
    from ..io.outputs import check_output_dir
    from ..reports.training import write_training_report

    out = check_output_dir(args.out, "--out")  # before 40 minutes of training, not after
    start = time.perf_counter()
    if not args.report_only:
        from ..studies.training import full_study, quick_study, run_training_study

        seeds = tuple(range(args.seeds))
        study = quick_study(seeds) if args.quick else full_study(seeds)
        print(f"training study ({study.name}): {len(study.runs())} runs, {args.jobs} job(s) -> {out}",
              file=sys.stderr, flush=True)
        records = run_training_study(out, study, jobs=args.jobs, resume=not args.rerun,
                                     progress=lambda line: print("  " + line, file=sys.stderr, flush=True))
        failed = [r["run"] for r in records if r.get("error") is not None]
        if failed:
            print(f"  {len(failed)} run(s) failed (recorded in the report): {', '.join(failed)}", file=sys.stderr)
    written = write_training_report(out)
    print(f"wrote {', '.join(str(p) for p in written)} in {time.perf_counter() - start:.0f} s")
    return 0
