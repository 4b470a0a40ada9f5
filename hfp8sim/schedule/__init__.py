"""The schedule: how a GEMM is cut into folds on an array and dataflow, and when each fold runs.

Both the functional datapath and the timing model consume it; it imports neither (no numba, no simpy).
"""

from .fold_latency import FoldSlot, fold_latency, gemm_cycles, gemm_fold_schedule, os_pe_step_count

__all__ = ["FoldSlot", "fold_latency", "gemm_cycles", "gemm_fold_schedule", "os_pe_step_count"]
