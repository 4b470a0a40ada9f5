"""``hfp8sim report [--quick] [--figures-only] [--out reports]``: regenerate the report gallery.

Runs the producers, then draws the gallery from their files (``hfp8sim.reports.gallery``):

1. the array-size sweep (``hfp8sim.sweep``) into ``reports/sweeps/array_size/``: ResNet-50, MobileNetV2,
   BERT-base, GPT-2 prefill (1024) and decode (context 1024) on the default core with 8x8 .. 256x256 arrays,
   dataflows os/ws/is, schemes hfp8 and fp16 (180 points; ``--quick``: 32x32, 128x128, 256x256, ws only);
2. the accumulation-numerics study (``hfp8sim.studies.accumulation``) into ``reports/numerics/``
   (``--quick``: 16x16 outputs, K up to 4096);
3. figures and ``reports/README.md``, including the fidelity and reference-chip results when their folders
   (``reports/fidelity/``, ``reports/chip/``, written by other commands) exist.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from .args import positive_int

WORKLOADS = ("resnet50", "mobilenet_v2", "bert_base_seq128", "gpt2_prefill1024", "gpt2_decode1024")
BASE_ARCH = "default"
FULL = {"array": "8x8,16x16,32x32,64x64,128x128,256x256", "dataflow": "os,ws,is", "scheme": "hfp8,fp16"}
QUICK = {"array": "32x32,128x128,256x256", "dataflow": "ws", "scheme": "hfp8,fp16"}
NUMERICS_FULL = {"size": 64, "max_k": 16384}
NUMERICS_QUICK = {"size": 16, "max_k": 4096}


def register(sub) -> None:
    p = sub.add_parser("report", help="regenerate the report gallery in reports/ (sweeps, numerics, figures, index)",
                       description="Reruns the array-size sweep (180 points; --quick: 6) and the accumulation-"
                                   "numerics study, draws every figure from their files and writes the index "
                                   "reports/README.md.  The fidelity, reference-chip and training sections are "
                                   "read from reports/fidelity, reports/chip and reports/training, which "
                                   "`hfp8sim fidelity`, `chip-report` and `train-report` write; rerun those first.")
    p.add_argument("--out", default="reports", help="gallery folder (default: reports)")
    p.add_argument("--quick", action="store_true",
                   help="a smaller sweep (32/128/256 arrays, ws only) and numerics study (K <= 4096)")
    p.add_argument("--figures-only", action="store_true",
                   help="no simulation: redraw the figures and the index from the result files already there")
    p.add_argument("--skip-sweep", action="store_true", help="keep the existing sweep results")
    p.add_argument("--skip-numerics", action="store_true", help="keep the existing numerics table")
    p.add_argument("--resume", action="store_true", help="keep sweep points already computed (points/<id>.json)")
    p.add_argument("--jobs", "-j", type=positive_int, default=None, help="local sweep processes (default: all CPUs)")
    p.add_argument("--scheduler", metavar="ADDRESS", help="run the sweep on a Dask cluster (tcp://HOST:PORT)")
    p.add_argument("--format", default="png,svg", help="figure formats (default: png,svg)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run_report)


def run_report(args: argparse.Namespace) -> int:
    from ..reports.gallery import ARRAY_SWEEP_DIR, NUMERICS_CSV, write_gallery

    from ..io.outputs import check_output_dir

    root = check_output_dir(args.out, "--out")
    formats = [f.strip().lower() for f in args.format.split(",") if f.strip()]
    timings: dict[str, float] = {}
    start = time.perf_counter()
    sweep_dir = root / ARRAY_SWEEP_DIR
    marker = sweep_dir / "gallery.json"
    if not (args.figures_only or args.skip_sweep):
        t = time.perf_counter()
        _run_array_sweep(sweep_dir, args)
        timings["sweep"] = time.perf_counter() - t
    if not (args.figures_only or args.skip_numerics):
        t = time.perf_counter()
        _run_numerics(root / NUMERICS_CSV, args.quick, progress=not args.no_progress and sys.stderr.isatty())
        timings["numerics"] = time.perf_counter() - t
    quick = json.loads(marker.read_text()).get("quick", False) if marker.is_file() else args.quick
    t = time.perf_counter()
    gallery = write_gallery(root, formats=formats, quick=quick)
    timings["figures"] = time.perf_counter() - t
    print(f"wrote {gallery.readme}: {len(gallery.figures)} figures ({', '.join(gallery.sections) or 'none'})")
    for note in gallery.notes:
        print(f"note: {note}")
    print("time: " + ", ".join(f"{k} {v:.1f} s" for k, v in timings.items())
          + f", total {time.perf_counter() - start:.1f} s")
    return 0


def _run_array_sweep(sweep_dir: Path, args: argparse.Namespace) -> None:
    from ..errors import Hfp8SimError
    from ..reports.gallery import REFERENCE_POINT
    from ..sweep import POINTS_DIR, build_sweep, run_sweep

    grid = QUICK if args.quick else FULL
    sweep = build_sweep(BASE_ARCH, list(WORKLOADS), **grid)
    print(f"report: array-size sweep, {len(sweep.points)} points -> {sweep_dir}", file=sys.stderr)
    result = run_sweep(sweep, sweep_dir, jobs=args.jobs, scheduler=args.scheduler, resume=args.resume,
                       progress=False if args.no_progress else None)
    keep = {p.point_id for p in sweep.points}
    for path in (sweep_dir / POINTS_DIR).glob("*.json"):
        if path.stem not in keep:  # points of an earlier, different gallery grid
            path.unlink()
    # The per-point JSONs are large (every layer of every point); only the default-core points that the
    # rooflines read are meant for version control, so `report --figures-only` works from a clean checkout.
    reference = [row["point_id"] for row in result.rows
                 if all(row.get(key) == value for key, value in REFERENCE_POINT.items())]
    (sweep_dir / POINTS_DIR / ".gitignore").write_text(
        "# written by hfp8sim report: keep only the points the rooflines read\n*.json\n"
        + "".join(f"!{point_id}.json\n" for point_id in sorted(reference)))
    (sweep_dir / "gallery.json").write_text(json.dumps({"quick": args.quick, "base_arch": BASE_ARCH,
                                                        "workloads": list(WORKLOADS), **grid}, indent=1) + "\n")
    if result.failed or result.lost:
        raise Hfp8SimError(f"{len(result.failed) + len(result.lost)} sweep points failed; see the error column of "
                           f"{sweep_dir / 'points.csv'}")
    print(f"report: sweep done in {result.wall_s:.1f} s ({result.mode})", file=sys.stderr)


def _run_numerics(csv_path: Path, quick: bool, progress: bool) -> None:
    from ..studies.accumulation import K_VALUES, run_accumulation_study, write_points

    params = NUMERICS_QUICK if quick else NUMERICS_FULL
    points = run_accumulation_study(m=params["size"], n=params["size"],
                                    k_values=[k for k in K_VALUES if k <= params["max_k"]], progress=progress)
    write_points(points, csv_path)
