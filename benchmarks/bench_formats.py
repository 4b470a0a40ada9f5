"""Throughput of encode/quantize for 10^7 float32 values, against ml_dtypes' astype in the same run.

    python benchmarks/bench_formats.py [--n 10000000] [--repeats 5]

Prints values per second for each operation and the ratio hfp8sim / ml_dtypes (> 1 means hfp8sim is
faster).  Target (issue 2): ratio >= 1 for encode to float8_e4m3b11fnuz and float8_e5m2.  hfp8sim's
kernels use every core Numba is given (NUMBA_NUM_THREADS); ml_dtypes' casts run on one.
"""

from __future__ import annotations

import argparse
import time

import ml_dtypes
import numba
import numpy as np

from hfp8sim.formats import encode, quantize


def best_time(fn, repeats: int) -> float:
    fn()  # warm-up (JIT compile, page faults)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=10_000_000)
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    x = np.random.default_rng(0).standard_normal(args.n).astype(np.float32) * np.float32(4.0)
    print(f"{args.n:.0e} float32 values, best of {args.repeats}; numba threads: {numba.get_num_threads()}")
    print(f"{'format':<20} {'operation':<10} {'hfp8sim Mval/s':>15} {'ml_dtypes Mval/s':>17} {'ratio':>7}")
    for name in ("float8_e4m3b11fnuz", "float8_e5m2"):
        dtype = getattr(ml_dtypes, name)
        ours = {
            "encode": lambda: encode(x, name, overflow="nonsaturating"),
            "quantize": lambda: quantize(x, name, overflow="nonsaturating"),
        }
        theirs = {
            "encode": lambda: x.astype(dtype),
            "quantize": lambda: x.astype(dtype).astype(np.float32),
        }
        for op in ("encode", "quantize"):
            t_ours = best_time(ours[op], args.repeats)
            t_theirs = best_time(theirs[op], args.repeats)
            print(f"{name:<20} {op:<10} {args.n / t_ours / 1e6:>15.1f} {args.n / t_theirs / 1e6:>17.1f} "
                  f"{t_theirs / t_ours:>7.2f}")


if __name__ == "__main__":
    main()
