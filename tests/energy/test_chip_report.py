"""The reference-chip study and report (on a small dense GEMM and a tiny network, to stay fast)."""

import pytest

from hfp8sim.reports.chip import write_chip_report
from hfp8sim.studies.chip import comparisons, run_chip_study, write_chip_study


def test_chip_study_compares_with_the_published_figures(tmp_path):
    points = run_chip_study(dense_size=256, workloads=("tiny_cnn",))
    assert len(points) == 2 * 2 * 2  # operating points x workloads x schemes
    peak8 = next(p for p in points if (p.operating_point, p.workload, p.scheme) == ("peak", "dense_gemm_256", "hfp8"))
    peak16 = next(p for p in points if (p.operating_point, p.workload, p.scheme) == ("peak", "dense_gemm_256", "fp16"))
    eff8 = next(p for p in points if (p.operating_point, p.workload, p.scheme) == ("efficient", "dense_gemm_256", "hfp8"))
    assert peak8.peak_tflops == pytest.approx(4 * 2048 * 2 * 1.6 / 1e3)  # 26.2 TFLOPS (JSSC 2022)
    assert peak16.peak_tflops == pytest.approx(peak8.peak_tflops / 2)
    assert eff8.clock_ghz == 1.0 and eff8.voltage_v == 0.55
    assert eff8.tflops_per_watt > peak8.tflops_per_watt  # lower voltage, better efficiency
    for p in points:  # the on-chip figure leaves out exactly the DRAM charge
        assert p.on_chip_pj_per_mac + p.dram_pj_per_mac == pytest.approx(p.pj_per_mac, rel=1e-12)
        assert p.on_chip_tflops_per_watt == pytest.approx(2 / p.on_chip_pj_per_mac, rel=1e-12)
        assert p.dram_pj_per_mac > 0 and p.on_chip_tflops_per_watt > p.tflops_per_watt
    # 4 cores x (1024 FP16 MAC units, 1536 KiB, 32 lanes) of tech_7nm area
    assert peak8.leaking_area_mm2 == pytest.approx(4 * (1024 * 1.80e-4 + 1536 * 3.2e-4 + 32 * 1.35e-3), rel=1e-12)
    rows = comparisons(points)
    assert [r["published"] for r in rows] == [25.6, 3.5, 1.9, 0.71]
    for row in rows:
        assert row["ratio_simulated_to_published"] == pytest.approx(row["simulated"] / row["published"])
    # like with like: chip efficiencies against the on-chip figure, the H100 board figure with DRAM
    assert (rows[1]["simulated"], rows[2]["simulated"], rows[3]["simulated"]) == \
        (eff8.on_chip_tflops_per_watt, peak8.on_chip_tflops_per_watt, peak8.pj_per_mac)
    assert [r["basis"].split(" (")[0] for r in rows] == ["peak rate", "on chip", "on chip", "with DRAM"]
    table, compare = write_chip_study(points, tmp_path)
    written = write_chip_report(table, compare, tmp_path)
    text = (tmp_path / "chip.md").read_text()
    assert "simulated / published" in text and "on chip (all energy but DRAM)" in text
    eff_ratio = rows[1]["ratio_simulated_to_published"]
    assert (f"{eff_ratio:.2f}x the published 3.5" if eff_ratio >= 1.5 else "the published 3.5") in text
    assert all(path.stat().st_size > 1000 for path in written)
