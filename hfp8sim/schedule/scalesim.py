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

from ..errors import ArraySpecError


@dataclasses.dataclass(frozen=True)
class ScaleSimLayer:
    """SCALE-Sim's view of a layer: P output pixels, Wn reduction length, K filters (MACs = P*Wn*K)."""

    name: str
    P: int
    Wn: int
    K: int

    @property
    def macs(self) -> int:
        return self.P * self.Wn * self.K


def conv_layer(name: str, ifmap_h: int, ifmap_w: int, filt_h: int, filt_w: int, channels: int, filters: int,
               stride: int) -> ScaleSimLayer:
    """A SCALE-Sim conv CSV row, with its valid-convolution output size."""
    e_h = math.ceil((ifmap_h - filt_h + stride) / stride)
    e_w = math.ceil((ifmap_w - filt_w + stride) / stride)
    return ScaleSimLayer(name, e_h * e_w, filt_h * filt_w * channels, filters)


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
