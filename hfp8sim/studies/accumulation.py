"""How accumulation order and format change a GEMM's error as the reduction grows.

For each reduction length K the same FP8 operands go through the bit-accurate datapath with several
arrays: output-stationary long chains (with and without chunks of 64) and weight-stationary folds of 8..256
rows (partial sums combined in a float32 buffer), accumulating in IEEE float16 or DLFloat16.  The error is
measured against float64 products of the same decoded operands, so it is the accumulation error alone.

Two operand distributions: all-positive uniform (the worst case: sums grow linearly and long FP16 chains
swamp small products, as in Wang et al. 2018) and zero-mean normal.
"""

from __future__ import annotations

import csv
import dataclasses
import sys
from pathlib import Path

import numpy as np

from ..datapath import ArrayArithmetic, gemm, reference_gemm
from ..formats import encode

K_VALUES = (64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384)
FOLD_ROWS = (8, 32, 128, 256)
ACC_FORMATS = ("float16", "dlfloat16")
DISTRIBUTIONS = ("positive", "normal")
OPERAND_FORMAT = "float8_e4m3b11fnuz"


@dataclasses.dataclass(frozen=True)
class AccumulationPoint:
    distribution: str
    acc_format: str
    order: str  # "os chain", "os chunk 64", "ws 8 rows", ...
    dataflow: str
    fold: int  # segment length in products (K for a chain)
    k: int
    rel_error: float  # ||out - ref||_F / ||ref||_F
    max_rel_error: float  # max |out - ref| / max |ref|


def _orders(acc_format: str) -> list[tuple[str, ArrayArithmetic]]:
    orders = [("os chain", ArrayArithmetic("os", acc_format=acc_format)),
              ("os chunk 64", ArrayArithmetic("os", acc_format=acc_format, chunk=64))]
    for rows in FOLD_ROWS:
        orders.append((f"ws {rows} rows", ArrayArithmetic("ws", rows=rows, acc_format=acc_format,
                                                          buffer_format="float32")))
    return orders


def _operands(distribution: str, m: int, k: int, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng([seed, k, DISTRIBUTIONS.index(distribution)])
    if distribution == "positive":
        a, b = rng.uniform(0, 1, (m, k)), rng.uniform(0, 1, (k, n))
    else:
        a, b = rng.standard_normal((m, k)), rng.standard_normal((k, n))
    return encode(a, OPERAND_FORMAT), encode(b, OPERAND_FORMAT)


def run_accumulation_study(*, m: int = 64, n: int = 64, k_values=K_VALUES, seed: int = 0,
                           progress: bool = True) -> list[AccumulationPoint]:
    points = []
    total = len(DISTRIBUTIONS) * len(k_values)
    for step, (distribution, k) in enumerate((d, k) for d in DISTRIBUTIONS for k in k_values):
        a, b = _operands(distribution, m, k, n, seed)
        ref = reference_gemm(a, b, OPERAND_FORMAT, OPERAND_FORMAT)
        ref_norm, ref_max = np.linalg.norm(ref), np.abs(ref).max()
        for acc_format in ACC_FORMATS:
            for label, arith in _orders(acc_format):
                out = gemm(a, b, OPERAND_FORMAT, OPERAND_FORMAT, arith)
                err = out - ref
                points.append(AccumulationPoint(distribution, acc_format, label, arith.dataflow,
                                                arith.segment_length(k), k, float(np.linalg.norm(err) / ref_norm),
                                                float(np.abs(err).max() / ref_max)))
        if progress:
            print(f"\raccumulation study: {step + 1}/{total} (K={k}, {distribution})", end="", file=sys.stderr)
    if progress:
        print(file=sys.stderr)
    return points


def write_points(points: list[AccumulationPoint], path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=[f.name for f in dataclasses.fields(AccumulationPoint)])
        writer.writeheader()
        for point in points:
            writer.writerow(dataclasses.asdict(point))
    return path
