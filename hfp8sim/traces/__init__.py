"""Layer traces: networks run through the bit-accurate datapath, with per-layer statistics, as JSON files."""

from ..errors import TraceError
from .datapath_ops import (
    SCALINGS, DatapathOps, GemmRecord, OperandRecord, arithmetic_for_arch, accumulator_limit, summarize_by_layer,
    values_sha256,
)
from .schema import TRACE_FORMAT, Trace, TraceLayer

__all__ = ["SCALINGS", "DatapathOps", "GemmRecord", "OperandRecord", "TRACE_FORMAT", "Trace", "TraceError",
           "TraceLayer", "arithmetic_for_arch", "accumulator_limit", "summarize_by_layer", "values_sha256"]
