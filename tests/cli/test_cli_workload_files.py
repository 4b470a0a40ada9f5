"""ONNX models, SCALE-Sim topologies and configs, and traces on the command line: the file kind is read from
the content, and each kind's reader gives the same located errors as the Python API."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from hfp8sim.cli import main
from hfp8sim.errors import WorkloadError
from hfp8sim.io.file_kinds import FileKind, detect_file_kind
from hfp8sim.workloads import import_onnx

WORKLOAD_DATA = Path(__file__).resolve().parent.parent / "workloads" / "data"
LIGHT_MODELS = Path(onnx.__file__).parent / "backend" / "test" / "data" / "light"
# the model-zoo graphs of tests/workloads/test_onnx_import.py with the MACs the API gives for them
LIGHT_MACS = {
    "light_resnet50.onnx": 4_089_184_256,
    "light_squeezenet.onnx": 349_151_936,
    "light_shufflenet.onnx": 124_664_528,
    "light_bvlc_alexnet.onnx": 654_560_384,
    "light_densenet121.onnx": 2_834_161_664,
    "light_inception_v1.onnx": 1_431_556_352,
    "light_inception_v2.onnx": 2_018_851_840,
    "light_vgg19.onnx": 19_632_062_464,
    "light_zfnet512.onnx": 1_481_727_008,
}


def _small_onnx(path: Path, *, unsupported: bool = False) -> Path:
    """x[8,16] @ W[16,32] -> relu (or an Einsum, which the importer refuses)."""
    w = numpy_helper.from_array(np.zeros((16, 32), np.float32), "w")
    nodes = [helper.make_node("MatMul", ["x", "w"], ["h"], name="fc")]
    nodes.append(helper.make_node("Einsum", ["h", "h"], ["y"], name="outer", equation="ij,ij->ij") if unsupported
                 else helper.make_node("Relu", ["h"], ["y"], name="relu"))
    graph = helper.make_graph(nodes, "small", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [8, 16])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [8, 32])], initializer=[w])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    return path


@pytest.mark.parametrize("file", sorted(LIGHT_MACS))
def test_run_onnx_model_gives_the_api_macs(tmp_path, capsys, file):
    path = LIGHT_MODELS / file
    assert main(["run", "default", str(path), "--out", str(tmp_path), "--layers", "0"]) == 0
    summary = json.loads((tmp_path / "summary.json").read_text())["summary"]
    assert summary["macs"] == import_onnx(path).macs == LIGHT_MACS[file]


def test_onnx_is_recognised_by_content_whatever_the_name(tmp_path, capsys):
    renamed = tmp_path / "squeezenet.model"
    shutil.copy(LIGHT_MODELS / "light_squeezenet.onnx", renamed)
    assert detect_file_kind(renamed) == FileKind.ONNX
    assert main(["validate", str(renamed)]) == 0
    assert capsys.readouterr().out == (f"{renamed}: workload squeezenet_old (ONNX graph squeezenet.model (opset 9)): "
                                       "65 layers, 26 GEMM layers, 349,151,936 MACs\n")
    small = _small_onnx(tmp_path / "small")  # no extension, no initializer bytes: the first byte decides
    assert detect_file_kind(small) == FileKind.ONNX
    assert main(["run", "array_8x8", str(small), "--out", str(tmp_path / "run"), "--layers", "0"]) == 0
    assert json.loads((tmp_path / "run" / "summary.json").read_text())["summary"]["macs"] == 8 * 16 * 32


def test_trace_an_onnx_model_then_run_and_validate_the_trace(tmp_path, capsys):
    model = _small_onnx(tmp_path / "small.onnx")
    trace = tmp_path / "small.trace"  # not .json: the content says it is a trace
    assert main(["trace", str(model), "--arch", "array_8x8", "--out", str(trace), "--quiet"]) == 0
    assert "2 layers (1 GEMM), 0.000 G MACs" in capsys.readouterr().out
    assert detect_file_kind(trace) == FileKind.TRACE
    assert main(["validate", str(trace)]) == 0
    assert capsys.readouterr().out == f"{trace}: layer trace of small: 2 layers, scheme hfp8\n"
    assert main(["run", "array_8x8", str(trace), "--out", str(tmp_path / "run"), "--layers", "0"]) == 0
    assert json.loads((tmp_path / "run" / "summary.json").read_text())["summary"]["macs"] == 8 * 16 * 32


@pytest.mark.parametrize("command", ["run", "validate", "trace"])
def test_onnx_mistakes_are_the_api_errors_in_one_line(tmp_path, capsys, command):
    bad = _small_onnx(tmp_path / "einsum.onnx", unsupported=True)
    with pytest.raises(WorkloadError) as api:
        import_onnx(bad)
    corrupt = tmp_path / "corrupt.onnx"
    corrupt.write_bytes(b"\x08\x07\x12garbage")
    with pytest.raises(WorkloadError) as api_corrupt:
        import_onnx(corrupt)
    for path, expected in ((bad, api.value), (corrupt, api_corrupt.value)):
        argv = {"run": ["run", "array_8x8", str(path)], "validate": ["validate", str(path)],
                "trace": ["trace", str(path), "--out", str(tmp_path / "t.json")]}[command]
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert err == f"hfp8sim: error: {expected}\n"
        assert str(path) in err and "utf-8" not in err


def test_detect_file_kind_by_content(tmp_path):
    yaml_file = tmp_path / "w.txt"
    yaml_file.write_text("name: x\nlayers: []\n")
    cfg = tmp_path / "arch.txt"
    cfg.write_text("[general]\nrun_name = r\n\n[architecture_presets]\nArrayHeight: 8\n")
    conv = tmp_path / "conv.txt"
    shutil.copy(WORKLOAD_DATA / "scalesim" / "Resnet18.csv", conv)
    gemm = tmp_path / "gemm.txt"
    shutil.copy(WORKLOAD_DATA / "scalesim" / "test_mnk_input.csv", gemm)
    trace = tmp_path / "t.txt"
    trace.write_text('{\n "arch": {"name": "a"},\n "format": "hfp8sim-trace/1"\n}\n')
    binary = tmp_path / "blob.yaml"
    binary.write_bytes(b"\xff\xfe\x00\x01")
    assert [detect_file_kind(p) for p in (yaml_file, cfg, conv, gemm, trace, binary)] == [
        FileKind.YAML, FileKind.SCALESIM_CFG, FileKind.SCALESIM_CSV, FileKind.SCALESIM_CSV, FileKind.TRACE,
        FileKind.YAML]  # fmt: skip
    # a missing file is judged by its name, so the reader of that kind reports it
    assert detect_file_kind(tmp_path / "missing.onnx") == FileKind.ONNX
    assert detect_file_kind(tmp_path / "missing.yaml") == FileKind.YAML
