"""`hfp8sim plot`: every figure type from result files alone, with captions computed from the data."""

from __future__ import annotations

import csv
import json
import shutil

import pytest

from hfp8sim.cli import main
from hfp8sim.reports.plots import detect, load_sweep, plot_results

from .conftest import read_rows

SWEEP_FIGURES = {"throughput", "utilization", "speedup_fp8_fp16", "stalls_dram"}
ENERGY_FIGURES = {"energy_breakdown", "energy_ratio_fp8_fp16"}


def _check_files(folder, names):
    for name in names:
        png, svg = folder / f"{name}.png", folder / f"{name}.svg"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000, name
        text = svg.read_text()
        assert "<svg" in text and len(text) > 10_000, name


def _copy_sweep(src, dst, transform):
    """A copy of a sweep folder whose rows pass through ``transform`` (the CSV only)."""
    dst.mkdir(parents=True)
    shutil.copy(src / "sweep.json", dst / "sweep.json")
    rows = [transform(dict(r)) for r in read_rows(src)]
    columns = list(dict.fromkeys(k for r in rows for k in r))
    with (dst / "points.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)
    return rows


def test_sweep_figures_and_captions(local_sweep, tmp_path, capsys):
    out = tmp_path / "plots"
    assert main(["plot", str(local_sweep), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    rows = read_rows(local_sweep)
    has_energy = "energy_total_pj" in rows[0]
    _check_files(out, SWEEP_FIGURES | (ENERGY_FIGURES if has_energy else set()))
    assert f"{len(SWEEP_FIGURES) + (2 if has_energy else 0)} figures from the sweep results" in printed
    # the best throughput per scheme, as the caption states it
    for scheme in ("hfp8", "fp16"):
        best = max((r for r in rows if r["scheme"] == scheme), key=lambda r: float(r["tera_macs_per_second"]))
        assert (f"{scheme} {float(best['tera_macs_per_second']):.2f} TMAC/s "
                f"({float(best['tera_flops_per_second']):.2f} TFLOPS") in printed
    # the speed-up range, from the cycles of the hfp8/fp16 twins
    by = {(r["rows"], r["dataflow"], r["scheme"]): float(r["cycles"]) for r in rows}
    ratios = [by[(n, d, "fp16")] / by[(n, d, "hfp8")] for n, d, s in by if s == "hfp8"]
    assert f"tiny_cnn: {min(ratios):.2f}x (" in printed and f") to {max(ratios):.2f}x (" in printed


def test_energy_figures_skip_without_energy_columns(local_sweep, tmp_path):
    stripped = tmp_path / "no_energy"
    _copy_sweep(local_sweep, stripped, lambda r: {k: v for k, v in r.items() if not k.startswith("energy_")})
    report = plot_results(stripped, tmp_path / "out")
    assert {f.name for f in report.figures} == SWEEP_FIGURES
    assert any(n.startswith("energy_breakdown: skipped (the results have no energy_<component>_pj columns")
               for n in report.notes)
    assert any(n.startswith("energy_ratio_fp8_fp16: skipped") for n in report.notes)


def test_energy_figures_from_energy_columns(local_sweep, tmp_path):
    def add_energy(row):
        row = {k: v for k, v in row.items() if not k.startswith("energy_")}
        mac, dram = float(row["macs"]) * (0.2 if row["scheme"] == "hfp8" else 0.5), float(row["dram_bytes"]) * 10
        row.update(energy_mac_pj=mac, energy_dram_pj=dram, energy_noc_pj=0.0, energy_total_pj=mac + dram,
                   energy_dynamic_pj=mac + dram)
        return row

    rows = _copy_sweep(local_sweep, tmp_path / "energy", add_energy)
    report = plot_results(tmp_path / "energy", tmp_path / "out")
    assert {f.name for f in report.figures} == SWEEP_FIGURES | ENERGY_FIGURES
    _check_files(tmp_path / "out", ENERGY_FIGURES)
    total = {(r["rows"], r["dataflow"], r["scheme"]): r["energy_total_pj"] for r in rows}
    ratios = [total[(n, d, "hfp8")] / total[(n, d, "fp16")] for n, d, s in total if s == "hfp8"]
    caption = next(f.caption for f in report.figures if f.name == "energy_ratio_fp8_fp16")
    assert f"tiny_cnn: {min(ratios):.2f}x (" in caption and f") to {max(ratios):.2f}x (" in caption
    breakdown = next(f.caption for f in report.figures if f.name == "energy_breakdown")
    assert "tiny_cnn, ws dataflow: " in breakdown and "noc" not in breakdown  # all-zero components are left out


def test_run_figures_from_a_sweep_point(local_sweep, tmp_path):
    row = next(r for r in read_rows(local_sweep) if (r["rows"], r["dataflow"], r["scheme"]) == ("32", "os", "hfp8"))
    point = local_sweep / "points" / f"{row['point_id']}.json"
    assert detect(point) == "run"
    report = plot_results(point, tmp_path)
    names = {f.name for f in report.figures}
    assert {"roofline", "layer_cycles"} <= names
    _check_files(tmp_path, {"roofline", "layer_cycles"})
    roofline = next(f.caption for f in report.figures if f.name == "roofline")
    # 32x32 PEs x 2 FP8 MACs x 1.6 GHz = 3.28 TMAC/s; 204.8 GB/s: ridge at 16 MACs per byte
    assert "compute roof 3.28 TMAC/s, DRAM 204.8 GB/s, ridge 16 MAC/B" in roofline
    layers = json.loads(point.read_text())["layers"]
    gemm = [r for r in layers if r["kind"] == "gemm"]
    below = sum(1 for r in gemm if r["macs"] / (r["dram_read_bytes"] + r["dram_write_bytes"]) < 16)
    assert f"{below} of {len(gemm)} GEMM layers are below the ridge" in roofline
    cycles = next(f.caption for f in report.figures if f.name == "layer_cycles")
    timed = [r for r in layers if r["cycles"] > 0]
    assert f"over {len(timed)} layers" in cycles
    longest = max(timed, key=lambda r: r["cycles"])
    assert f"longest layer {longest['name']}" in cycles


def test_run_and_compare_folders(tmp_path, capsys):
    runs = tmp_path / "run"
    assert main(["run", "default", "tiny_cnn", "--compare", "hfp8,fp16", "--out", str(runs), "--layers", "0"]) == 0
    capsys.readouterr()
    assert detect(runs) == "compare" and detect(runs / "fp16") == "run"
    assert main(["plot", str(runs / "fp16")]) == 0
    _check_files(runs / "fp16" / "plots", {"roofline", "layer_cycles"})
    report = plot_results(runs, tmp_path / "cmp")
    names = {f.name for f in report.figures}
    assert {"roofline", "layer_cycles", "speedup_per_layer"} <= names
    _check_files(tmp_path / "cmp", {"speedup_per_layer"})
    _check_files(tmp_path / "cmp" / "hfp8", {"roofline", "layer_cycles"})
    hfp8 = json.loads((runs / "hfp8" / "summary.json").read_text())["summary"]
    fp16 = json.loads((runs / "fp16" / "summary.json").read_text())["summary"]
    caption = next(f.caption for f in report.figures if f.name == "speedup_per_layer")
    assert f"hfp8 {fp16['cycles'] / hfp8['cycles']:.2f}x on the whole network" in caption
    if "energy_total_pj" in hfp8:
        assert "energy_by_scheme" in names
        ratio = hfp8["energy_total_pj"] / fp16["energy_total_pj"]
        assert f"hfp8/fp16 = {ratio:.2f}" in next(f.caption for f in report.figures if f.name == "energy_by_scheme")


def test_x_axis_choice(local_sweep, tmp_path):
    report = plot_results(local_sweep, tmp_path, x="dataflow", formats=["png"])
    assert {f.name for f in report.figures} >= SWEEP_FIGURES
    assert all(p.suffix == ".png" for f in report.figures for p in f.paths)
    with pytest.raises(Exception, match="--x nonsense: not a column"):
        plot_results(local_sweep, tmp_path, x="nonsense")
    table = load_sweep(local_sweep)
    assert len(table.ok) == 30 and table.param_columns[0] == "array.rows"


def test_legends_name_numeric_series_and_each_series_has_its_own_peak_line():
    """A sweep over DRAM bandwidth x cores: legends read "cores=2" (not "2"), captions name every key, one flat
    peak line per core count (grouping peaks by scheme alone drew a 52 -> 210 -> 52 sawtooth), and log axes
    show 1,000 rather than 1e+03."""
    import matplotlib.pyplot as plt

    from hfp8sim.reports.plots import _Axes, _config_name, _log_y, _peak_lines, _series_label

    axes = _Axes("dram.bw_gb_per_s", "dram.bw_gb_per_s (GB/s)", True, False, [], "workload", ["scheme", "cores"])
    rows = [{"dram.bw_gb_per_s": bw, "cores": cores, "scheme": "hfp8", "workload": "w",
             "peak_tera_macs_per_second": 52.4 * cores} for bw in (50, 100, 200) for cores in (1, 2, 4)]
    assert _series_label(axes.series, ("hfp8", 2)) == "hfp8, cores=2"
    assert _series_label(["dataflow", "dram.bw_gb_per_s"], ("ws", 12.5)) == "ws, dram.bw_gb_per_s=12.5"
    assert _config_name(rows[-1], axes) == "dram.bw_gb_per_s=200, hfp8, cores=4"
    fig, ax = plt.subplots()
    _peak_lines(ax, rows, axes, [], {})
    lines = {line.get_label(): list(line.get_ydata()) for line in ax.get_lines()}
    assert lines == {f"peak hfp8, cores={c}": [52.4 * c] * 3 for c in (1, 2, 4)}
    ax.set_ylim(300, 2000)
    _log_y(ax)
    formatter = ax.yaxis.get_major_formatter()
    assert (formatter(1000, 0), formatter(400, 0), formatter(0.5, 0)) == ("1,000", "400", "0.5")
    plt.close(fig)
