"""ONNX import: the model-zoo graphs shipped inside the onnx wheel, small hand-built graphs, and errors."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from hfp8sim.errors import WorkloadError
from hfp8sim.workloads import (
    SUPPORTED_ONNX_OPS,
    Concat,
    Conv2d,
    Elementwise,
    Embedding,
    MatMul,
    Norm,
    Softmax,
    import_onnx,
    load_workload,
    resolve_workload,
)

# (GEMM layers, all layers, MACs) of the light model-zoo graphs; real_networks.md section 3 gives the GEMM
# layer counts and the GMACs rounded (resnet50 54 / 4.09, squeezenet 26 / 0.35, shufflenet 50 / 0.12 ...)
LIGHT = {
    "light_resnet50.onnx": (54, 175, 4_089_184_256),
    "light_squeezenet.onnx": (26, 65, 349_151_936),
    "light_shufflenet.onnx": (50, 154, 124_664_528),
    "light_bvlc_alexnet.onnx": (8, 21, 654_560_384),
    "light_densenet121.onnx": (121, 668, 2_834_161_664),
    "light_inception_v1.onnx": (58, 141, 1_431_556_352),
    "light_inception_v2.onnx": (70, 370, 2_018_851_840),
    "light_vgg19.onnx": (19, 43, 19_632_062_464),
    "light_zfnet512.onnx": (8, 21, 1_481_727_008),
}


def _raw_macs(path: Path) -> int:
    """MACs straight from ONNX's inferred shapes, independently of the importer: Conv out C*H*W times the
    weight's C/g*R*S; Gemm M*N*K."""
    model = onnx.shape_inference.infer_shapes(onnx.load(str(path)))
    graph = model.graph
    shapes = {v.name: [d.dim_value for d in v.type.tensor_type.shape.dim]
              for v in list(graph.input) + list(graph.value_info) + list(graph.output)}  # fmt: skip
    total = 0
    for node in graph.node:
        if node.op_type == "Conv":
            out, w = shapes[node.output[0]], shapes[node.input[1]]
            total += out[0] * out[1] * out[2] * out[3] * w[1] * w[2] * w[3]
        elif node.op_type == "Gemm":
            a, out = shapes[node.input[0]], shapes[node.output[0]]
            total += out[0] * out[1] * a[1]
    return total


@pytest.mark.parametrize("file", sorted(LIGHT))
def test_light_model_zoo_graphs(light_models, file):
    net = import_onnx(light_models / file)
    gemms, layers, macs = LIGHT[file]
    assert (len(net.gemm_layers()), len(net), net.macs) == (gemms, layers, macs)
    assert net.macs == _raw_macs(light_models / file)
    assert net.file == str(light_models / file) and net.source.startswith(f"ONNX graph {file} (opset ")


def test_shufflenet_keeps_groups_and_folds_the_channel_shuffle(light_models):
    net = import_onnx(light_models / "light_shufflenet.onnx")
    convs = [layer for layer in net.gemm_layers() if isinstance(layer, Conv2d)]
    assert Counter(c.groups for c in convs if not c.is_depthwise) == Counter({4: 32, 1: 1})
    assert sum(c.is_depthwise for c in convs) == 16
    first = convs[1]
    assert (first.C, first.K, first.groups, first.gemm().N, first.gemm().K) == (24, 112, 4, 28, 6)
    # Reshape -> Transpose -> Reshape (the shuffle) is a view: the conv after it reads the conv before it
    assert net.count_by_op() == {"conv2d": 49, "batchnorm": 49, "relu": 33, "maxpool": 1, "avgpool": 4,
                                 "concat": 3, "add": 13, "matmul": 1, "softmax": 1}  # fmt: skip


def test_squeezenet_fire_modules_concat_their_expand_branches(light_models):
    net = import_onnx(light_models / "light_squeezenet.onnx")
    cats = [layer for layer in net if isinstance(layer, Concat)]
    assert len(cats) == 8
    assert cats[0].shape == (1, 128, 55, 55) and len(cats[0].inputs) == 2
    consumer = net.consumers(cats[0].name)[0]
    assert isinstance(consumer, Conv2d) and consumer.C == 128


def test_onnx_resnet50_is_the_shipped_resnet50_layer_for_layer(light_models):
    """The model-zoo ResNet-50 (Caffe2) versus the shipped torchvision ResNet-50 v1.5.

    Variant check: "v1" would put the stride-2 of each downsampling block on its first 1x1 conv, giving
    231,211,008 fewer MACs (3,857,973,248).  This graph has the stride on the 3x3 conv, like v1.5, so every
    one of the 54 GEMMs is identical (shape, stride, padding, order) and the totals are equal.  What differs
    is only on the vector unit: the graph pools with a 7x7 AveragePool (same work as the global average
    pool) and ends with a Softmax that torchvision's model leaves out; the residual adds are Caffe2 Sums;
    node names are n0, n1, ...
    """
    onnx_net = import_onnx(light_models / "light_resnet50.onnx")
    shipped = load_workload(resolve_workload("resnet50"))
    assert onnx_net.macs == shipped.macs == 4_089_184_256

    def key(layer):
        return (layer.gemm(), getattr(layer, "stride", None), getattr(layer, "padding", None))

    assert [key(a) for a in onnx_net.gemm_layers()] == [key(b) for b in shipped.gemm_layers()]
    # the stride-2 sits on the 3x3 in both: stage 2's first block
    first_block = [layer for layer in onnx_net.gemm_layers() if isinstance(layer, Conv2d)][11:14]
    assert [(c.R, c.stride[0]) for c in first_block] == [(1, 1), (3, 2), (1, 1)]
    v1_macs = shipped.macs - sum(3 * shipped[f"layer{s}.0.conv1"].macs // 4 for s in (2, 3, 4))
    assert v1_macs == 3_857_973_248
    ops_onnx, ops_shipped = onnx_net.count_by_op(), shipped.count_by_op()
    assert {k: v for k, v in ops_onnx.items() if ops_shipped.get(k) != v} == {"avgpool": 1, "softmax": 1}
    assert {k: v for k, v in ops_shipped.items() if ops_onnx.get(k) != v} == {"global_avgpool": 1}
    pool = next(layer for layer in onnx_net if getattr(layer, "kind", "") == "avgpool")
    gap = shipped["avgpool"]
    assert (pool.R, pool.S, pool.output_shape, pool.ops) == (7, 7, gap.output_shape, gap.ops)


# --------------------------------------------------------------------------------- hand-built graphs


def _model(nodes, inputs, outputs, initializers=(), opset=17, path: Path | None = None) -> Path:
    graph = helper.make_graph(nodes, "g", inputs, outputs, initializer=list(initializers))
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    onnx.save(model, str(path))
    return path


def _input(name, shape):
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, shape)


def _weight(name, shape):
    return numpy_helper.from_array(np.zeros(shape, np.float32), name)


def test_conv_attributes_auto_pad_groups_and_a_gemm_after_flatten(tmp_path):
    path = _model(
        [
            helper.make_node("Conv", ["x", "w1"], ["c1"], name="same", auto_pad="SAME_UPPER", strides=[2, 2]),
            helper.make_node("Conv", ["c1", "w2"], ["c2"], name="lower", auto_pad="SAME_LOWER", group=4),
            helper.make_node("Conv", ["c2", "w3"], ["c3"], name="dilated", pads=[2, 1, 2, 1], dilations=[2, 1]),
            helper.make_node("Clip", ["c3", "zero", "six"], ["r"], name="relu6"),
            helper.make_node("GlobalAveragePool", ["r"], ["gap"], name="gap"),
            helper.make_node("Flatten", ["gap"], ["flat"], name="flatten"),
            helper.make_node("Gemm", ["flat", "fc_w", "fc_b"], ["y"], name="fc", transB=1),
        ],
        [_input("x", [1, 3, 15, 15])],
        [_input("y", [1, 10])],
        [_weight("w1", (8, 3, 3, 3)), _weight("w2", (8, 2, 4, 4)), _weight("w3", (16, 8, 3, 3)),
         numpy_helper.from_array(np.array(0.0, np.float32), "zero"),
         numpy_helper.from_array(np.array(6.0, np.float32), "six"),
         _weight("fc_w", (10, 16)), _weight("fc_b", (10,))],  # fmt: skip
        path=tmp_path / "convs.onnx",
    )
    net = import_onnx(path)
    same, lower, dilated = net["same"], net["lower"], net["dilated"]
    assert same.padding == (1, 1, 1, 1) and (same.P, same.Q) == (8, 8)
    assert lower.groups == 4 and lower.padding == (2, 1, 2, 1) and lower.output_shape == (1, 8, 8, 8)
    assert dilated.padding == (2, 2, 1, 1) and dilated.dilation == (2, 1) and dilated.output_shape == (1, 16, 8, 8)
    assert net["relu6"] == Elementwise(name="relu6", kind="relu6", shape=(1, 16, 8, 8), inputs=("dilated",))
    fc = net["fc"]
    assert isinstance(fc, MatMul) and (fc.M, fc.N, fc.K, fc.b_role) == (1, 10, 16, "weight")
    assert fc.inputs == ("gap",)  # Flatten folded away
    assert "flatten" not in net


def test_batched_matmuls_softmax_layernorm_and_constants(tmp_path):
    """An attention block: a projection against a weight folds the batch into M; Q K^T is batched with two
    activation operands; Mul by a constant is a scale; Shape-driven reshapes fold away."""
    path = _model(
        [
            helper.make_node("LayerNormalization", ["x", "ln_s", "ln_b"], ["ln"], name="ln"),
            helper.make_node("MatMul", ["ln", "w_qkv"], ["qkv"], name="qkv"),
            helper.make_node("Shape", ["qkv"], ["qkv_shape"], name="shape"),
            helper.make_node("Reshape", ["qkv", "heads_shape"], ["heads"], name="split_heads"),
            helper.make_node("Transpose", ["heads"], ["q"], name="q_t", perm=[0, 2, 1, 3]),
            helper.make_node("Transpose", ["heads"], ["kt"], name="k_t", perm=[0, 2, 3, 1]),
            helper.make_node("MatMul", ["q", "kt"], ["scores"], name="qk"),
            helper.make_node("Mul", ["scores", "scale"], ["scaled"], name="scale"),
            helper.make_node("Softmax", ["scaled"], ["p"], name="softmax", axis=-1),
            helper.make_node("Cast", ["p"], ["p8"], name="to_fp8", to=TensorProto.FLOAT16),
        ],
        [_input("x", ["batch", 16, 32])],
        [helper.make_tensor_value_info("p8", TensorProto.FLOAT16, None)],
        [_weight("ln_s", (32,)), _weight("ln_b", (32,)), _weight("w_qkv", (32, 64)),
         numpy_helper.from_array(np.array([1, 16, 2, 32], np.int64), "heads_shape"),
         numpy_helper.from_array(np.array(0.125, np.float32), "scale")],  # fmt: skip
        path=tmp_path / "attn.onnx",
    )
    net = import_onnx(path)
    assert net.names == ("ln", "qkv", "qk", "scale", "softmax", "to_fp8")
    assert net["ln"] == Norm(name="ln", kind="layernorm", shape=(1, 16, 32), inputs=(None,))
    qkv, qk = net["qkv"], net["qk"]
    assert (qkv.M, qkv.N, qkv.K, qkv.batch, qkv.b_role) == (16, 64, 32, 1, "weight")
    assert (qk.M, qk.N, qk.K, qk.batch) == (16, 16, 32, 2)
    assert (qk.a_role, qk.b_role, qk.inputs) == ("activation", "activation", ("qkv", "qkv"))
    assert net["scale"].kind == "scale" and net["scale"].inputs == ("qk",)
    assert net["softmax"] == Softmax(name="softmax", rows=32, cols=16, inputs=("scale",))
    assert net["to_fp8"].kind == "convert"
    # a dynamic batch axis becomes 1, or the size given
    bigger = import_onnx(path, input_shapes={"x": (4, 16, 32)}, name="attn4")
    assert bigger.name == "attn4" and bigger["qkv"].M == 64


def test_unsupported_op_names_the_node_the_op_and_the_file(tmp_path):
    path = _model(
        [
            helper.make_node("Relu", ["x"], ["r"], name="relu"),
            helper.make_node("Einsum", ["r", "r"], ["y"], name="outer", equation="ij,ij->ij"),
        ],
        [_input("x", [4, 4])],
        [_input("y", [4, 4])],
        path=tmp_path / "einsum.onnx",
    )
    with pytest.raises(WorkloadError) as info:
        import_onnx(path)
    assert str(info.value) == (
        f"{path}: graph.node[1] (outer, Einsum): ONNX op Einsum cannot be mapped to a layer; "
        f"supported ops: {', '.join(SUPPORTED_ONNX_OPS)}"
    )
    assert "Conv" in SUPPORTED_ONNX_OPS and "LayerNormalization" in SUPPORTED_ONNX_OPS


def test_unsupported_op_of_constants_only_is_folded(tmp_path):
    path = _model(
        [
            helper.make_node("Einsum", ["a", "a"], ["w"], name="const_einsum", equation="ij,ij->ij"),
            helper.make_node("MatMul", ["x", "w"], ["y"], name="mm"),
        ],
        [_input("x", [2, 4])],
        [_input("y", [2, 4])],
        [_weight("a", (4, 4))],
        path=tmp_path / "folded.onnx",
    )
    net = import_onnx(path)
    assert net.names == ("mm",) and net["mm"].b_role == "weight"


def test_onnx_file_errors(tmp_path):
    with pytest.raises(WorkloadError, match=r"/absent.onnx: ONNX file not found$"):
        import_onnx(tmp_path / "absent.onnx")
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"\x00not a protobuf at all\xff" * 3)
    with pytest.raises(WorkloadError, match=r"junk.onnx: cannot read as an ONNX model"):
        import_onnx(junk)
    dynamic = _model([helper.make_node("Relu", ["x"], ["y"], name="r")], [_input("x", [1, "seq"])],
                     [_input("y", [1, "seq"])], path=tmp_path / "dyn.onnx")  # fmt: skip
    with pytest.raises(WorkloadError, match=r"dyn.onnx: input 'x' has a dynamic axis 1 \(seq\); give its size "):
        import_onnx(dynamic)
    assert import_onnx(dynamic, input_shapes={"x": (1, 7)})["r"].shape == (1, 7)


def test_squeeze_excite_gate_broadcasts_and_gather_is_an_embedding(tmp_path):
    se = _model(
        [
            helper.make_node("GlobalAveragePool", ["x"], ["pooled"], name="se.pool"),
            helper.make_node("Conv", ["pooled", "w_reduce"], ["reduced"], name="se.reduce"),
            helper.make_node("Sigmoid", ["reduced"], ["gate"], name="se.gate"),
            helper.make_node("Mul", ["x", "gate"], ["y"], name="se.mul"),
        ],
        [_input("x", [1, 16, 7, 7])],
        [_input("y", [1, 16, 7, 7])],
        [_weight("w_reduce", (16, 16, 1, 1))],
        path=tmp_path / "se.onnx",
    )
    net = import_onnx(se)
    assert net["se.mul"] == Elementwise(name="se.mul", kind="mul", shape=(1, 16, 7, 7), inputs=(None, "se.gate"))
    assert net["se.gate"].shape == (1, 16, 1, 1)
    tokens = _model(
        [
            helper.make_node("Gather", ["table", "ids"], ["emb"], name="embed"),
            helper.make_node("LayerNormalization", ["emb", "ln_s", "ln_b"], ["y"], name="ln"),
        ],
        [helper.make_tensor_value_info("ids", TensorProto.INT64, [1, 12])],
        [_input("y", [1, 12, 8])],
        [_weight("table", (100, 8)), _weight("ln_s", (8,)), _weight("ln_b", (8,))],
        path=tmp_path / "embed.onnx",
    )
    net = import_onnx(tokens)
    assert net["embed"] == Embedding(name="embed", lookups=12, dim=8, vocab=100)
    assert net["ln"].inputs == ("embed",) and net["ln"].channels == 8
