"""``hfp8sim validate`` takes shipped names as ``run`` and ``sweep`` do (a new user's first command)."""

from __future__ import annotations

from hfp8sim.cli import main


def test_validate_takes_shipped_names(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # outside the source tree: names, not paths
    assert main(["validate", "default", "resnet50", "tech_7nm", "example_formats"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].endswith("default.yaml: arch config hfp8_core: 128x128 ws, 1.6 GHz, scheme hfp8, hfp8sim mode")
    assert out[1].endswith("resnet50.yaml: workload resnet50: 174 layers, 54 GEMM layers, 4,089,184,256 MACs")
    assert "technology table tech_7nm" in out[2] and "format library" in out[3]


def test_an_unknown_name_is_one_line(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["validate", "resnet5O"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["hfp8sim: error: resnet5O: no such file, and not the name of a shipped arch config, workload, "
                   "tech table or format library"]
