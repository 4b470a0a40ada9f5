"""Small arch configs and one-layer networks for timing tests."""

from __future__ import annotations

import copy

import simpy

from hfp8sim.config.arch import parse_arch
from hfp8sim.timing.engine import DramChannel
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


def transfer_finish_times(transfers: dict[str, float], *, bytes_per_cycle: float = 10.0, latency: int = 5,
                          dma_engines: int = 2) -> tuple[dict[str, float], float]:
    """When each DMA transfer (name -> bytes, started together in this order) finishes on one DRAM channel,
    and the bytes the channel counted."""
    env = simpy.Environment()
    dram = DramChannel(env, bytes_per_cycle=bytes_per_cycle, latency=latency, dma_engines=dma_engines)
    done = {}

    def move(name, nbytes):
        yield env.process(dram.transfer(nbytes))
        done[name] = env.now

    for name, nbytes in transfers.items():
        env.process(move(name, nbytes))
    env.run()
    return done, dram.bytes_moved
