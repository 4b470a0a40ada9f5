"""Mistakes in a sweep or plot command: one line on stderr, exit code 2, nothing run."""

from __future__ import annotations

import socket

import pytest

from hfp8sim.cli import main
from hfp8sim.errors import SweepError
from hfp8sim.sweep import check_key


def _one_line_error(capsys) -> str:
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("hfp8sim")]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


@pytest.mark.parametrize(("args", "message"), [
    (["--set", "array.row=8,16"], "unknown arch config key 'array.row'; did you mean 'array.rows'?"),
    (["--set", "rows=8"], "unknown arch config key 'rows'; did you mean 'array.rows'?"),
    (["--set", "dram.bw_gbps=100"], "unknown arch config key 'dram.bw_gbps'; did you mean 'dram.bw_gb_per_s'?"),
    (["--set", "scratchpads.inputs.size_kib=64"],
     "unknown arch config key 'scratchpads.inputs.size_kib'; did you mean 'scratchpads.input.size_kib'?"),
    (["--set", "array=8"], "'array' is a section of the arch config, not a value; set one of its keys: array.rows"),
    (["--set", "array.rows"], "--set expects KEY=V1,V2,... (e.g. array.rows=8,16,32), got 'array.rows'"),
    (["--set", "array.rows="], "empty grid: --set array.rows has no values"),
    (["--array", ","], "empty grid: --array has no values"),
    (["--array", "8y8"], "--array expects ROWSxCOLS values like 8x8,16x16 (or 8,16 for squares), got '8y8'"),
    (["--array", "8,16", "--set", "array.rows=4"], "array.rows is swept twice (--array and --set array.rows)"),
    (["--array", "8,16", "--scheme", "hfp8,fp16,fp32", "--zip"],
     "--zip needs lists of equal length (or of one value): --array has 2, --scheme has 3"),
    (["--scheme", "hfp8,fp9"], "--scheme: unknown scheme 'fp9'"),
])
def test_bad_grids_fail_in_one_line(args, message, tmp_path, capsys):
    assert main(["sweep", "default", "tiny_cnn", *args, "--out", str(tmp_path / "out")]) == 2
    assert message in _one_line_error(capsys)
    assert not (tmp_path / "out").exists()


def test_bad_arch_or_workload(tmp_path, capsys):
    assert main(["sweep", "no_such_core", "tiny_cnn", "--out", str(tmp_path)]) == 2
    assert "no_such_core: unknown arch config; shipped arch configs: array_128x128, " in _one_line_error(capsys)
    assert main(["sweep", "default", "tiny_cnn,resnet5O", "--out", str(tmp_path)]) == 2
    assert "resnet5O: unknown workload; shipped workloads:" in _one_line_error(capsys)
    assert main(["sweep", "default", ",", "--out", str(tmp_path)]) == 2
    assert "empty grid: no workload given" in _one_line_error(capsys)


def test_unreachable_scheduler(tmp_path, capsys):
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    assert main(["sweep", "default", "tiny_cnn", "--array", "8,16", "--scheduler", f"tcp://127.0.0.1:{port}",
                 "--connect-timeout", "1", "--out", str(tmp_path / "out"), "--no-progress"]) == 2
    line = _one_line_error(capsys)
    assert f"hfp8sim: error: cannot reach the Dask scheduler at tcp://127.0.0.1:{port}: " in line
    assert not (tmp_path / "out").exists()  # nothing written before the scheduler answers


def test_check_key_accepts_every_schema_key_and_mapping_entries():
    assert check_key("array.accumulator.chunk") == ("array", "accumulator", "chunk")
    assert check_key("chip.noc.link_bytes_per_cycle") == ("chip", "noc", "link_bytes_per_cycle")
    assert check_key("array.macs_per_pe_per_cycle.8") == ("array", "macs_per_pe_per_cycle", 8)
    with pytest.raises(SweepError, match="did you mean 'array.accumulator.chunk'"):
        check_key("array.acumulator.chunk")


def test_plot_of_something_else(tmp_path, capsys):
    (tmp_path / "notes.txt").write_text("hello")
    assert main(["plot", str(tmp_path)]) == 2
    assert "not a sweep folder (points.csv), a run folder (layers.csv + summary.json)" in _one_line_error(capsys)
    assert main(["plot", str(tmp_path / "missing")]) == 2
    assert "missing: no such file or folder" in _one_line_error(capsys)
