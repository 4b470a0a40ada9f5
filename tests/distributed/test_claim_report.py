"""The distributed-training claim study and report: reproducible, the saving's parts add up, closed forms hold."""

from __future__ import annotations

import pytest

from hfp8sim.cli import main
from hfp8sim.reports.distributed import write_distributed_report
from hfp8sim.studies.distributed_claim import (
    DECOMPOSITION_FIELDS, FIELDS, ClaimStudy, csv_text, decompose, run_claim_study, write_claim_study,
)  # fmt: skip

SMALL = ClaimStudy(workloads=(("tiny_cnn", 4),), chips=(2, 8), link_gb_per_s=(0.5, 25.0), topology_chips=(8,))


@pytest.fixture(scope="module")
def rows():
    return run_claim_study(SMALL)


def test_the_table_is_reproducible_to_the_bit(rows):
    again = run_claim_study(SMALL)
    assert csv_text(rows, FIELDS) == csv_text(again, FIELDS)
    assert csv_text(decompose(rows), DECOMPOSITION_FIELDS) == csv_text(decompose(again), DECOMPOSITION_FIELDS)
    # every system at every network point: 2 bandwidths x 2 N on the ring, 2 other topologies at 8 chips
    assert len(rows) == (2 * 2 + 2) * 4


def test_rows_obey_the_protocols_closed_forms_and_budgets(rows):
    bytes_per_param = {"hfp8": 3, "fp16_allreduce": 4, "fp32_allreduce": 8, "fp16_chip": 4}
    for row in rows:
        share = (row["chips"] - 1) / row["chips"]
        assert row["wire_bytes_per_param"] == pytest.approx(share * bytes_per_param[row["system"]], rel=1e-12)
        assert row["step_ms"] == pytest.approx(row["compute_ms"] + row["exposed_comm_ms"], rel=1e-12)
        assert row["compute_ms"] == pytest.approx(row["forward_backward_ms"] + row["update_ms"], rel=1e-12)
        assert row["global_batch"] == 4 * row["chips"]
        assert 0 <= row["overlapped_comm_ms"] <= row["comm_ms"] + 1e-12
    # the shard update is the full update / N (same rule would give the same full update; HFP8's rule differs)
    hfp8 = {(r["topology"], r["chips"], r["link_gb_per_s"]): r["update_ms"] for r in rows if r["system"] == "hfp8"}
    assert hfp8[("ring", 2, 0.5)] == pytest.approx(4 * hfp8[("ring", 8, 0.5)], rel=1e-12)


def test_the_saving_splits_exactly_into_its_parts(rows):
    parts = decompose(rows)
    assert len(parts) == (2 * 2 + 2) * 3
    for part in parts:
        saved = part["baseline_step_ms"] - part["hfp8_step_ms"]
        assert part["from_exposed_comm_ms"] + part["from_update_ms"] + part["from_forward_backward_ms"] == \
            pytest.approx(saved, rel=1e-9, abs=1e-12)
        assert part["reduction"] == pytest.approx(saved / part["baseline_step_ms"], rel=1e-12)
        if part["baseline"] != "fp16_chip":  # the same chip: the passes are the same GEMMs, only the update differs
            assert part["from_forward_backward_ms"] == pytest.approx(0, abs=1e-12)
    # a slow link exposes the FP32 all-reduce most: the saving against it is largest there
    slow = {p["baseline"]: p["reduction"] for p in parts if p["link_gb_per_s"] == 0.5 and p["chips"] == 8
            and p["topology"] == "ring"}
    assert slow["fp32_allreduce"] > slow["fp16_allreduce"] > 0


def test_the_report_is_written_from_the_study_files(rows, tmp_path):
    write_claim_study(rows, SMALL, tmp_path / "a")
    write_claim_study(rows, SMALL, tmp_path / "b")
    for folder in ("a", "b"):
        assert {p.name for p in write_distributed_report(tmp_path / folder)} == \
            {"distributed.md", "distributed.png", "distributed.svg"}
    for name in ("distributed.md", "distributed.svg", "distributed.csv", "study.json"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name
    text = (tmp_path / "a" / "distributed.md").read_text()
    assert "## Assumptions" in text and "## Where the saving comes from (ring, N = 8)" in text  # no 64: the largest
    assert "30%-60%" in text and "32%-38%" in text and "25 MiB buckets" in text and "tiny_cnn 4 per chip" in text


def test_the_command_refuses_a_file_as_its_folder(tmp_path, capsys):
    target = tmp_path / "file"
    target.write_text("x")
    assert main(["distributed-report", "--out", str(target)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "is a file" in err
