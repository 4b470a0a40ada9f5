"""The functional datapath: bit-accurate GEMM/conv on FP8 codes in the order the array adds.

Layers: ``arithmetic`` (one PE step), ``contract`` (array, dataflow, accumulators), ``gemm`` / ``conv``
(fast Numba kernels), ``oracle`` (exact fractions), ``systolic`` (cycle-stepped reference array).
"""

from .contract import DATAFLOWS, ArrayArithmetic
from .gemm import accumulate, accumulate_values, gemm, reference_gemm, round_output

__all__ = ["DATAFLOWS", "ArrayArithmetic", "accumulate", "accumulate_values", "gemm", "reference_gemm", "round_output"]
