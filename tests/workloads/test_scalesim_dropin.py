"""SCALE-Sim drop-in: `hfp8sim run scale.cfg topology.csv --format scalesim` against SCALE-Sim 3.0.0's own reports.

The reference reports under ``data/scalesim_reference`` were written by SCALE-Sim 3.0.0 (pip, numpy 2.2.6,
CALC mode) on the configs and topology subsets stored beside them (see its README).  Every row must agree:
COMPUTE_REPORT cycles, stall and the three utilisations; DETAILED_ACCESS_REPORT SRAM reads and writes and
their start/stop cycles; BANDWIDTH_REPORT's SRAM bandwidths.
"""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from hfp8sim.cli import main
from hfp8sim.config.arch import load_arch, parse_arch
from hfp8sim.errors import ConfigError
from hfp8sim.schedule import scalesim

REFERENCE = Path(__file__).parent / "data" / "scalesim_reference"
RUNS = sorted((topology.name, config.name) for topology in (REFERENCE / "reports").iterdir()
              for config in topology.iterdir())  # fmt: skip

def _report(path: Path) -> tuple[list[str], list[list[float]]]:
    with path.open(newline="") as handle:
        rows = [[cell.strip() for cell in row] for row in csv.reader(handle)]
    header = [cell for cell in rows[0] if cell]
    return header, [[float(cell) for cell in row[1:len(header)]] for row in rows[1:]]


def test_reference_runs_cover_every_dataflow_and_the_shipped_examples():
    assert {config for _, config in RUNS} >= {"calc_32x32_os", "calc_32x32_ws", "calc_32x32_is"}
    assert {topology for topology, _ in RUNS} == {"gemm_sub", "mobilenet_sub", "resnet18_sub"}


@pytest.mark.parametrize(("topology", "config"), RUNS)
def test_reports_reproduce_scalesim_row_for_row(tmp_path, capsys, topology, config):
    argv = ["run", str(REFERENCE / "configs" / f"{config}.cfg"), str(REFERENCE / "topologies" / f"{topology}.csv"),
            "--format", "scalesim", "--out", str(tmp_path), "--layers", "0"]
    assert main(argv) == 0
    ref_dir = REFERENCE / "reports" / topology / config
    # COMPUTE_REPORT: every column but "incl. prefetch" (ideal memory has no initial fill)
    header, ours = _report(tmp_path / "COMPUTE_REPORT.csv")
    ref_header, ref = _report(ref_dir / "COMPUTE_REPORT.csv")
    assert header == ref_header and len(ours) == len(ref) > 0
    for mine, theirs in zip(ours, ref):
        assert mine[1:3] == theirs[1:3]  # Total Cycles, Stall Cycles
        assert mine[3:] == pytest.approx(theirs[3:], rel=1e-12)  # Overall Util, Mapping Efficiency, Compute Util
    # DETAILED_ACCESS_REPORT: the nine SRAM columns (start, stop, count for IFMAP, FILTER, OFMAP)
    header, ours = _report(tmp_path / "DETAILED_ACCESS_REPORT.csv")
    ref_header, ref = _report(ref_dir / "DETAILED_ACCESS_REPORT.csv")
    assert header == ref_header and len(ours) == len(ref)
    # (stride-2 convs with SCALE-Sim's phantom outputs included: Conv3_s, Conv4_s, Conv5_s, MobileNet Conv1, 12)
    for mine, theirs in zip(ours, ref):
        assert mine[:9] == theirs[:9]
    # BANDWIDTH_REPORT: SCALE-Sim's columns; the SRAM bandwidths are SRAM accesses / cycles, as in SCALE-Sim
    header, ours = _report(tmp_path / "BANDWIDTH_REPORT.csv")
    ref_header, ref = _report(ref_dir / "BANDWIDTH_REPORT.csv")
    assert header == ref_header
    for mine, theirs in zip(ours, ref):
        assert mine[:3] == pytest.approx(theirs[:3], rel=1e-12)
    assert "overall util" in capsys.readouterr().err


def test_shipped_scale_cfg_is_an_arch_in_scalesim_mode():
    arch = load_arch(REFERENCE / "configs" / "scale.cfg")
    assert (arch.name, arch.mode, arch.array.rows, arch.array.cols, arch.array.dataflow) == \
        ("scale_example_run_32x32_ws", "scalesim", 32, 32, "ws")
    assert arch.scratchpads.input.size_kib == 64 and arch.dram_bytes_per_cycle == float("inf")


def test_scalesim_64kb_srams_at_128x128_os_are_accepted():
    """SCALE-Sim's own 64 kB SRAMs at 128x128 os: rejected before ("cannot hold a minimal tile"), although in
    SCALE-Sim mode capacities only log traffic."""
    arch = load_arch(REFERENCE / "configs" / "calc_128x128_os.cfg")
    assert (arch.array.rows, arch.array.dataflow, arch.scratchpads.output.size_kib) == (128, "os", 64)


def _cfg(tmp_path: Path, **changes: str) -> Path:
    text = (REFERENCE / "configs" / "scale.cfg").read_text()
    for key, value in changes.items():
        lines = [f"{key}: {value}" if line.split(":")[0].split("=")[0].strip() == key else line
                 for line in text.splitlines()]
        text = "\n".join(lines) + "\n"
    path = tmp_path / "my.cfg"
    path.write_text(text)
    return path


@pytest.mark.parametrize(("changes", "message"), [
    ({"InterfaceBandwidth": "USER"}, "my.cfg: run_presets.InterfaceBandwidth: USER (a finite DRAM bandwidth with "
                                     "SCALE-Sim's stall model) is not modelled: hfp8sim's SCALE-Sim mode reproduces "
                                     "CALC mode (ideal memory, no stalls) only"),
    ({"Dataflow": "rs"}, "my.cfg: architecture_presets.Dataflow: must be os, ws or is, got 'rs'"),
    ({"ArrayHeight": "0"}, "my.cfg: architecture_presets.ArrayHeight: must be a positive integer, got '0'"),
    ({"IfmapCustomLayout": "True"}, "my.cfg: layout.IfmapCustomLayout: custom SRAM layouts"),
    ({"SparsitySupport": "true"}, "my.cfg: sparsity.SparsitySupport: sparse layers are not modelled"),
])
def test_cfg_mistakes_and_unmodelled_modes_are_refused_in_one_line(tmp_path, capsys, changes, message):
    path = _cfg(tmp_path, **changes)
    assert main(["run", str(path), str(REFERENCE / "topologies" / "gemm_sub.csv"), "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err and "Traceback" not in err


def test_missing_cfg_key_names_section_and_key(tmp_path):
    path = tmp_path / "short.cfg"
    path.write_text("[general]\nrun_name = r\n[architecture_presets]\nArrayHeight: 8\nDataflow: os\n")
    with pytest.raises(ConfigError, match=r"short.cfg: architecture_presets.ArrayWidth: required key ArrayWidth is "
                                          r"missing in \[architecture_presets\]"):
        load_arch(path)


def test_scalesim_mode_refuses_a_bandwidth_it_would_ignore():
    data = {"name": "s", "clock_ghz": 1.0, "mode": "scalesim", "array": {"rows": 8, "cols": 8},
            "scratchpads": {name: {"size_kib": 1, "read_bytes_per_cycle": 8, "write_bytes_per_cycle": 8}
                            for name in ("input", "weight", "output")},
            "dram": {"bw_bytes_per_cycle": 10.0}, "interconnect": {"bw_bytes_per_cycle": 8}}  # fmt: skip
    with pytest.raises(ConfigError, match="SCALE-Sim mode models its CALC mode"):
        parse_arch(data, "s.yaml")
    data["dram"] = {"ideal": True}
    assert parse_arch(data, "s.yaml").mode == "scalesim"  # 1 KiB pads at 8x8: fine in SCALE-Sim mode


def test_format_scalesim_needs_scalesim_mode(tmp_path, capsys):
    assert main(["run", "array_8x8", "tiny_cnn", "--format", "scalesim", "--out", str(tmp_path)]) == 2
    assert "--format scalesim needs an arch in SCALE-Sim mode" in capsys.readouterr().err


def test_sram_access_formulas_on_a_rectangular_array():
    """16 rows x 8 columns, a GEMM that fills neither: the counts per dataflow (semantics section 3)."""
    layer = scalesim.gemm_layer("g", 40, 20, 30)  # P=40, Wn=30, K=20
    counts = {df: scalesim.sram_accesses(layer, df, 16, 8) for df in ("os", "ws", "is")}
    # os: F_r = ceil(40/16) = 3, F_c = ceil(20/8) = 3
    assert counts["os"] == scalesim.SramAccesses(40 * 30 * 3, 30 * 20 * 3, 40 * 20 + 9 * (16 + 8))
    # ws: F_r = ceil(30/16) = 2, F_c = 3
    assert counts["ws"] == scalesim.SramAccesses(40 * 30 * 3, 30 * 20, 40 * 20 * 2)
    # is: F_r = 2, F_c = ceil(40/8) = 5
    assert counts["is"] == scalesim.SramAccesses(30 * 40, 30 * 20 * 5, 40 * 20 * 2)
