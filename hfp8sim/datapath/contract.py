"""What decides the order and the rounding of every addition: the array, its dataflow and the accumulators.

The order of additions follows the dataflow on an array of ``rows`` x ``cols`` PEs:

* ``os`` (output-stationary): each PE adds its output's products in increasing k, one long chain.  With
  ``chunk = L`` the chain is cut into chunks of L products, each summed from +0, and the chunk sums are added
  in order to a running sum (chunk-based accumulation, Wang et al. 2018), all in the accumulator format.
* ``ws`` / ``is`` (weight-/input-stationary): the reduction index is mapped on the rows, so k is cut into
  folds of ``rows`` consecutive values.  In a fold the partial sum starts at +0 at the top of a column and
  adds rows 0..rows-1 in order; the fold's result is added, in fold order, to the output's value in the
  accumulator buffer (``buffer_format``: the accumulator format by default, or e.g. float32).  With
  ``chain=True`` the buffer value is fed into the top of the column instead (one unbroken chain).
* ``pair=True``: every PE step is IBM's fused multiply-multiply-add, ``acc + p0 + p1`` rounded once, taking
  two consecutive k.  A fold of a ws/is array then covers ``2*rows`` values of k.  When a segment (fold or
  chunk) holds an odd number of products, its last product is added alone.

So both kinds of dataflow reduce to one rule: k is cut into *segments* of ``segment_length(K)`` products;
each segment is accumulated from +0 in the accumulator format; the first segment's sum, rounded into the
running format, initialises the running value (the first fold *writes* the buffer), and every later segment
sum is added to it with one rounding (read-modify-write).  The running format is ``buffer_format`` for ws/is
and the accumulator format for os chunks.  One long chain is a single segment.
"""

from __future__ import annotations

import dataclasses

from ..errors import ArraySpecError
from ..formats.codec import OVERFLOW_MODES, ROUNDING_MODES
from ..formats.spec import FormatSpec, get_format
from ..vocabulary import Dataflow

DATAFLOWS: tuple[str, ...] = tuple(d.value for d in Dataflow)  # "os", "ws", "is"


@dataclasses.dataclass(frozen=True)
class ArrayArithmetic:
    """Array shape, dataflow and accumulator settings: everything that changes the bits of a GEMM result."""

    dataflow: str = "ws"
    rows: int = 128
    cols: int = 128
    acc_format: FormatSpec | str = "dlfloat16"
    acc_rounding: str = "nearest_even"
    acc_overflow: str = "saturate"
    buffer_format: FormatSpec | str | None = None  # ws/is accumulator buffer; None = acc_format
    chunk: int | None = None  # os only: chunk length L in products
    chain: bool = False  # ws/is only: feed the buffer value into the top of the column
    pair: bool = False  # two products per PE step (FMMA)

    def __post_init__(self) -> None:
        if self.dataflow not in DATAFLOWS:
            raise ArraySpecError(f"unknown dataflow {self.dataflow!r}; allowed: {', '.join(DATAFLOWS)}")
        for key in ("rows", "cols"):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ArraySpecError(f"array {key} must be a positive integer, got {value!r}")
        object.__setattr__(self, "acc_format", get_format(self.acc_format))
        buffer = self.acc_format if self.buffer_format is None else get_format(self.buffer_format)
        object.__setattr__(self, "buffer_format", buffer)
        if self.acc_rounding not in ROUNDING_MODES or self.acc_rounding == "stochastic":
            allowed = ", ".join(m for m in ROUNDING_MODES if m != "stochastic")
            raise ArraySpecError(f"unknown accumulator rounding {self.acc_rounding!r}; allowed: {allowed}")
        if self.acc_overflow not in OVERFLOW_MODES:
            raise ArraySpecError(
                f"unknown accumulator overflow {self.acc_overflow!r}; allowed: {', '.join(OVERFLOW_MODES)}")
        if self.chunk is not None:
            if self.dataflow != "os":
                raise ArraySpecError("chunk applies to the output-stationary dataflow only (ws/is fold by rows)")
            if isinstance(self.chunk, bool) or not isinstance(self.chunk, int) or self.chunk < 1:
                raise ArraySpecError(f"chunk must be a positive integer number of products, got {self.chunk!r}")
        if self.chain and self.dataflow == "os":
            raise ArraySpecError("chain applies to ws/is (an output-stationary PE is one chain already)")
        for spec in (self.acc_format, self.buffer_format):
            if spec.bits > 16 and spec.name != "float32":
                raise ArraySpecError(f"accumulator format {spec.name} is not supported")

    @property
    def products_per_step(self) -> int:
        return 2 if self.pair else 1

    def segment_length(self, k_total: int) -> int:
        """Products per segment (see the module notes); at least 1."""
        if self.dataflow == "os":
            length = self.chunk or k_total
        elif self.chain:
            length = k_total
        else:
            length = self.rows * self.products_per_step
        return max(1, length)

    @property
    def segment_sum_format(self) -> FormatSpec:
        """Format in which segment sums are combined: the buffer for ws/is, the accumulator for os chunks."""
        return self.buffer_format if self.dataflow in ("ws", "is") else self.acc_format  # type: ignore[return-value]


@dataclasses.dataclass(frozen=True)
class FoldSlot:
    """One fold of a GEMM: its index ranges and its cycles.  The schedule's closed forms
    (``hfp8sim.schedule.fold_latency``) and the cycle-stepped reference array (``datapath.systolic``) both
    produce these, and tests compare them slot by slot.

    ``start``: first cycle of the fold (weight preload for ws/is, stream for os); ``stream_start``: the
    cycle its first streamed operand enters the array; ``end``: cycle after its last output-buffer write.
    """

    index: int
    m_range: range
    n_range: range
    k_range: range
    start: int
    stream_start: int
    end: int
