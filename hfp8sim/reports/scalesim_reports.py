"""A run in SCALE-Sim's report layout: COMPUTE_REPORT.csv, BANDWIDTH_REPORT.csv, DETAILED_ACCESS_REPORT.csv.

So scripts written for SCALE-Sim v3 read hfp8sim's output: the same file names, column names (with
SCALE-Sim's spaces and trailing commas), one row per array layer numbered by ``LayerID``, and its units:
cycles, percentages, and accesses in words of SCALE-Sim's word size (one operand per word, whatever the
scheme's format; SCALE-Sim's word is one byte).  ``SCALESIM_LAYERS.csv`` (hfp8sim's own addition) names the
layer of each ``LayerID``.

Rows come from a run in SCALE-Sim mode.  Total cycles are the simulated cycles (equal to SCALE-Sim's
``F*tau - 1`` in that mode); utilisations, SRAM counts and SRAM start/stop cycles follow SCALE-Sim's
definitions (:mod:`hfp8sim.schedule.scalesim`).  What is not SCALE-Sim's (README, "SCALE-Sim drop-in"):

* layers that are not GEMMs have no row (SCALE-Sim models only the array); a GEMM layer made of ``b``
  independent GEMMs (a depthwise conv, a batched matmul) has ``b`` rows, as SCALE-Sim splits a ``DP`` layer;
* "Total Cycles (incl. prefetch)" equals "Total Cycles": memory is ideal, so there is no initial fill;
* DRAM columns are hfp8sim's traffic in words (each operand fetched once and outputs written once, over the
  layer's cycles), not SCALE-Sim's prefetch-window re-reads and partial-sum writes.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import ResultsError
from ..results import LayerResult, NetworkResult
from ..schedule import scalesim

COMPUTE_COLUMNS = ("LayerID", "Total Cycles (incl. prefetch)", "Total Cycles", "Stall Cycles", "Overall Util %",
                   "Mapping Efficiency %", "Compute Util %")  # fmt: skip
BANDWIDTH_COLUMNS = ("LayerID", "Avg IFMAP SRAM BW", "Avg FILTER SRAM BW", "Avg OFMAP SRAM BW", "Avg IFMAP DRAM BW",
                     "Avg FILTER DRAM BW", "Avg OFMAP DRAM BW")  # fmt: skip
DETAIL_COLUMNS = ("LayerID",
                  "SRAM IFMAP Start Cycle", "SRAM IFMAP Stop Cycle", "SRAM IFMAP Reads",
                  "SRAM Filter Start Cycle", "SRAM Filter Stop Cycle", "SRAM Filter Reads",
                  "SRAM OFMAP Start Cycle", "SRAM OFMAP Stop Cycle", "SRAM OFMAP Writes",
                  "DRAM IFMAP Start Cycle", "DRAM IFMAP Stop Cycle", "DRAM IFMAP Reads",
                  "DRAM Filter Start Cycle", "DRAM Filter Stop Cycle", "DRAM Filter Reads",
                  "DRAM OFMAP Start Cycle", "DRAM OFMAP Stop Cycle", "DRAM OFMAP Writes")  # fmt: skip


@dataclass(frozen=True)
class ScaleSimRow:
    """One LayerID of the reports: one GEMM as SCALE-Sim sees it, with hfp8sim's simulated cycles."""

    layer: str
    gemm: scalesim.ScaleSimLayer
    cycles: int
    compute: tuple[float, ...]  # COMPUTE_REPORT after LayerID
    bandwidth: tuple[float, ...]  # BANDWIDTH_REPORT after LayerID
    detail: tuple[float, ...]  # DETAILED_ACCESS_REPORT after LayerID


def _dram_words(layer: LayerResult) -> tuple[int, int, int]:
    """(IFMAP, FILTER, OFMAP) DRAM words of one of the layer's GEMMs: the operands once, the outputs once
    (memory is ideal and a layer is one tile in SCALE-Sim mode, so that is what hfp8sim moves)."""
    return layer.M * layer.K, layer.K * layer.N, layer.M * layer.N


def _conv_geometry(layer: Any) -> tuple[int, int, int, int, int, int] | None:
    """(H, W, R, S, channels per group, stride) of a conv imported from a SCALE-Sim topology, whose phantom
    windows have no IFMAP addresses; None for anything else (every address exists)."""
    if getattr(layer, "is_conv", False) and layer.convention == "scalesim":
        return layer.H, layer.W, layer.R, layer.S, layer.C // layer.groups, layer.stride[0]
    return None


def _row(layer: LayerResult, index: int, rows: int, cols: int, dataflow: str, conv: Any) -> ScaleSimRow:
    gemm = scalesim.ScaleSimLayer(layer.name if layer.batch == 1 else f"{layer.name}[{index}]", layer.M, layer.K,
                                  layer.N, conv)
    cycles = layer.cycles / layer.batch
    if cycles != int(cycles):
        raise ResultsError(f"layer {layer.name!r}: {layer.cycles} cycles do not split evenly over its "
                           f"{layer.batch} GEMMs; the SCALE-Sim report needs a run in SCALE-Sim mode")
    cycles = int(cycles)
    sram = scalesim.sram_accesses(gemm, dataflow, rows, cols)
    windows = scalesim.sram_windows(gemm, dataflow, rows, cols)
    overall = gemm.macs * 100 / (cycles * rows * cols)
    compute = (cycles, cycles, 0, overall, scalesim.mapping_efficiency(gemm, dataflow, rows, cols) * 100,
               scalesim.compute_utilization(gemm, dataflow, rows, cols) * 100)
    dram = _dram_words(layer)
    # SCALE-Sim divides SRAM traffic by the layer's cycles and DRAM traffic by its (stop - start + 1)
    span = cycles + 1
    bandwidth = (sram.ifmap_reads / cycles, sram.filter_reads / cycles, sram.ofmap_writes / cycles,
                 *(words / span for words in dram))
    # SCALE-Sim's start and stop cycles are floats (numpy), its counts ints
    detail = (float(windows["ifmap"].start), float(windows["ifmap"].stop), sram.ifmap_reads,
              float(windows["filter"].start), float(windows["filter"].stop), sram.filter_reads,
              float(windows["ofmap"].start), float(windows["ofmap"].stop), sram.ofmap_writes,
              0.0, float(cycles), dram[0], 0.0, float(cycles), dram[1], 0.0, float(cycles), dram[2])
    return ScaleSimRow(gemm.name, gemm, cycles, compute, bandwidth, detail)


def scalesim_rows(result: NetworkResult, rows: int, cols: int, dataflow: str, network: Any = None
                  ) -> list[ScaleSimRow]:
    """The report rows of a run: one per GEMM of every array layer, in order.  ``network`` (the run's
    :class:`~hfp8sim.workloads.Network`) gives the conv geometry that places SCALE-Sim's phantom windows."""
    layers = {layer.name: layer for layer in network} if network is not None else {}
    out = []
    for layer in result.layers:
        if layer.kind != "gemm":
            continue
        conv = _conv_geometry(layers.get(layer.name))
        out += [_row(layer, i, rows, cols, dataflow, conv) for i in range(max(1, layer.batch))]
    return out


def _table(columns: tuple[str, ...], body: list[tuple[float, ...]]) -> str:
    lines = [", ".join(columns) + ",\n"]
    # SCALE-Sim writes Python's str() of each number: counts as ints, ratios and cycles of accesses as floats
    lines += [", ".join([str(i)] + [str(v) for v in values]) + ",\n" for i, values in enumerate(body)]
    return "".join(lines)


def write_scalesim_reports(result: NetworkResult, rows: int, cols: int, dataflow: str, folder: str | Path,
                           network: Any = None) -> list[Path]:
    """Write the three SCALE-Sim reports and SCALESIM_LAYERS.csv into ``folder``; returns their paths."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    body = scalesim_rows(result, rows, cols, dataflow, network)
    files = {
        "COMPUTE_REPORT.csv": _table(COMPUTE_COLUMNS, [r.compute for r in body]),
        "BANDWIDTH_REPORT.csv": _table(BANDWIDTH_COLUMNS, [r.bandwidth for r in body]),
        "DETAILED_ACCESS_REPORT.csv": _table(DETAIL_COLUMNS, [r.detail for r in body]),
        "SCALESIM_LAYERS.csv": "LayerID, Layer, P, Wn, K,\n" + "".join(
            f"{i}, {r.layer}, {r.gemm.P}, {r.gemm.Wn}, {r.gemm.K},\n" for i, r in enumerate(body)),
    }
    paths = []
    for name, text in files.items():
        path = folder / name
        path.write_text(text, encoding="utf-8")
        paths.append(path)
    return paths
