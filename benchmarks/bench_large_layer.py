"""A huge GEMM layer with and without steady-state extrapolation: CPU seconds and their ratio, same cycles.

    python benchmarks/bench_large_layer.py [--side 20480] [--arch arch_configs/default.yaml] [--skip-full]

One ``matmul`` of M = N = K = ``--side`` (20480: 8.6e12 MACs, just under ``hfp8sim.limits.MAX_GEMM_MACS``;
64,000 tiles on the default core) through ``simulate_network``, the mapper's search included, once with
extrapolation (``hfp8sim.timing.engine.EXTRAPOLATE_STEADY_STATE``) and once without, in this process (CPU
time, ``time.process_time``; a small layer runs first so imports and caches are warm).  The two runs must
give the same per-layer results (cycles, stalls, bytes, energy); the script exits 1 otherwise.  ``--skip-full`` times only the
extrapolated run (the full one takes about 45 s of CPU at the default side).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def timed_run(arch, network, extrapolate: bool):
    from hfp8sim.run import simulate_network
    from hfp8sim.timing import engine

    engine.EXTRAPOLATE_STEADY_STATE = extrapolate
    try:
        start = time.process_time()
        result = simulate_network(arch, network)
        return time.process_time() - start, result
    finally:
        engine.EXTRAPOLATE_STEADY_STATE = True


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--side", type=int, default=20480)
    parser.add_argument("--arch", default=str(REPO / "arch_configs" / "default.yaml"))
    parser.add_argument("--skip-full", action="store_true")
    args = parser.parse_args()
    from hfp8sim.config.arch import load_arch
    from hfp8sim.workloads import MatMul, Network

    arch = load_arch(args.arch)
    side = args.side
    timed_run(arch, Network("warm", (MatMul(name="warm", M=256, N=256, K=256),)), True)
    network = Network("huge", (MatMul(name="huge", M=side, N=side, K=side),))
    print(f"matmul M=N=K={side} ({side ** 3:.3g} MACs) on {Path(args.arch).name}")
    fast_s, fast = timed_run(arch, network, True)
    print(f"  extrapolated: {fast_s:8.2f} CPU s  {fast.cycles:,} cycles")
    if args.skip_full:
        return 0
    full_s, full = timed_run(arch, network, False)
    print(f"  full:         {full_s:8.2f} CPU s  {full.cycles:,} cycles")
    same = fast.layers == full.layers
    print(f"  ratio full / extrapolated: {full_s / fast_s:.1f}x; identical results: {same}")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
