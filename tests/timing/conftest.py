"""Small arch configs and one-layer networks for timing tests."""

from __future__ import annotations

import copy

from hfp8sim.config.arch import parse_arch
from hfp8sim.workloads import MatMul, Network

BASE = {
    "name": "test_core",
    "clock_ghz": 1.0,
    "scheme": "hfp8",
    "array": {"rows": 4, "cols": 4, "dataflow": "ws", "macs_per_pe_per_cycle": {8: 1, 16: 1, 32: 1},
              "overlap_folds": False},
    "scratchpads": {
        "input": {"size_kib": 1024, "read_bytes_per_cycle": 1e9, "write_bytes_per_cycle": 1e9},
        "weight": {"size_kib": 1024, "read_bytes_per_cycle": 1e9, "write_bytes_per_cycle": 1e9},
        "output": {"size_kib": 1024, "read_bytes_per_cycle": 1e9, "write_bytes_per_cycle": 1e9},
    },
    "dram": {"ideal": True},
    "interconnect": {"bw_bytes_per_cycle": 1e9, "dma_engines": 2},
}


def make_arch(**overrides):
    """BASE with dotted-key overrides, e.g. make_arch(**{"array.rows": 8, "dram": {...}})."""
    data = copy.deepcopy(BASE)
    for dotted, value in overrides.items():
        node = data
        *parents, leaf = dotted.split(".")
        for key in parents:
            node = node[key]
        node[leaf] = value
    return parse_arch(data, "test")


def one_gemm(m: int, n: int, k: int, batch: int = 1) -> Network:
    return Network("one_gemm", (MatMul(name="mm", M=m, N=n, K=k, batch=batch),))
