"""SCALE-Sim v3 compatibility: its per-layer cycle formulas (CALC mode, stall-free), so users can cross-check.

From ``shared/reference/scalesim_semantics.md`` (worked out from SCALE-Sim 3.0.0 and checked against its
reports on 214 layer runs):

* A conv row (IFMAP H x W, filter R x S, C channels, K filters, stride s) has ``E_h = ceil((H - R + s)/s)``
  by ``E_w`` outputs ("valid" convolution, no padding, a phantom last row/column when s does not divide),
  ``P = E_h*E_w``, reduction ``Wn = R*S*C``.  A GEMM row (M, N, K) is the conv ``P = M, Wn = K, filters N``.
* Spatial rows ``Sr``, spatial columns ``Sc`` and streamed length ``T``: os (P, K, Wn), ws (Wn, K, P),
  is (Wn, P, K).  Folds ``F = ceil(Sr/AH) * ceil(Sc/AW)``, every fold the same length however full.
* Fold length ``tau``: os ``T + AH + AW - 2``; ws and is ``2*AH + AW + T - 2``.
* Reported cycles ``F*tau - 1`` (the index of the last cycle), with no overlap between folds.

hfp8sim's own mode differs on purpose: edge folds take only the columns and rows they use, consecutive folds
overlap when the configuration allows it, and output-stationary folds include the drain of their outputs
(see ``fold_latency``).
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from ..errors import ArraySpecError


@dataclasses.dataclass(frozen=True)
class ScaleSimLayer:
    """SCALE-Sim's view of a layer: P output pixels, Wn reduction length, K filters (MACs = P*Wn*K)."""

    name: str
    P: int
    Wn: int
    K: int
    # a conv row's (IFMAP H, W, filter R, S, channels, stride): which IFMAP addresses exist (phantom windows of
    # the ceil output size have none); None for a GEMM, whose every address exists
    conv: tuple[int, int, int, int, int, int] | None = None

    @property
    def macs(self) -> int:
        return self.P * self.Wn * self.K


def conv_layer(name: str, ifmap_h: int, ifmap_w: int, filt_h: int, filt_w: int, channels: int, filters: int,
               stride: int) -> ScaleSimLayer:
    """A SCALE-Sim conv CSV row, with its valid-convolution output size."""
    e_h = math.ceil((ifmap_h - filt_h + stride) / stride)
    e_w = math.ceil((ifmap_w - filt_w + stride) / stride)
    return ScaleSimLayer(name, e_h * e_w, filt_h * filt_w * channels, filters,
                         (ifmap_h, ifmap_w, filt_h, filt_w, channels, stride))


def gemm_layer(name: str, m: int, n: int, k: int) -> ScaleSimLayer:
    """A SCALE-Sim GEMM CSV row (M, N, K)."""
    return ScaleSimLayer(name, m, k, n)


def spatial_temporal(layer: ScaleSimLayer, dataflow: str) -> tuple[int, int, int]:
    """(Sr, Sc, T) for the dataflow."""
    if dataflow == "os":
        return layer.P, layer.K, layer.Wn
    if dataflow == "ws":
        return layer.Wn, layer.K, layer.P
    if dataflow == "is":
        return layer.Wn, layer.P, layer.K
    raise ArraySpecError(f"unknown dataflow {dataflow!r}; allowed: os, ws, is")


def fold_count(layer: ScaleSimLayer, dataflow: str, rows: int, cols: int) -> int:
    sr, sc, _ = spatial_temporal(layer, dataflow)
    return math.ceil(sr / rows) * math.ceil(sc / cols)


def fold_length(dataflow: str, rows: int, cols: int, t: int) -> int:
    if dataflow == "os":
        return t + rows + cols - 2
    return 2 * rows + cols + t - 2


def layer_cycles(layer: ScaleSimLayer, dataflow: str, rows: int, cols: int) -> int:
    """SCALE-Sim's COMPUTE_REPORT 'Total Cycles' in CALC mode: F * tau - 1."""
    _, _, t = spatial_temporal(layer, dataflow)
    return fold_count(layer, dataflow, rows, cols) * fold_length(dataflow, rows, cols, t) - 1


def mapping_efficiency(layer: ScaleSimLayer, dataflow: str, rows: int, cols: int) -> float:
    sr, sc, _ = spatial_temporal(layer, dataflow)
    return sr * sc / (fold_count(layer, dataflow, rows, cols) * rows * cols)


def row_col_folds(layer: ScaleSimLayer, dataflow: str, rows: int, cols: int) -> tuple[int, int]:
    """(F_r, F_c): folds over the array's rows and over its columns."""
    sr, sc, _ = spatial_temporal(layer, dataflow)
    return math.ceil(sr / rows), math.ceil(sc / cols)


def compute_utilization(layer: ScaleSimLayer, dataflow: str, rows: int, cols: int) -> float:
    """COMPUTE_REPORT's 'Compute Util' as a fraction: mapping efficiency times T over the fold length SCALE-Sim
    measures, which for ws and is is one array width longer than tau (its demand matrix carries an extra
    column's skew)."""
    _, _, t = spatial_temporal(layer, dataflow)
    measured = fold_length(dataflow, rows, cols, t) + (0 if dataflow == "os" else cols - 1)
    return mapping_efficiency(layer, dataflow, rows, cols) * t / measured


def overall_utilization(layer: ScaleSimLayer, dataflow: str, rows: int, cols: int) -> float:
    """COMPUTE_REPORT's 'Overall Util' as a fraction: MACs over (reported cycles x PEs)."""
    return layer.macs / (layer_cycles(layer, dataflow, rows, cols) * rows * cols)


@dataclasses.dataclass(frozen=True)
class SramAccesses:
    """DETAILED_ACCESS_REPORT's SRAM counts, in words (one operand per word, whatever its format)."""

    ifmap_reads: int
    filter_reads: int
    ofmap_writes: int


def sram_accesses(layer: ScaleSimLayer, dataflow: str, rows: int, cols: int) -> SramAccesses:
    """SCALE-Sim's SRAM access counts of a layer (CALC mode):

    * os: IFMAP ``P*Wn`` re-read for every column fold, FILTER ``Wn*K`` for every row fold; OFMAP ``P*K``
      plus ``AH + AW`` per fold, which SCALE-Sim adds to its write count though no such writes are in its
      trace (kept: the point is to report what SCALE-Sim reports);
    * ws: IFMAP once per column fold, FILTER once, OFMAP ``P*K`` per row fold (partial sums written back);
    * is: IFMAP once, FILTER once per column fold, OFMAP ``P*K`` per row fold.

    Padding inside a fold's used area (phantom outputs of a ceil-sized conv) counts, as in SCALE-Sim.
    """
    p, wn, k = layer.P, layer.Wn, layer.K
    f_r, f_c = row_col_folds(layer, dataflow, rows, cols)
    if dataflow == "os":
        return SramAccesses(p * wn * f_c, wn * k * f_r, p * k + f_r * f_c * (rows + cols))
    if dataflow == "ws":
        return SramAccesses(p * wn * f_c, wn * k, p * k * f_r)
    if dataflow == "is":
        return SramAccesses(wn * p, wn * k * f_c, p * k * f_r)
    raise ArraySpecError(f"unknown dataflow {dataflow!r}; allowed: os, ws, is")


@dataclasses.dataclass(frozen=True)
class SramWindow:
    """First and last cycle of a layer's SRAM accesses to one operand, as DETAILED_ACCESS_REPORT gives them."""

    start: int
    stop: int


def sram_windows(layer: ScaleSimLayer, dataflow: str, rows: int, cols: int) -> dict[str, SramWindow]:
    """SCALE-Sim's SRAM start and stop cycles of IFMAP, FILTER and OFMAP (keys ``ifmap``, ``filter``,
    ``ofmap``) in CALC mode.

    Folds run back to back (fold ``i`` starts at ``i*tau``), column folds outer, so the last fold uses
    ``r`` = the last row fold's rows and ``c`` = the last column fold's columns.  Within a fold an operand
    streamed along the rows is skewed by one cycle per array row (along the columns: per column); the read
    buffers report the cycle after the request (start ``index + 1``), the write buffer the cycle itself.
    The stationary operand is loaded and os outputs drained bottom array row first.  Phantom outputs (a
    ceil-sized conv whose last windows run past the IFMAP) have IFMAP addresses -1 in SCALE-Sim, so the last
    IFMAP access is the last one that exists, whether it streams (os, ws) or is loaded (is).
    """
    sr, sc, t = spatial_temporal(layer, dataflow)
    f_r, f_c = row_col_folds(layer, dataflow, rows, cols)
    last = (f_r * f_c - 1) * fold_length(dataflow, rows, cols, t)
    r, c = sr - (f_r - 1) * rows, sc - (f_c - 1) * cols
    unused_first = rows - min(rows, sr)  # array rows the first fold leaves empty
    if dataflow == "os":
        # outputs drain from the bottom array row up, so empty bottom rows delay the first write
        return {"ifmap": SramWindow(1, _streamed_ifmap_stop(layer, dataflow, rows, cols)),
                "filter": SramWindow(1, last + t + c - 1),
                "ofmap": SramWindow(t - 1 + unused_first, last + t + rows + c - 3)}
    # the stationary operand is loaded one array row per cycle, bottom row first
    loaded = SramWindow(unused_first + 1, last + rows)
    drained = SramWindow(2 * rows - 1, last + 2 * rows + t + c - 3)
    if dataflow == "ws":
        return {"ifmap": SramWindow(rows + 1, _streamed_ifmap_stop(layer, dataflow, rows, cols)), "filter": loaded,
                "ofmap": drained}
    if dataflow == "is":  # the FILTER streams (every address exists)
        return {"ifmap": SramWindow(loaded.start, _stationary_ifmap_stop(layer, rows, cols)),
                "filter": SramWindow(rows + 1, last + rows + t + r - 1), "ofmap": drained}
    raise ArraySpecError(f"unknown dataflow {dataflow!r}; allowed: os, ws, is")


def _streamed_ifmap_stop(layer: ScaleSimLayer, dataflow: str, rows: int, cols: int) -> int:
    """The last cycle of IFMAP reads when the IFMAP streams through the array (os, ws): the last fold that
    reads an IFMAP address that exists, at its latest ``time + array row`` (rows are skewed one cycle each).

    os puts output pixels on the array rows and window positions in time, ws the other way round; the read
    buffer reports the cycle after the request.  Without conv geometry (a GEMM) every address exists."""
    sr, _, t = spatial_temporal(layer, dataflow)
    f_r, f_c = row_col_folds(layer, dataflow, rows, cols)
    tau = fold_length(dataflow, rows, cols, t)
    lead = 0 if dataflow == "os" else rows  # ws: the IFMAP follows the weight load
    for fold in range(f_r * f_c - 1, -1, -1):
        row_fold = fold % f_r  # column folds are the outer loop
        on_rows = range(row_fold * rows, min(sr, (row_fold + 1) * rows))
        pixels, window = (on_rows, range(layer.Wn)) if dataflow == "os" else (range(layer.P), on_rows)
        offset = _last_existing_offset(layer, pixels, window)
        if offset is not None:
            return fold * tau + lead + offset + 1
    return 0  # no IFMAP address at all (every window is a phantom): SCALE-Sim never reads it


def _stationary_ifmap_stop(layer: ScaleSimLayer, rows: int, cols: int) -> int:
    """The last cycle of IFMAP reads in is, where each fold loads its IFMAP one array row per cycle, bottom
    row first: the last fold with an IFMAP address that exists, when its top-most such row is loaded."""
    sr, sc, t = spatial_temporal(layer, "is")
    f_r, f_c = row_col_folds(layer, "is", rows, cols)
    tau = fold_length("is", rows, cols, t)
    for fold in range(f_r * f_c - 1, -1, -1):
        col_fold, row_fold = divmod(fold, f_r)  # column folds are the outer loop
        window = range(row_fold * rows, min(sr, (row_fold + 1) * rows))
        pixels = range(col_fold * cols, min(sc, (col_fold + 1) * cols))
        top = _first_existing_window_row(layer, pixels, window)
        if top is not None:
            return fold * tau + rows - top
    return 0


def _first_existing_window_row(layer: ScaleSimLayer, pixels: range, window: range) -> int | None:
    """The lowest window offset (array row, in is) with an IFMAP address that exists for one of the pixels."""
    if layer.conv is None:
        return 0
    exists = _ifmap_exists(layer, pixels, window)
    rows_with_one = np.flatnonzero(exists.any(axis=0))
    return int(rows_with_one[0]) if rows_with_one.size else None


def _ifmap_exists(layer: ScaleSimLayer, pixels: range, window: range) -> np.ndarray:
    """[pixel, window position] -> whether that IFMAP address exists (False for a phantom window's part past
    the IFMAP); window position j is (filter row, filter column, channel) with the channel fastest."""
    assert layer.conv is not None
    h, w, _r, s, c, stride = layer.conv
    e_w = math.ceil((w - s + stride) / stride)
    p = np.arange(pixels.start, pixels.stop)[:, None]
    j = np.arange(window.start, window.stop)[None, :]
    return ((p // e_w) * stride + j // (s * c) < h) & ((p % e_w) * stride + (j // c) % s < w)


def _last_existing_offset(layer: ScaleSimLayer, pixels: range, window: range) -> int | None:
    """The latest in-fold offset (pixel - first pixel) + (window position - first position) of an IFMAP
    address that exists, None if none does."""
    if layer.conv is None:
        return len(pixels) - 1 + len(window) - 1
    exists = _ifmap_exists(layer, pixels, window)
    if not exists.any():
        return None
    offset = np.arange(len(pixels))[:, None] + np.arange(len(window))[None, :]
    return int(offset[exists].max())
