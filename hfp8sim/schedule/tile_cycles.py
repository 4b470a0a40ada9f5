"""Cycles of one tile on the array: the closed-form fold schedule (or SCALE-Sim v3's formulas in its mode).

:func:`tile_cycles_for` gives the function the mapper's search and the SimPy engine call for every tile
shape ``(mt, nt, kt)``; it returns a :class:`TileCycles`.  The closed forms are proven equal to the
cycle-stepped reference array (``hfp8sim.datapath.systolic``) in ``tests/datapath/test_systolic.py``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import lru_cache
from typing import NamedTuple

from ..core.model import CoreModel
from . import scalesim
from .fold_latency import gemm_fold_schedule


class TileCycles(NamedTuple):
    """What the array spends on one tile."""

    cycles: int  # from the first fold's start to the last fold's end (whole cycles)
    folds: int
    offered_pe_slots: float  # folds x rows x cols: PE positions the folds occupy
    used_pe_slots: float  # of those, the ones that do a product (PE steps x products per step)


TileCyclesFn = Callable[[int, int, int], TileCycles]


@lru_cache(maxsize=8192)
def closed_form_tile_cycles(dataflow: str, rows: int, cols: int, pair: bool, overlap: bool, chain: bool,
                            chunk: int | None, mt: int, nt: int, kt: int) -> TileCycles:
    """One tile's cycles from the fold schedule (cached: layers repeat a handful of tile shapes)."""
    slots = gemm_fold_schedule(dataflow, rows, cols, mt, nt, kt, pair=pair, overlap=overlap, chain=chain,
                               chunk=chunk)
    per_step = 2 if pair else 1
    used = 0
    for slot in slots:
        if dataflow == "os":
            used += len(slot.m_range) * len(slot.n_range)
        else:
            wide = len(slot.n_range) if dataflow == "ws" else len(slot.m_range)
            used += math.ceil(len(slot.k_range) / per_step) * wide
    return TileCycles(int(max(s.end for s in slots)), len(slots), float(len(slots) * rows * cols), float(used))


def scalesim_tile_cycles(dataflow: str, rows: int, cols: int, mt: int, nt: int, kt: int) -> TileCycles:
    """SCALE-Sim v3's cycles for a tile mapped as one layer (every fold as long as a full one)."""
    layer = scalesim.gemm_layer("tile", mt, nt, kt)
    folds = scalesim.fold_count(layer, dataflow, rows, cols)
    used = scalesim.mapping_efficiency(layer, dataflow, rows, cols) * folds * rows * cols
    return TileCycles(int(scalesim.layer_cycles(layer, dataflow, rows, cols)), folds, float(folds * rows * cols),
                      used)


def tile_cycles_for(core: CoreModel) -> TileCyclesFn:
    """The tile-cycle function of ``core``: its array, dataflow, pair mode, fold overlap, chain and chunk."""
    array, arith = core.array, core.arithmetic
    if core.scalesim_mode:
        def cycles(mt: int, nt: int, kt: int) -> TileCycles:
            return scalesim_tile_cycles(array.dataflow, array.rows, array.cols, mt, nt, kt)
        return cycles
    overlap = core.timing.overlap_folds

    def cycles(mt: int, nt: int, kt: int) -> TileCycles:
        return closed_form_tile_cycles(array.dataflow, array.rows, array.cols, array.pair, overlap, arith.chain,
                                       arith.chunk, mt, nt, kt)
    return cycles
