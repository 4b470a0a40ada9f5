"""Sweeps give the numbers of single runs in every mode, survive being killed, and keep failed points."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from hfp8sim.cli import main
from hfp8sim.config.arch import parse_arch
from hfp8sim.run import simulate_network
from hfp8sim.sweep import build_sweep, run_sweep

from .conftest import DATAFLOWS, GRID_ARGS, N_POINTS, SCHEMES, SIZES, WORKLOAD, read_point, read_rows

COMPARED = ("cycles", "compute_cycles", "stall_cycles", "macs", "dram_read_bytes", "dram_write_bytes",
            "sram_read_bytes", "utilization", "seconds", "tera_macs_per_second")


def _grid():
    return build_sweep("default", WORKLOAD, array=",".join(str(n) for n in SIZES), dataflow=",".join(DATAFLOWS),
                       scheme=",".join(SCHEMES))


def test_local_processes_match_single_simulate_network_runs(local_sweep):
    rows = read_rows(local_sweep)
    sweep = _grid()
    assert len(rows) == len(sweep.points) == N_POINTS
    # rows come in grid order: arrays outermost, then dataflow, then scheme
    assert [(int(r["rows"]), r["dataflow"], r["scheme"]) for r in rows] == [
        (n, d, s) for n in SIZES for d in DATAFLOWS for s in SCHEMES]
    assert [r["point_id"] for r in rows] == [p.point_id for p in sweep.points]
    network = sweep.networks[WORKLOAD]
    for row, point in zip(rows, sweep.points):
        assert row["status"] == "ok" and row["error"] == ""
        assert (int(row["array.rows"]), int(row["array.cols"])) == (point.params["array.rows"],) * 2
        single = simulate_network(parse_arch(point.arch, "test"), network).summary()
        assert single["scheme"] == row["scheme"]
        for field in COMPARED:
            assert float(row[field]) == pytest.approx(single[field], rel=1e-12, abs=0), field
        payload = read_point(local_sweep, point.point_id)
        assert payload["summary"]["cycles"] == single["cycles"]
        assert len(payload["layers"]) == len(network.layers)
        assert payload["config"]["array"]["rows"] == point.params["array.rows"]
        assert payload["config"]["array"]["dataflow"] == row["dataflow"]
        assert payload["params"] == point.params
    # the derived columns are what they say
    r = rows[0]
    assert float(r["tera_flops_per_second"]) == pytest.approx(2 * float(r["tera_macs_per_second"]))
    assert float(r["inferences_per_second"]) == pytest.approx(1 / float(r["seconds"]))
    assert float(r["dram_bytes"]) == float(r["dram_read_bytes"]) + float(r["dram_write_bytes"])
    # FP8 halves the operand bytes: pair mode doubles the peak
    by = {(int(r["rows"]), r["dataflow"], r["scheme"]): r for r in rows}
    for n in SIZES:
        assert int(by[(n, "ws", "hfp8")]["peak_macs_per_cycle"]) == 2 * n * n
        assert int(by[(n, "ws", "fp16")]["peak_macs_per_cycle"]) == n * n
    manifest = json.loads((local_sweep / "sweep.json").read_text())
    assert manifest["param_columns"] == ["array.rows", "array.cols", "array.dataflow", "scheme"]
    assert len(manifest["points"]) == N_POINTS


def test_dask_cluster_gives_the_same_numbers(local_sweep, tmp_path):
    distributed = pytest.importorskip("distributed")  # in the test extra: never skipped in CI
    out = tmp_path / "dask"
    # ":0": the dashboard on a free port (None means dask's default 8787, taken when another cluster runs here)
    with distributed.LocalCluster(n_workers=2, processes=True, threads_per_worker=1,
                                  dashboard_address=":0") as cluster:
        assert main(["sweep", "default", WORKLOAD, *GRID_ARGS, "--scheduler", cluster.scheduler_address,
                     "--out", str(out), "--no-progress"]) == 0
    local, dask = read_rows(local_sweep), read_rows(out)
    assert [r["point_id"] for r in dask] == [r["point_id"] for r in local]
    skip = {"elapsed_s", "cpu_s"}
    for a, b in zip(local, dask):
        assert {k: v for k, v in a.items() if k not in skip} == {k: v for k, v in b.items() if k not in skip}


def test_limit_then_resume_runs_only_the_missing_points(local_sweep, tmp_path, capsys):
    out = tmp_path / "resumed"
    assert main(["sweep", "default", WORKLOAD, *GRID_ARGS, "--out", str(out), "--limit", "7", "--jobs", "2",
                 "--no-progress"]) == 0
    assert "23 points not run yet: rerun with --resume" in capsys.readouterr().out
    first = {p.name: p.stat().st_mtime_ns for p in (out / "points").glob("*.json")}
    assert len(first) == 7 and len(read_rows(out)) == 7
    time.sleep(0.01)
    ran = []
    result = run_sweep(_grid(), out, jobs=2, resume=True, progress=False, on_point=lambda p, payload: ran.append(p))
    assert len(ran) == len(result.computed) == N_POINTS - 7 and len(result.skipped) == 7
    assert {p.point_id + ".json" for p in ran}.isdisjoint(first)
    assert {p.name: p.stat().st_mtime_ns for p in (out / "points").glob("*.json") if p.name in first} == first
    assert read_rows(out) == [dict(r, elapsed_s=s["elapsed_s"], cpu_s=s["cpu_s"])
                              for r, s in zip(read_rows(local_sweep), read_rows(out))]
    # a third run finds everything done
    assert main(["sweep", "default", WORKLOAD, *GRID_ARGS, "--out", str(out), "--resume", "--no-progress"]) == 0
    assert "(30 ok, 0 failed; 0 run, 30 found done)" in capsys.readouterr().out


def test_a_killed_sweep_resumes_without_recomputing(tmp_path):
    out = tmp_path / "killed"
    argv = [sys.executable, "-m", "hfp8sim.cli", "sweep", "default", "resnet50", "--array", "16,32",
            "--dataflow", "os,ws,is", "--scheme", "hfp8", "--jobs", "1", "--out", str(out), "--no-progress"]
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and len(list((out / "points").glob("*.json"))) < 2:
            time.sleep(0.02)
            assert proc.poll() is None, "the sweep ended before it could be killed"
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    done = {p.name: p.stat().st_mtime_ns for p in (out / "points").glob("*.json")}
    assert 2 <= len(done) < 6
    rows = read_rows(out)  # written atomically: never a torn file
    # a point's JSON is written before points.csv is rewritten: a kill between the two leaves the CSV one behind
    assert len(done) - 1 <= len(rows) <= len(done) and all(r["status"] == "ok" for r in rows)
    assert {r["point_id"] + ".json" for r in rows} <= set(done)
    resumed = subprocess.run(argv + ["--resume"], capture_output=True, text=True, check=False)
    assert resumed.returncode == 0, resumed.stderr
    assert f"{6 - len(done)} run, {len(done)} found done" in resumed.stdout
    assert len(read_rows(out)) == 6
    assert {p.name: p.stat().st_mtime_ns for p in (out / "points").glob("*.json") if p.name in done} == done
    # point for point, the resumed sweep equals one that was never interrupted (cycles, energy, bytes, every
    # layer); only the wall-clock fields and the digest over them may differ
    whole = tmp_path / "uninterrupted"
    run_sweep(build_sweep("default", "resnet50", array="16,32", dataflow="os,ws,is", scheme="hfp8"), whole, jobs=1,
              progress=False)
    wall = {"elapsed_s", "cpu_s", "digest"}
    assert [{k: v for k, v in r.items() if k not in wall} for r in read_rows(out)] == \
        [{k: v for k, v in r.items() if k not in wall} for r in read_rows(whole)]
    for row in read_rows(whole):
        resumed, reference = read_point(out, row["point_id"]), read_point(whole, row["point_id"])
        assert {k: v for k, v in resumed.items() if k not in wall} == {k: v for k, v in reference.items() if k not in wall}


def test_an_invalid_point_is_recorded_and_the_others_complete(local_sweep, tmp_path, capsys):
    out = tmp_path / "with_errors"
    code = main(["sweep", "default", WORKLOAD, "--array", "0,8,16", "--set", "scratchpads.output.size_kib=1024,0.01",
                 "--scheme", "hfp8", "--out", str(out), "--jobs", "2", "--no-progress"])
    assert code == 1
    printed = capsys.readouterr().out
    assert "(2 ok, 4 failed; 6 run, 0 found done)" in printed
    rows = {(int(r["rows"]), float(r["scratchpads.output.size_kib"])): r for r in read_rows(out)}
    assert len(rows) == 6
    for kib in (1024.0, 0.01):
        bad = rows[(0, kib)]
        assert bad["status"] == "error" and bad["error_type"] == "ConfigError" and bad["cycles"] == ""
        assert "array.rows: input should be greater than 0" in bad["error"]
    small = rows[(16, 0.01)]
    assert small["status"] == "error" and "scratchpads.output.size_kib: 0.01 KiB cannot hold a minimal tile" in \
        small["error"]
    # the good points carry the numbers of the plain sweep
    reference = {(int(r["rows"]), r["dataflow"], r["scheme"]): r for r in read_rows(local_sweep)}
    for n in (8, 16):
        assert rows[(n, 1024.0)]["status"] == "ok"
        assert rows[(n, 1024.0)]["cycles"] == reference[(n, "ws", "hfp8")]["cycles"]
    payload = read_point(out, bad["point_id"])
    assert payload["status"] == "error" and payload["config"]["array"]["rows"] == 0
    # resume keeps recorded failures; --retry-failed runs them again
    assert main(["sweep", "default", WORKLOAD, "--array", "0,8,16", "--set", "scratchpads.output.size_kib=1024,0.01",
                 "--scheme", "hfp8", "--out", str(out), "--resume", "--retry-failed", "--jobs", "1",
                 "--no-progress"]) == 1
    assert "(2 ok, 4 failed; 4 run, 2 found done)" in capsys.readouterr().out


def test_zip_pairs_the_lists_and_shortcuts_set_their_keys(tmp_path):
    sweep = build_sweep("default", "tiny_cnn,tiny_mlp", array="8x16,32x32", dataflow="os,ws", scheme="fp16",
                        sets=["dram.bw_bytes_per_cycle=32"], scratchpads_kib="256", zipped=True)
    assert [(p.workload, p.params["array.rows"], p.params["array.cols"], p.params["array.dataflow"])
            for p in sweep.points] == [("tiny_cnn", 8, 16, "os"), ("tiny_cnn", 32, 32, "ws"),
                                       ("tiny_mlp", 8, 16, "os"), ("tiny_mlp", 32, 32, "ws")]
    arch = sweep.points[0].arch
    assert arch["scheme"] == "fp16" and arch["dram"]["bw_bytes_per_cycle"] == 32
    assert "bw_gb_per_s" not in arch["dram"]  # the exclusive alternative is dropped
    assert {arch["scratchpads"][p]["size_kib"] for p in ("input", "weight", "output")} == {256}
    result = run_sweep(sweep, tmp_path, jobs=1, progress=False)
    assert [r["status"] for r in result.rows] == ["ok"] * 4
    assert [r["dram_gb_per_s"] for r in result.rows] == [32 * 1.6] * 4
    # ids are stable: the same grid built again has the same ids, a changed value changes its id
    again = build_sweep("default", "tiny_cnn,tiny_mlp", array="8x16,32x32", dataflow="os,ws", scheme="fp16",
                        sets=["dram.bw_bytes_per_cycle=32"], scratchpads_kib="256", zipped=True)
    assert [p.point_id for p in again.points] == [p.point_id for p in sweep.points]
    other = build_sweep("default", "tiny_cnn", array="8x16", dataflow="os", scheme="fp16",
                        sets=["dram.bw_bytes_per_cycle=64"], scratchpads_kib="256")
    assert other.points[0].point_id != sweep.points[0].point_id


def test_core_count_and_mapping_keys(tmp_path):
    sweep = build_sweep("default", "tiny_cnn", cores="1,2", sets=["array.macs_per_pe_per_cycle.8=1,2"],
                        array="16")
    assert len(sweep.points) == 4
    assert [(p.params["array.macs_per_pe_per_cycle.8"], p.params["chip.cores"]) for p in sweep.points] == [
        (1, 1), (1, 2), (2, 1), (2, 2)]  # axes in the order --array, --set, --cores
    assert sweep.points[2].arch["array"]["macs_per_pe_per_cycle"] == {8: 2, 16: 1, 32: 1}
    assert sweep.points[1].arch["chip"]["cores"] == 2
    result = run_sweep(sweep, tmp_path, jobs=1, progress=False)
    rows = {(r["cores"], r["array.macs_per_pe_per_cycle.8"]): r for r in result.rows}
    assert all(r["status"] == "ok" for r in result.rows)
    assert rows[(1, 1)]["peak_macs_per_cycle"] == 256 and rows[(1, 2)]["peak_macs_per_cycle"] == 512
    assert rows[(2, 1)]["peak_macs_per_cycle"] == 512
    assert os.path.exists(tmp_path / "points.csv")


def _descendants(pid: int) -> set[int]:
    """Every process below ``pid`` (Linux /proc)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = set(), [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.add(child)
            todo.append(child)
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="uses /proc and prctl; Linux only")
def test_workers_die_with_a_killed_sweep(tmp_path):
    argv = [sys.executable, "-m", "hfp8sim.cli", "sweep", "default", "resnet50", "--array", "16,32,64,128",
            "--dataflow", "os,ws,is", "--scheme", "hfp8", "--jobs", "2", "--out", str(tmp_path / "s"),
            "--no-progress"]
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        workers: set[int] = set()
        while time.monotonic() < deadline and len(workers) < 3:  # the resource tracker and two workers
            time.sleep(0.1)
            assert proc.poll() is None, "the sweep ended before it could be killed"
            workers = _descendants(proc.pid)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert len(workers) >= 3
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(_alive(pid) for pid in workers):
        time.sleep(0.1)
    assert not [pid for pid in workers if _alive(pid)], "worker processes outlived the killed sweep"


def test_resume_recomputes_points_that_cannot_be_trusted_and_says_which(tmp_path, capsys):
    """A point edited by hand (cycles: 1), truncated, or holding another point's results is run again on
    --resume with a line naming its file; the untouched points are kept."""
    out = tmp_path / "sweep"
    argv = ["sweep", "default", "tiny_mlp", "--array", "8x8,16x16,32x32,64x64", "--out", str(out), "--jobs", "1",
            "--no-progress"]
    assert main(argv) == 0
    rows = {r["point_id"]: r for r in read_rows(out)}
    edited, truncated, swapped, kept = list(rows)
    payload = json.loads((out / "points" / f"{edited}.json").read_text())
    payload["summary"]["cycles"] = 1
    (out / "points" / f"{edited}.json").write_text(json.dumps(payload))
    text = (out / "points" / f"{truncated}.json").read_text()
    (out / "points" / f"{truncated}.json").write_text(text[: len(text) // 2])
    (out / "points" / f"{swapped}.json").write_text((out / "points" / f"{kept}.json").read_text())
    capsys.readouterr()
    assert main(argv + ["--resume"]) == 0
    captured = capsys.readouterr()
    assert "(4 ok, 0 failed; 3 run, 1 found done)" in captured.out
    err = captured.err
    assert f"{edited}.json: changed since it was written (its digest does not match its contents); running " \
           "the point again" in err
    assert f"{truncated}.json: not readable JSON" in err
    assert f"{swapped}.json: holds point '{kept}'" in err
    again = {r["point_id"]: r for r in read_rows(out)}
    assert {k: {f: v for f, v in r.items() if f not in ("elapsed_s", "cpu_s")} for k, r in again.items()} == \
        {k: {f: v for f, v in r.items() if f not in ("elapsed_s", "cpu_s")} for k, r in rows.items()}


def test_points_csv_and_point_files_hold_whole_cycles(local_sweep):
    """A cycle-level simulator counts whole cycles: points.csv cells are integers, as are the point files'."""
    columns = ("cycles", "compute_cycles", "stall_cycles", "fold_cycles", "port_stall_cycles", "vector_cycles")
    for row in read_rows(local_sweep):
        assert all(row[column].isdigit() for column in columns), row
        payload = read_point(local_sweep, row["point_id"])
        assert all(type(payload["summary"][column]) is int for column in columns)
        assert all(type(layer["cycles"]) is int for layer in payload["layers"])
