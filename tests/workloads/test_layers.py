"""Layer types: derived sizes, the GEMM lowering, work counts, validation."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from hfp8sim.errors import ConfigError, WorkloadError
from hfp8sim.workloads import (
    Concat,
    Conv2d,
    Elementwise,
    Embedding,
    GemmShape,
    GlobalAvgPool,
    MatMul,
    Network,
    Norm,
    Pool,
    Reshape,
    Softmax,
    VectorWork,
    same_padding,
)
from hfp8sim.workloads.layers import YamlField

# ----------------------------------------------------------------------------------------- Conv2d


def test_conv_output_size_macs_and_lowering_of_resnet_stem():
    conv = Conv2d(name="conv1", C=3, H=224, W=224, K=64, R=7, S=7, stride=2, padding=3)
    assert (conv.P, conv.Q) == (112, 112)
    assert conv.stride == (2, 2) and conv.padding == (3, 3, 3, 3) and conv.dilation == (1, 1)
    assert conv.macs == 118_013_952  # torchvision resnet50 conv1
    assert conv.output_shape == (1, 64, 112, 112)
    assert conv.weight_shape == (64, 3, 7, 7) and conv.weight_elements == 9408
    assert conv.gemm() == GemmShape(
        M=12544, N=64, K=147, batch=1, a_role="activation", b_role="weight",
        row_index=("n", "p", "q"), col_index=("k",), reduction_index=("r", "s", "c"),
    )  # fmt: skip
    assert conv.gemm().macs == conv.macs


def test_depthwise_conv_is_one_gemm_per_channel():
    conv = Conv2d(name="dw", C=32, H=112, W=112, K=32, R=3, S=3, padding=1, groups=32)
    assert conv.is_depthwise
    assert conv.macs == 3_612_672  # torchvision mobilenet_v2 features.1.conv.0.0
    g = conv.gemm()
    assert (g.M, g.N, g.K, g.batch) == (12544, 1, 9, 32)


def test_grouped_conv_lowering_splits_channels_and_filters():
    # ShuffleNet's first grouped 1x1: 24 -> 112 channels in 4 groups
    conv = Conv2d(name="g", C=24, H=56, W=56, K=112, R=1, S=1, groups=4)
    assert not conv.is_depthwise
    g = conv.gemm()
    assert (g.M, g.N, g.K, g.batch) == (3136, 28, 6, 4)
    assert conv.macs == 3136 * 28 * 6 * 4 == 2_107_392


def test_gemm_lowering_matches_the_datapath_im2col():
    """The workload's GEMM shape is the one hfp8sim.datapath.conv actually builds (same (r, s, c) order)."""
    from hfp8sim.datapath.conv import lower_conv

    conv = Conv2d(name="c", N=2, C=6, H=9, W=7, K=4, R=3, S=2, stride=(2, 1), padding=(1, 0, 1, 1), groups=2)
    a, b, out_shape = lower_conv(np.zeros((2, 6, 9, 7), np.uint8), np.zeros((4, 3, 3, 2), np.uint8),
                                 stride=(2, 1), padding=(1, 0, 1, 1), groups=2)  # fmt: skip
    g = conv.gemm()
    assert a.shape == (g.batch, g.M, g.K) == (2, 64, 18)
    assert b.shape == (g.batch, g.K, g.N) == (2, 18, 2)
    assert out_shape == conv.output_shape == (2, 4, 4, 8)


def test_backward_passes_change_the_gemm_not_the_macs():
    fwd = Conv2d(name="c", C=64, H=28, W=28, K=128, R=3, S=3, stride=2, padding=1)
    dx = dataclasses.replace(fwd, pass_="backward_data")
    dw = dataclasses.replace(fwd, pass_="backward_weight")
    assert (fwd.gemm().M, fwd.gemm().N, fwd.gemm().K) == (196, 128, 576)
    assert (dx.gemm().M, dx.gemm().N, dx.gemm().K) == (196, 576, 128)
    assert (dw.gemm().M, dw.gemm().N, dw.gemm().K) == (128, 576, 196)
    assert fwd.macs == dx.gemm().macs == dw.gemm().macs == 14_450_688
    assert dx.operand_roles == (("output_grad", "gradient"), ("weight", "weight"))
    assert dw.operand_roles == (("output_grad", "gradient"), ("input", "activation"))
    assert (dx.gemm().a_role, dx.gemm().b_role) == ("gradient", "weight")
    assert (dw.gemm().a_role, dw.gemm().b_role) == ("gradient", "activation")
    assert dw.gemm().reduction_index == ("n", "p", "q")


@pytest.mark.parametrize(
    ("size", "kernel", "stride", "expected"),
    [(224, 3, 2, (0, 1)), (56, 5, 2, (1, 2)), (28, 5, 1, (2, 2)), (7, 3, 2, (1, 1)), (8, 1, 2, (0, 0))],
)
def test_same_padding_follows_tensorflow(size, kernel, stride, expected):
    assert same_padding(size, kernel, stride) == expected


def test_same_padding_is_recorded_as_explicit_numbers():
    conv = Conv2d(name="dw", C=96, H=112, W=112, K=96, R=3, S=3, stride=2, padding="same", groups=96)
    assert conv.padding == (0, 1, 0, 1)
    assert (conv.P, conv.Q) == (56, 56)
    five = Conv2d(name="dw5", C=144, H=56, W=56, K=144, R=5, S=5, stride=2, padding="same", groups=144)
    assert five.padding == (1, 2, 1, 2) and (five.P, five.Q) == (28, 28)


def test_padding_forms_and_asymmetric_output():
    assert Conv2d(name="a", C=1, H=8, W=8, K=1, R=3, S=3, padding=(1, 2)).padding == (1, 1, 2, 2)
    conv = Conv2d(name="b", C=1, H=8, W=8, K=1, R=3, S=3, padding=[0, 1, 2, 0])
    assert conv.padding == (0, 1, 2, 0) and (conv.P, conv.Q) == (7, 8)


def test_floor_output_size_dilation_and_scalesim_ceil():
    assert Conv2d(name="a", C=1, H=7, W=7, K=1, R=3, S=3, stride=2).P == 3  # floor(4/2) + 1
    assert Conv2d(name="d", C=1, H=32, W=32, K=1, R=3, S=3, padding=2, dilation=2).P == 32
    native = Conv2d(name="n", C=64, H=56, W=56, K=128, R=1, S=1, stride=2)
    scalesim = dataclasses.replace(native, convention="scalesim")
    assert native.P == 28 and scalesim.P == 29  # SCALE-Sim's phantom last row (ResNet18 Conv3_s)
    assert scalesim.macs == 29 * 29 * 64 * 128


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"C": 0}, "C must be a positive integer, got 0"),
        ({"K": -4}, "K must be a positive integer, got -4"),
        ({"H": True}, "H must be a positive integer, got True"),
        ({"groups": 2, "C": 3}, "groups=2 must divide both C=3 and K=4"),
        ({"R": 9}, "does not fit the padded 8x8 input"),
        ({"padding": [1, 2, 3]}, "padding must be an integer"),
        ({"padding": -1}, "padding values must be non-negative"),
        ({"stride": 0}, "stride_h must be a positive integer, got 0"),
        ({"convention": "caffe"}, "convention must be one of native, scalesim"),
        ({"convention": "scalesim", "padding": 1}, "no padding and no dilation"),
        ({"pass_": "backward"}, "pass must be one of forward, backward_data, backward_weight"),
        ({"inputs": "x"}, "inputs must be a list of layer names"),
    ],
)
def test_conv_rejects_impossible_shapes(kwargs, message):
    fields = {"name": "c1", "C": 4, "H": 8, "W": 8, "K": 4, "R": 3, "S": 3, **kwargs}
    with pytest.raises(WorkloadError) as info:
        Conv2d(**fields)
    assert message in str(info.value)
    assert "layer 'c1'" in str(info.value)
    assert isinstance(info.value, ConfigError) and isinstance(info.value, ValueError)


def test_layers_are_frozen_and_hashable():
    conv = Conv2d(name="c", C=1, H=4, W=4, K=1, R=1, S=1)
    with pytest.raises(dataclasses.FrozenInstanceError):
        conv.K = 2  # type: ignore[misc]
    assert conv == Conv2d(name="c", C=1, H=4, W=4, K=1, R=1, S=1, stride=(1, 1), padding=[0, 0, 0, 0])
    assert len({conv, Conv2d(name="c", C=1, H=4, W=4, K=1, R=1, S=1)}) == 1


# ----------------------------------------------------------------------------------------- MatMul


def test_matmul_roles_macs_and_weights():
    linear = MatMul(name="fc", M=128, N=3072, K=768)
    assert linear.macs == 301_989_888 and linear.weight_elements == 768 * 3072
    assert linear.operand_roles == (("a", "activation"), ("b", "weight"))
    assert linear.output_shape == (128, 3072) and linear.num_data_operands == 1
    scores = MatMul(name="qk", M=128, N=128, K=64, batch=12, b_role="activation", inputs=("q", "k"))
    assert scores.macs == 12 * 128 * 128 * 64 and scores.weight_elements == 0
    assert scores.output_shape == (12, 128, 128) and scores.num_data_operands == 2
    assert scores.gemm() == GemmShape(128, 128, 64, 12, "activation", "activation")
    left = MatMul(name="wx", M=64, N=32, K=16, a_role="weight", b_role="activation")
    assert left.weight_elements == 64 * 16


def test_matmul_rejects_bad_roles_and_sizes():
    with pytest.raises(WorkloadError, match="a_role must be one of activation, weight, gradient; got 'input'"):
        MatMul(name="m", M=1, N=1, K=1, a_role="input")
    with pytest.raises(WorkloadError, match="at most one operand is a weight"):
        MatMul(name="m", M=1, N=1, K=1, a_role="weight")
    with pytest.raises(WorkloadError, match="batch must be a positive integer, got 0"):
        MatMul(name="m", M=1, N=1, K=1, batch=0)
    with pytest.raises(WorkloadError, match="has 2 inputs but only 1 non-weight operand"):
        MatMul(name="m", M=1, N=1, K=1, inputs=("a", "b"))


# ----------------------------------------------------------------------------------- vector layers


def test_elementwise_counts():
    residual = Elementwise(name="add", kind="add", shape=(1, 256, 56, 56), inputs=("a", "b"))
    assert residual.elements == 802_816 and residual.num_operands == 2 and residual.ops == 802_816
    three = Elementwise(name="sum", kind="add", shape=(128, 768), inputs=("a", "b", "c"))
    assert three.num_operands == 3 and three.ops == 2 * 128 * 768
    bias = Elementwise(name="bias", kind="add", shape=(128, 768), inputs=("a",))
    assert bias.num_operands == 2  # the other operand is a parameter
    relu = Elementwise(name="relu", kind="relu", shape=[4, 8], inputs=["a"])
    assert relu.shape == (4, 8) and relu.ops == 32 and relu.num_operands == 1 and relu.macs == 0
    assert relu.operand_roles == (("input0", "activation"),) and relu.output_role == "activation"
    grad = dataclasses.replace(relu, pass_="backward_data")
    assert grad.operand_roles == (("input0", "gradient"),) and grad.output_role == "gradient"
    with pytest.raises(WorkloadError, match="relu takes one input, got 2"):
        Elementwise(name="r", kind="relu", shape=(4,), inputs=("a", "b"))
    with pytest.raises(WorkloadError, match="unknown element-wise op 'swish'"):
        Elementwise(name="r", kind="swish", shape=(4,))
    with pytest.raises(WorkloadError, match="shape must be a non-empty list of positive integers"):
        Elementwise(name="r", kind="relu", shape=(4, 0))


def test_softmax_norm_embedding_counts():
    softmax = Softmax(name="s", rows=12 * 128, cols=128)
    assert softmax.elements == 196_608 and softmax.output_shape == (1536, 128)
    ln = Norm(name="ln", kind="layernorm", shape=(128, 768))
    assert (ln.elements, ln.channels, ln.rows) == (98_304, 768, 128)
    bn = Norm(name="bn", kind="batchnorm", shape=(1, 64, 56, 56))
    assert (bn.elements, bn.channels, bn.weight_elements) == (200_704, 64, 128)
    lrn = Norm(name="lrn", kind="lrn", shape=(1, 96, 55, 55), size=5)
    assert lrn.ops == 5 * 96 * 55 * 55
    emb = Embedding(name="wte", lookups=1024, dim=768, vocab=50257)
    assert emb.output_shape == (1024, 768) and emb.ops == 1024 and emb.weight_elements == 1024 * 768
    assert emb.operand_roles == (("table", "weight"),)
    with pytest.raises(WorkloadError, match="has no input layer"):
        Embedding(name="e", lookups=1, dim=1, vocab=1, inputs=("x",))


def test_pooling_sizes_follow_pytorch():
    pool = Pool(name="p", kind="maxpool", C=64, H=112, W=112, R=3, S=3, stride=2, padding=1)
    assert pool.output_shape == (1, 64, 56, 56) and pool.ops == 64 * 56 * 56 * 9
    # ceil_mode: rounds up (GoogLeNet's 112 -> 56) but drops a window starting in the right padding
    assert Pool(name="c", kind="maxpool", C=1, H=112, W=112, R=3, S=3, stride=2, ceil_mode=True).P == 56
    assert Pool(name="f", kind="maxpool", C=1, H=112, W=112, R=3, S=3, stride=2).P == 55
    assert Pool(name="d", kind="avgpool", C=1, H=5, W=5, R=2, S=2, stride=2, padding=1, ceil_mode=True).P == 3
    gap = GlobalAvgPool(name="g", C=2048, H=7, W=7)
    assert gap.output_shape == (1, 2048, 1, 1) and gap.ops == 2048 * 49 and gap.elements == 2048


def test_concat_and_reshape_check_their_inputs():
    cat = Concat(name="cat", shape=(197, 768), axis=0, inputs=("cls", "patches"))
    assert cat.check_input(1, "patches", (196, 768)) is None
    assert "cannot be concatenated along axis 0" in cat.check_input(1, "patches", (196, 512))
    view = Reshape(name="flat", shape=(196, 768))
    assert view.ops == 0 and view.check_input(0, "conv", (1, 768, 14, 14)) is None
    assert "has 150528 elements but its input conv gives 150527" in view.check_input(0, "conv", (150527,))


# ---------------------------------------------------------------------------------------- Network


def _tiny_layers():
    return (
        Conv2d(name="c1", C=3, H=8, W=8, K=4, R=3, S=3, padding=1),
        Elementwise(name="r1", kind="relu", shape=(1, 4, 8, 8), inputs=("c1",)),
        Conv2d(name="c2", C=4, H=8, W=8, K=4, R=3, S=3, padding=1, inputs=("r1",)),
        Elementwise(name="add", kind="add", shape=(1, 4, 8, 8), inputs=("c2", "r1")),
        GlobalAvgPool(name="gap", C=4, H=8, W=8, inputs=("add",)),
        MatMul(name="fc", M=1, N=10, K=4, inputs=("gap",)),
    )


def test_network_totals_and_lookups():
    net = Network("tiny", _tiny_layers(), source="test")
    assert net.macs == 64 * 4 * 27 + 64 * 4 * 36 + 40 == 16_168  # c1 + c2 + fc
    assert [layer.name for layer in net.gemm_layers()] == ["c1", "c2", "fc"]
    assert [layer.name for layer in net.vector_layers()] == ["r1", "add", "gap"]
    assert net["c2"].K == 4 and net[0].name == "c1" and "gap" in net and "nope" not in net
    assert len(net) == 6 and net.index_of("add") == 3
    assert [layer.name for layer in net.consumers("r1")] == ["c2", "add"]
    assert [layer.name for layer in net.producers("add")] == ["c2", "r1"]
    assert net.count_by_op() == {"conv2d": 2, "relu": 1, "add": 1, "global_avgpool": 1, "matmul": 1}
    assert net.summary().startswith("tiny: 6 layers (3 on the array), 16,168 MACs")
    with pytest.raises(WorkloadError, match="network 'tiny' has no layer 'gapp'; did you mean gap?"):
        net.layer("gapp")


def test_network_rejects_bad_connections():
    layers = list(_tiny_layers())
    with pytest.raises(WorkloadError, match=r"layers\[2\] \(c2\): C=8 but its input r1 gives 4 channels"):
        Network("t", [*layers[:2], dataclasses.replace(layers[2], C=8), *layers[3:]], file="t.yaml")
    with pytest.raises(WorkloadError, match=r"^t.yaml: layers\[1\] \(c1\): duplicate layer name"):
        Network("t", [layers[0], layers[0]], file="t.yaml")
    with pytest.raises(WorkloadError, match=r"layers\[0\] \(r1\): input 'c1' is defined later"):
        Network("t", [layers[1], layers[0]])
    with pytest.raises(WorkloadError, match=r"input 'zz' is not a layer of this network"):
        Network("t", [dataclasses.replace(layers[1], inputs=("zz",))])
    with pytest.raises(WorkloadError, match=r"layers\[5\] \(fc\): K=5 but its input gap gives 4 features \(C\*H\*W\)"):
        Network("t", [*layers[:5], dataclasses.replace(layers[5], K=5)])
    qk = MatMul(name="qk", M=8, N=8, K=4, batch=2, b_role="activation", inputs=("c1",))
    with pytest.raises(WorkloadError, match="has 2 non-weight operand.*but 1 input"):
        Network("t", [layers[0], qk])
    with pytest.raises(WorkloadError, match="a network needs at least one layer"):
        Network("t", ())


def test_matmul_operands_may_be_views_of_their_producer():
    qkv = MatMul(name="qkv", M=128, N=2304, K=768)
    qk = MatMul(name="qk", M=128, N=128, K=64, batch=12, b_role="activation", inputs=("qkv", "qkv"))
    net = Network("attn", (qkv, qk))
    assert net.macs == 128 * 2304 * 768 + 12 * 128 * 128 * 64
    too_big = MatMul(name="qk", M=256, N=128, K=128, batch=12, b_role="activation", inputs=("qkv", "qkv"))
    with pytest.raises(WorkloadError, match="operand A has 393216 elements .* gives 294912"):
        Network("attn", (qkv, too_big))


def test_binary_ops_accept_broadcast_operands_only():
    gate = Elementwise(name="mul", kind="mul", shape=(1, 16, 7, 7), inputs=("x", "gate"))
    assert gate.check_input(1, "gate", (1, 16, 1, 1)) is None
    assert gate.check_input(1, "gate", (16, 1, 1)) is None
    assert gate.check_input(1, "gate", (1, 8, 1, 1)) == "C=16 but its input gate gives 8 channels"
    relu = Elementwise(name="relu", kind="relu", shape=(1, 16, 7, 7), inputs=("x",))
    assert relu.check_input(0, "x", (1, 16, 1, 1)) == "shape (1, 16, 7, 7) but its input x gives (1, 16, 1, 1)"


def test_networks_pickle_for_worker_processes():
    import pickle

    net = Network("tiny", _tiny_layers(), source="test", file="tiny.yaml")
    again = pickle.loads(pickle.dumps(net))
    assert again == net and again["fc"].inputs == ("gap",) and again.macs == net.macs


# ------------------------------------------------------------------------- what each layer type answers


def test_each_layer_type_states_its_vector_work():
    pool = Pool(name="p", kind="maxpool", C=64, H=112, W=112, R=3, S=3, stride=2, padding=1)
    assert pool.vector_work() == VectorWork(reduction=64 * 56 * 56 * 9, in_elements=64 * 112 * 112,
                                            out_elements=64 * 56 * 56)  # fmt: skip
    gap = GlobalAvgPool(name="g", C=2048, H=7, W=7)  # sum every position, then one scale per channel
    assert gap.vector_work() == VectorWork(elementwise=2048, reduction=2048 * 49, in_elements=2048 * 49,
                                           out_elements=2048)  # fmt: skip
    emb = Embedding(name="wte", lookups=1024, dim=768, vocab=50257)
    assert emb.vector_work() == VectorWork(elementwise=786_432, in_elements=786_432, out_elements=786_432)
    bn = Norm(name="bn", kind="batchnorm", shape=(1, 64, 56, 56))
    assert bn.vector_work() == VectorWork(elementwise=401_408, in_elements=200_704, out_elements=200_704,
                                          fusable=True)  # fmt: skip
    lrn = Norm(name="lrn", kind="lrn", shape=(1, 96, 55, 55), size=5)
    assert lrn.vector_work() == VectorWork(elementwise=1_452_000, special=290_400, in_elements=290_400,
                                           out_elements=290_400)  # fmt: skip
    residual = Elementwise(name="add", kind="add", shape=(128, 768), inputs=("a", "b"))
    assert residual.vector_work() == VectorWork(elementwise=98_304, in_elements=196_608, out_elements=98_304,
                                                fusable=True)  # fmt: skip
    # GEMM layers do their work on the array; concat and reshape only move data
    for layer in (Conv2d(name="c", C=1, H=4, W=4, K=1, R=1, S=1), MatMul(name="m", M=2, N=2, K=2),
                  Concat(name="cat", shape=(2, 8), axis=0, inputs=("a", "b")), Reshape(name="r", shape=(16,))):
        assert layer.vector_work() == VectorWork() and layer.vector_work().lane_ops == 0


def test_op_names_default_inputs_and_input_counts():
    relu = Elementwise(name="r", kind="relu", shape=(4,))
    add = Elementwise(name="a", kind="add", shape=(4,), inputs=("x", "y"))
    assert (relu.op_name, add.op_name, GlobalAvgPool(name="g", C=1, H=2, W=2).op_name) == ("relu", "add",
                                                                                            "global_avgpool")
    assert relu.default_inputs("prev") == ("prev",) and add.default_inputs("prev") is None
    assert Embedding(name="e", lookups=1, dim=1, vocab=1).default_inputs("prev") == ()
    assert Concat(name="c", shape=(2, 4), inputs=("x", "y")).default_inputs("prev") is None
    attention = MatMul(name="qk", M=4, N=4, K=2, b_role="activation", inputs=("q", "k"))
    assert attention.default_inputs("prev") is None and attention.check_input_count() is None
    assert MatMul(name="fc", M=4, N=4, K=2).default_inputs("prev") == ("prev",)
    one_of_two = MatMul(name="qk", M=4, N=4, K=2, b_role="activation", inputs=("q",))
    assert one_of_two.check_input_count() == (
        "has 2 non-weight operand(s) (a_role=activation, b_role=activation) but 1 input(s); use null for an "
        "operand from outside the network"
    )
    assert relu.check_input_count() is None


def test_yaml_fields_name_defaults_and_inferable_sizes():
    conv = Conv2d(name="c", C=3, H=8, W=8, K=4, R=3, S=3, stride=(2, 1), padding=(1, 1, 0, 0))
    assert conv.yaml_fields() == (
        YamlField("N", 1, 1), YamlField("C", 3), YamlField("H", 8), YamlField("W", 8), YamlField("K", 4),
        YamlField("R", 3), YamlField("S", 3), YamlField("stride", [2, 1], 1), YamlField("padding", [1, 0], 0),
        YamlField("dilation", 1, 1), YamlField("groups", 1, 1), YamlField("convention", "native", "native"),
    )  # fmt: skip
    pool = Pool(name="p", kind="avgpool", C=4, H=8, W=8, R=2, S=2, stride=2, ceil_mode=True)
    assert [f for f in pool.yaml_fields() if f.key in ("N", "stride", "ceil_mode")] == [
        YamlField("N", 1, inferable=True), YamlField("stride", 2), YamlField("ceil_mode", True, False)]
    assert Norm(name="l", kind="lrn", shape=(1, 4, 2, 2), size=3).yaml_fields() == (
        YamlField("shape", [1, 4, 2, 2], inferable=True), YamlField("size", 3))
    assert Reshape(name="r", shape=(16,)).yaml_fields() == (YamlField("shape", [16]),)


def test_checks_report_in_a_fixed_order_and_pooling_needs_a_stride():
    with pytest.raises(WorkloadError, match="unknown pooling 'minpool'"):  # the kind before the sizes
        Pool(name="p", kind="minpool", C=0, H=8, W=8, R=2, S=2, stride=2)
    with pytest.raises(WorkloadError, match="maxpool takes one input, got 2"):  # the inputs before the fit
        Pool(name="p", kind="maxpool", C=1, H=2, W=2, R=3, S=3, stride=1, inputs=("a", "b"))
    with pytest.raises(WorkloadError, match="the 3x3 window does not fit the padded 2x2 input"):
        Pool(name="p", kind="maxpool", C=1, H=2, W=2, R=3, S=3, stride=1)
    with pytest.raises(TypeError, match="stride"):
        Pool(name="p", kind="maxpool", C=1, H=8, W=8, R=2, S=2)  # type: ignore[call-arg]
    with pytest.raises(WorkloadError, match="layernorm takes one input, got 2"):
        Norm(name="n", kind="layernorm", shape=(4, 8), inputs=("a", "b"))
