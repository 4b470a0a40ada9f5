"""`--formats FILE` on run, trace and sweep: a scheme defined in a format library is usable wherever a
built-in one is, including in a sweep's worker processes (which load the library themselves)."""

import csv
import json

import pytest

from hfp8sim.cli import main

# the shipped example library defines the scheme hfp8_ieee_forward: HFP8 whose forward format is 1-4-3 bias 11
# with IEEE specials; its operands are one byte like hfp8's, so the timing model gives hfp8's cycles
LIBRARY = "example_formats"
SCHEME = "hfp8_ieee_forward"


def _summary(folder):
    return json.loads((folder / "summary.json").read_text())["summary"]


def test_run_uses_a_scheme_from_a_format_library(tmp_path, capsys):
    assert main(["run", "default", "tiny_mlp", "--formats", LIBRARY, "--scheme", SCHEME,
                 "--out", str(tmp_path / "lib")]) == 0
    assert main(["run", "default", "tiny_mlp", "--scheme", "hfp8", "--out", str(tmp_path / "hfp8")]) == 0
    library_run, hfp8_run = _summary(tmp_path / "lib"), _summary(tmp_path / "hfp8")
    assert library_run["scheme"] == SCHEME and hfp8_run["scheme"] == "hfp8"
    assert library_run["cycles"] == hfp8_run["cycles"] > 0


def test_without_the_library_the_scheme_is_unknown_in_one_line(tmp_path, capsys):
    assert main(["run", "default", "tiny_mlp", "--scheme", "not_defined_anywhere",
                 "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "unknown scheme 'not_defined_anywhere'" in err


def test_a_bad_library_fails_before_any_work_naming_the_file_and_key(tmp_path, capsys):
    bad = tmp_path / "lib.yaml"
    bad.write_text("schemes:\n  s:\n    forward: no_such_format\n    backward: float8_e5m2\n    accumulate: dlfloat16\n")
    assert main(["run", "default", "tiny_mlp", "--formats", str(bad), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "lib.yaml" in err and "schemes.s" in err and "no_such_format" in err
    assert not (tmp_path / "out").exists()


def test_trace_uses_a_scheme_from_a_format_library(tmp_path, capsys):
    out = tmp_path / "t.json"
    assert main(["trace", "tiny_mlp", "--formats", LIBRARY, "--scheme", SCHEME, "--out", str(out), "--quiet"]) == 0
    trace = json.loads(out.read_text())
    assert trace["scheme"] == {"name": SCHEME, "forward": "e4m3b11_ieee", "backward": "float8_e5m2",
                               "accumulate": "dlfloat16"}


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_sweep_workers_load_the_library(tmp_path, capsys, jobs):
    out = tmp_path / "sweep"
    assert main(["sweep", "default", "tiny_mlp", "--formats", LIBRARY, "--scheme", f"hfp8,{SCHEME}",
                 "-j", jobs, "--out", str(out), "--no-progress"]) == 0
    with open(out / "points.csv", newline="") as handle:
        rows = {row["scheme"]: row for row in csv.DictReader(handle)}
    assert set(rows) == {"hfp8", SCHEME}
    assert all(row["status"] == "ok" for row in rows.values())
    assert rows["hfp8"]["cycles"] == rows[SCHEME]["cycles"]
    manifest = json.loads((out / "sweep.json").read_text())
    assert [path.endswith("example_formats.yaml") for path in manifest["format_libraries"]] == [True]
