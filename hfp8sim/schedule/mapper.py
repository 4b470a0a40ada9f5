"""The mapper: cut a layer's GEMM into tiles that fit the scratchpads, in the order that moves the fewest
bytes from DRAM.  The resulting :class:`LayerSchedule` is the contract shared by the timing model (which
executes its tiles and folds) and the datapath (whose rounding follows the same fold order).

Rules:

* The dimensions mapped onto the array (ws: K on rows, N on columns; is: K on rows, M on columns; os: M on
  rows, N on columns) are tiled in multiples of the array side (times two on the rows in pair mode for ws/is:
  each PE takes two k), the streamed dimension (ws: M, is: N, os: K) freely.
* The reduction loop is innermost, so a tile's partial sums stay in the output scratchpad (or the PEs, for
  os) until every k-tile has been added: no partial sum goes to DRAM, and the order of additions per output
  is increasing k, exactly the datapath's.
* Each operand tile occupies its scratchpad (half of it when double-buffered, so the next tile can load while
  this one computes): input ``mt*kt``, weight ``kt*nt`` at the operand element size, output ``mt*nt`` at the
  accumulator-buffer element size.  FP8 operands take half the bytes of FP16 ones, so tiles are larger and
  operands are re-fetched less.
* Candidates: two outer loop orders (n outside m, or m outside n) times the candidate tile sizes that fit.
  An operand block that fits its scratchpad for the whole inner loop is fetched once and reused; otherwise
  it is fetched again on every outer iteration.  ``plan_gemm`` picks the fewest DRAM bytes (ties: fewer
  tiles); the run layer instead picks the fastest candidate by simulating them (branch and bound on
  ``candidates``), which makes bigger scratchpads or more bandwidth never slower.
"""

from __future__ import annotations

import dataclasses
import math
from functools import lru_cache
from typing import NamedTuple

import numpy as np

from .. import limits
from ..core.model import ArraySpec
from ..errors import ScheduleError
from .conv_footprint import ConvGeometry, block_footprint, blocks, footprint_grid


@dataclasses.dataclass(frozen=True)
class GemmProblem:
    """What the mapper needs to know of a layer: its (batched) GEMM and element sizes in bytes."""

    name: str
    M: int
    N: int
    K: int
    batch: int = 1
    a_bytes: float = 1.0  # operand A (activations/inputs) element
    b_bytes: float = 1.0  # operand B (weights) element
    out_bytes: float = 1.0  # output element as written to DRAM
    psum_bytes: float = 4.0  # accumulator-buffer element
    conv: ConvGeometry | None = None  # a conv whose im2col operand DRAM holds as the input tensor

    @property
    def a_total_bytes(self) -> float:
        """Operand A of one batch element as DRAM holds it (the input elements it reads, for a conv's im2col)."""
        if self.conv is not None and self.conv.operand == "a":
            return _whole_footprint(self) * self.a_bytes
        return self.M * self.K * self.a_bytes

    @property
    def b_total_bytes(self) -> float:
        if self.conv is not None and self.conv.operand == "b":
            return _whole_footprint(self) * self.b_bytes
        return self.K * self.N * self.b_bytes

    @property
    def compulsory_bytes(self) -> float:
        """Each operand read once and each output written once: no schedule can move less.  A conv's input
        counts as the tensor elements its windows read (the whole tensor unless the stride skips some)."""
        return self.batch * (self.a_total_bytes + self.b_total_bytes + self.M * self.N * self.out_bytes)


def _whole_footprint(p: GemmProblem) -> int:
    """Input elements (one group) the whole problem's im2col operand reads."""
    g = p.conv
    positions, tap_channels = (p.M, p.K) if g.operand == "a" else (p.K, p.N)
    return int(footprint_grid(g, (positions, positions, False), (tap_channels, tap_channels, False))[0, 0])


class Tile(NamedTuple):
    """One tile in execution order: index ranges, and the DRAM bytes moved for it.  A named tuple, not a
    frozen dataclass: a schedule has up to ``limits.MAX_TILES_PER_LAYER`` of them and the search builds many
    schedules, so building one must be cheap."""

    index: int
    group: int
    m: tuple[int, int]
    n: tuple[int, int]
    k: tuple[int, int]
    load_a_bytes: float  # DRAM -> input scratchpad before this tile (0 when reused)
    load_b_bytes: float  # DRAM -> weight scratchpad
    store_bytes: float  # output scratchpad -> DRAM after this tile (only after the last k-tile)
    first_k: bool  # first reduction tile of its outputs (writes, not accumulates, the buffer)

    @property
    def dims(self) -> tuple[int, int, int]:
        return self.m[1] - self.m[0], self.n[1] - self.n[0], self.k[1] - self.k[0]


@dataclasses.dataclass(frozen=True)
class LayerSchedule:
    problem: GemmProblem
    array: ArraySpec
    tile_shape: tuple[int, int, int]  # (mt, nt, kt)
    loop_order: str  # "n,m,k" or "m,n,k" (outermost first)
    tiles: tuple[Tile, ...]

    @property
    def dram_read_bytes(self) -> float:
        return sum(t.load_a_bytes + t.load_b_bytes for t in self.tiles)

    @property
    def dram_write_bytes(self) -> float:
        return sum(t.store_bytes for t in self.tiles)

    @property
    def compulsory_bytes(self) -> float:
        return self.problem.compulsory_bytes


def _candidates(full: int, step: int) -> list[int]:
    """Tile sizes for one dimension: multiples of ``step`` doubling up to ``full``, and ``full`` itself."""
    out, size = {full}, step
    while size < full:
        out.add(size)
        size *= 2
    return sorted(out)


def _array_steps(array: ArraySpec) -> tuple[int, int, int]:
    """Tile granularity (m, n, k) imposed by the array for each dataflow."""
    row_k = array.rows * (2 if array.pair else 1)
    if array.dataflow == "ws":
        return 1, array.cols, row_k
    if array.dataflow == "is":
        return array.cols, 1, row_k
    # os: the PEs chain across k-tiles, so cut them where the arithmetic already restarts (chunks), and never
    # between the two products of a pair
    return array.rows, array.cols, array.chunk or (2 if array.pair else 1)


def _traffic(problem: GemmProblem, array: ArraySpec, mt: int, nt: int, kt: int, order: str,
             footprints: _Footprints | None = None) -> float | None:
    """DRAM bytes of one batch element for a tiling, or None if a tile does not fit.  ``footprints``: the
    conv's footprint summaries, shared by the tilings of one problem."""
    p = problem
    conv_operand = p.conv.operand if p.conv is not None else None
    # the matrix operands and the output are checked first: they are cheap, the im2col operand's footprints not
    a_fits = conv_operand == "a" or mt * kt * p.a_bytes <= array.input_bytes
    b_fits = conv_operand == "b" or kt * nt * p.b_bytes <= array.weight_bytes
    if not (a_fits and b_fits) or mt * nt * p.psum_bytes > array.output_bytes:
        return None
    im2col = _plan_im2col(p, array, mt, nt, kt, order, footprints or _Footprints(p)) if p.conv is not None else None
    if p.conv is not None and im2col is None:
        return None
    m_tiles, n_tiles = math.ceil(p.M / mt), math.ceil(p.N / nt)
    a_total, b_total = p.M * p.K * p.a_bytes, p.K * p.N * p.b_bytes
    if order == "n,m,k":  # B[:, n-block] reused over m if it fits; A re-read per n-block unless all of A fits
        b_traffic = b_total if p.K * nt * p.b_bytes <= array.weight_bytes else b_total * m_tiles
        a_traffic = a_total if a_total <= array.input_bytes else a_total * n_tiles
    else:
        a_traffic = a_total if mt * p.K * p.a_bytes <= array.input_bytes else a_total * n_tiles
        b_traffic = b_total if b_total <= array.weight_bytes else b_total * m_tiles
    if im2col is not None:  # the im2col operand moves its tiles' footprints instead
        im2col_traffic = im2col.elements * im2col.passes * (p.a_bytes if p.conv.operand == "a" else p.b_bytes)
        a_traffic, b_traffic = (im2col_traffic, b_traffic) if p.conv.operand == "a" else (a_traffic, im2col_traffic)
    return a_traffic + b_traffic + p.M * p.N * p.out_bytes


class Im2colPlan(NamedTuple):
    """How a tiling moves a conv's im2col operand from the input tensor in DRAM (elements of one group).

    ``mode``: ``all`` (all of it stays resident: each input element loaded once, by the first tile needing
    it), ``block`` (the outer block stays over the whole reduction: each reduction tile loads what is new to
    the block) or ``tile`` (every tile loads its whole footprint, on every pass).  ``elements``: loaded per
    pass, ``passes``: passes of the loop nest that load, ``peak``: elements resident at once."""

    mode: str
    elements: int
    passes: int
    peak: int


def _im2col_axes(p: GemmProblem, mt: int, nt: int, kt: int):
    """(position axis total and tile, tap-channel axis total and tile) of the im2col operand: operand A
    (forward) has positions on M and tap-channels on K; operand B (weight gradient) positions on K and
    tap-channels on N."""
    if p.conv.operand == "a":
        return p.M, mt, p.K, kt
    return p.K, kt, p.N, nt


class _Footprints:
    """Sums and maxima of a conv problem's im2col footprints by block size, each computed once for all the
    tilings of the problem (they share block sizes along each axis)."""

    def __init__(self, p: GemmProblem):
        self.p, self.g = p, p.conv
        self.memo: dict[tuple, tuple[int, int]] = {}

    def summary(self, pos_t: int, tc_t: int) -> tuple[int, int]:
        """(sum, max) over the blocks of ``pos_t`` positions by ``tc_t`` tap-channels (one group)."""
        key = (pos_t, tc_t)
        if key not in self.memo:
            pos, tc = _im2col_axes(self.p, 1, 1, 1)[0::2]
            grid = footprint_grid(self.g, (pos, pos_t, False), (tc, tc_t, False))
            self.memo[key] = int(grid.sum()), int(grid.max())
        return self.memo[key]


@lru_cache(maxsize=8192)
def _im2col_plan(p: GemmProblem, array: ArraySpec, mt: int, nt: int, kt: int, order: str) -> Im2colPlan | None:
    """The im2col operand's traffic for a tiling, or None if its tile footprints do not fit the scratchpad."""
    return _plan_im2col(p, array, mt, nt, kt, order, _Footprints(p))


def _plan_im2col(p: GemmProblem, array: ArraySpec, mt: int, nt: int, kt: int, order: str,
                 footprints: _Footprints) -> Im2colPlan | None:
    """``_im2col_plan`` from ``footprints``.  Operand A stays all resident in order n,m,k and one m-block over
    all K in order m,n,k; operand B one n-block over all K in order n,m,k and all of it in m,n,k (as the GEMM
    operands do)."""
    pos, pos_t, tc, tc_t = _im2col_axes(p, mt, nt, kt)
    if p.conv.operand == "a":
        reloads, capacity, all_order = math.ceil(p.N / nt), array.input_bytes / p.a_bytes, "n,m,k"
    else:
        reloads, capacity, all_order = math.ceil(p.M / mt), array.weight_bytes / p.b_bytes, "m,n,k"
    if order == all_order:
        whole = footprints.summary(pos, tc)[0]
        if whole <= capacity:
            return Im2colPlan("all", whole, 1, whole)
    else:  # one outer block (positions for A, tap-channels for B) over the whole reduction
        total, peak = footprints.summary(pos_t, tc) if p.conv.operand == "a" else footprints.summary(pos, tc_t)
        if peak <= capacity:
            return Im2colPlan("block", total, 1, peak)
    total, peak = footprints.summary(pos_t, tc_t)
    if peak > capacity:
        return None
    return Im2colPlan("tile", total, reloads, peak)


def _im2col_tile_loads(p: GemmProblem, plan: Im2colPlan, mt: int, nt: int, kt: int) -> np.ndarray:
    """Elements each tile of the im2col operand loads on a pass that loads it, [position block, tap-channel
    block].  Resident modes load differences of growing footprints (what is new), so they sum to the plan's
    elements exactly."""
    g = p.conv
    pos, pos_t, tc, tc_t = _im2col_axes(p, mt, nt, kt)
    if plan.mode == "tile":
        return footprint_grid(g, (pos, pos_t, False), (tc, tc_t, False))
    if plan.mode == "block":  # the block grows along the reduction, which is tap-channels for A, positions for B
        if g.operand == "a":
            return np.diff(footprint_grid(g, (pos, pos_t, False), (tc, tc_t, True)), axis=1, prepend=0)
        return np.diff(footprint_grid(g, (pos, pos_t, True), (tc, tc_t, False)), axis=0, prepend=0)
    # all resident: the first tile of each outer block loads what the block adds over all of the reduction
    loads = np.zeros((math.ceil(pos / pos_t), math.ceil(tc / tc_t)), dtype=np.int64)
    if g.operand == "a":
        loads[:, 0] = np.diff(footprint_grid(g, (pos, pos_t, True), (tc, tc, False))[:, 0], prepend=0)
    else:
        loads[0, :] = np.diff(footprint_grid(g, (pos, pos, False), (tc, tc_t, True))[0, :], prepend=0)
    return loads


@dataclasses.dataclass(frozen=True)
class Candidate:
    """A feasible tiling: tile shape, loop order and the DRAM bytes it moves (all batch elements)."""

    tile_shape: tuple[int, int, int]
    loop_order: str
    dram_bytes: float
    tiles: int


def candidates(problem: GemmProblem, array: ArraySpec) -> list[Candidate]:
    """Every feasible tiling, fewest DRAM bytes first (ties: fewer tiles)."""
    return list(_candidates_cached(problem, array))


@lru_cache(maxsize=4096)
def _candidates_cached(problem: GemmProblem, array: ArraySpec) -> tuple[Candidate, ...]:
    p = problem
    if min(p.M, p.N, p.K, p.batch) < 1:
        raise ScheduleError(f"layer {p.name}: GEMM dimensions must be positive, got M={p.M} N={p.N} K={p.K}")
    m_step, n_step, k_step = _array_steps(array)
    footprints = _Footprints(p) if p.conv is not None else None
    found = []
    for order in ("n,m,k", "m,n,k"):
        for mt in _candidates(p.M, m_step):
            for nt in _candidates(p.N, n_step):
                if order == "m,n,k" and (mt >= p.M or nt >= p.N):
                    continue  # one block along an outer dimension: both orders give the same tiles
                for kt in _candidates(p.K, k_step):
                    traffic = _traffic(p, array, mt, nt, kt, order, footprints)
                    if traffic is None:
                        continue
                    n_tiles = math.ceil(p.M / mt) * math.ceil(p.N / nt) * math.ceil(p.K / kt) * p.batch
                    found.append(Candidate((mt, nt, kt), order, float(traffic * p.batch), n_tiles))
    if found and min(c.tiles for c in found) > limits.MAX_TILES_PER_LAYER:
        raise ScheduleError(
            f"layer {p.name}: needs at least {min(c.tiles for c in found):,} tiles on this array and scratchpads, "
            f"more than the limit of {limits.MAX_TILES_PER_LAYER:,} (hfp8sim.limits.MAX_TILES_PER_LAYER)")
    # a tiling with more tiles than the limit is never the one to simulate: building it alone could take
    # gigabytes, and a tiling within the limit exists
    found = [c for c in found if c.tiles <= limits.MAX_TILES_PER_LAYER]
    if not found:
        mt, nt, kt = min(p.M, m_step), min(p.N, n_step), min(p.K, k_step)
        raise ScheduleError(
            f"layer {p.name}: even the smallest tile ({mt}x{nt}x{kt}) does not fit the scratchpads "
            f"(input {array.input_bytes:g} B, weight {array.weight_bytes:g} B, output {array.output_bytes:g} B "
            "usable per tile); enlarge them or use a smaller array")
    return tuple(sorted(found, key=lambda c: (c.dram_bytes, c.tiles, c.loop_order, c.tile_shape)))


def tile_shape_counts(problem: GemmProblem, tile_shape: tuple[int, int, int]) -> list[tuple[tuple[int, int, int], int]]:
    """The distinct tile shapes of a tiling (full and edge tiles) with how many tiles have each."""
    p = problem
    per_dim = []
    for full, size in ((p.M, tile_shape[0]), (p.N, tile_shape[1]), (p.K, tile_shape[2])):
        whole, rest = divmod(full, size)
        per_dim.append([(size, whole)] + ([(rest, 1)] if rest else []))
    return [((m, n, k), cm * cn * ck * p.batch) for m, cm in per_dim[0] for n, cn in per_dim[1] for k, ck in per_dim[2]]


def first_tile_bytes(p: GemmProblem, mt: int, nt: int, kt: int) -> tuple[float, float]:
    """(A, B) bytes the first tile of an (mt, nt, kt) tiling loads at least: its operand tiles, a conv's
    im2col tile as its footprint (a resident operand may load more with its first tile, never less)."""
    a, b = mt * kt * p.a_bytes, kt * nt * p.b_bytes
    if p.conv is not None:
        pos, pos_t, tc, tc_t = _im2col_axes(p, mt, nt, kt)
        first_pos, first_tc = min(pos, pos_t), min(tc, tc_t)
        touched = float(block_footprint(p.conv, (0, first_pos), (0, first_tc)))
        a, b = (touched * p.a_bytes, b) if p.conv.operand == "a" else (a, touched * p.b_bytes)
    return a, b


def tile_classes(problem: GemmProblem, tile_shape: tuple[int, int, int]
                 ) -> list[tuple[tuple[int, int, int], bool, int]]:
    """The tiles of a tiling grouped by what the array does with them: (dims, first_k, count).  A tile's
    folds and scratchpad traffic depend only on its dims and on whether it is the first reduction tile of its
    outputs (which writes the accumulator buffer where the others read-modify-write it), so a layer's counts
    are a sum over these few classes instead of over its tiles."""
    kt = tile_shape[2]
    whole, rest = divmod(problem.K, kt)
    k_blocks = [(kt, True, 1), (kt, False, whole - 1)] if whole else []
    if rest:
        k_blocks.append((rest, not whole, 1))
    mn = {}  # (m, n) tile dims -> count, from the m- and n-blocks of the full tiling
    for (m, n, _), count in tile_shape_counts(problem, (tile_shape[0], tile_shape[1], problem.K)):
        mn[m, n] = mn.get((m, n), 0) + count
    return [((m, n, k), first, count * k_count) for (m, n), count in mn.items()
            for k, first, k_count in k_blocks if count * k_count]


def build_schedule(problem: GemmProblem, array: ArraySpec, candidate: Candidate) -> LayerSchedule:
    mt, nt, kt = candidate.tile_shape
    tiles = tuple(_tiles(problem, array, mt, nt, kt, candidate.loop_order))
    return LayerSchedule(problem, array, candidate.tile_shape, candidate.loop_order, tiles)


def plan_gemm(problem: GemmProblem, array: ArraySpec) -> LayerSchedule:
    """The tiling that moves the fewest DRAM bytes (ties: fewer tiles), its tiles in execution order."""
    return build_schedule(problem, array, candidates(problem, array)[0])


def _tiles(p: GemmProblem, array: ArraySpec, mt: int, nt: int, kt: int, order: str):
    m_blocks, n_blocks, k_blocks = blocks(p.M, mt), blocks(p.N, nt), blocks(p.K, kt)
    a_all_resident = p.M * p.K * p.a_bytes <= array.input_bytes
    b_all_resident = p.K * p.N * p.b_bytes <= array.weight_bytes
    b_block_resident = p.K * nt * p.b_bytes <= array.weight_bytes
    a_block_resident = mt * p.K * p.a_bytes <= array.input_bytes
    im2col = _im2col_plan(p, array, mt, nt, kt, order) if p.conv is not None else None
    # as nested lists: one look-up per tile, and numpy's per-element indexing is slow
    im2col_loads = _im2col_tile_loads(p, im2col, mt, nt, kt).tolist() if im2col is not None else None
    index = 0
    for g in range(p.batch):
        outer, inner = (n_blocks, m_blocks) if order == "n,m,k" else (m_blocks, n_blocks)
        for oi, ob in enumerate(outer):
            for ii, ib in enumerate(inner):
                (mi, mb), (ni, nb) = ((ii, ib), (oi, ob)) if order == "n,m,k" else ((oi, ob), (ii, ib))
                for ki, kb in enumerate(k_blocks):
                    a_size = (mb[1] - mb[0]) * (kb[1] - kb[0]) * p.a_bytes
                    b_size = (kb[1] - kb[0]) * (nb[1] - nb[0]) * p.b_bytes
                    if order == "n,m,k":
                        load_b = b_size if (ii == 0 or not b_block_resident) else 0.0
                        load_a = a_size if (oi == 0 or not a_all_resident) else 0.0
                    else:
                        load_a = a_size if (ii == 0 or not a_block_resident) else 0.0
                        load_b = b_size if (oi == 0 or not b_all_resident) else 0.0
                    if im2col is not None:
                        load_a, load_b = _im2col_tile(p, im2col_loads, im2col.mode != "tile", order, (mi, ni, ki),
                                                      (oi, ii), load_a, load_b)
                    last_k = ki == len(k_blocks) - 1
                    store = (mb[1] - mb[0]) * (nb[1] - nb[0]) * p.out_bytes if last_k else 0.0
                    yield Tile(index, g, mb, nb, kb, load_a, load_b, store, ki == 0)
                    index += 1


def _im2col_tile(p: GemmProblem, loads: list[list[int]], resident: bool, order: str, block: tuple[int, int, int],
                 loop: tuple[int, int], load_a: float, load_b: float) -> tuple[float, float]:
    """(load_a, load_b) of one tile with the im2col operand's load taken from its footprints: on every pass
    when it is not resident, else on the pass over the first block of the loop that re-visits it (the outer
    loop for all of it resident, the inner one for one outer block resident)."""
    mi, ni, ki = block
    oi, ii = loop
    if p.conv.operand == "a":
        first_pass = (oi == 0) if order == "n,m,k" else (ii == 0)
        load = float(loads[mi][ki]) * p.a_bytes
        return (load if first_pass or not resident else 0.0), load_b
    first_pass = (oi == 0) if order == "m,n,k" else (ii == 0)
    load = float(loads[ki][ni]) * p.b_bytes
    return load_a, (load if first_pass or not resident else 0.0)
