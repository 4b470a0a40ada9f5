"""Layer traces: networks run through the bit-accurate datapath, with per-layer statistics, as JSON files."""

from .datapath_ops import (
    SCALINGS, DatapathOps, GemmRecord, OperandRecord, arithmetic_for_arch, accumulator_limit,
    summarize_by_layer, values_sha256,
)

__all__ = ["SCALINGS", "DatapathOps", "GemmRecord", "OperandRecord", "arithmetic_for_arch",
           "accumulator_limit", "summarize_by_layer", "values_sha256"]
