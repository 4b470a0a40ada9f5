"""TrainingOps: each pass's GEMM really runs on the datapath with the right roles, formats, arithmetic and
M/N/K; per-layer overrides; the same inputs give the same bits."""

from __future__ import annotations

import numpy as np
import pytest

from hfp8sim.core import CoreModel
from hfp8sim.config.arch import resolve_arch
from hfp8sim.datapath import accumulate
from hfp8sim.formats import encode
from hfp8sim.training.layers import Conv2d, Linear, MultiHeadAttention, ReLU, Sequential, SoftmaxCrossEntropy
from hfp8sim.training.ops import Float64Ops, TrainingOps
from hfp8sim.training.scaling import power_of_two_scale
from hfp8sim.traces.datapath_ops import accumulator_limit
from hfp8sim.vocabulary import Pass, Role

FWD, GRAD = "float8_e4m3b11fnuz", "float8_e5m2"


def _calls(ops):
    return [(c.layer, c.pass_, c.a_role, c.b_role, c.a_format, c.b_format, c.groups, c.m, c.n, c.k)
            for c in ops.records]


def test_linear_passes_roles_formats_and_dimensions():
    ops = TrainingOps("hfp8")
    layer = Linear("fc", 12, 5, seed=1)
    rng = np.random.default_rng(0)
    y = layer.forward(rng.standard_normal((7, 12)), ops)
    layer.backward(rng.standard_normal(y.shape), ops)
    assert _calls(ops) == [
        ("fc", Pass.FORWARD, Role.ACTIVATION, Role.WEIGHT, FWD, FWD, 1, 7, 5, 12),  # M=B, K=I, N=O
        ("fc", Pass.BACKWARD_DATA, Role.GRADIENT, Role.WEIGHT, GRAD, FWD, 1, 7, 12, 5),  # M=B, K=O, N=I
        ("fc", Pass.BACKWARD_WEIGHT, Role.ACTIVATION, Role.GRADIENT, FWD, GRAD, 1, 12, 5, 7),  # M=I, K=B, N=O
    ]
    core = CoreModel.build(resolve_arch(None))
    for call in ops.records:  # the default core's contract for 8-bit operands: DLFloat16 pair steps
        assert call.arith == core.arithmetic_for_bits(8)
        assert call.arith.pair and call.arith.acc_format.name == "dlfloat16"


def test_conv_passes_dimensions():
    ops = TrainingOps("hfp8")
    conv = Conv2d("conv", 4, 6, 3, stride=2, padding=1, groups=2, seed=1)
    x = np.random.default_rng(0).standard_normal((2, 4, 7, 7)).astype(np.float32)
    y = conv.forward(x, ops)  # P = Q = 4
    conv.backward(np.ones_like(y), ops)
    assert _calls(ops) == [
        ("conv", Pass.FORWARD, Role.ACTIVATION, Role.WEIGHT, FWD, FWD, 2, 2 * 4 * 4, 3, 3 * 3 * 2),
        ("conv", Pass.BACKWARD_DATA, Role.GRADIENT, Role.WEIGHT, GRAD, FWD, 2, 2 * 7 * 7, 2, 3 * 3 * 3),
        ("conv", Pass.BACKWARD_WEIGHT, Role.ACTIVATION, Role.GRADIENT, FWD, GRAD, 2, 3 * 3 * 2, 3, 2 * 4 * 4),
    ]
    # operand statistics describe the stored tensors, not their im2col copies
    assert ops.records[0].a.elements == x.size and ops.records[1].a.elements == y.size


def test_attention_gemms_and_their_passes():
    ops = TrainingOps("hfp8")
    attn = MultiHeadAttention("attn", 8, 2, seed=1)
    y = attn.forward(np.random.default_rng(0).standard_normal((3, 5, 8)), ops)
    attn.backward(np.ones_like(y), ops)
    by_layer = {}
    for call in ops.records:
        by_layer.setdefault(call.layer, []).append((call.pass_, call.groups, call.m, call.n, call.k))
    assert by_layer["attn.scores"] == [(Pass.FORWARD, 6, 5, 5, 4), (Pass.BACKWARD_DATA, 6, 5, 4, 5),
                                       (Pass.BACKWARD_WEIGHT, 6, 4, 5, 5)]
    assert by_layer["attn.context"] == [(Pass.FORWARD, 6, 5, 4, 5), (Pass.BACKWARD_DATA, 6, 5, 5, 4),
                                        (Pass.BACKWARD_WEIGHT, 6, 5, 4, 5)]
    assert {name for name in by_layer} == {"attn.q", "attn.k", "attn.v", "attn.out", "attn.scores", "attn.context"}


def test_forward_equals_the_datapath_on_the_encoded_operands():
    """The ops add nothing of their own: scale, encode, datapath accumulate, unscale."""
    rng = np.random.default_rng(3)
    x = rng.standard_normal((9, 300)).astype(np.float32)  # K > 256: two folds of the 128-row pair array
    w = (rng.standard_normal((300, 4)) * 0.05).astype(np.float32)
    ops = TrainingOps("hfp8")
    got = ops.matmul("fc", "forward", x, w, "activation", "weight")
    arith = CoreModel.build(resolve_arch(None)).arithmetic_for_bits(8)
    target = min(30.0, accumulator_limit(arith, 300))
    sx = power_of_two_scale(float(np.abs(x).max()), target)
    sw = power_of_two_scale(float(np.abs(w).max()), target)
    values = accumulate(encode(x * np.float32(sx), FWD), encode(w * np.float32(sw), FWD), FWD, FWD, arith)
    assert np.array_equal(got, (values / (sx * sw)).astype(np.float32))
    assert (ops.records[0].a.scale, ops.records[0].b.scale) == (sx, sw)


def test_overrides_give_a_layer_float16_and_its_contract():
    ops = TrainingOps("hfp8", overrides={"first": "float16", "head*": "float16"})
    a = np.ones((2, 3), np.float32)
    b = np.ones((3, 2), np.float32)
    for name in ("first", "middle", "head.fc"):
        ops.matmul(name, "backward_data", a, b, "gradient", "weight")
    first, middle, head = ops.records
    assert (first.a_format, first.b_format, head.a_format) == ("float16", "float16", "float16")
    assert (middle.a_format, middle.b_format) == (GRAD, FWD)
    assert not first.arith.pair and middle.arith.pair  # one FP16 MAC per PE per cycle on the default core
    assert first.a.scale == 1.0  # 16-bit operands are only scaled down


def test_fp32_scheme_uses_float32_numpy_gemms():
    ops = TrainingOps("fp32")
    a = np.random.default_rng(0).standard_normal((4, 6)).astype(np.float32)
    b = np.random.default_rng(1).standard_normal((6, 3)).astype(np.float32)
    out = ops.matmul("fc", "forward", a, b, "activation", "weight")
    assert out.dtype == np.float32 and np.array_equal(out, a @ b)
    assert ops.records[0].arith is None and ops.records[0].arithmetic == "numpy matmul"


def test_conv_backward_is_the_adjoint_of_forward():
    """<conv(x, w), dy> = <x, dX(dy)> = <w, dW(x, dy)> in float64, for padding, stride and groups."""
    rng = np.random.default_rng(4)
    ops = Float64Ops()
    for stride, padding, groups, size in ((1, 1, 1, 5), (2, 1, 2, 6), (2, 0, 4, 7), (3, 2, 1, 8)):
        x = rng.standard_normal((2, 4, size, size))
        w = rng.standard_normal((8, 4 // groups, 3, 3))
        y = ops.conv2d("c", x, w, stride, padding, groups)
        dy = rng.standard_normal(y.shape)
        dx = ops.conv2d_backward_data("c", dy, w, x.shape, stride, padding, groups)
        dw = ops.conv2d_backward_weight("c", x, dy, w.shape, stride, padding, groups)
        inner = np.sum(y * dy)
        assert np.isclose(np.sum(x * dx), inner, rtol=1e-12) and np.isclose(np.sum(w * dw), inner, rtol=1e-12)


def _train_step(scheme):
    rng = np.random.default_rng(8)
    model = Sequential(Linear("fc1", 10, 16, seed=1), ReLU(), Linear("fc2", 16, 3, seed=2))
    ops = TrainingOps(scheme)
    loss = SoftmaxCrossEntropy()
    value = loss.forward(model.forward(rng.standard_normal((12, 10)), ops), rng.integers(0, 3, 12), ops)
    model.backward(loss.backward(loss_scale=1024.0), ops)
    return value, [p.grad.copy() for p in model.parameters()], [c.a for c in ops.records]


def test_same_inputs_same_bits():
    first, second = _train_step("hfp8"), _train_step("hfp8")
    assert first[0] == second[0]
    assert all(np.array_equal(a, b) and a.dtype == np.float32 for a, b in zip(first[1], second[1]))
    assert first[2] == second[2]


def test_bad_requests_raise_one_line_errors():
    from hfp8sim.training.tensors import TrainingError

    ops = TrainingOps("hfp8")
    with pytest.raises(TrainingError, match="fc: forward matmul takes"):
        ops.matmul("fc", "forward", np.ones((2, 3)), np.ones((4, 2)), "activation", "weight")
    with pytest.raises(TrainingError, match="recipe"):
        TrainingOps("hfp8", recipe="current")
    with pytest.raises(TrainingError, match="fc: input has 3 features"):
        Linear("fc", 4, 2).forward(np.ones((2, 3)), ops)
