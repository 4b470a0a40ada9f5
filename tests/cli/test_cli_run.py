"""`hfp8sim run` and `hfp8sim validate` from the command line."""

import csv
import json

from hfp8sim.cli import main


def test_run_with_no_arguments_simulates_resnet50_in_hfp8_and_fp16(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["run"]) == 0
    out = capsys.readouterr().out
    assert "conv1" in out and "hfp8 vs fp16" in out
    for scheme in ("hfp8", "fp16"):
        summary = json.loads((tmp_path / "out" / "run" / scheme / "summary.json").read_text())
        assert summary["summary"]["macs"] == 4_089_184_256
        assert summary["summary"]["scheme"] == scheme
        assert summary["config"]["name"] == "hfp8_core" and summary["hfp8sim_version"]
        with (tmp_path / "out" / "run" / scheme / "layers.csv").open(newline="") as handle:
            rows = list(csv.DictReader(handle))
        assert sum(1 for r in rows if r["kind"] == "gemm") == 54
    hfp8 = json.loads((tmp_path / "out/run/hfp8/summary.json").read_text())["summary"]
    fp16 = json.loads((tmp_path / "out/run/fp16/summary.json").read_text())["summary"]
    assert fp16["compulsory_dram_bytes"] == 2 * hfp8["compulsory_dram_bytes"]
    assert fp16["dram_read_bytes"] >= 2 * hfp8["dram_read_bytes"]  # FP16 tensors also spill scratchpads more
    assert fp16["cycles"] > 1.5 * hfp8["cycles"]
    # the headline comes first and says what the summaries say; the columns are explained
    headline = out.strip().splitlines()[0]
    assert headline.startswith(f"resnet50: hfp8 vs fp16: {fp16['cycles'] / hfp8['cycles']:.2f}x faster "
                               f"({hfp8['cycles']:,.0f} vs {fp16['cycles']:,.0f} cycles)")
    flowing = " ".join(out.split())  # the legend is wrapped
    assert "columns: cycles = core clock cycles" in flowing and "util = MACs / (cycles x peak MACs per cycle)" in flowing


def test_run_a_chosen_arch_workload_and_schemes(tmp_path, capsys):
    assert main(["run", "eyeriss_like", "tiny_cnn", "--compare", "hfp8,ocp_fp8", "--out", str(tmp_path)]) == 0
    assert (tmp_path / "ocp_fp8" / "layers.csv").exists()
    assert "tiny_cnn on eyeriss_like" in capsys.readouterr().err


def test_run_and_validate_report_mistakes_in_one_line(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nclock_ghz: 1\narray: {rows: -2, cols: 4, dataflw: ws}\n")
    for argv in (["run", str(bad), "tiny_cnn"], ["validate", str(bad)]):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "Traceback" not in err
        assert "bad.yaml: 5 problems: array.rows: input should be greater than 0; array.dataflw: unknown key" in err
    assert main(["run", "default", "resnet5O"]) == 2
    assert "unknown workload; shipped workloads: bert_base_seq128" in capsys.readouterr().err
    assert main(["run", "--scheme", "fp9"]) == 2
    assert "unknown scheme 'fp9'" in capsys.readouterr().err


def test_validate_every_shipped_file(project_root, capsys):
    files = [str(p) for p in sorted((project_root / "arch_configs").rglob("*.yaml"))]
    files += [str(p) for p in sorted((project_root / "workloads").glob("*.yaml"))]
    assert main(["validate", *files]) == 0
    out = capsys.readouterr().out
    assert out.count("\n") == len(files)
    assert "workload resnet50: 174 layers, 54 GEMM layers, 4,089,184,256 MACs" in out
    assert "technology table" in out and "operating points peak, efficient" in out
