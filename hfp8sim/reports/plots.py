"""Performance figures from result files alone (nothing here simulates).

Three kinds of input, detected by :func:`detect`:

- a **sweep** folder (``points.csv``, written by ``hfp8sim sweep``): throughput (TMAC/s, TFLOPS, inferences/s),
  utilisation, FP8/FP16 speed-up, stalls and DRAM traffic versus the array size (or the swept key), and the
  energy breakdown and FP8/FP16 energy ratio when the rows carry ``energy_<component>_pj`` columns;
- a **run** (``layers.csv`` + ``summary.json`` from ``hfp8sim run``, or one ``points/<id>.json`` of a sweep):
  a roofline per layer (MACs per DRAM byte against attained MAC/s, under the compute roof, peak MACs per cycle
  x clock, and the DRAM bandwidth roof) and the cycles of each layer (compute / stall / other, stacked), plus
  per-layer energy when the layer rows have energy columns;
- a **comparison** folder (``hfp8sim run --compare``: one run folder per scheme): each run's figures, the
  per-layer speed-up of each scheme over FP16 and the energy per scheme.

Every figure is written as PNG and SVG and comes with a one-line caption whose numbers are read from the data
(:class:`Figure`), which ``hfp8sim report`` puts in the gallery's index.
"""

from __future__ import annotations

import dataclasses
import math
import statistics
import warnings
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter  # noqa: E402

from ..errors import PlotError  # noqa: E402
from ..results import typed_cell, is_run_folder, read_result_json, read_rows, read_run_folder, \
    run_ids_by_file  # noqa: E402

__all__ = ["Figure", "PlotReport", "RunData", "SweepTable", "detect", "load_run", "load_sweep", "plot_compare",
           "plot_results", "plot_run", "plot_sweep"]

FORMATS = ("png", "svg")
BASELINE_SCHEME = "fp16"
ALIASES = {"array.rows": "rows", "array.cols": "cols", "array.dataflow": "dataflow", "chip.cores": "cores"}
SERIES_CANDIDATES = ("scheme", "dataflow", "cores", "arch", "arch_file")
DATAFLOW_STYLE = {"os": "-", "ws": "--", "is": ":"}
MARKERS = "osD^vP*X"
ENERGY_AGGREGATES = ("total", "dynamic", "on_chip")
ENERGY_ORDER = ("mac", "pe_registers", "sram_input", "sram_weight", "sram_output", "sram", "edge", "noc", "dram",
                "vector", "clock", "static")  # stacking order, bottom up; other components follow
plt.rcParams.update({"font.size": 9, "axes.titlesize": 10, "axes.labelsize": 9, "legend.fontsize": 8,
                     "figure.dpi": 110, "savefig.bbox": "tight", "svg.hashsalt": "hfp8sim"})


@dataclasses.dataclass
class Figure:
    name: str
    paths: list[Path]
    caption: str  # one line, numbers from the data


@dataclasses.dataclass
class PlotReport:
    kind: str  # "sweep", "run", "compare"
    source: Path
    figures: list[Figure]
    notes: list[str]  # plots that did not apply, and why


# ------------------------------------------------------------------------------------------ reading


@dataclasses.dataclass
class SweepTable:
    folder: Path
    rows: list[dict[str, Any]]  # every row of points.csv
    param_columns: list[str]

    @property
    def ok(self) -> list[dict[str, Any]]:
        return [r for r in self.rows if r.get("status") == "ok"]


def load_sweep(folder: str | Path) -> SweepTable:
    folder = Path(folder)
    if folder.is_file():
        folder = folder.parent
    rows = read_rows(folder / "points.csv")
    manifest = folder / "sweep.json"
    params = read_result_json(manifest).get("param_columns", []) if manifest.is_file() else []
    return SweepTable(folder, rows, list(params))


@dataclasses.dataclass
class RunData:
    label: str
    summary: dict[str, Any]
    layers: list[dict[str, Any]]
    config: dict[str, Any]
    peak_macs_per_cycle: float
    clock_ghz: float
    dram_bytes_per_second: float  # inf for ideal memory

    @property
    def scheme(self) -> str:
        return str(self.summary.get("scheme", ""))


def _dram_bytes_per_second(config: dict[str, Any], clock_ghz: float, given: Any = None) -> float:
    if config.get("mode") == "scalesim":
        return math.inf
    dram = config.get("dram") or {}
    if dram.get("ideal"):
        return math.inf
    if isinstance(given, (int, float)):
        return float(given) * clock_ghz * 1e9
    if dram.get("bw_gb_per_s") is not None:
        return float(dram["bw_gb_per_s"]) * 1e9
    if dram.get("bw_bytes_per_cycle") is not None:
        return float(dram["bw_bytes_per_cycle"]) * clock_ghz * 1e9
    return math.inf


def _run_from(label: str, payload: dict[str, Any], layers: list[dict[str, Any]], where: Path) -> RunData:
    summary = payload.get("summary")
    if not isinstance(summary, dict) or "cycles" not in summary:
        raise PlotError(f"{where}: no summary in this result (status {payload.get('status', '?')}: "
                        f"{payload.get('error', '')})")
    config = payload.get("config") or {}
    clock = float(summary.get("clock_ghz") or config.get("clock_ghz") or 1.0)
    peak = payload.get("peak_macs_per_cycle") or summary.get("peak_macs_per_cycle")
    if not peak:
        util, cycles = summary.get("utilization") or 0.0, summary.get("cycles") or 0.0
        peak = summary.get("macs", 0.0) / (cycles * util) if util and cycles else math.nan
    return RunData(label, summary, [{k: typed_cell(v) for k, v in row.items()} for row in layers], config,
                   float(peak), clock, _dram_bytes_per_second(config, clock, payload.get("dram_bytes_per_cycle")))


def load_run(path: str | Path) -> RunData:
    """A run folder (``layers.csv`` + ``summary.json``) or one sweep point (``points/<id>.json``)."""
    path = Path(path)
    if path.is_dir():
        payload, layers = read_run_folder(path)
        summary = payload.get("summary") or {}
        label = f"{summary.get('workload', path.name)} {summary.get('scheme', '')}".strip()
        return _run_from(label, payload, layers, path)
    payload = read_result_json(path)
    summary = payload.get("summary") or {}
    config = payload.get("config") or {}
    array = config.get("array") or {}
    label = " ".join(str(x) for x in (summary.get("workload", payload.get("workload", path.stem)),
                                      f"{array.get('rows')}x{array.get('cols')}", array.get("dataflow", ""),
                                      summary.get("scheme", "")) if x)
    return _run_from(label, payload, payload.get("layers") or [], path)


def detect(path: str | Path) -> str:
    """``sweep``, ``run`` or ``compare`` (a folder of run folders); a PlotError otherwise."""
    path = Path(path)
    if not path.exists():
        raise PlotError(f"{path}: no such file or folder")
    if path.is_file():
        if path.name == "points.csv":
            return "sweep"
        if path.suffix == ".json":
            return "run"
    elif (path / "points.csv").is_file():
        return "sweep"
    elif is_run_folder(path):
        return "run"
    elif any(is_run_folder(child) for child in path.iterdir() if child.is_dir()):
        return "compare"
    raise PlotError(f"{path}: not a sweep folder (points.csv), a run folder (layers.csv + summary.json), a folder "
                    "of run folders, or a sweep point (points/<id>.json)")


# ------------------------------------------------------------------------------------------ helpers


def _save(fig, out_dir: Path, name: str, formats: Sequence[str]) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for fmt in formats:
        path = out_dir / f"{name}.{fmt}"
        with warnings.catch_warnings():
            # A "best" legend is placed at draw time; matplotlib warns when that search takes over a second,
            # which depends on the machine's load, not on the figure: the placement is the same either way.
            warnings.filterwarnings("ignore", message='Creating legend with loc="best"', category=UserWarning)
            fig.savefig(path, dpi=100 if fmt == "png" else None,
                        metadata={"Date": None} if fmt == "svg" else None)  # same data, same file
        paths.append(path)
    plt.close(fig)
    return paths


def _si(value: float, unit: str = "", digits: int = 3) -> str:
    if value is None or not math.isfinite(value):
        return f"{value} {unit}".strip()
    for factor, prefix in ((1e15, "P"), (1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= factor:
            return f"{value / factor:.{digits}g} {prefix}{unit}"
    return f"{value:.{digits}g} {unit}".strip()


def _pct(value: float) -> str:
    return f"{100 * value:.0f}%" if value >= 0.1 else f"{100 * value:.2g}%"


def _energy_unit(max_pj: float) -> tuple[float, str]:
    """(factor from pJ, unit) that keeps energies between 1 and 1000."""
    for factor, unit in ((1e-12, "J"), (1e-9, "mJ"), (1e-6, "uJ"), (1e-3, "nJ")):
        if max_pj * factor >= 1:
            return factor, unit
    return 1.0, "pJ"


def _energy(pj: float) -> str:
    factor, unit = _energy_unit(pj)
    return f"{pj * factor:.3g} {unit}"


def _key_label(key: str) -> str:
    units = (("_gb_per_s", "GB/s"), ("_bytes_per_cycle", "B/cycle"), ("_kib", "KiB"), ("_ghz", "GHz"),
             ("_cycles", "cycles"))
    for suffix, unit in units:
        if key.endswith(suffix):
            return f"{key} ({unit})"
    return key


def _determined_by(rows: list[dict[str, Any]], keys: Sequence[str], column: str) -> bool:
    """True when ``column`` has one value for every combination of ``keys`` (it adds nothing to them)."""
    seen: dict[tuple, Any] = {}
    for row in rows:
        k = tuple(row.get(c) for c in keys)
        if k in seen and seen[k] != row.get(column):
            return False
        seen[k] = row.get(column)
    return True


def _varies(rows: list[dict[str, Any]], column: str) -> bool:
    return len({row.get(column) for row in rows}) > 1


@dataclasses.dataclass
class _Axes:
    x: str  # column plotted on x
    label: str
    numeric: bool
    log: bool
    ticks: list[tuple[float, str]]
    panel: str | None  # one row of panels per value
    series: list[str]  # one line per combination

    def position(self, row: dict[str, Any], categories: list[Any]) -> float:
        return float(row[self.x]) if self.numeric else float(categories.index(row[self.x]))


def _choose_axes(table: SweepTable, x: str | None) -> _Axes:
    rows = table.ok
    params = [ALIASES.get(c, c) for c in table.param_columns]
    array_varies = _varies(rows, "rows") or _varies(rows, "cols")
    if x is not None:
        x = ALIASES.get(x, x)
        if not rows or x not in rows[0]:
            raise PlotError(f"--x {x}: not a column of {table.folder / 'points.csv'}")
    elif array_varies:
        x = "pes"
    else:
        numeric = [c for c in params if c in rows[0] and _varies(rows, c)
                   and all(isinstance(r.get(c), (int, float)) and not isinstance(r.get(c), bool) for r in rows)]
        categorical = [c for c in params + list(SERIES_CANDIDATES) if c in rows[0] and _varies(rows, c)]
        x = numeric[0] if numeric else categorical[0] if categorical else "pes"
    values = sorted({r.get(x) for r in rows}, key=lambda v: (str(type(v)), v))
    numeric = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)
    ticks: list[tuple[float, str]] = []
    if x == "pes":
        shapes = defaultdict(set)
        for r in rows:
            shapes[r["pes"]].add((r["rows"], r["cols"]))
        for pes in values:
            names = sorted(shapes[pes])
            ticks.append((float(pes), f"{names[0][0]}x{names[0][1]}" if len(names) == 1 else f"{pes}"))
        label = "array size (rows x cols PEs)"
    else:
        label = _key_label(x)
        if numeric:
            ticks = [(float(v), f"{v:g}") for v in values]
        else:
            ticks = [(float(i), str(v)) for i, v in enumerate(values)]
    positive = numeric and values and min(values) > 0
    log = bool(positive and max(values) / min(values) >= 8)
    panel = "workload" if "workload" in (rows[0] if rows else {}) else None
    series = []
    candidates = list(dict.fromkeys([*SERIES_CANDIDATES, *params, *(["rows"] if x == "pes" else [])]))
    for column in candidates:
        if column in (x, panel, "pes", "cols") or not rows or column not in rows[0]:
            continue
        if not _varies(rows, column) or _determined_by(rows, [x, *([panel] if panel else []), *series], column):
            continue
        series.append(column)
    return _Axes(x, label, numeric, log, ticks, panel, series)


def _panels(rows: list[dict[str, Any]], axes: _Axes) -> list[tuple[Any, list[dict[str, Any]]]]:
    if axes.panel is None:
        return [(None, rows)]
    groups: dict[Any, list] = defaultdict(list)
    for row in rows:
        groups[row[axes.panel]].append(row)
    return list(groups.items())


def _series_groups(rows: list[dict[str, Any]], keys: Sequence[str]) -> dict[tuple, list[dict[str, Any]]]:
    groups: dict[tuple, list] = defaultdict(list)
    for row in rows:
        groups[tuple(row.get(k) for k in keys)].append(row)
    return dict(sorted(groups.items(), key=lambda kv: tuple(str(v) for v in kv[0])))


def _style(keys: Sequence[str], values: tuple, palette: dict[Any, Any]) -> dict[str, Any]:
    style: dict[str, Any] = {"marker": "o", "ms": 3.5, "lw": 1.4}
    for key, value in zip(keys, values):
        if key == "dataflow" and value in DATAFLOW_STYLE:
            style["ls"] = DATAFLOW_STYLE[value]
            style["marker"] = MARKERS["os ws is".split().index(value)]
        else:
            if value not in palette:
                palette[value] = f"C{len(palette) % 10}"
            style.setdefault("color", palette[value])
    return style


# columns whose values name themselves in a legend ("hfp8", "ws"); any other value is shown as key=value
NAMED_VALUES = ("scheme", "dataflow", "workload", "arch", "arch_file")


def _value_label(key: str, value: Any) -> str:
    if key in NAMED_VALUES:
        return str(value)
    shown = f"{value:g}" if isinstance(value, float) else str(value)
    return f"{key}={shown}"


def _series_label(keys: Sequence[str], values: tuple) -> str:
    return ", ".join(_value_label(k, v) for k, v in zip(keys, values)) if values else "all points"


def _log_y(ax) -> None:
    """Log y with plain numbers (1, 20, 0.5) on major and minor ticks."""
    ax.set_yscale("log")
    # whole numbers in full (1,000 not 1e+03, which would sit among plain minor ticks), others to 3 digits
    plain = FuncFormatter(lambda v, _: f"{v:,.0f}" if v >= 1000 else f"{v:.3g}")
    ax.yaxis.set_major_formatter(plain)
    low, high = ax.get_ylim()
    ax.yaxis.set_minor_formatter(plain if high / low < 10 else NullFormatter())


def _x_axis(ax, axes: _Axes) -> None:
    if axes.log:
        ax.set_xscale("log", base=2)
    ax.set_xticks([t for t, _ in axes.ticks])
    ax.set_xticklabels([name for _, name in axes.ticks], rotation=0 if len(axes.ticks) <= 7 else 45)
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xlabel(axes.label)
    ax.grid(True, which="major", alpha=0.3)


def _categories(rows, axes: _Axes) -> list[Any]:
    return sorted({r.get(axes.x) for r in rows}, key=lambda v: (str(type(v)), v))


def _line_plot(ax, rows, axes: _Axes, y, palette, categories) -> None:
    for values, group in _series_groups(rows, axes.series).items():
        pts = sorted((axes.position(r, categories), y(r)) for r in group if y(r) is not None)
        if pts:
            ax.plot([p[0] for p in pts], [p[1] for p in pts], label=_series_label(axes.series, values),
                    **_style(axes.series, values, palette))


def _title(panel_key: str | None, panel: Any, what: str) -> str:
    return f"{panel}: {what}" if panel is not None else what


def _x_name(row: dict[str, Any], axes: _Axes) -> str:
    if axes.x == "pes":
        return f"{row['rows']}x{row['cols']}"
    return f"{axes.x}={row[axes.x]}"


def _config_name(row: dict[str, Any], axes: _Axes) -> str:
    return ", ".join([_x_name(row, axes), *(_value_label(k, row.get(k)) for k in axes.series)])


# ------------------------------------------------------------------------------------------ sweep figures


def plot_sweep(table: SweepTable, out_dir: str | Path, *, x: str | None = None,
               formats: Sequence[str] = FORMATS) -> PlotReport:
    out_dir = Path(out_dir)
    report = PlotReport("sweep", table.folder, [], [])
    rows = table.ok
    failed = len(table.rows) - len(rows)
    if failed:
        report.notes.append(f"{failed} of {len(table.rows)} points failed and are left out (see points.csv)")
    if len(rows) < 2:
        report.notes.append("sweep figures need at least two successful points")
        return report
    axes = _choose_axes(table, x)
    categories = _categories(rows, axes)
    for maker in (_throughput, _utilization, _speedup, _stalls, _energy_breakdown, _energy_ratio):
        figure, note = maker(rows, axes, categories, out_dir, formats)
        if figure:
            report.figures.append(figure)
        if note:
            report.notes.append(note)
    return report


def _grid(n_panels: int, n_cols: int, width: float = 5.2, height: float = 3.3):
    fig, grid = plt.subplots(n_panels, n_cols, figsize=(width * n_cols, height * n_panels), squeeze=False)
    return fig, grid


def _finish_legend(fig, grid) -> None:
    handles, labels = [], []
    for ax in grid.flat:
        for h, lab in zip(*ax.get_legend_handles_labels()):
            if lab not in labels:
                handles.append(h)
                labels.append(lab)
    if handles:
        fig.legend(handles, labels, loc="upper center", ncol=min(len(labels), 6), frameon=False,
                   bbox_to_anchor=(0.5, 1.0 + 0.12 / max(1, len(grid))))
    fig.tight_layout()


def _best_by(rows, key, metric):
    best: dict[Any, dict] = {}
    for row in rows:
        k = row.get(key)
        if row.get(metric) is not None and (k not in best or row[metric] > best[k][metric]):
            best[k] = row
    return best


def _throughput(rows, axes: _Axes, categories, out_dir, formats):
    panels = _panels(rows, axes)
    fig, grid = _grid(len(panels), 2)
    palette: dict = {}
    captions = []
    for i, (panel, group) in enumerate(panels):
        ax, ax_inf = grid[i][0], grid[i][1]
        _line_plot(ax, group, axes, lambda r: r.get("tera_macs_per_second"), palette, categories)
        _peak_lines(ax, group, axes, categories, palette)
        _log_y(ax)
        ax.set_ylabel("throughput (TMAC/s)")
        ax.set_title(_title(axes.panel, panel, "throughput"))
        _x_axis(ax, axes)
        twin = ax.twinx()
        low, high = ax.get_ylim()
        twin.set_ylim(2 * low, 2 * high)
        _log_y(twin)
        twin.set_ylim(2 * low, 2 * high)
        twin.set_ylabel("TFLOPS (2 FLOP per MAC)")
        _line_plot(ax_inf, group, axes, lambda r: r.get("inferences_per_second"), palette, categories)
        _log_y(ax_inf)
        ax_inf.set_ylabel("inferences per second (network passes/s)")
        ax_inf.set_title(_title(axes.panel, panel, "inferences per second"))
        _x_axis(ax_inf, axes)
        best = _best_by(group, "scheme", "tera_macs_per_second")
        parts = [f"{scheme} {r['tera_macs_per_second']:.2f} TMAC/s ({r['tera_flops_per_second']:.2f} TFLOPS, "
                 f"{r['inferences_per_second']:,.0f} inf/s) at {_config_name(r, axes)}"
                 for scheme, r in best.items()]
        captions.append(f"{panel}: best " + "; ".join(parts) if panel is not None else "best " + "; ".join(parts))
    _finish_legend(fig, grid)
    caption = "Throughput: " + " | ".join(captions) + "."
    return Figure("throughput", _save(fig, out_dir, "throughput", formats), caption), None


def _peak_lines(ax, group, axes: _Axes, categories, palette) -> None:
    """The peak throughput of each series as a dotted line in its colour (one line per distinct peak: series
    that differ only by a dataflow share theirs).  Grouping by scheme alone would join points of different
    core counts at the same x into a sawtooth."""
    if "peak_tera_macs_per_second" not in group[0]:
        return
    drawn = set()
    for values, pts in _series_groups(group, axes.series).items():
        line = tuple(sorted({(axes.position(r, categories), r["peak_tera_macs_per_second"]) for r in pts
                             if r.get("peak_tera_macs_per_second")}))
        if not line or line in drawn:
            continue
        drawn.add(line)
        style = _style(axes.series, values, palette)
        label = [_value_label(k, v) for k, v in zip(axes.series, values) if k != "dataflow"]
        ax.plot([p[0] for p in line], [p[1] for p in line], color=style.get("color", "0.5"), lw=0.9,
                ls=(0, (1, 2)), alpha=0.7, label="peak " + ", ".join(label) if label else "peak")


def _utilization(rows, axes: _Axes, categories, out_dir, formats):
    panels = _panels(rows, axes)
    n_cols = 2 if len(panels) > 1 else 1
    n_rows = math.ceil(len(panels) / n_cols)
    fig, grid = _grid(n_rows, n_cols)
    palette: dict = {}
    captions = []
    for i, (panel, group) in enumerate(panels):
        ax = grid[i // n_cols][i % n_cols]
        _line_plot(ax, group, axes, lambda r: 100 * r["utilization"] if r.get("utilization") is not None
                   else None, palette, categories)
        ax.set_ylim(0, 105)
        ax.set_ylabel("utilisation (% of peak MACs/cycle)")
        ax.set_title(_title(axes.panel, panel, "utilisation"))
        _x_axis(ax, axes)
        ordered = sorted(group, key=lambda r: axes.position(r, categories))
        low_x = [r for r in ordered if axes.position(r, categories) == axes.position(ordered[0], categories)]
        high_x = [r for r in ordered if axes.position(r, categories) == axes.position(ordered[-1], categories)]
        captions.append(f"{panel + ': ' if panel else ''}{_pct(min(r['utilization'] for r in low_x))}-"
                        f"{_pct(max(r['utilization'] for r in low_x))} at {_x_name(low_x[0], axes)}, "
                        f"{_pct(min(r['utilization'] for r in high_x))}-{_pct(max(r['utilization'] for r in high_x))}"
                        f" at {_x_name(high_x[0], axes)}")
    for j in range(len(panels), n_rows * n_cols):
        grid[j // n_cols][j % n_cols].axis("off")
    _finish_legend(fig, grid)
    caption = "Utilisation (range over the other parameters): " + "; ".join(captions) + "."
    return Figure("utilization", _save(fig, out_dir, "utilization", formats), caption), None


def _pairs(rows, axes: _Axes, metric: str, baseline: str = BASELINE_SCHEME):
    """(other scheme, row, baseline row) for each point whose twin in the baseline scheme exists."""
    keys = [k for k in {axes.x, axes.panel, *axes.series, "rows", "cols", "dataflow", "cores", "arch_file"}
            if k and k != "scheme" and k in rows[0]]
    base = {tuple(r.get(k) for k in keys): r for r in rows if r.get("scheme") == baseline}
    out = []
    for row in rows:
        twin = base.get(tuple(row.get(k) for k in keys))
        if row.get("scheme") != baseline and twin and row.get(metric) and twin.get(metric):
            out.append((row["scheme"], row, twin))
    return out


def _ratio_figure(rows, axes: _Axes, categories, out_dir, formats, *, name, metric, ratio, ylabel, what, note):
    if "scheme" not in rows[0] or not _varies(rows, "scheme"):
        return None, f"{name}: skipped ({note}: the sweep has one scheme)"
    pairs = _pairs(rows, axes, metric)
    if not pairs:
        return None, f"{name}: skipped ({note}: no {BASELINE_SCHEME} twin of any point)"
    series = [k for k in axes.series if k != "scheme"]
    panels = _panels([p[1] for p in pairs], axes)
    n_cols = 2 if len(panels) > 1 else 1
    n_rows = math.ceil(len(panels) / n_cols)
    fig, grid = _grid(n_rows, n_cols)
    twin_of = {id(row): twin for _, row, twin in pairs}
    palette: dict = {}
    captions = []
    for i, (panel, group) in enumerate(panels):
        ax = grid[i // n_cols][i % n_cols]
        for values, members in _series_groups(group, ["scheme", *series]).items():
            pts = sorted((axes.position(r, categories), ratio(r, twin_of[id(r)])) for r in members)
            label = f"{values[0]} / {BASELINE_SCHEME}" + (f" {' '.join(map(str, values[1:]))}" if series else "")
            ax.plot([p[0] for p in pts], [p[1] for p in pts], label=label, **_style(["scheme", *series], values,
                                                                                    palette))
        ax.axhline(1.0, color="0.5", lw=0.8)
        ax.set_ylabel(ylabel)
        ax.set_title(_title(axes.panel, panel, what))
        _x_axis(ax, axes)
        values = [(ratio(r, twin_of[id(r)]), r) for r in group]
        low, high = min(values, key=lambda v: v[0]), max(values, key=lambda v: v[0])
        captions.append(f"{panel + ': ' if panel else ''}{low[0]:.2f}x ({_config_name(low[1], axes)}) to "
                        f"{high[0]:.2f}x ({_config_name(high[1], axes)})")
    for j in range(len(panels), n_rows * n_cols):
        grid[j // n_cols][j % n_cols].axis("off")
    _finish_legend(fig, grid)
    schemes = sorted({p[0] for p in pairs})
    caption = f"{what} ({', '.join(schemes)} over {BASELINE_SCHEME}): " + "; ".join(captions) + "."
    return Figure(name, _save(fig, out_dir, name, formats), caption), None


def _speedup(rows, axes, categories, out_dir, formats):
    return _ratio_figure(rows, axes, categories, out_dir, formats, name="speedup_fp8_fp16", metric="cycles",
                         ratio=lambda r, base: base["cycles"] / r["cycles"],
                         ylabel=f"speed-up over {BASELINE_SCHEME} (x, cycles ratio)", what="FP8 speed-up",
                         note="speed-up needs FP8 and FP16 points")


def _stalls(rows, axes: _Axes, categories, out_dir, formats):
    if "stall_fraction" not in rows[0] or "dram_bytes" not in rows[0]:
        return None, "stalls_dram: skipped (no stall_fraction / dram_bytes columns)"
    panels = _panels(rows, axes)
    fig, grid = _grid(len(panels), 2)
    palette: dict = {}
    captions = []
    for i, (panel, group) in enumerate(panels):
        ax, ax_b = grid[i][0], grid[i][1]
        _line_plot(ax, group, axes, lambda r: 100 * r["stall_fraction"], palette, categories)
        ax.set_ylim(0, 100)
        ax.set_ylabel("stall cycles (% of cycles)")
        ax.set_title(_title(axes.panel, panel, "array waiting for data"))
        _x_axis(ax, axes)
        _line_plot(ax_b, group, axes, lambda r: r["dram_bytes"] / 1e6, palette, categories)
        _log_y(ax_b)
        ax_b.set_ylabel("DRAM traffic per inference (MB)")
        ax_b.set_title(_title(axes.panel, panel, "DRAM traffic"))
        _x_axis(ax_b, axes)
        worst = max(group, key=lambda r: r["stall_fraction"])
        text = f"stalls up to {_pct(worst['stall_fraction'])} ({_config_name(worst, axes)})"
        pairs = _pairs(group, axes, "dram_bytes")
        if pairs:
            ratios = [r["dram_bytes"] / base["dram_bytes"] for _, r, base in pairs]
            text += f", DRAM bytes {min(ratios):.2f}-{max(ratios):.2f}x of {BASELINE_SCHEME}'s"
        captions.append(f"{panel + ': ' if panel else ''}{text}")
    _finish_legend(fig, grid)
    caption = "Stalls and DRAM traffic: " + "; ".join(captions) + "."
    return Figure("stalls_dram", _save(fig, out_dir, "stalls_dram", formats), caption), None


def energy_columns(row: dict[str, Any]) -> tuple[str | None, list[str]]:
    """(total column or None, component columns) among ``energy_<name>_pj`` keys."""
    names = [k for k, v in row.items() if k.startswith("energy_") and k.endswith("_pj")
             and isinstance(v, (int, float)) and not isinstance(v, bool)]
    total = "energy_total_pj" if "energy_total_pj" in names else None
    components = [k for k in names if k[len("energy_"):-len("_pj")] not in ENERGY_AGGREGATES]
    rank = {name: i for i, name in enumerate(ENERGY_ORDER)}
    components.sort(key=lambda k: (rank.get(k[len("energy_"):-len("_pj")], len(rank)), k))
    return total, components


def _nonzero(rows: Sequence[dict[str, Any]], components: list[str]) -> list[str]:
    return [c for c in components if any((r.get(c) or 0.0) != 0.0 for r in rows)]


def _energy_total(row: dict[str, Any], total: str | None, components: list[str]) -> float:
    return float(row[total]) if total else float(sum(row.get(c) or 0.0 for c in components))


def _component_name(column: str) -> str:
    return column[len("energy_"):-len("_pj")].replace("_", " ")


def _energy_breakdown(rows, axes: _Axes, categories, out_dir, formats):
    total, components = energy_columns(rows[0])
    components = _nonzero(rows, components)
    if not components:
        return None, ("energy_breakdown: skipped (the results have no energy_<component>_pj columns; "
                      "rerun the sweep with the energy model)")
    bars_key = [k for k in axes.series if k == "scheme"]
    facet_keys = [k for k in axes.series if k != "scheme"]
    panels = []
    for panel, group in _panels(rows, axes):
        for facet, members in _series_groups(group, facet_keys).items():
            facet = tuple(f"{v} dataflow" if k == "dataflow" else f"{k}={v}" for k, v in zip(facet_keys, facet))
            panels.append((panel, facet, members))
    n_cols = 2 if len(panels) > 1 else 1
    n_rows = math.ceil(len(panels) / n_cols)
    fig, grid = _grid(n_rows, n_cols, width=6.0)
    colors = {c: f"C{i % 10}" for i, c in enumerate(components)}
    factor, unit = _energy_unit(max(_energy_total(r, total, components) for r in rows))
    captions = []
    for i, (panel, facet, members) in enumerate(panels):
        ax = grid[i // n_cols][i % n_cols]
        bars = sorted({tuple(r.get(k) for k in bars_key) for r in members}, key=str)
        width = 0.8 / max(1, len(bars))
        for b, bar in enumerate(bars):
            chosen = sorted((r for r in members if tuple(r.get(k) for k in bars_key) == bar),
                            key=lambda r: categories.index(r[axes.x]))
            xs = [categories.index(r[axes.x]) + (b - (len(bars) - 1) / 2) * width for r in chosen]
            bottom = [0.0] * len(chosen)
            for c in components:
                heights = [(r.get(c) or 0.0) * factor for r in chosen]
                ax.bar(xs, heights, width * 0.95, bottom=bottom, color=colors[c], alpha=1.0 if b % 2 == 0 else 0.6,
                       label=_component_name(c) if b == 0 else None, edgecolor="white", lw=0.3)
                bottom = [h + v for h, v in zip(bottom, heights)]
            for xpos, top in zip(xs, bottom):
                ax.text(xpos, top, " ".join(map(str, bar)), ha="center", va="bottom", fontsize=6, rotation=90)
        if len(bars) > 1:  # say in the legend what the shades mean
            for b, bar in enumerate(bars):
                ax.bar([0], [0], 0, color="0.45", alpha=1.0 if b % 2 == 0 else 0.6,
                       label=f"{' '.join(map(str, bar))}: {'solid' if b % 2 == 0 else 'light'} bars")
        ax.set_xticks(range(len(categories)))
        ax.set_xticklabels([name for _, name in axes.ticks] if len(axes.ticks) == len(categories)
                           else [str(c) for c in categories])
        ax.set_xlabel(axes.label)
        ax.set_ylabel(f"energy per inference ({unit})")
        ax.set_title(", ".join(str(v) for v in (panel, *facet) if v is not None) + ": energy by component")
        ax.grid(True, axis="y", alpha=0.3)
        largest = max(members, key=lambda r: _energy_total(r, total, components))
        share = {c: (largest.get(c) or 0.0) / _energy_total(largest, total, components) for c in components}
        top = max(share, key=share.get)
        captions.append(f"{', '.join(str(v) for v in (panel, *facet) if v is not None)}: "
                        f"{_energy(_energy_total(largest, total, components))} at {_config_name(largest, axes)}"
                        f", {_component_name(top)} {_pct(share[top])}")
    for j in range(len(panels), n_rows * n_cols):
        grid[j // n_cols][j % n_cols].axis("off")
    _finish_legend(fig, grid)
    caption = "Energy per inference by component (largest point of each panel): " + "; ".join(captions) + "."
    return Figure("energy_breakdown", _save(fig, out_dir, "energy_breakdown", formats), caption), None


def _energy_ratio(rows, axes, categories, out_dir, formats):
    total, components = energy_columns(rows[0])
    if not components and not total:
        return None, "energy_ratio_fp8_fp16: skipped (the results have no energy columns)"
    rows = [dict(r, energy_sum_pj=_energy_total(r, total, components)) for r in rows]
    return _ratio_figure(rows, axes, categories, out_dir, formats, name="energy_ratio_fp8_fp16",
                         metric="energy_sum_pj", ratio=lambda r, base: r["energy_sum_pj"] / base["energy_sum_pj"],
                         ylabel=f"energy / {BASELINE_SCHEME} energy (per inference)", what="FP8/FP16 energy ratio",
                         note="the energy ratio needs FP8 and FP16 points")


# ------------------------------------------------------------------------------------------ run figures


def plot_run(run: RunData, out_dir: str | Path, *, prefix: str = "", formats: Sequence[str] = FORMATS) -> PlotReport:
    out_dir = Path(out_dir)
    report = PlotReport("run", Path(run.label), [], [])
    for maker in (_roofline, _layer_cycles, _layer_energy):
        figure, note = maker(run, out_dir, prefix, formats)
        if figure:
            report.figures.append(figure)
        if note:
            report.notes.append(note)
    return report


def _gemm_layers(run: RunData) -> list[dict[str, Any]]:
    return [r for r in run.layers if r.get("kind") == "gemm" and (r.get("cycles") or 0) > 0]


def _roofline(run: RunData, out_dir: Path, prefix: str, formats):
    layers = [r for r in _gemm_layers(run) if (r.get("macs") or 0) > 0]
    if not layers or not math.isfinite(run.peak_macs_per_cycle):
        return None, f"{prefix}roofline: skipped (no timed GEMM layers, or no peak MACs/cycle in the results)"
    hz = run.clock_ghz * 1e9
    points = []
    for r in layers:
        dram = (r.get("dram_read_bytes") or 0.0) + (r.get("dram_write_bytes") or 0.0)
        if dram <= 0:
            continue
        points.append((r["macs"] / dram, r["macs"] / (r["cycles"] / hz), r))
    if not points:
        return None, f"{prefix}roofline: skipped (no layer moved DRAM bytes: ideal memory)"
    compute_roof = run.peak_macs_per_cycle * hz
    bw = run.dram_bytes_per_second
    ridge = compute_roof / bw if math.isfinite(bw) else 0.0
    fig, ax = plt.subplots(figsize=(7.2, 4.8))
    xs = [p[0] for p in points]
    x_low, x_high = min(xs + ([ridge] if ridge else [])) / 3, max(xs + ([ridge] if ridge else [])) * 3
    grid = [x_low * (x_high / x_low) ** (i / 200) for i in range(201)]
    roof = [min(compute_roof, x * bw) if math.isfinite(bw) else compute_roof for x in grid]
    ax.plot(grid, roof, color="k", lw=1.6, label="roofline")
    ax.axhline(compute_roof, color="0.4", ls="--", lw=0.8,
               label=f"compute roof {_si(compute_roof, 'MAC/s')} ({run.peak_macs_per_cycle:g} MAC/cycle x "
                     f"{run.clock_ghz:g} GHz)")
    if math.isfinite(bw):
        ax.plot(grid, [x * bw for x in grid], color="0.4", ls=":", lw=0.8,
                label=f"DRAM roof {bw / 1e9:g} GB/s (ridge {ridge:.3g} MAC/B)")
    total_cycles = sum(p[2]["cycles"] for p in points)
    ops = sorted({p[2].get("op", "?") for p in points})
    for i, op in enumerate(ops):
        chosen = [p for p in points if p[2].get("op", "?") == op]
        ax.scatter([p[0] for p in chosen], [p[1] for p in chosen],
                   s=[12 + 400 * p[2]["cycles"] / total_cycles for p in chosen], alpha=0.65, color=f"C{i}",
                   edgecolor="k", lw=0.3, label=f"{op} layers ({len(chosen)})")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlim(x_low, x_high)
    ax.set_ylim(min(p[1] for p in points) / 3, compute_roof * 2)
    ax.set_xlabel("arithmetic intensity (MACs per DRAM byte)")
    ax.set_ylabel("attained throughput (MAC/s)")
    for axis, label in ((ax.xaxis, lambda v, _: f"{v:g}"), (ax.yaxis, lambda v, _: _si(v))):
        axis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
        axis.set_major_formatter(FuncFormatter(label))
        axis.set_minor_formatter(NullFormatter())
    ax.set_title(f"{run.label}: roofline per layer (marker area ~ share of cycles)")
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(loc="lower right", fontsize=7)
    name = f"{prefix}roofline"
    bound = [p for p in points if ridge and p[0] < ridge]
    attained = [p[1] / min(compute_roof, p[0] * bw if math.isfinite(bw) else compute_roof) for p in points]
    share = sum(p[2]["cycles"] for p in bound) / total_cycles if total_cycles else 0.0
    caption = (f"Roofline of {run.label}: compute roof {_si(compute_roof, 'MAC/s')}, "
               + (f"DRAM {bw / 1e9:g} GB/s, ridge {ridge:.3g} MAC/B; {len(bound)} of {len(points)} GEMM layers are "
                  f"below the ridge (memory-bound) and take {_pct(share)} of GEMM cycles; "
                  if math.isfinite(bw) else "ideal memory; ")
               + f"layers reach a median {_pct(statistics.median(attained))} of their roof "
               f"(whole network {_pct(run.summary.get('utilization', 0.0))} of peak).")
    return Figure(name, _save(fig, out_dir, name, formats), caption), None


def _layer_cycles(run: RunData, out_dir: Path, prefix: str, formats):
    layers = [r for r in run.layers if (r.get("cycles") or 0) > 0]
    if not layers:
        return None, f"{prefix}layer_cycles: skipped (no layer has cycles)"
    compute = [float(r.get("compute_cycles") or 0.0) for r in layers]
    stall = [float(r.get("stall_cycles") or 0.0) for r in layers]
    other = [max(0.0, float(r["cycles"]) - c - s) for r, c, s in zip(layers, compute, stall)]
    width = min(16.0, max(7.0, 0.09 * len(layers) + 4))
    fig, ax = plt.subplots(figsize=(width, 4.2))
    xs = list(range(len(layers)))
    ax.bar(xs, compute, 0.85, color="C0", label="compute (array busy)")
    ax.bar(xs, stall, 0.85, bottom=compute, color="C3", label="stall (waiting for data)")
    if any(other):
        ax.bar(xs, other, 0.85, bottom=[c + s for c, s in zip(compute, stall)], color="C7",
               label="other (vector unit, not overlapped)")
    step = max(1, math.ceil(len(layers) / 60))
    ax.set_xticks(xs[::step])
    ax.set_xticklabels([layers[i]["name"] for i in xs[::step]], rotation=90, fontsize=6)
    ax.set_xlim(-0.8, len(layers) - 0.2)
    ax.set_ylabel("cycles")
    ax.set_xlabel("layer (execution order)")
    ax.set_title(f"{run.label}: cycles per layer")
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: _si(v)))
    ax.grid(True, axis="y", alpha=0.3)
    ax.legend(fontsize=7)
    total = sum(float(r["cycles"]) for r in layers)
    top = max(layers, key=lambda r: float(r["cycles"]))
    worst = max(layers, key=lambda r: float(r.get("stall_cycles") or 0.0))
    caption = (f"Cycles per layer of {run.label}: {_si(total)} cycles over {len(layers)} layers, "
               f"{_pct(sum(compute) / total)} compute, {_pct(sum(stall) / total)} stall"
               + (f", {_pct(sum(other) / total)} other" if any(other) else "")
               + f"; longest layer {top['name']} ({_pct(float(top['cycles']) / total)} of cycles)"
               + (f", most stalled {worst['name']} ({_si(float(worst['stall_cycles']))} stall cycles)."
                  if worst.get("stall_cycles") else "."))
    name = f"{prefix}layer_cycles"
    return Figure(name, _save(fig, out_dir, name, formats), caption), None


def _layer_energy(run: RunData, out_dir: Path, prefix: str, formats):
    total, components = energy_columns(run.layers[0]) if run.layers else (None, [])
    components = _nonzero(run.layers, components)
    if not components:
        return None, (f"{prefix}layer_energy: skipped (the layers have no energy_<component>_pj columns; "
                      "rerun with the energy model)")
    layers = [r for r in run.layers if _energy_total(r, total, components) > 0]
    width = min(16.0, max(7.0, 0.09 * len(layers) + 4))
    fig, ax = plt.subplots(figsize=(width, 4.2))
    xs = list(range(len(layers)))
    bottom = [0.0] * len(layers)
    factor, unit = _energy_unit(max(_energy_total(r, total, components) for r in layers))
    for i, c in enumerate(components):
        heights = [(r.get(c) or 0.0) * factor for r in layers]
        ax.bar(xs, heights, 0.85, bottom=bottom, color=f"C{i % 10}", label=_component_name(c))
        bottom = [b + h for b, h in zip(bottom, heights)]
    step = max(1, math.ceil(len(layers) / 60))
    ax.set_xticks(xs[::step])
    ax.set_xticklabels([layers[i]["name"] for i in xs[::step]], rotation=90, fontsize=6)
    ax.set_ylabel(f"energy ({unit})")
    ax.set_xlabel("layer (execution order)")
    ax.set_title(f"{run.label}: energy per layer by component")
    ax.grid(True, axis="y", alpha=0.3)
    ax.legend(fontsize=7, ncol=2)
    sums = {c: sum(r.get(c) or 0.0 for r in layers) for c in components}
    grand = sum(sums.values())
    top = max(sums, key=sums.get)
    caption = (f"Energy per layer of {run.label}: {_energy(grand)} in all, largest component "
               f"{_component_name(top)} ({_pct(sums[top] / grand)}).")
    name = f"{prefix}layer_energy"
    return Figure(name, _save(fig, out_dir, name, formats), caption), None


# ------------------------------------------------------------------------------------------ comparisons


def plot_compare(folder: str | Path, out_dir: str | Path, *, formats: Sequence[str] = FORMATS) -> PlotReport:
    folder, out_dir = Path(folder), Path(out_dir)
    runs = [load_run(child) for child in sorted(folder.iterdir()) if child.is_dir() and is_run_folder(child)]
    report = PlotReport("compare", folder, [], [])
    for run, child in zip(runs, [c for c in sorted(folder.iterdir()) if c.is_dir() and is_run_folder(c)]):
        sub = plot_run(run, out_dir / child.name, formats=formats)
        report.figures += sub.figures
        report.notes += sub.notes
    base = next((r for r in runs if r.scheme == BASELINE_SCHEME), None)
    others = [r for r in runs if r is not base]
    if base is None or not others:
        report.notes.append(f"speedup_per_layer: skipped (needs a {BASELINE_SCHEME} run and another scheme)")
        return report
    fig, ax = plt.subplots(figsize=(min(16.0, max(7.0, 0.09 * len(base.layers) + 4)), 4.0))
    base_cycles = {r["name"]: float(r["cycles"]) for r in _gemm_layers(base)}
    captions = []
    for i, run in enumerate(others):
        pairs = [(r["name"], base_cycles[r["name"]] / float(r["cycles"])) for r in _gemm_layers(run)
                 if r["name"] in base_cycles]
        ax.plot(range(len(pairs)), [p[1] for p in pairs], marker="o", ms=3, lw=1, color=f"C{i}",
                label=f"{run.scheme} over {BASELINE_SCHEME}")
        whole = base.summary["cycles"] / run.summary["cycles"]
        captions.append(f"{run.scheme} {whole:.2f}x on the whole network, per layer "
                        f"{min(p[1] for p in pairs):.2f}x-{max(p[1] for p in pairs):.2f}x")
        step = max(1, math.ceil(len(pairs) / 60))
        ax.set_xticks(range(0, len(pairs), step))
        ax.set_xticklabels([pairs[j][0] for j in range(0, len(pairs), step)], rotation=90, fontsize=6)
    ax.axhline(1.0, color="0.5", lw=0.8)
    ax.set_ylabel(f"speed-up over {BASELINE_SCHEME} (x, cycles ratio)")
    ax.set_xlabel("GEMM layer (execution order)")
    ax.set_title(f"{base.summary.get('workload', '')}: per-layer speed-up")
    ax.grid(True, alpha=0.3)
    ax.legend()
    report.figures.append(Figure("speedup_per_layer", _save(fig, out_dir, "speedup_per_layer", formats),
                                 "Per-layer speed-up: " + "; ".join(captions) + "."))
    total, components = energy_columns(base.summary)
    components = _nonzero([r.summary for r in runs], components)
    if not components:
        report.notes.append("energy_by_scheme: skipped (the summaries have no energy_<component>_pj fields)")
        return report
    fig, ax = plt.subplots(figsize=(5.5, 4.0))
    bottom = [0.0] * len(runs)
    factor, unit = _energy_unit(max(_energy_total(r.summary, total, components) for r in runs))
    for i, c in enumerate(components):
        heights = [(r.summary.get(c) or 0.0) * factor for r in runs]
        ax.bar(range(len(runs)), heights, 0.6, bottom=bottom, color=f"C{i % 10}", label=_component_name(c))
        bottom = [b + h for b, h in zip(bottom, heights)]
    ax.set_xticks(range(len(runs)))
    ax.set_xticklabels([r.scheme for r in runs])
    ax.set_ylabel(f"energy per inference ({unit})")
    ax.set_title(f"{base.summary.get('workload', '')}: energy by scheme")
    ax.legend(fontsize=7)
    base_total = _energy_total(base.summary, total, components)
    ratios = [f"{r.scheme}/{BASELINE_SCHEME} = {_energy_total(r.summary, total, components) / base_total:.2f}"
              for r in others]
    report.figures.append(Figure("energy_by_scheme", _save(fig, out_dir, "energy_by_scheme", formats),
                                 "Energy per inference: " + ", ".join(ratios) + "."))
    return report


# ------------------------------------------------------------------------------------------ entry point


def _check_one_run(folder: Path) -> None:
    """A run folder (or folder of runs) whose files carry different run ids, or where some carry one and
    some do not, mixes runs (e.g. written by hand or by an older version into one folder): refused, naming
    the files, since every figure would compare numbers of different simulations."""
    ids = run_ids_by_file(folder)
    distinct = set(ids.values())
    if len(distinct) > 1:
        groups: dict[str, list[str]] = {}
        for name, run in ids.items():
            groups.setdefault(str(run or "no run id"), []).append(name)
        listing = "; ".join(f"{run}: {', '.join(names)}" for run, names in groups.items())
        raise PlotError(f"{folder}: mixes results of {len(distinct)} different runs ({listing}); plot each run "
                        "from its own folder")


def plot_results(path: str | Path, out_dir: str | Path | None = None, *, x: str | None = None,
                 formats: Sequence[str] = FORMATS) -> PlotReport:
    """Detect what ``path`` holds and write every figure that applies into ``out_dir`` (default
    ``<path>/plots``, or ``<folder>/plots`` for a point JSON)."""
    path = Path(path)
    kind = detect(path)
    bad = [f for f in formats if f not in ("png", "svg", "pdf")]
    if bad or not formats:
        raise PlotError(f"unknown figure format {', '.join(bad) or '(none)'}; use png, svg or pdf")
    if out_dir is None:
        out_dir = (path.parent if path.is_file() else path) / "plots"
    out_dir = Path(out_dir)
    if kind in ("run", "compare") and path.is_dir():
        _check_one_run(path)
    if kind == "sweep":
        return plot_sweep(load_sweep(path), out_dir, x=x, formats=formats)
    if kind == "run":
        report = plot_run(load_run(path), out_dir, formats=formats)
        report.source = path
        return report
    return plot_compare(path, out_dir, formats=formats)
