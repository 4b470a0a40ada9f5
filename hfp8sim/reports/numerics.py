"""Figure of the accumulation study (``hfp8sim numerics``), read from its CSV."""

from __future__ import annotations

import csv
from collections import defaultdict
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def plot_accumulation_error(csv_path: Path, out_stem: Path) -> list[Path]:
    """Relative error versus K, one panel per (distribution, accumulator format); PNG and SVG."""
    with Path(csv_path).open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    panels = defaultdict(lambda: defaultdict(list))
    for row in rows:
        panels[(row["distribution"], row["acc_format"])][row["order"]].append((int(row["k"]), float(row["rel_error"])))
    keys = sorted(panels)
    distributions = sorted({d for d, _ in keys}, reverse=True)
    formats = sorted({f for _, f in keys})
    fig, axes = plt.subplots(len(distributions), len(formats), figsize=(5.2 * len(formats), 3.9 * len(distributions)),
                             sharex=True, squeeze=False)
    for i, dist in enumerate(distributions):
        for j, fmt in enumerate(formats):
            ax = axes[i][j]
            for order, pts in sorted(panels[(dist, fmt)].items(), key=lambda kv: _order_key(kv[0])):
                pts.sort()
                style = "-" if order.startswith("ws") else "--"
                ax.plot([p[0] for p in pts], [max(p[1], 1e-9) for p in pts], style, marker="o", ms=3, label=order)
            ax.set_xscale("log", base=2)
            ax.set_yscale("log")
            ax.grid(True, which="both", alpha=0.3)
            ax.set_title(f"{fmt} accumulation, {dist} operands", fontsize=10)
            if i == len(distributions) - 1:
                ax.set_xlabel("reduction length K (products per output)")
            if j == 0:
                ax.set_ylabel("relative error vs float64 (Frobenius)")
    axes[0][0].legend(fontsize=8, title="order of additions", title_fontsize=8)
    fig.suptitle("FP8 (float8_e4m3b11fnuz) GEMM: accumulation error by dataflow and accumulator format", fontsize=11)
    fig.tight_layout()
    out_stem.parent.mkdir(parents=True, exist_ok=True)
    written = []
    for suffix in (".png", ".svg"):
        path = out_stem.with_suffix(suffix)
        fig.savefig(path, dpi=120, metadata={"Date": None} if suffix == ".svg" else None)
        written.append(path)
    plt.close(fig)
    return written


def _order_key(order: str) -> tuple[int, int]:
    parts = order.split()
    if order.startswith("ws"):
        return 1, int(parts[1])
    return 0, 0 if order == "os chain" else 1
