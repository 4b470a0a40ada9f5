"""Closed-form cycles of the folds of a GEMM on an R x C systolic array, with and without overlap.

The formulas are derived from the register model of ``hfp8sim.datapath.systolic`` (and checked against it,
fold by fold, in ``tests/datapath/test_systolic.py``).  Conventions: cycle 0 is the first cycle; a
register written in cycle t holds the value from t + 1; edge ports carry one value per cycle; a fold's
``end`` is the cycle after its last write into the output buffer; a GEMM takes ``max(end)`` cycles.

Symbols: R, C array rows/columns; s = 2 in pair mode (IBM FMMA: two products per PE step) else 1;
r = rows of the array a fold uses, c = columns it uses; T = streamed length.

Weight-stationary (``ws``: T = M) and input-stationary (``is``: the same with A^T stationary, T = N)
------------------------------------------------------------------------------------------------------
Folds: column blocks of C (ws: n, is: m; outer loop) x k-blocks of R*s values (inner); r = ceil(k_len / s),
c = width of the column block.  A fold has a preload start p and a stream start s_f (``stream_start``).

* Preload: one row of weights per cycle over the weight bus into shadow registers, rows 0..r-1: row i is
  written in cycle p + i.
* Stream: row m enters array row i at s_f + m + i and PE(i, j) processes it at s_f + m + i + j (swapping its
  shadow weight in on the fold's first input).  The partial sum moves down one row per cycle through all R
  rows (unused rows bypass) and is combined into the buffer in the cycle PE(R-1, j) computes it:
  s_f + m + (R - 1) + j.  The last one is row T-1 in column c-1, so

      end = s_f + T + R + c - 2.

Lone fold (no overlap; p = 0, s_f = r):  ``latency = r + T + (R - 1) + (c - 1)``
  fill: r preload cycles, then R - 1 + c - 1 cycles of skew for the last row to cross the array;
  steady: T streamed rows.

No overlap:  p_0 = 0;  s_f = p_f + r_f;  p_{f+1} = end_f.   (Each phase waits for an idle array.)

Overlap (each start as early as no register or port conflict allows):

    p_0 = 0,   p_f = max(p_{f-1} + r_{f-1},  s_{f-1} + c_{f-1})
    s_f = max(p_f + 1,  s_{f-1} + T,  [chain and same column block] s_{f-1} + R)

  * p_{f-1} + r_{f-1}: the weight bus is busy for the previous preload's r rows.
  * s_{f-1} + c_{f-1}: a row may be written only when all its shadow registers are empty; the previous
    fold's swap wavefront reaches PE(i, c-1) at s_{f-1} + i + c - 1, so row i is free from
    s_{f-1} + i + c_{f-1} and p_f + i must be at least that (row 0 decides; rows the previous fold did not
    use were freed even earlier, since s + c grows strictly from fold to fold).
  * p_f + 1: PE(i, 0) swaps at s_f + i and needs the shadow written in an earlier cycle (p_f + i).
  * s_{f-1} + T: the left input ports carry the previous fold's rows until s_{f-1} + T - 1 + i.
  * chain: the top of column j reads the buffer value of output (m, j) at s_f + m + j, which the previous
    k-block writes at s_{f-1} + m + R - 1 + j; it must be written in an earlier cycle.
  A lone fold with overlap therefore takes 1 + T + R + c - 2 (its stream starts one cycle after its preload).

Output-stationary (``os``)
--------------------------
Folds: row blocks of R outputs (outer) x column blocks of C (inner); r = rows used, c = columns used.
T = PE steps per output = sum over chunks of ceil(chunk length / s) (``os_pe_step_count``; an odd chunk's
last product is a step of its own).  Step i's operands enter row i' / column j at s_f + i + i' /
s_f + i + j, PE(i', j) steps at s_f + i + i' + j.  Its last step (s_f + T - 1 + i' + j) latches the result
into its output register; output registers shift up one row per cycle and the top one is written to the
output buffer, so PE(i', j)'s result is written at s_f + T + 2 i' + j and

      end = s_f + T + 2 r + c - 2.

Lone fold: ``latency = T + (r - 1) + (c - 1) + r``
  steady: T steps; fill: r - 1 + c - 1 cycles of skew to the last PE; drain: r - 1 hops up and the write.

No overlap:  s_0 = 0;  s_{f+1} = end_f.

Overlap:

    s_{f+1} = min { s >= s_f + T :  for every earlier fold h,  s - s_h is odd  or  s - s_h >= 2 r_h }

  * s_f + T: the input ports carry the previous fold's operands until s_f + T - 1 + i'.
  * parity: fold h's result of PE(rho, j) is written into output register (rho - k, j) in cycle
    s_h + T - 1 + rho + j + k; the new fold's PE(i', j) latches into register (i', j) in cycle
    s + T - 1 + i' + j.  Both in one cycle means s - s_h = 2 (rho - i'), so a conflict exists exactly when
    s - s_h is even and at most 2 (r_h - 1) (take i' = 0 and column 0, which every fold uses).  The same
    condition makes both folds use a column's output-buffer port in one cycle.
"""

from __future__ import annotations

import math

from ..datapath.contract import DATAFLOWS, FoldSlot
from ..errors import ArraySpecError


def _positive(**values: int) -> None:
    for name, value in values.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ArraySpecError(f"{name} must be a positive integer, got {value!r}")


def _check_dataflow(dataflow: str) -> None:
    if dataflow not in DATAFLOWS:
        raise ArraySpecError(f"unknown dataflow {dataflow!r}; allowed: {', '.join(DATAFLOWS)}")


def os_pe_step_count(k_total: int, *, pair: bool = False, chunk: int | None = None) -> int:
    """PE steps of an output-stationary fold: chunks of ``chunk`` products (one chunk without chunking),
    each taking ceil(length / 2) steps in pair mode."""
    _positive(k_total=k_total)
    per_step = 2 if pair else 1
    length = chunk or k_total
    full, rest = divmod(k_total, length)
    return full * math.ceil(length / per_step) + math.ceil(rest / per_step)


def fold_latency(dataflow: str, rows: int, cols: int, t_steps: int, r_used: int, c_used: int, *,
                 overlap: bool = False) -> int:
    """Cycles of a lone fold from its start to its end (see the module notes).

    ``t_steps``: streamed length (ws: M, is: N, os: ``os_pe_step_count``).  ``overlap`` only matters for
    ws/is: the stream then starts one cycle after the preload instead of after all of it.
    """
    _check_dataflow(dataflow)
    _positive(rows=rows, cols=cols, t_steps=t_steps, r_used=r_used, c_used=c_used)
    if r_used > rows or c_used > cols:
        raise ArraySpecError(f"a fold uses at most {rows} x {cols} PEs, got {r_used} x {c_used}")
    if dataflow == "os":
        return t_steps + 2 * r_used + c_used - 2
    preload = 1 if overlap else r_used
    return preload + t_steps + rows + c_used - 2


def _blocks(total: int, size: int) -> list[range]:
    return [range(lo, min(total, lo + size)) for lo in range(0, total, size)]


def gemm_fold_schedule(dataflow: str, rows: int, cols: int, m: int, n: int, k: int, *, pair: bool = False,
                       overlap: bool = False, chain: bool = False, chunk: int | None = None) -> list[FoldSlot]:
    """The folds of ``[m, k] x [k, n]`` in the array's order (ws: n outer, k inner; is: m outer, k inner;
    os: m outer, n inner) with their start, stream start and end cycles (see the module notes).

    ``chain`` (ws/is: the buffer value enters the top of the column) adds the read-after-write bound to
    overlapped folds; ``chunk`` (os) changes the PE step count in pair mode when it is odd.
    """
    _check_dataflow(dataflow)
    _positive(rows=rows, cols=cols, m=m, n=n, k=k)
    if chunk is not None:
        _positive(chunk=chunk)
        if dataflow != "os":
            raise ArraySpecError("chunk applies to the output-stationary dataflow only")
    if chain and dataflow == "os":
        raise ArraySpecError("chain applies to ws/is only")
    if dataflow == "os":
        return _output_stationary(rows, cols, m, n, k, os_pe_step_count(k, pair=pair, chunk=chunk), overlap)
    return _stationary(dataflow, rows, cols, m, n, k, 2 if pair else 1, overlap, chain)


def _stationary(dataflow, rows, cols, m, n, k, per_step, overlap, chain) -> list[FoldSlot]:
    t_len, wide = (m, n) if dataflow == "ws" else (n, m)
    slots: list[FoldSlot] = []
    preload = stream = prev_r = prev_c = 0
    for col_block in _blocks(wide, cols):
        for kb, k_range in enumerate(_blocks(k, rows * per_step)):
            r_used, c_used = math.ceil(len(k_range) / per_step), len(col_block)
            if not slots:
                preload, stream = 0, (1 if overlap else r_used)
            elif overlap:
                preload = max(preload + prev_r, stream + prev_c)
                bounds = [preload + 1, stream + t_len]
                if chain and kb > 0:
                    bounds.append(stream + rows)
                stream = max(bounds)
            else:
                preload = slots[-1].end
                stream = preload + r_used
            end = stream + t_len + rows + c_used - 2
            m_range, n_range = (range(m), col_block) if dataflow == "ws" else (col_block, range(n))
            slots.append(FoldSlot(len(slots), m_range, n_range, k_range, preload, stream, end))
            prev_r, prev_c = r_used, c_used
    return slots


def _output_stationary(rows, cols, m, n, k, t_steps, overlap) -> list[FoldSlot]:
    slots: list[FoldSlot] = []

    def drain_conflict(start: int) -> bool:
        """Whether a fold starting at ``start`` latches a result into an output register in the cycle an
        earlier fold's result shifts into it (s - s_h even and below 2 r_h; only the last 2R cycles matter)."""
        for h in reversed(slots):
            gap = start - h.start
            if gap >= 2 * rows:
                return False
            if gap % 2 == 0 and gap < 2 * len(h.m_range):
                return True
        return False

    for m_range in _blocks(m, rows):
        for n_range in _blocks(n, cols):
            if not slots:
                start = 0
            elif overlap:
                start = slots[-1].start + t_steps
                while drain_conflict(start):
                    start += 1
            else:
                start = slots[-1].end
            end = start + t_steps + 2 * len(m_range) + len(n_range) - 2
            slots.append(FoldSlot(len(slots), m_range, n_range, range(k), start, start, end))
    return slots


def gemm_cycles(dataflow: str, rows: int, cols: int, m: int, n: int, k: int, *, pair: bool = False,
                overlap: bool = False, chain: bool = False, chunk: int | None = None) -> int:
    """Cycles of the whole GEMM: the latest fold end (with overlap a narrow last fold may end before the
    fold preceding it)."""
    return max(slot.end for slot in gemm_fold_schedule(dataflow, rows, cols, m, n, k, pair=pair, overlap=overlap,
                                                          chain=chain, chunk=chunk))
