"""The fidelity study on a small budget, its report from the result files, and the command's errors."""

from __future__ import annotations

import csv
import json

import pytest

from hfp8sim.cli import main
from hfp8sim.reports.fidelity import findings, write_fidelity_report
from hfp8sim.studies.fidelity import ALL_FP8, FidelityCase, run_fidelity_study


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    out = tmp_path_factory.mktemp("fidelity")
    cases = [FidelityCase("minilm", "hfp8", "per_tensor"), FidelityCase("minilm", "fp8_e5m2", "per_tensor"),
             FidelityCase("efficientnet_lite0", "hfp8", "per_channel"),
             FidelityCase("efficientnet_lite0", "hfp8", "per_channel", "depthwise convs in float16",
                          (("blocks.*.depthwise", "float16"),))]
    run_fidelity_study(out, cases=cases, sentences=12, progress=lambda line: None)
    return out


def test_study_writes_measured_results(study):
    with (study / "fidelity.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    by_case = {(r["network"], r["scheme"], r["scaling"], r["variant"]): r for r in rows}
    hfp8 = by_case[("minilm", "hfp8", "per_tensor", ALL_FP8)]
    assert int(hfp8["inputs"]) == 12 and 0.994 < float(hfp8["mean_cosine"]) < 0.999
    assert float(by_case[("minilm", "fp8_e5m2", "per_tensor", ALL_FP8)]["mean_cosine"]) < float(hfp8["mean_cosine"])
    effnet = by_case[("efficientnet_lite0", "hfp8", "per_channel", ALL_FP8)]
    # batch norm folded into the weights before quantization (measured; 3/7 and 5/7 when it ran unfolded)
    assert (effnet["top1_agreement"], effnet["top5_agreement"], effnet["inputs"]) == ("4", "7", "7")
    fixed = by_case[("efficientnet_lite0", "hfp8", "per_channel", "depthwise convs in float16")]
    assert int(fixed["top1_agreement"]) == 6 and float(fixed["logit_rel_error"]) < float(effnet["logit_rel_error"])
    with (study / "fidelity_layers.csv").open(newline="") as handle:
        layers = list(csv.DictReader(handle))
    assert len(layers) == 2 * 48 + 2 * 50  # every GEMM layer of every case
    depthwise = [r for r in layers if r["variant"] == "depthwise convs in float16" and "depthwise" in r["layer"]]
    assert len(depthwise) == 16 and {r["a_format"] for r in depthwise} == {"float16"}
    run = json.loads((study / "fidelity_run.json").read_text())
    assert run["sentences"] == 12 and run["wall_seconds"] > 0 and run["amax_limits"]["hfp8"] == 30


def test_report_states_the_findings_from_the_files(study):
    written = write_fidelity_report(study)
    assert [p.name for p in written] == ["fidelity.md", "fidelity.png", "fidelity.svg"]
    assert all(p.stat().st_size > 2000 for p in written)
    text = (study / "fidelity.md").read_text()
    assert "**MiniLM under `hfp8` meets the target**" in text
    assert "**FP8 falls short on MiniLM with `fp8_e5m2`" in text
    assert "**FP8 falls short on EfficientNet-Lite0.**" in text and "top-1 6/7" in text
    assert "| hfp8 | float8_e4m3b11fnuz | per_channel | all GEMMs in the scheme | 4/7 | 7/7 |" in text


def test_findings_follow_the_numbers():
    rows = [{"network": "minilm", "scheme": "hfp8", "forward_format": "float8_e4m3b11fnuz", "scaling": "per_tensor",
             "variant": ALL_FP8, "inputs": 200.0, "mean_cosine": 0.985, "min_cosine": 0.95}]
    layer = {"network": "minilm", "scheme": "hfp8", "scaling": "per_tensor", "variant": ALL_FP8, "layer": "x",
             "rel_error": 0.1}
    text = findings(rows, [layer])
    assert text[0].startswith("**MiniLM under `hfp8` does NOT meet the target**")
    assert "mean cosine 0.9850 < 0.99" in text[1]


def test_report_only_needs_the_results(tmp_path, capsys):
    assert main(["fidelity", "--out", str(tmp_path), "--report-only"]) == 2
    assert "fidelity.csv: not found; run `hfp8sim fidelity" in capsys.readouterr().err
