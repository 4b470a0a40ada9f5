"""``hfp8sim sweep ARCH WORKLOAD [--array 8x8,16x16] [--set KEY=V1,V2 ...] [--dataflow os,ws,is]
[--scheme hfp8,fp16] [--zip] [--jobs N | --scheduler tcp://HOST:PORT] [--resume] --out DIR``.

Every combination of the listed values (or, with ``--zip``, the lists side by side) is one point: the arch
config with those keys set, simulated on the workload.  Points run in local processes (``--jobs``, default
every CPU) or on a Dask distributed cluster (``--scheduler``; needs ``pip install 'hfp8sim[cluster]'``), and are
written as they finish: ``DIR/points.csv`` (one row per point), ``DIR/points/<id>.json`` (summary, layers and
resolved config of one point) and ``DIR/sweep.json`` (the grid).  Exit code 0 when every point ran, 1 when
some points failed (they are in the results with their error), 2 for a mistake in the command.
"""

from __future__ import annotations

import argparse
import os
import sys

from .args import add_formats_option, positive_float, positive_int
from .run import add_training_options


def register(sub) -> None:
    p = sub.add_parser(
        "sweep", help="run a grid of arch configs (array size, dataflow, scheme, any key) in parallel",
        description="Run a grid of points (arch config overrides x workloads) in local processes or on Dask. "
                    "Lists are comma-separated; the axes are crossed unless --zip.",
        epilog="Writes OUT/points.csv (one row per finished point: swept keys, workload/arch/scheme/rows/cols/"
               "dataflow, cycles, seconds, TMAC/s, TFLOPS, inferences/s, utilisation, stall and DRAM figures, "
               "energy_*_pj when present, status, error), OUT/points/<id>.json (summary, every layer, resolved "
               "config) and OUT/sweep.json (the grid), as points finish.  Exit code 0: every point ran; 1: some "
               "points failed (recorded with their error); 2: a mistake in the command.  "
               "Example: hfp8sim sweep default resnet50 --array 8,16,32,64,128 --dataflow os,ws,is "
               "--scheme hfp8,fp16 --out out/resnet_sweep",
    )
    p.add_argument("arch", help="arch config file or shipped name (comma-separated for several)")
    p.add_argument("workload", help="workload file or shipped name (comma-separated for several)")
    p.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=V1,V2",
                   help="sweep a dotted arch config key, e.g. array.rows=8,16,32 or dram.bw_gb_per_s=51.2,102.4 "
                        "(repeatable; setting dram.bw_gb_per_s drops dram.bw_bytes_per_cycle and vice versa)")
    p.add_argument("--array", metavar="RxC,...", help="array shapes, e.g. 8x8,16x16,32x32 (sets array.rows and "
                                                      "array.cols; 8,16 means squares)")
    p.add_argument("--dataflow", metavar="LIST", help="dataflows, e.g. os,ws,is (sets array.dataflow)")
    p.add_argument("--scheme", metavar="LIST", help="precision schemes, e.g. hfp8,fp16 (sets scheme)")
    p.add_argument("--scratchpads-kib", metavar="LIST",
                   help="size of each of the three scratchpads in KiB, e.g. 256,512,1024")
    p.add_argument("--cores", metavar="LIST", help="core counts, e.g. 1,2,4 (sets chip.cores)")
    p.add_argument("--zip", dest="zipped", action="store_true",
                   help="zip the lists (the i-th values together; one-value lists repeat) instead of crossing them")
    p.add_argument("--out", default="out/sweep", help="output folder (default: out/sweep)")
    p.add_argument("--jobs", "-j", type=positive_int, default=None,
                   help="local worker processes (default: every CPU; 1 runs the points in this process)")
    p.add_argument("--scheduler", metavar="ADDRESS",
                   help="run on a Dask distributed cluster, e.g. tcp://10.0.0.5:8786 (workers need hfp8sim)")
    p.add_argument("--connect-timeout", type=positive_float, default=10.0, metavar="S",
                   help="seconds to wait for the Dask scheduler and a worker (default 10)")
    p.add_argument("--resume", action="store_true", help="skip the points whose points/<id>.json exists")
    p.add_argument("--retry-failed", action="store_true", help="with --resume: rerun the points that failed")
    p.add_argument("--limit", type=positive_int, default=None, metavar="N",
                   help="run at most N of the remaining points and stop (finish later with --resume)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar (default: shown on a terminal)")
    add_training_options(p, sweep=True)
    group = p.add_argument_group(
        "data-parallel training across chips",
        "Any of these makes every point one data-parallel training step on N chips: one chip's training step "
        "on the point's arch (--batch is then per chip, default 32), then the reduced SimPy model of the network "
        "(docs/distributed.md).  Lists are axes like the others; other keys of the system with --set "
        "distributed.KEY=... (link_latency_us, bucket_mib, chunks, chips_per_node, inter_gb_per_s, "
        "inter_latency_us).  Rows add step_ms, compute_ms, exposed_comm_ms, overlapped_comm_ms, update_ms, "
        "wire_bytes_per_param, samples_per_second, per_chip_batch and global_batch.")
    group.add_argument("--chips", metavar="LIST", help="chip counts N, e.g. 8,64,1024 (2 to 4096)")
    group.add_argument("--topology", metavar="LIST", help="ring, torus2d, hierarchical (default ring)")
    group.add_argument("--link-gb-per-s", metavar="LIST", help="link bandwidth per direction, GB/s (default 25)")
    group.add_argument("--protocol", metavar="LIST",
                       help="hfp8, fp16_allreduce, fp32_allreduce (default: all three)")
    group.add_argument("--global-batch", metavar="LIST",
                       help="samples per step over all chips (strong scaling; a point whose batch does not divide "
                            "by its chips fails alone); instead of --batch")
    add_formats_option(p)
    p.set_defaults(func=run_sweep_command)


def run_sweep_command(args: argparse.Namespace) -> int:
    from ..io.outputs import check_output_dir
    from ..sweep import DATA_PARALLEL_SHORTCUTS, Training, build_sweep, run_sweep

    check_output_dir(args.out, "--out")
    sweep = build_sweep(args.arch, args.workload, sets=args.sets, array=args.array, dataflow=args.dataflow,
                        scheme=args.scheme, scratchpads_kib=args.scratchpads_kib, cores=args.cores,
                        zipped=args.zipped, format_libraries=args.formats,
                        training=Training(args.train, tuple(args.batch or ()), args.optimizer, args.update_rule,
                                          first_last_fp16=args.first_last_fp16),
                        data_parallel={name: getattr(args, name) for name in DATA_PARALLEL_SHORTCUTS})
    where = f"Dask scheduler {args.scheduler}" if args.scheduler else (
        "this process" if args.jobs == 1 else f"{args.jobs or os.cpu_count()} local processes")
    extra = f" ({sweep.duplicates} duplicate points dropped)" if sweep.duplicates else ""
    print(f"sweep: {len(sweep.points)} points ({', '.join(sweep.networks)}; "
          f"{' x '.join(f'{len(a.values)} {a.label}' for a in sweep.axes) or 'the base config'}"
          f"{', zipped' if sweep.zipped and sweep.axes else ''}) on {where}{extra}", file=sys.stderr)
    try:
        result = run_sweep(sweep, args.out, jobs=args.jobs, scheduler=args.scheduler, resume=args.resume,
                           retry_failed=args.retry_failed, limit=args.limit,
                           progress=False if args.no_progress else None, connect_timeout=args.connect_timeout)
    except KeyboardInterrupt:
        print(f"\nhfp8sim: interrupted; finished points are in {args.out}/points; rerun with --resume to finish",
              file=sys.stderr)
        return 130
    ok = len(result.rows) - len(result.failed) - len(result.lost)
    print(f"wrote {result.out_dir / 'points.csv'}: {len(result.rows)} of {len(sweep.points)} points "
          f"({ok} ok, {len(result.failed)} failed; {len(result.computed)} run, {len(result.skipped)} found done) "
          f"in {result.wall_s:.1f} s")
    by_id = {p.point_id: p for p in sweep.points}
    for point_id in (result.failed + result.lost)[:10]:
        row = next(r for r in result.rows if r["point_id"] == point_id)
        params = " ".join(f"{k}={v}" for k, v in by_id[point_id].params.items())
        print(f"  failed {point_id} {by_id[point_id].workload} {params}: {row['error']}")
    if len(result.failed) + len(result.lost) > 10:
        print(f"  ... {len(result.failed) + len(result.lost) - 10} more (see the error column of points.csv)")
    if result.lost:
        print(f"  {len(result.lost)} points lost with their worker: rerun with --resume")
    if result.not_run:
        print(f"  {len(result.not_run)} points not run yet: rerun with --resume")
    _print_best(result.rows)
    return 1 if result.failed or result.lost else 0


def _print_best(rows) -> None:
    best: dict[str, dict] = {}
    for row in rows:
        if row.get("status") != "ok":
            continue
        if "samples_per_second" in row:
            _print_best_data_parallel([r for r in rows if r.get("status") == "ok"])
            return
        name = row["workload"]
        if name not in best or row["tera_macs_per_second"] > best[name]["tera_macs_per_second"]:
            best[name] = row
    for name, row in best.items():
        print(f"  fastest {name}: {row['tera_macs_per_second']:.2f} TMAC/s, {row['seconds'] * 1e3:.3f} ms "
              f"({row['rows']}x{row['cols']} {row['dataflow']} {row['scheme']}, util {row['utilization']:.1%})")


def _print_best_data_parallel(rows) -> None:
    """Per workload and chip count, the system with the most samples per second."""
    best: dict[tuple, dict] = {}
    for row in rows:
        key = (row["workload"], row["chips"])
        if key not in best or row["samples_per_second"] > best[key]["samples_per_second"]:
            best[key] = row
    for (name, chips), row in sorted(best.items(), key=lambda item: (item[0][0], item[0][1])):
        print(f"  fastest {name} on {chips} chips: {row['samples_per_second']:,.0f} samples/s, step "
              f"{row['step_ms']:.3f} ms ({row['protocol']}, {row['topology']} {row['link_gb_per_s']:g} GB/s, "
              f"batch {row['per_chip_batch']}/chip; exposed communication {row['exposed_comm_ms']:.3f} ms)")
