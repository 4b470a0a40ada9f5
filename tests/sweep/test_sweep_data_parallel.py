"""Data-parallel sweeps: chips, topology, link bandwidth, protocol and global batch as axes of `hfp8sim sweep`.

A point's row must be what the claim study computes for the same system (one chip's training step, then the
reduced SimPy model), a chip shared by points is simulated once per worker, a point whose batch does not divide
fails alone, and the grid refuses unknown names and keys in one line."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from hfp8sim import step_profiles
from hfp8sim.cli import main
from hfp8sim.config.arch import resolve_arch
from hfp8sim.distributed.topology import build_topology
from hfp8sim.errors import SweepError
from hfp8sim.studies.distributed_claim import SYSTEMS, ClaimStudy, _row
from hfp8sim.sweep import Training, build_sweep, run_sweep
from hfp8sim.workloads import load_workload_file, workload_file_kind

WORKLOAD = "tiny_cnn"
PROTOCOLS = ("hfp8", "fp16_allreduce", "fp32_allreduce")


def _rows(folder: Path) -> list[dict[str, str]]:
    with (Path(folder) / "points.csv").open(newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.fixture(scope="module")
def swept(tmp_path_factory):
    """2 chip counts x 2 topologies x 2 bandwidths x the default protocol axis, 4 samples per chip, two workers."""
    out = tmp_path_factory.mktemp("dp_sweep")
    code = main(["sweep", "default", WORKLOAD, "--chips", "2,8", "--topology", "ring,torus2d",
                 "--link-gb-per-s", "0.5,25", "--batch", "4", "--jobs", "2", "--no-progress", "--out", str(out)])
    return code, _rows(out)


def test_every_point_is_the_claim_studys_row_for_its_system(swept):
    code, rows = swept
    assert code == 0 and len(rows) == 2 * 2 * 2 * 3
    assert {r["protocol"] for r in rows} == set(PROTOCOLS) and {r["status"] for r in rows} == {"ok"}
    study = ClaimStudy(workloads=((WORKLOAD, 4),), latency_us=1.0, bucket_mib=25.0, chunks=4)
    arch = resolve_arch(None)
    profiles = step_profiles.StepProfiles(arch, load_workload_file(workload_file_kind(WORKLOAD)[0]), 4)
    for row in rows:
        topology = build_topology(row["topology"], int(row["chips"]), gb_per_s=float(row["link_gb_per_s"]),
                                  latency_us=1.0)
        expected = _row(study, WORKLOAD, 4, row["protocol"], profiles, topology)
        assert SYSTEMS[row["protocol"]][1] == row["protocol"]
        for field in ("step_ms", "compute_ms", "update_ms", "exposed_comm_ms", "overlapped_comm_ms",
                      "wire_bytes_per_param"):
            assert float(row[field]) == expected[field], (row["point_id"], field)
        assert int(row["per_chip_batch"]) == 4 and int(row["global_batch"]) == 4 * int(row["chips"])
        assert float(row["samples_per_second"]) == pytest.approx(4 * int(row["chips"]) / expected["step_ms"] * 1e3,
                                                                 rel=1e-12)
        # the chip columns are one chip's training step under the protocol's update rule
        rule = profiles.for_protocol(step_profiles.protocol_named(row["protocol"]))
        assert int(row["cycles"]) == sum(layer.cycles for layer in rule.layers)
        assert row["update_rule"] == ("round_off_residual" if row["protocol"] == "hfp8" else "fp32_master")


def test_a_chip_is_simulated_once_for_every_point_that_shares_it(tmp_path, monkeypatch):
    calls = []
    real = step_profiles.simulate_training_step

    def counting(*args, **kwargs):
        calls.append((args[2], kwargs["update_rule"]))
        return real(*args, **kwargs)

    monkeypatch.setattr(step_profiles, "simulate_training_step", counting)
    monkeypatch.setattr("hfp8sim.sweep._CHIP_PROFILES", type(__import__("collections").OrderedDict())())
    sweep = build_sweep("default", WORKLOAD, data_parallel={"chips": "2,4,8", "link_gb_per_s": "1,10"},
                        training=Training(batches=(4,)))
    result = run_sweep(sweep, tmp_path, jobs=1, progress=False)
    assert len(result.rows) == 3 * 2 * 3 and not result.failed
    # one chip (batch 4 on the default core) for 18 points: one step per update rule the protocols use
    assert sorted(calls) == [(4, "fp32_master"), (4, "round_off_residual")]


def test_a_global_batch_that_does_not_divide_fails_its_points_only(tmp_path, capsys):
    code = main(["sweep", "default", WORKLOAD, "--chips", "2,8", "--global-batch", "12", "--protocol", "hfp8",
                 "--jobs", "1", "--no-progress", "--out", str(tmp_path)])
    rows = {r["chips"]: r for r in _rows(tmp_path)}
    assert code == 1
    assert rows["2"]["status"] == "ok" and int(rows["2"]["per_chip_batch"]) == 6
    assert rows["8"]["status"] == "error"
    assert rows["8"]["error"] == "batch 12 does not divide across 8 chips; give a batch that is a multiple of 8"


@pytest.mark.parametrize("options, message", [
    ({"data_parallel": {"topology": "mesh"}}, "--topology: unknown topology 'mesh'; known: ring, torus2d, hierarchical"),
    ({"data_parallel": {"protocol": "fp8_allreduce"}}, "--protocol: unknown protocol 'fp8_allreduce'; known: hfp8"),
    ({"sets": ["distributed.chunk=2"]}, "unknown data-parallel key 'distributed.chunk'; did you mean "
                                       "'distributed.chunks'?"),
    ({"sets": ["chips=4"]}, "unknown arch config key 'chips'; did you mean 'distributed.chips'?"),
    ({"sets": ["distributed=4"]}, "'distributed' is a section of the arch config, not a value"),
    ({"data_parallel": {"global_batch": "64"}, "training": Training(batches=(8,))},
     "--batch (samples per chip) and --global-batch (samples over all chips) cannot both be swept"),
])
def test_the_grid_refuses_unknown_names_and_keys(options, message):
    with pytest.raises(SweepError) as info:
        build_sweep("default", WORKLOAD, **options)
    assert message in str(info.value) and "\n" not in str(info.value)


def test_the_command_refuses_an_unknown_topology_in_one_line(tmp_path, capsys):
    assert main(["sweep", "default", WORKLOAD, "--topology", "ring,mesh", "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["hfp8sim: error: --topology: unknown topology 'mesh'; known: ring, torus2d, hierarchical"]
    assert not (tmp_path / "out" / "points.csv").exists()


def test_other_keys_of_the_system_are_axes_through_set():
    sweep = build_sweep("default", WORKLOAD, sets=["distributed.bucket_mib=1,25", "distributed.chunks=2"])
    assert [p.params for p in sweep.points] == [
        {"bucket_mib": bucket, "chunks": 2, "protocol": protocol} for bucket in (1, 25) for protocol in PROTOCOLS]
    assert all(p.data_parallel == {"bucket_mib": p.params["bucket_mib"], "chunks": 2,
                                   "protocol": p.params["protocol"]} for p in sweep.points)
    # an ordinary sweep is not data parallel, and its point ids do not depend on the new keys
    plain = build_sweep("default", WORKLOAD)
    assert plain.points[0].data_parallel is None and plain.training.data_parallel is False


def test_a_dask_cluster_gives_the_same_rows(swept, tmp_path):
    distributed = pytest.importorskip("distributed")  # in the test extra: never skipped in CI
    _, local = swept
    with distributed.LocalCluster(n_workers=2, processes=True, threads_per_worker=1,
                                  dashboard_address=":0") as cluster:
        assert main(["sweep", "default", WORKLOAD, "--chips", "2,8", "--topology", "ring,torus2d",
                     "--link-gb-per-s", "0.5,25", "--batch", "4", "--scheduler", cluster.scheduler_address,
                     "--no-progress", "--out", str(tmp_path)]) == 0
    timing = {"elapsed_s", "cpu_s"}
    assert [{k: v for k, v in r.items() if k not in timing} for r in _rows(tmp_path)] == \
        [{k: v for k, v in r.items() if k not in timing} for r in local]
