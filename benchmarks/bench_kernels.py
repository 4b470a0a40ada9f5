"""Bit-accurate GEMM kernels by operand pair and step mode: 512 x 512 x 512, DLFloat16 accumulation,
weight-stationary folds of 128 rows, each kernel's G MAC/s and its ratio to the FP8 single-product kernel
measured in the same run.

    python benchmarks/bench_kernels.py [--size 512] [--repeats 5] [--exact-rows 16]

Target (issue 13): pair-mode and FP16-operand kernels at least half as fast as the FP8 single-product kernel.
The kernels are timed in CPU time (``time.process_time``, all threads) and in turns: every round runs each
kernel once, so that load from other processes on a shared machine hits all of them alike, and each round
gives each kernel's ratio to the FP8 single-product kernel of the same round.  The table shows the rate of the
best round and the minimum and median ratio over ``--repeats`` rounds; a row passes when its median ratio is
at least 0.5.  The float64 exact kernel, which these cases used before, is timed on the first
``--exact-rows`` rows of A for comparison.
"""

from __future__ import annotations

import argparse
import os
import time

import numba
import numpy as np

from hfp8sim.datapath import ArrayArithmetic, gemm
from hfp8sim.datapath.gemm import select_kernel
from hfp8sim.formats import encode, get_format

FWD, BWD, FP16 = "float8_e4m3b11fnuz", "float8_e5m2", "float16"
TARGET = 0.5
CASES = [  # (label, A format, B format, pair)
    ("FP8 x FP8, single product", FWD, FWD, False),
    ("FP8 x FP8, pair (FMMA)", FWD, FWD, True),
    ("FP8 e5m2 x e4m3, pair", BWD, FWD, True),
    ("FP16 x FP8, single product", FP16, FWD, False),
    ("FP16 x FP8, pair", FP16, FWD, True),
    ("FP16 x FP16, single product", FP16, FP16, False),
    ("FP16 x FP16, pair", FP16, FP16, True),
]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--exact-rows", type=int, default=16)
    args = ap.parse_args()
    n = args.size
    rng = np.random.default_rng(0)
    operands = {fmt: (encode(rng.standard_normal((n, n)), fmt), encode(rng.standard_normal((n, n)), fmt))
                for fmt in (FWD, BWD, FP16)}
    ariths = {pair: ArrayArithmetic("ws", rows=128, cols=128, acc_format="dlfloat16", pair=pair)
              for pair in (False, True)}

    def run(case, force_exact=False, rows=None):
        _, fa, fb, pair = case
        a, b = operands[fa][0], operands[fb][1]
        if rows is not None:
            a = a[:rows]
        return gemm(a, b, fa, fb, ariths[pair], force_exact=force_exact)

    for case in CASES:  # compile and warm up
        run(case)
    seconds = np.array([[_cpu_seconds(run, case) for case in CASES] for _ in range(args.repeats)])
    exact_rows = min(args.exact_rows, n)
    exact_rate = {}
    for case in CASES:
        if case[3] or case[1] == FP16:
            run(case, True, 1)
            exact_rate[case[0]] = exact_rows * n * n / _cpu_seconds(run, case, True, exact_rows)
    _report(n, seconds, exact_rate, ariths, args.repeats)


def _cpu_seconds(function, *args) -> float:
    t0 = time.process_time()
    function(*args)
    return time.process_time() - t0


def _report(n, seconds, exact_rate, ariths, repeats) -> None:
    """One row per kernel: G MAC/s (best round, CPU time), ratio to the FP8 single-product kernel of the same
    round (min and median over rounds), pass/fail against the 0.5 target, the exact kernel for comparison."""
    macs = n**3
    ratios = seconds[:, :1] / seconds  # FP8 single time / kernel time, round by round
    print(f"{n}x{n}x{n} GEMM, dlfloat16 accumulation, ws folds of 128 rows; numba threads "
          f"{numba.get_num_threads()}; CPU time, {repeats} rounds; load average at the end {os.getloadavg()[0]:.1f}")
    print(f"target: pair-mode and FP16-operand kernels >= {TARGET} x the FP8 single-product kernel "
          f"(median ratio over the rounds)")
    print(f"  {'operands':30s} {'kernel':12s} {'G MAC/s':>8s} {'ratio min':>9s} {'median':>7s} {'target':>7s} "
          f"{'exact G MAC/s':>14s} {'speed-up':>9s}")
    met = True
    for index, (label, fa, fb, pair) in enumerate(CASES):
        rate = macs / seconds[:, index].min()
        kernel = select_kernel(get_format(fa), get_format(fb), ariths[pair], False, n)
        low, median = ratios[:, index].min(), float(np.median(ratios[:, index]))
        verdict = "baseline" if index == 0 else ("pass" if median >= TARGET else "FAIL")
        met &= index == 0 or median >= TARGET
        exact = exact_rate.get(label)
        exact_text = f"{exact / 1e9:14.3f} {rate / exact:8.1f}x" if exact else f"{'':14s} {'':9s}"
        print(f"  {label:30s} {kernel:12s} {rate / 1e9:8.2f} {low:9.2f} {median:7.2f} {verdict:>7s} {exact_text}")
    print(f"  target {'met' if met else 'NOT met'}")


if __name__ == "__main__":
    main()
