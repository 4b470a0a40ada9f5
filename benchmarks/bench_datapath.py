"""Bit-accurate FP8 GEMM throughput: 1024 x 1024 x 1024, DLFloat16 accumulation, weight-stationary folds of
128 rows, against numpy float32 matmul and a numpy step-by-step float16 emulation, measured in the same run.

    python benchmarks/bench_datapath.py [--size 1024] [--emulation-rows 64]

Target (issue 3): at least 1.5 G MAC/s on a 2-core machine.  The float16 emulation (one numpy float16
multiply-add over the whole output per k, i.e. IEEE half accumulation without folds) is timed on the first
``--emulation-rows`` rows of A, since it is slow; its MAC/s is what the ratio uses.
"""

from __future__ import annotations

import argparse
import time

import numba
import numpy as np

from hfp8sim.datapath import ArrayArithmetic, gemm
from hfp8sim.formats import decode, encode

FWD = "float8_e4m3b11fnuz"


def best_time(fn, repeats: int) -> float:
    fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def float16_emulation(a16: np.ndarray, b16: np.ndarray) -> np.ndarray:
    acc = np.zeros((a16.shape[0], b16.shape[1]), np.float16)
    for k in range(a16.shape[1]):
        acc = acc + a16[:, k:k + 1] * b16[k]  # float16 product and sum, each rounded by numpy
    return acc


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=1024)
    ap.add_argument("--emulation-rows", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    n = args.size
    rng = np.random.default_rng(0)
    a = encode(rng.standard_normal((n, n)), FWD)
    b = encode(rng.standard_normal((n, n)), FWD)
    arith = ArrayArithmetic("ws", rows=128, cols=128, acc_format="dlfloat16")
    macs = n**3
    t_ours = best_time(lambda: gemm(a, b, FWD, FWD, arith), args.repeats)
    a32, b32 = decode(a, FWD), decode(b, FWD)
    t_numpy = best_time(lambda: a32 @ b32, args.repeats)
    rows = min(args.emulation_rows, n)
    a16, b16 = a32[:rows].astype(np.float16), b32.astype(np.float16)
    t_emul = best_time(lambda: float16_emulation(a16, b16), 1)
    ours, numpy_rate, emul_rate = macs / t_ours, macs / t_numpy, rows * n * n / t_emul
    print(f"{n}x{n}x{n} {FWD} GEMM, dlfloat16 accumulation, ws folds of 128 rows; numba threads "
          f"{numba.get_num_threads()}")
    print(f"  hfp8sim bit-accurate      {ours / 1e9:8.2f} G MAC/s  ({t_ours:.3f} s)")
    print(f"  numpy float32 matmul      {numpy_rate / 1e9:8.2f} G MAC/s  -> ratio hfp8sim/numpy {ours / numpy_rate:.3f}")
    print(f"  numpy float16 step-by-step {emul_rate / 1e9:7.3f} G MAC/s  -> ratio hfp8sim/emulation "
          f"{ours / emul_rate:.1f}")
    print(f"  target 1.5 G MAC/s: {'met' if ours >= 1.5e9 else 'NOT met'}")


if __name__ == "__main__":
    main()
