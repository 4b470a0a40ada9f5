"""Cycle-stepped register model of an R x C systolic array: the golden model for bits *and* cycles.

Pure Python and slow (arrays up to about 8 x 8).  Every cycle every active PE reads the registers its
neighbours wrote in the previous cycle, performs its step with the arithmetic of ``arithmetic.py``, and
writes its own registers; values move one hop per cycle.  It checks two things nothing else checks:

* the fast kernels (``gemm.py``) add in the order the register transfers add (same bits), and
* ``hfp8sim.schedule.fold_latency`` predicts the cycles the register transfers take.

Timing conventions.  A register written in cycle t holds the value from cycle t + 1 on; a PE in cycle t reads
what its neighbours hold in cycle t.  Edge ports (left/top operand ports, the weight bus, the output-buffer
port of each column) carry one value per cycle.  A fold's ``end`` is the cycle after its last write into the
output buffer; ``total_cycles`` is the cycle after the last activity of the whole GEMM.

Weight-/input-stationary (``ws`` / ``is``; ``is`` is ``ws`` on ``B^T @ A^T``, see ``_StationaryEngine``).
  Folds: column blocks of C (outer) x k-blocks of R*s values (inner, s = 2 in pair mode).  Weights reach the
  PEs' *shadow* registers over one weight bus, one row of the array per cycle, rows 0..r_used-1 in order; a
  row may be written only when every shadow register of the row is empty.  Streamed row m enters array row
  r at ``stream + m + r`` and moves right through the fold's used columns; the first input of a fold that
  reaches a PE swaps shadow -> active.  Partial sums enter the top of column c as +0 (``chain``: the buffer
  value) and move down one row per cycle; rows beyond r_used pass them on unchanged (bypass).  The bottom
  PE's result is combined into the accumulator buffer in the cycle it is computed: the first k-block of an
  output writes ``round_buf(psum)`` (so a -0 survives), later ones ``add_rounded(buffer, psum)``.  In chain
  mode the entry holds the running chain value between k-blocks and the last one rounds it into the buffer
  format (the contract's single segment; exact whenever the buffer format holds the accumulator's values).
  Columns a fold does not use are gated: its inputs stop at its last used column, so its swap wavefront
  ends there (were it to cross all C columns, a narrow fold's successor could not even preload when the
  array is idle).

Output-stationary (``os``).  Folds: row blocks of R outputs (outer) x column blocks of C (inner).  Operands
  of step i enter row r / column c at ``stream + i + r`` / ``stream + i + c``; PE(r, c) steps at
  ``stream + i + r + c``.  With chunks, a chunk's sum starts from +0 and initialises or is added to the
  PE's running sum in the step that ends the chunk.  The last step's result is latched into the PE's output
  register (it is there from the next cycle on); output registers form an upward shift chain per column and
  the top one is written to the output buffer each cycle.

Hazards (a register written twice in a cycle, two values on one port, a PE getting operands of different
folds/rows or an input without its partial sum, a weight not loaded when its input arrives, a shadow row
overwritten while full, an accumulator-buffer entry read or combined out of order) raise
:class:`StructuralHazard`.

Controllers.  Without overlap the array is run to idle between folds (and, for ws/is, between a fold's
preload and its stream).  With overlap each fold's preload and stream start are chosen by dry runs: copy
the state at a candidate cycle, run until the array is idle, accept the first candidate with no hazard
(candidates begin one cycle after the previous fold's; the preload is settled first, then the stream, which
may start while its own preload is still going on).  No latency formula is used;
``hfp8sim.schedule.fold_latency`` must agree with what these runs find.
"""

from __future__ import annotations

import bisect
import dataclasses
import math
from collections.abc import Sequence

import numpy as np

from ..errors import DatapathError, StructuralHazard
from ..formats.codec import OVERFLOW_MODES, ROUNDING_MODES
from .arithmetic import add_rounded, mac, mac_pair, round_value
from .contract import ArrayArithmetic, FoldSlot


@dataclasses.dataclass(frozen=True)
class SystolicResult:
    out: np.ndarray  # float64 accumulated values (running/buffer format), NaN where no fold wrote (replays)
    folds: list[FoldSlot]
    total_cycles: int


# ---- state and per-cycle bookkeeping ----------------------------------------------------------------------

class _State:
    """Everything that changes from cycle to cycle.  Dicts are replaced, never mutated, so a copy is O(1)
    and snapshots of consecutive cycles share what did not change."""

    __slots__ = ("t", "moving", "stationary", "buffer", "activity")

    def __init__(self, t, moving, stationary, buffer, activity):
        self.t = t
        self.moving = moving  # pipeline registers: (kind, r, c) -> token; emptied unless rewritten
        self.stationary = stationary  # registers that hold their value until rewritten
        self.buffer = buffer  # output buffer entry -> (folds combined so far, value)
        self.activity = activity  # fold -> (first cycle, first stream cycle, last buffer write)

    @classmethod
    def initial(cls) -> _State:
        return cls(0, {}, {}, {}, {})

    def copy(self) -> _State:
        return _State(self.t, self.moving, self.stationary, self.buffer, self.activity)


class _Cycle:
    """Writes and port uses of one cycle; a second write to a register or port is a hazard."""

    __slots__ = ("t", "moving", "stationary", "buffer", "ports", "activity")

    def __init__(self, t: int):
        self.t = t
        self.moving: dict = {}
        self.stationary: dict = {}
        self.buffer: dict = {}
        self.ports: dict = {}
        self.activity: dict = {}

    def hazard(self, message: str) -> StructuralHazard:
        return StructuralHazard(f"cycle {self.t}: {message}")

    def port(self, name: str, what: str) -> None:
        if name in self.ports:
            raise self.hazard(f"two values on {name} ({self.ports[name]} and {what})")
        self.ports[name] = what

    def _write(self, registers: dict, key, value, what: str) -> None:
        if key in registers:
            raise self.hazard(f"register {key} written twice ({registers[key][1]} and {what})")
        registers[key] = (value, what)

    def move(self, key, token, what: str) -> None:
        self._write(self.moving, key, token, what)

    def hold(self, key, value, what: str) -> None:
        self._write(self.stationary, key, value, what)

    def store(self, key, entry, what: str) -> None:
        self._write(self.buffer, key, entry, what)

    def note(self, fold: int, *, stream: bool = False, write: bool = False) -> None:
        """Record activity of a fold in this cycle (applied to the state's activity log at commit)."""
        flags = self.activity.setdefault(fold, [False, False])
        flags[0] |= stream
        flags[1] |= write

    def commit(self, st: _State) -> None:
        st.moving = {key: value for key, (value, _) in self.moving.items()}
        if self.stationary:
            stationary = dict(st.stationary)
            for key, (value, _) in self.stationary.items():
                if value is None:
                    stationary.pop(key, None)
                else:
                    stationary[key] = value
            st.stationary = stationary
        if self.buffer:
            st.buffer = {**st.buffer, **{key: value for key, (value, _) in self.buffer.items()}}
        if self.activity:
            activity = dict(st.activity)
            for fold, (stream, write) in self.activity.items():
                first, first_stream, last_write = activity.get(fold, (self.t, None, None))
                if stream and first_stream is None:
                    first_stream = self.t
                if write:
                    last_write = self.t
                activity[fold] = (first, first_stream, last_write)
            st.activity = activity
        st.t = self.t + 1


class _Schedule:
    """Start cycles of the folds scheduled so far, in fold order: (start, stream start or None)."""

    def __init__(self, engine: _Engine, starts: tuple = (), firsts: tuple = (), lasts: tuple = ()):
        self.engine = engine
        self.starts = starts
        self.firsts = firsts  # first and last cycle in which each fold injects anything
        self.lasts = lasts
        self.last_injection = max(lasts, default=-1)
        self.max_span = max((last - first for first, last in zip(firsts, lasts)), default=0)

    def with_fold(self, start: int, stream: int | None) -> _Schedule:
        first, last = self.engine.injection_window(len(self.starts), start, stream)
        return _Schedule(self.engine, self.starts + ((start, stream),), self.firsts + (first,), self.lasts + (last,))

    def with_last_fold(self, start: int, stream: int | None) -> _Schedule:
        return _Schedule(self.engine, self.starts[:-1], self.firsts[:-1], self.lasts[:-1]).with_fold(start, stream)

    def live(self, t: int) -> list[tuple[int, int, int | None]]:
        """Folds that may inject a value in cycle t, in fold order (first cycles never decrease in fold order,
        and no fold injects for longer than max_span cycles)."""
        hi = bisect.bisect_right(self.firsts, t)
        lo = bisect.bisect_left(self.firsts, t - self.max_span, 0, hi)
        return [(i, *self.starts[i]) for i in range(lo, hi) if self.lasts[i] >= t]


# ---- engines ---------------------------------------------------------------------------------------------

class _Engine:
    """One dataflow's register transfers.  Subclasses provide the folds, the injections and the PE step."""

    preloads: bool  # whether a fold has a weight preload before its stream
    rows: int
    cols: int

    def __init__(self, arith: ArrayArithmetic):
        self.arith = arith
        self.rows, self.cols = arith.rows, arith.cols
        self.acc_p = arith.acc_format.params
        self.seg_p = arith.segment_sum_format.params
        self.rounding = ROUNDING_MODES[arith.acc_rounding]
        self.overflow = OVERFLOW_MODES[arith.acc_overflow]

    def step_products(self, acc: float, xs: tuple, ws: tuple) -> float:
        """One PE step: one product with ``mac`` or two with IBM's fused ``mac_pair``."""
        if len(xs) == 2:
            return mac_pair(acc, xs[0], ws[0], xs[1], ws[1], self.acc_p, self.rounding, self.overflow)
        return mac(acc, xs[0], ws[0], self.acc_p, self.rounding, self.overflow)

    def injection_window(self, fold: int, start: int, stream: int | None) -> tuple[int, int]:
        raise NotImplementedError

    def fold_ranges(self, fold: int) -> tuple[range, range, range]:
        """The m, n and k ranges of the GEMM a fold covers."""
        raise NotImplementedError

    def step(self, st: _State, schedule: _Schedule) -> None:
        raise NotImplementedError

    def fold_count(self) -> int:
        raise NotImplementedError

    def max_wait(self) -> int:
        """A bound on how far past its lowest candidate a fold's start can lie (the controller gives up
        there, which would be a bug): every conflict involves a fold at most one stream, two array
        traversals and a preload earlier."""
        raise NotImplementedError

    def is_idle(self, st: _State, schedule: _Schedule) -> bool:
        return not st.moving and st.t > schedule.last_injection

    def run_to_idle(self, st: _State, schedule: _Schedule, trace: list | None = None) -> _State:
        """Step until nothing is in flight and nothing is left to inject (hazards propagate)."""
        st = st.copy()
        while not self.is_idle(st, schedule):
            self.step(st, schedule)
            if trace is not None:
                trace.append(st.copy())
        return st


@dataclasses.dataclass(frozen=True)
class _StationaryFold:
    index: int
    col_block: range  # stationary columns j held by array columns 0..c_used-1
    k_range: range
    k_block: int  # how many k-blocks of this column block come before this fold
    last_k_block: bool
    row_ks: tuple  # row_ks[r]: the k values array row r handles (1, or 2 in pair mode)
    weights: tuple  # weights[r][c]: the stationary values of PE(r, c)

    @property
    def r_used(self) -> int:
        return len(self.row_ks)

    @property
    def c_used(self) -> int:
        return len(self.col_block)


class _StationaryEngine(_Engine):
    """Weight-stationary register transfers computing ``Y = X @ W``: X [T, K] streams in from the left one
    row per cycle, W [K, J] is held in the PEs.  ws: X = A, W = B.  is: X = B^T, W = A^T, Y = out^T (the
    stationary operand is A^T and B's columns stream), which is the same hardware with the operands swapped:
    products commute exactly, so the additions and their order are the same."""

    preloads = True

    def __init__(self, arith: ArrayArithmetic, x: np.ndarray, w: np.ndarray):
        super().__init__(arith)
        self.x = x.tolist()
        self.t_len, k_total = x.shape
        self.j_len = w.shape[1]
        self.chain = arith.chain
        per_row = arith.products_per_step
        fold_depth = self.rows * per_row
        w_list = w.tolist()
        self.folds: list[_StationaryFold] = []
        for j0 in range(0, self.j_len, self.cols):
            col_block = range(j0, min(self.j_len, j0 + self.cols))
            k_starts = list(range(0, k_total, fold_depth))
            for kb, k0 in enumerate(k_starts):
                k_range = range(k0, min(k_total, k0 + fold_depth))
                row_ks = tuple(tuple(k_range[i:i + per_row]) for i in range(0, len(k_range), per_row))
                weights = tuple(tuple(tuple(w_list[k][j] for k in ks) for j in col_block) for ks in row_ks)
                self.folds.append(_StationaryFold(len(self.folds), col_block, k_range, kb,
                                                  kb == len(k_starts) - 1, row_ks, weights))

    def fold_count(self) -> int:
        return len(self.folds)

    def max_wait(self) -> int:
        return 2 * (self.t_len + self.rows + self.cols) + 8

    def fold_ranges(self, fold: int) -> tuple[range, range, range]:
        f = self.folds[fold]
        streamed = range(self.t_len)
        if self.arith.dataflow == "ws":
            return streamed, f.col_block, f.k_range
        return f.col_block, streamed, f.k_range

    def injection_window(self, fold: int, start: int, stream: int | None) -> tuple[int, int]:
        f = self.folds[fold]
        last = start + f.r_used - 1
        if stream is None:
            return start, last
        skew = max(f.r_used, f.c_used) - 1
        return min(start, stream), max(last, stream + self.t_len - 1 + skew)

    def step(self, st: _State, schedule: _Schedule) -> None:
        cyc = _Cycle(st.t)
        t = st.t
        left: dict[int, tuple] = {}
        top: dict[int, tuple] = {}
        for fi, start, stream in schedule.live(t):
            fold = self.folds[fi]
            row = t - start
            if 0 <= row < fold.r_used:
                self._preload_row(cyc, st, fold, row)
            if stream is None:
                continue
            for r in range(fold.r_used):
                m = t - stream - r
                if 0 <= m < self.t_len:
                    cyc.port(f"the input port of row {r}", f"fold {fi} row {m}")
                    left[r] = (fi, m, tuple(self.x[m][k] for k in fold.row_ks[r]))
                    cyc.note(fi, stream=True)
            for c in range(fold.c_used):
                m = t - stream - c
                if 0 <= m < self.t_len:
                    cyc.port(f"the partial-sum port of column {c}", f"fold {fi} row {m}")
                    top[c] = (fi, m, self._column_seed(cyc, st, fold, m, c))
        targets = {(r, 0) for r in left} | {(0, c) for c in top}
        for kind, r, c in st.moving:
            targets.add((r, c + 1) if kind == "a" else (r + 1, c))
        for r, c in targets:
            self._pe(cyc, st, r, c, left.get(r) if c == 0 else st.moving.get(("a", r, c - 1)),
                     top.get(c) if r == 0 else st.moving.get(("p", r - 1, c)))
        cyc.commit(st)

    def _preload_row(self, cyc: _Cycle, st: _State, fold: _StationaryFold, row: int) -> None:
        what = f"fold {fold.index} weight row {row}"
        cyc.port("the weight bus", what)
        for c in range(self.cols):
            held = st.stationary.get(("sh", row, c))
            if held is not None:
                raise cyc.hazard(f"{what}: the shadow register of PE({row},{c}) still holds fold {held[0]}'s "
                                 "weight (a row is written only when all its shadow registers are empty)")
        for c in range(fold.c_used):
            cyc.hold(("sh", row, c), (fold.index, fold.weights[row][c]), what)
        cyc.note(fold.index)

    def _column_seed(self, cyc: _Cycle, st: _State, fold: _StationaryFold, m: int, c: int) -> float:
        """What enters the top of a column: +0, or in chain mode the buffer value of the output."""
        if not self.chain or fold.k_block == 0:
            return 0.0
        entry = st.buffer.get((m, fold.col_block[c]))
        if entry is None or entry[0] != fold.k_block:
            done = 0 if entry is None else entry[0]
            raise cyc.hazard(f"fold {fold.index} reads output ({m},{fold.col_block[c]}) into the top of column "
                             f"{c} after {done} of the {fold.k_block} earlier folds wrote it")
        return entry[1]

    def _pe(self, cyc: _Cycle, st: _State, r: int, c: int, x_token, p_token) -> None:
        if p_token is None:
            fi, m, _ = x_token
            raise cyc.hazard(f"fold {fi} row {m} input reached PE({r},{c}) without its partial sum")
        fi, m, acc = p_token
        fold = self.folds[fi]
        if x_token is not None:
            if x_token[:2] != (fi, m):
                raise cyc.hazard(f"PE({r},{c}) got the input of fold {x_token[0]} row {x_token[1]} and the "
                                 f"partial sum of fold {fi} row {m}")
            acc = self.step_products(acc, x_token[2], self._weight(cyc, st, r, c, fi))
            if c + 1 < fold.c_used:
                cyc.move(("a", r, c), x_token, f"fold {fi} row {m} input")
        elif r < fold.r_used:
            raise cyc.hazard(f"fold {fi} row {m} partial sum reached PE({r},{c}) without its input")
        # else: a row this fold does not use passes the partial sum on unchanged
        if r + 1 < self.rows:
            cyc.move(("p", r, c), (fi, m, acc), f"fold {fi} row {m} partial sum")
        else:
            self._combine(cyc, st, fold, m, c, acc)

    def _weight(self, cyc: _Cycle, st: _State, r: int, c: int, fi: int) -> tuple:
        """The PE's weight for fold fi, swapping the shadow in on the fold's first input."""
        active = st.stationary.get(("w", r, c))
        if active is not None and active[0] == fi:
            return active[1]
        shadow = st.stationary.get(("sh", r, c))
        if shadow is None or shadow[0] != fi:
            raise cyc.hazard(f"fold {fi} input reached PE({r},{c}) before its weight was loaded")
        what = f"fold {fi} weight swap"
        cyc.hold(("w", r, c), shadow, what)
        cyc.hold(("sh", r, c), None, what)
        return shadow[1]

    def _combine(self, cyc: _Cycle, st: _State, fold: _StationaryFold, m: int, c: int, psum: float) -> None:
        """The bottom of a column: the fold's partial sum into the accumulator buffer, in this cycle."""
        what = f"fold {fold.index} row {m}"
        cyc.port(f"the output-buffer port of column {c}", what)
        key = (m, fold.col_block[c])
        done, value = st.buffer.get(key, (0, None))
        if done != fold.k_block:
            raise cyc.hazard(f"{what} combines into output {key} after {done} of its {fold.k_block} earlier folds")
        if self.chain:
            # The chain carries the running value itself; it is rounded into the buffer format once, by the
            # last fold (contract: one segment).  Exact whenever the buffer format holds the accumulator's.
            value = round_value(psum, self.seg_p, self.rounding, self.overflow) if fold.last_k_block else psum
        elif done == 0:
            value = round_value(psum, self.seg_p, self.rounding, self.overflow)  # keeps -0 (0.0 + -0.0 would not)
        else:
            value = add_rounded(value, psum, self.seg_p, self.rounding, self.overflow)
        cyc.store(key, (done + 1, value), what)
        cyc.note(fold.index, write=True)

    def output(self, st: _State) -> np.ndarray:
        out = np.full((self.t_len, self.j_len), math.nan)
        for (i, j), (_, value) in st.buffer.items():
            out[i, j] = value
        return out

    def check_complete(self, st: _State) -> None:
        k_blocks = sum(1 for f in self.folds if f.col_block.start == 0)
        for i in range(self.t_len):
            for j in range(self.j_len):
                if st.buffer.get((i, j), (0,))[0] != k_blocks:
                    raise RuntimeError(f"output ({i},{j}) did not receive all {k_blocks} folds")


@dataclasses.dataclass(frozen=True)
class _OsStep:
    ks: tuple  # the k values of this PE step (1, or 2 in pair mode)
    starts_chunk: bool
    ends_chunk: bool
    first_chunk: bool
    last: bool


@dataclasses.dataclass(frozen=True)
class _OutputFold:
    index: int
    m_range: range  # outputs rows held by array rows 0..r_used-1
    n_range: range  # output columns held by array columns 0..c_used-1

    @property
    def r_used(self) -> int:
        return len(self.m_range)

    @property
    def c_used(self) -> int:
        return len(self.n_range)


def _os_pe_steps(k_total: int, segment: int, pair: bool) -> list[_OsStep]:
    """The PE steps of an output-stationary fold: k cut into chunks (segments), pairs within a chunk, a
    chunk's odd last product alone (contract)."""
    steps = []
    for c0 in range(0, k_total, segment):
        c1 = min(k_total, c0 + segment)
        k = c0
        while k < c1:
            n = 2 if pair and k + 1 < c1 else 1
            steps.append(_OsStep(tuple(range(k, k + n)), k == c0, k + n == c1, c0 == 0, k + n == k_total))
            k += n
    return steps


class _OutputStationaryEngine(_Engine):
    """Output-stationary register transfers computing ``out = A @ B``."""

    preloads = False

    def __init__(self, arith: ArrayArithmetic, a: np.ndarray, b: np.ndarray):
        super().__init__(arith)
        self.a, self.b = a.tolist(), b.tolist()
        self.m_len, self.k_len = a.shape
        self.n_len = b.shape[1]
        self.steps = _os_pe_steps(self.k_len, arith.segment_length(self.k_len), arith.pair)
        self.folds = [
            _OutputFold(i, range(m0, min(self.m_len, m0 + self.rows)), range(n0, min(self.n_len, n0 + self.cols)))
            for i, (m0, n0) in enumerate((m0, n0) for m0 in range(0, self.m_len, self.rows)
                                         for n0 in range(0, self.n_len, self.cols))
        ]

    def fold_count(self) -> int:
        return len(self.folds)

    def max_wait(self) -> int:
        return 2 * (len(self.steps) + self.rows + self.cols) + 8

    def fold_ranges(self, fold: int) -> tuple[range, range, range]:
        f = self.folds[fold]
        return f.m_range, f.n_range, range(self.k_len)

    def injection_window(self, fold: int, start: int, stream: int | None) -> tuple[int, int]:
        f = self.folds[fold]
        return start, start + len(self.steps) - 1 + max(f.r_used, f.c_used) - 1

    def step(self, st: _State, schedule: _Schedule) -> None:
        cyc = _Cycle(st.t)
        t = st.t
        left: dict[int, tuple] = {}
        top: dict[int, tuple] = {}
        for fi, start, _ in schedule.live(t):
            fold = self.folds[fi]
            for r in range(fold.r_used):
                i = t - start - r
                if 0 <= i < len(self.steps):
                    cyc.port(f"the input port of row {r}", f"fold {fi} step {i}")
                    left[r] = (fi, i, tuple(self.a[fold.m_range[r]][k] for k in self.steps[i].ks))
                    cyc.note(fi, stream=True)
            for c in range(fold.c_used):
                i = t - start - c
                if 0 <= i < len(self.steps):
                    cyc.port(f"the input port of column {c}", f"fold {fi} step {i}")
                    top[c] = (fi, i, tuple(self.b[k][fold.n_range[c]] for k in self.steps[i].ks))
        targets = {(r, 0) for r in left} | {(0, c) for c in top}
        for (kind, r, c), token in st.moving.items():
            if kind == "a":
                targets.add((r, c + 1))
            elif kind == "b":
                targets.add((r + 1, c))
            else:
                self._drain(cyc, st, r, c, token)
        for r, c in targets:
            self._pe(cyc, st, r, c, left.get(r) if c == 0 else st.moving.get(("a", r, c - 1)),
                     top.get(c) if r == 0 else st.moving.get(("b", r - 1, c)))
        cyc.commit(st)

    def _drain(self, cyc: _Cycle, st: _State, r: int, c: int, token: tuple) -> None:
        """Output registers shift up one row per cycle; the top one is written to the output buffer."""
        fi, pe_row, value = token
        what = f"fold {fi} result of PE({pe_row},{c})"
        if r > 0:
            cyc.move(("o", r - 1, c), token, what)
            return
        fold = self.folds[fi]
        cyc.port(f"the output-buffer port of column {c}", what)
        key = (fold.m_range[pe_row], fold.n_range[c])
        if key in st.buffer:
            raise cyc.hazard(f"{what}: output {key} is written a second time")
        cyc.store(key, (1, value), what)
        cyc.note(fi, write=True)

    def _pe(self, cyc: _Cycle, st: _State, r: int, c: int, a_token, b_token) -> None:
        if a_token is None or b_token is None:
            fi, i, _ = a_token or b_token
            raise cyc.hazard(f"PE({r},{c}) got only one operand of fold {fi} step {i}")
        fi, i, a_vals = a_token
        if b_token[:2] != (fi, i):
            raise cyc.hazard(f"PE({r},{c}) got operands of fold {fi} step {i} and fold {b_token[0]} step "
                             f"{b_token[1]}")
        fold, step = self.folds[fi], self.steps[i]
        what = f"fold {fi} step {i}"
        if step.starts_chunk:
            acc = 0.0
        else:
            acc = self._held(cyc, st, ("acc", r, c), fi, "chunk sum")
        acc = self.step_products(acc, a_vals, b_token[2])
        if step.ends_chunk:
            if step.first_chunk:
                running = round_value(acc, self.seg_p, self.rounding, self.overflow)
            else:
                running = add_rounded(self._held(cyc, st, ("run", r, c), fi, "running sum"), acc, self.seg_p,
                                      self.rounding, self.overflow)
            if step.last:  # the result goes straight into the PE's output register
                cyc.move(("o", r, c), (fi, r, running), f"{what} result of PE({r},{c})")
            else:
                cyc.hold(("run", r, c), (fi, running), what)
        else:
            cyc.hold(("acc", r, c), (fi, acc), what)
        if c + 1 < fold.c_used:
            cyc.move(("a", r, c), a_token, what)
        if r + 1 < fold.r_used:
            cyc.move(("b", r, c), b_token, what)

    @staticmethod
    def _held(cyc: _Cycle, st: _State, key, fi: int, name: str) -> float:
        held = st.stationary.get(key)
        if held is None or held[0] != fi:
            raise cyc.hazard(f"PE({key[1]},{key[2]}) continues fold {fi}'s {name} but holds "
                             f"{'nothing' if held is None else f'fold {held[0]}'}")
        return held[1]

    def output(self, st: _State) -> np.ndarray:
        out = np.full((self.m_len, self.n_len), math.nan)
        for (i, j), (_, value) in st.buffer.items():
            out[i, j] = value
        return out

    def check_complete(self, st: _State) -> None:
        missing = self.m_len * self.n_len - len(st.buffer)
        if missing:
            raise RuntimeError(f"{missing} outputs were never written")


# ---- controllers -----------------------------------------------------------------------------------------

class _Trace:
    """States of one schedule at consecutive cycles from ``t0`` (state before that cycle), extended on demand
    by stepping (only ever past the point where the schedule was checked, i.e. an idle array)."""

    def __init__(self, engine: _Engine, schedule: _Schedule, states: list[_State]):
        self.engine, self.schedule, self.states = engine, schedule, states
        self.t0 = states[0].t

    def at(self, t: int) -> _State:
        if t < self.t0:
            raise RuntimeError(f"cycle {t} precedes the kept trace (from {self.t0})")
        while self.t0 + len(self.states) <= t:
            st = self.states[-1].copy()
            self.engine.step(st, self.schedule)
            self.states.append(st)
        return self.states[t - self.t0]


def _dry_run(engine: _Engine, schedule: _Schedule, st: _State) -> list[_State] | None:
    """States from st until idle under the schedule, or None if a hazard occurs."""
    states = [st]
    try:
        engine.run_to_idle(st, schedule, states)
    except StructuralHazard:
        return None
    return states


def _earliest(engine: _Engine, lowest: int, make_schedule, state_at) -> tuple[int, list[_State]]:
    """The first candidate cycle >= lowest whose dry run has no hazard."""
    limit = lowest + engine.max_wait()
    for candidate in range(lowest, limit):
        states = _dry_run(engine, make_schedule(candidate), state_at(candidate))
        if states is not None:
            return candidate, states
    raise RuntimeError(f"no hazard-free start found in cycles {lowest}..{limit - 1}")


def _run_overlapped(engine: _Engine) -> tuple[_Schedule, _State]:
    """Overlap: fold by fold, the earliest hazard-free preload start (ws/is), then the earliest hazard-free
    stream start, each found by dry runs from the state at the candidate cycle."""
    schedule = _Schedule(engine)
    base = _Trace(engine, schedule, [_State.initial()])  # states from the lowest cycle still a candidate
    prev_start = prev_stream = -1
    for _ in range(engine.fold_count()):
        before = schedule
        if engine.preloads:
            start, pre_states = _earliest(engine, prev_start + 1, lambda p: before.with_fold(p, None), base.at)
            pre = _Trace(engine, before.with_fold(start, None), pre_states)
            stream, states = _earliest(engine, max(start, prev_stream + 1),
                                       lambda s: before.with_fold(start, s), pre.at)
            # the next fold's candidates begin at start + 1; until this fold's stream its preload-only
            # states are this schedule's states
            states = [pre.at(t) for t in range(start + 1, stream)] + states
        else:
            stream, states = _earliest(engine, prev_stream + 1, lambda s: before.with_fold(s, s), base.at)
            start, states = stream, states[1:]
        schedule = before.with_fold(start, stream)
        base = _Trace(engine, schedule, states)
        prev_start, prev_stream = start, stream
    return schedule, base.states[-1]


def _run_sequential(engine: _Engine) -> tuple[_Schedule, _State]:
    """No overlap: each fold starts when the array is idle; a ws/is fold streams once its preload is done."""
    schedule = _Schedule(engine)
    st = _State.initial()
    for _ in range(engine.fold_count()):
        start = st.t
        if engine.preloads:
            schedule = schedule.with_fold(start, None)
            st = engine.run_to_idle(st, schedule)
            schedule = schedule.with_last_fold(start, st.t)
        else:
            schedule = schedule.with_fold(start, start)
        st = engine.run_to_idle(st, schedule)
    return schedule, st


# ---- public API ------------------------------------------------------------------------------------------

def _engine(a_val, b_val, arith: ArrayArithmetic) -> _Engine:
    if not isinstance(arith, ArrayArithmetic):
        raise DatapathError(f"arith must be an ArrayArithmetic, got {type(arith).__name__}")
    a = np.asarray(a_val, dtype=np.float64)
    b = np.asarray(b_val, dtype=np.float64)
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[0]:
        raise DatapathError(f"operands must be [M,K] x [K,N] value arrays; got shapes {a.shape} and {b.shape}")
    if min(a.shape + b.shape) < 1:
        raise DatapathError(f"the systolic model needs M, N, K >= 1; got shapes {a.shape} and {b.shape}")
    if arith.dataflow == "os":
        return _OutputStationaryEngine(arith, a, b)
    if arith.dataflow == "ws":
        return _StationaryEngine(arith, a, b)
    return _StationaryEngine(arith, b.T, a.T)


def _result(engine: _Engine, schedule: _Schedule, st: _State, *, complete: bool) -> SystolicResult:
    if complete:
        engine.check_complete(st)
    out = engine.output(st)
    folds = []
    for fi in range(len(schedule.starts)):
        first, first_stream, last_write = st.activity[fi]
        folds.append(FoldSlot(fi, *engine.fold_ranges(fi), first, first_stream, last_write + 1))
    if engine.arith.dataflow == "is":
        out = out.T.copy()
    return SystolicResult(out, folds, st.t)


def simulate_gemm(a_val, b_val, arith: ArrayArithmetic, *, overlap: bool = False) -> SystolicResult:
    """Run ``A @ B`` (float64 operand values, NaN allowed) through the register model.

    Returns the accumulated outputs (running/buffer format, before any output rounding), each fold's start,
    stream start and end, and the total cycle count.  ``overlap``: each fold starts as early as the dry-run
    controller finds hazard-free; otherwise each fold starts when the array is idle.
    """
    engine = _engine(a_val, b_val, arith)
    schedule, st = (_run_overlapped if overlap else _run_sequential)(engine)
    return _result(engine, schedule, st, complete=True)


def replay_gemm(a_val, b_val, arith: ArrayArithmetic, starts: Sequence[tuple[int, int]]) -> SystolicResult:
    """Run the first ``len(starts)`` folds with the given (start, stream start) cycles, raising
    :class:`StructuralHazard` on any conflict.  For os the two must be equal; start cycles must not decrease.
    Outputs no replayed fold wrote are NaN."""
    engine = _engine(a_val, b_val, arith)
    if len(starts) > engine.fold_count():
        raise DatapathError(f"{len(starts)} start cycles for {engine.fold_count()} folds")
    schedule = _Schedule(engine)
    previous = -1
    for start, stream in starts:
        if start < previous or stream < start or (not engine.preloads and stream != start):
            raise DatapathError(f"bad start cycles {(start, stream)} after a fold starting at {previous}")
        schedule = schedule.with_fold(int(start), int(stream))
        previous = start
    st = engine.run_to_idle(_State.initial(), schedule)
    return _result(engine, schedule, st, complete=len(starts) == engine.fold_count())
