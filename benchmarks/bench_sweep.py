"""Sweep speed: the 30-point ResNet-50 sweep (arrays 8x8..128x128 x dataflows os/ws/is x schemes hfp8/fp16 on
the default core) in local-process mode, against the same 30 points run serially in this process.

    python benchmarks/bench_sweep.py [--jobs N] [--out DIR] [--skip-serial]

Local-process mode is what ``hfp8sim sweep default resnet50 --array 8,16,32,64,128 --dataflow os,ws,is
--scheme hfp8,fp16`` does: a ``ProcessPoolExecutor`` with ``--jobs`` workers (default: every CPU), the slowest
points first, one JSON per point and the CSV rewritten as each point finishes.  Its wall time covers the whole
``run_sweep`` call (worker start-up, pickling, writing files).  The serial baseline calls the same
``run_point`` for every point in grid order in this process, with hfp8sim's memo caches cleared first, and
writes nothing.  Both must give identical cycles for every point.

Target: the sweep in local-process mode in at most 60 s.  The ratio (serial / local processes) is bounded by
the number of cores; on a shared machine it is lower (the load average is printed).
"""

from __future__ import annotations

import argparse
import functools
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

TARGET_WALL_S = 60.0
GRID = {"array": "8,16,32,64,128", "dataflow": "os,ws,is", "scheme": "hfp8,fp16"}


def clear_hfp8sim_caches() -> int:
    cleared = 0
    for name, module in list(sys.modules.items()):
        if module is None or not (name == "hfp8sim" or name.startswith("hfp8sim.")):
            continue
        for value in list(vars(module).values()):
            if isinstance(value, functools._lru_cache_wrapper):
                value.cache_clear()
                cleared += 1
    return cleared


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=None, help="worker processes (default: every CPU)")
    parser.add_argument("--out", help="keep the sweep's files here (default: a temporary folder)")
    parser.add_argument("--skip-serial", action="store_true", help="no serial baseline")
    args = parser.parse_args()

    from hfp8sim import __version__
    from hfp8sim.sweep import build_sweep, run_point, run_sweep

    jobs = args.jobs or os.cpu_count() or 1
    print(f"hfp8sim {__version__}, Python {platform.python_version()}, {os.cpu_count()} CPUs, "
          f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    sweep = build_sweep("default", "resnet50", **GRID)
    print(f"grid: resnet50 on the default core, arrays {GRID['array']} x dataflows {GRID['dataflow']} x schemes "
          f"{GRID['scheme']} = {len(sweep.points)} points")

    with tempfile.TemporaryDirectory() as scratch:
        out = Path(args.out) if args.out else Path(scratch) / "sweep"
        start = time.perf_counter()
        result = run_sweep(sweep, out, jobs=jobs, progress=False)
        wall = time.perf_counter() - start
    ok = sum(1 for row in result.rows if row["status"] == "ok")
    busy = sum(row["elapsed_s"] or 0.0 for row in result.rows)
    cpu = sum(row["cpu_s"] or 0.0 for row in result.rows)
    print(f"local processes ({jobs} jobs): {wall:.1f} s wall for {ok}/{len(sweep.points)} points "
          f"({busy:.1f} s wall and {cpu:.1f} s CPU inside the workers' points) -> target <= {TARGET_WALL_S:.0f} s: "
          f"{'met' if wall <= TARGET_WALL_S and ok == len(sweep.points) else 'NOT met'}")

    if args.skip_serial:
        return 0 if wall <= TARGET_WALL_S else 1
    clear_hfp8sim_caches()
    start, cpu_start = time.perf_counter(), time.process_time()
    serial = {point.point_id: run_point(sweep.task(point)) for point in sweep.points}
    serial_wall, serial_cpu = time.perf_counter() - start, time.process_time() - cpu_start
    cycles = {row["point_id"]: row.get("cycles") for row in result.rows}
    same = all(serial[pid]["status"] == "ok" and serial[pid]["summary"]["cycles"] == cycles[pid] for pid in serial)
    print(f"serial in this process: {serial_wall:.1f} s wall ({serial_cpu:.1f} s CPU) for {len(serial)} points "
          f"({serial_wall / len(serial):.2f} s per point)")
    print(f"load average now {' '.join(f'{x:.2f}' for x in os.getloadavg())} (other processes on the machine "
          "take CPU from both runs; CPU seconds show the work itself)")
    print(f"speed-up of local processes over serial: {serial_wall / wall:.2f}x on {jobs} workers; "
          f"identical cycles for every point: {'yes' if same else 'NO'}")
    return 0 if wall <= TARGET_WALL_S and same else 1


if __name__ == "__main__":
    sys.exit(main())
