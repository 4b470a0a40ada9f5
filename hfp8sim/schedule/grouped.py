"""Grouped and depthwise convolutions: the mappings real accelerators use instead of one tiny GEMM per group.

A grouped conv lowers to ``G`` independent GEMMs ``X_g[M, K_g] @ W_g[K_g, N_g]`` (``M = N*P*Q``,
``K_g = R*S*C/G``, ``N_g = K/G``).  Mapped one group at a time, a MobileNetV2 3x3 depthwise layer
(``K_g = 9``, ``N_g = 1``) occupies 5 x 1 PEs of a weight-stationary array in pair mode and streams its
``M`` input rows once per group.  Three mappings are offered, and the run layer keeps the best by the
mapper's objective (today: fewest simulated cycles):

* ``gemm``: one GEMM per group, as the mapper always did.
* ``packed xG``: ``G'`` groups share a fold on the diagonal of a **weight-stationary** array: group ``j``'s
  ``K_g`` rows and ``N_g`` columns sit at PE row ``j*ceil(K_g/p)`` (``p`` products per PE step) and column
  ``j*N_g``; the other PEs of those rows and columns hold zero weights.  One input stream carries the ``G'``
  groups' im2col columns side by side, so the fold streams ``M`` rows once for ``G'`` groups.
  ``G' = min(rows // ceil(K_g/p), cols // N_g)``: a group starts on a PE-row boundary so that pair mode adds
  the same two products of the same group as the unpacked GEMM (see the bit argument below).  ``G`` not a
  multiple of ``G'``: ``G // G'`` packed folds, then one fold of the ``G % G'`` remaining groups.
* ``vector unit``: the conv's MACs as FMA lane-ops of the vector unit (``timing.layer_results``).

How a packed problem is handed to the unchanged mapper and engine: as the dense GEMM the array executes,
``M x (G'*N_g) x (G'*K_g)`` with ``G // G'`` batch elements, whose weight element counts ``1/G'`` of a
byte-size (DRAM and the weight scratchpad hold the diagonal blocks only; the weight loader writes the zeros).
Every byte count is then the real one: inputs ``M*G'*K_g``, weights ``G'*K_g*N_g``, outputs ``M*G'*N_g`` per
fold.  The dense tile's MACs and PE positions count off-diagonal zeros: :func:`packed_tile_cycles` keeps the
fold cycles and offered PE positions of the dense tile (the array is occupied) and ``1/G'`` of its used PE
positions, and :func:`diagonal_macs` counts the useful MACs tile by tile.

Why packing is weight-stationary only: in ``is`` the stationary block of a group is ``K_g x M`` and in
``os`` it is ``M x N_g``; both contain ``M = N*P*Q`` (3136 for MobileNetV2's 56x56 stage, 49 for its last),
which already spans an array side.  Sharing a fold between ``G'`` groups then gives each ``1/G'`` of that side:
the useful area per fold, hence the fold count, is unchanged.  Packing would help there only when
``M < side / 2`` (7x7 maps on a 128-wide array); those layers keep ``gemm`` or the vector unit.

Bits: the datapath runs groups independently (``batch = G``).  A packed fold computes the same sums: a
group's ``K_g <= rows*p`` products are one segment, added down its column from +0 in increasing k and in the
same pairs (each group starts on a PE row); the other groups' rows contribute products with a zero weight,
exactly +/-0, and ``s + (+/-0) = s`` for every finite or infinite ``s`` of a column that starts at +0 (which
never becomes -0 under round-to-nearest).  An off-diagonal PE must be gated (zero weight: no product), or
a NaN input of another group would turn its 0 x NaN into NaN; ``tests/schedule/test_grouped.py`` checks the
block-diagonal GEMM against the grouped one bit for bit.
"""

from __future__ import annotations

import dataclasses
import math

from .mapper import ArraySpec, GemmProblem, LayerSchedule
from .tile_cycles import TileCycles, TileCyclesFn

GEMM = "gemm"
VECTOR_UNIT = "vector unit"


def packed_label(groups_per_fold: int) -> str:
    return f"packed x{groups_per_fold}"


def groups_per_fold(problem: GemmProblem, array: ArraySpec) -> int:
    """How many groups of ``problem`` (one batch element per group) share a weight-stationary fold; 1 when
    packing does not apply (another dataflow, or a group that fills a fold side on its own)."""
    if array.dataflow != "ws" or problem.batch < 2:
        return 1
    group_rows = math.ceil(problem.K / (2 if array.pair else 1))  # PE rows a group occupies
    return max(1, min(array.rows // group_rows, array.cols // problem.N, problem.batch))


@dataclasses.dataclass(frozen=True)
class PackedPart:
    """Folds of ``groups`` groups each, as the dense problem the array executes."""

    problem: GemmProblem
    groups: int  # groups per fold, G'
    group_k: int  # K_g

    @property
    def group_n(self) -> int:
        return self.problem.N // self.groups


def packed_parts(problem: GemmProblem, groups: int) -> tuple[PackedPart, ...]:
    """``problem``'s groups packed ``groups`` to a fold: the full folds, then one fold of the rest."""
    full, rest = divmod(problem.batch, groups)
    parts = []
    for size, count in ((groups, full), (rest, 1)):
        if size and count:
            # a conv's packed fold reads the window over all its groups' channels (its tiles always span the
            # whole packed reduction, so the order of groups within it does not change the footprint)
            conv = None if problem.conv is None else dataclasses.replace(problem.conv, C=size * problem.conv.C)
            dense = dataclasses.replace(problem, N=size * problem.N, K=size * problem.K, batch=count,
                                        b_bytes=problem.b_bytes / size, conv=conv)
            parts.append(PackedPart(dense, size, problem.K))
    return tuple(parts)


def packed_tile_cycles(part: PackedPart, tile_cycles: TileCyclesFn, pair: bool) -> TileCyclesFn:
    """The tile-cycle function of a packed part: each group's rows start on a PE-row boundary, so the dense
    tile spans ``G' * ceil(K_g/p)`` PE rows; its used PE positions are the diagonal blocks' (``1/G'``)."""
    per_step = 2 if pair else 1
    padded_k = math.ceil(part.group_k / per_step) * per_step

    def cycles(mt: int, nt: int, kt: int) -> TileCycles:
        if part.groups == 1:
            return tile_cycles(mt, nt, kt)
        # a packed part fits one fold in k and n (groups_per_fold), so every tile spans all its groups
        assert (nt, kt) == (part.problem.N, part.problem.K), (nt, kt)
        dense = tile_cycles(mt, nt, part.groups * padded_k)
        return dense._replace(used_pe_slots=dense.used_pe_slots / part.groups)
    return cycles


def diagonal_macs(schedule: LayerSchedule, part: PackedPart) -> int:
    """Useful MACs of a packed schedule: per tile, its rows times the overlap of its (n, k) ranges with the
    diagonal blocks (group ``j``: columns ``[j*N_g, (j+1)*N_g)``, reduction ``[j*K_g, (j+1)*K_g)``)."""
    n_g, k_g = part.group_n, part.group_k
    total = 0
    for tile in schedule.tiles:
        mt = tile.m[1] - tile.m[0]
        for j in range(part.groups):
            n_overlap = min(tile.n[1], (j + 1) * n_g) - max(tile.n[0], j * n_g)
            k_overlap = min(tile.k[1], (j + 1) * k_g) - max(tile.k[0], j * k_g)
            total += mt * max(0, n_overlap) * max(0, k_overlap)
    return total
