"""Timeline export: a run's recorded events as Chrome trace / Perfetto JSON (``chrome://tracing``,
https://ui.perfetto.dev).  Time is real time at the core clock (microseconds in the file)."""

from __future__ import annotations

import json
from pathlib import Path

from ..results import NetworkResult

TRACKS = ("layers", "array", "dram", "vector")


def chrome_trace(result: NetworkResult, core: int = 0) -> dict:
    """The trace as a dict: one process per core, one thread per track (layers, array, DRAM, vector unit)."""
    us_per_cycle = 1e-3 / result.clock_ghz
    events: list[dict] = [{"name": "process_name", "ph": "M", "pid": core, "tid": 0,
                           "args": {"name": f"core {core} ({result.arch}, {result.scheme})"}}]
    for tid, track in enumerate(TRACKS):
        events.append({"name": "thread_name", "ph": "M", "pid": core, "tid": tid, "args": {"name": track}})
    for layer, name, track, start, duration, detail in result.events:
        events.append({"name": name, "cat": track, "ph": "X", "pid": core, "tid": TRACKS.index(track),
                       "ts": round(start * us_per_cycle, 6), "dur": round(duration * us_per_cycle, 6),
                       "args": {"layer": layer, "detail": detail, "start_cycle": start, "cycles": duration}})
    return {"traceEvents": events, "displayTimeUnit": "ns",
            "otherData": {"workload": result.workload, "arch": result.arch, "scheme": result.scheme,
                          "clock_ghz": result.clock_ghz, "total_cycles": result.cycles}}


def write_chrome_trace(result: NetworkResult, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(chrome_trace(result)) + "\n")
    return path
