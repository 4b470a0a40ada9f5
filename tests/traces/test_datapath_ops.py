"""DatapathOps: the same bits as the datapath called directly, exact statistics, determinism, errors."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from hfp8sim.datapath import ArrayArithmetic, accumulate
from hfp8sim.datapath.conv import conv2d, lower_conv
from hfp8sim.errors import FormatError, NetworkOpError, TraceError
from hfp8sim.formats import encode, get_format
from hfp8sim.formats.scaling import channel_scales, tensor_scale
from hfp8sim.networks import Float32Ops, preprocess
from hfp8sim.traces import DatapathOps, accumulator_limit, values_sha256

FWD = "float8_e4m3b11fnuz"


class _Capture(Float32Ops):
    """Float32 forward that keeps the operands of the calls named in ``wanted``."""

    def __init__(self, wanted):
        super().__init__()
        self.wanted, self.calls = set(wanted), {}

    def conv2d(self, name, x, w, stride=(1, 1), padding=(0, 0, 0, 0), dilation=(1, 1), groups=1):
        if name in self.wanted:
            self.calls[name] = (x.copy(), w, stride, padding, dilation, groups)
        return super().conv2d(name, x, w, stride, padding, dilation, groups)

    def matmul(self, name, a, b, a_role="activation", b_role="weight"):
        if name in self.wanted:
            self.calls[name] = (a.copy(), b.copy(), a_role, b_role)
        return super().matmul(name, a, b, a_role, b_role)


@pytest.fixture(scope="module")
def effnet_operands(efficientnet, photos):
    capture = _Capture({"stem", "blocks.1.depthwise", "blocks.3.depthwise", "fc"})
    efficientnet.forward(preprocess(photos["rocket"])[None], capture)
    return capture.calls


@pytest.fixture(scope="module")
def minilm_operands(minilm):
    capture = _Capture({"layer.0.attention.query", "layer.2.attention.qk", "layer.2.attention.pv"})
    minilm.forward(minilm.tokenize(["A man is playing a guitar.", "The stock market fell sharply today."]), capture)
    return capture.calls


@pytest.mark.parametrize("pair", [False, True])
@pytest.mark.parametrize("layer", ["stem", "blocks.1.depthwise", "blocks.3.depthwise"])
def test_real_convolutions_equal_the_datapath_called_directly(effnet_operands, layer, pair):
    x, w, stride, padding, dilation, groups = effnet_operands[layer]
    if layer == "stem":
        x = x[:, :, :48, :48]  # keep the exact pair-mode kernel quick
    arith = ArrayArithmetic("ws", rows=16, cols=16, buffer_format="float32", pair=pair)
    ops = DatapathOps("hfp8", arith, "per_channel")
    out = ops.conv2d(layer, x, w, stride, padding, dilation, groups)
    # by hand: per-tensor activation scale, per-output-channel weight scales, power-of-two, onto max 30
    sx, sw = tensor_scale(x, FWD), channel_scales(w, FWD, channel_axis=0)
    x_bits, w_bits = encode(x * np.float32(sx), FWD), encode(w * sw.astype(np.float32), FWD)
    direct = conv2d(x_bits, w_bits, FWD, FWD, arith, stride=stride, padding=padding, dilation=dilation,
                    groups=groups)
    expected = (direct / (sx * sw.reshape(1, -1, 1, 1))).astype(np.float32)
    assert out.dtype == np.float32 and out.shape == expected.shape
    np.testing.assert_array_equal(out, expected)
    record = ops.records[-1]
    a, b, _ = lower_conv(x_bits, w_bits, stride, padding, dilation, groups)
    # the hash is of the accumulated values in GEMM layout: computed directly, not transposed
    assert record.output_sha256 == values_sha256(accumulate(a, b, FWD, FWD, arith))
    assert (record.batch, record.m, record.k) == (groups, a.shape[1], a.shape[2])
    assert record.b.scale_log2_min < record.b.scale_log2_max  # one scale per channel
    assert record.a.scale_log2_min == record.a.scale_log2_max == math.log2(sx)


def test_real_matmuls_equal_the_datapath_called_directly(minilm_operands, single_product_arith):
    ops = DatapathOps("hfp8", single_product_arith, "per_tensor")
    a, b, a_role, b_role = minilm_operands["layer.0.attention.query"]  # [2, T, 384] @ [384, 384]
    out = ops.matmul("q", a, b, a_role, b_role)
    sa, sb = tensor_scale(a, FWD), tensor_scale(b, FWD)
    direct = accumulate(encode(a * np.float32(sa), FWD).reshape(-1, 384), encode(b * np.float32(sb), FWD), FWD, FWD,
                        single_product_arith)
    np.testing.assert_array_equal(out, (direct / (sa * sb)).astype(np.float32).reshape(out.shape))
    assert (ops.records[-1].batch, ops.records[-1].m) == (1, a.shape[0] * a.shape[1])  # one GEMM over all tokens
    for name in ("layer.2.attention.qk", "layer.2.attention.pv"):  # two activations, batched over sentences x heads
        a, b, a_role, b_role = minilm_operands[name]
        assert (a_role, b_role) == ("activation", "activation")
        out = ops.matmul(name, a, b, a_role, b_role)
        sa, sb = tensor_scale(a, FWD), tensor_scale(b, FWD)
        a_bits = encode(a * np.float32(sa), FWD).reshape(-1, *a.shape[-2:])
        b_bits = encode(b * np.float32(sb), FWD).reshape(-1, *b.shape[-2:])
        direct = accumulate(a_bits, b_bits, FWD, FWD, single_product_arith)
        np.testing.assert_array_equal(out, (direct / (sa * sb)).astype(np.float32).reshape(out.shape))
        record = ops.records[-1]
        assert (record.batch, record.m, record.n, record.k) == (a.shape[0] * 12, a.shape[2], b.shape[3], a.shape[3])
        assert record.output_sha256 == values_sha256(direct)


def test_sampled_rows_are_the_same_bits_as_the_full_layer(effnet_operands, single_product_arith):
    x, w, stride, padding, dilation, groups = effnet_operands["blocks.1.depthwise"]
    ops = DatapathOps("hfp8", single_product_arith, "per_channel")
    rows = np.array([0, 5, 777, 3135])  # of 56 x 56 output pixels
    full = ops.run_conv2d("dw", x, w, stride, padding, dilation, groups)
    part = ops.run_conv2d("dw", x, w, stride, padding, dilation, groups, rows=rows)  # [G, rows, 1]
    n, k, p, q = full.shape
    np.testing.assert_array_equal(part[:, :, 0].T, full.reshape(n, k, p * q)[0][:, rows].T)
    assert ops.records[-1].sampled_rows == 4 and ops.records[-1].m == p * q
    a = np.random.default_rng(1).standard_normal((3, 50, 20)).astype(np.float32)
    b = np.random.default_rng(2).standard_normal((20, 30)).astype(np.float32)
    full = ops.run_matmul("m", a, b)
    part = ops.run_matmul("m", a, b, rows=[1, 49])
    np.testing.assert_array_equal(part, full[:, [1, 49], :])


def test_statistics_are_exact_on_a_small_case(single_product_arith):
    ops = DatapathOps("hfp8", single_product_arith, "per_tensor")
    # amax 3 -> scale 8 (30/3 = 10, rounded down to a power of two); 2^-20 * 8 = 2^-17 is below half the
    # smallest subnormal 2^-13, so it underflows to zero
    a = np.array([[3.0, 0.0, 2.0**-20, 1.0], [-1.0, 0.0, 0.5, 2.0]], np.float32)
    b = np.array([[1.0, 1.0], [5.0, 5.0], [2.0, -2.0], [0.0, 0.0]], np.float32)
    ops.matmul("m", a, b)
    r = ops.records[-1]
    assert (r.a.scale_log2_min, r.a.zero_fraction, r.a.underflow, r.a.saturated) == (3.0, 3 / 8, 1, 0)
    assert r.a.dynamic_range_log2 == pytest.approx(20 + math.log2(3))
    assert (r.b.zero_fraction, r.b.underflow, r.b.dynamic_range_log2) == (2 / 8, 0, pytest.approx(math.log2(5)))
    # non-zero products: k0 2x2, k1 0x2, k2 1x2, k3 2x0 -> 6 of 16
    assert r.zero_mac_fraction == 1 - 6 / 16
    assert (r.a.bytes, r.b.bytes, r.out_bytes, r.out_format) == (8, 8, 16, "float32")
    assert r.macs == 16 and r.sampled_rows == 2
    assert 0 < r.rel_error < 0.1 and r.sqnr_db == pytest.approx(-20 * math.log10(r.rel_error))


def test_results_are_deterministic(effnet_operands, single_product_arith):
    x, w, *geometry = effnet_operands["stem"]
    hashes = set()
    for _ in range(2):
        ops = DatapathOps("hfp8", single_product_arith, "per_tensor")
        ops.conv2d("stem", x, w, *geometry)
        ops.conv2d("stem", x, w, *geometry)  # the cached weight codes give the same bits
        hashes.update(r.output_sha256 for r in ops.records)
    assert len(hashes) == 1


def test_scales_leave_headroom_for_the_accumulator():
    fp16_acc = ArrayArithmetic("ws", rows=128, acc_format="float16")  # folds summed in FP16 too
    assert accumulator_limit(fp16_acc, 384) == math.sqrt(65504 / 384)  # the whole sum stays in FP16
    assert accumulator_limit(fp16_acc, 9) == math.sqrt(65504 / 9)  # a depthwise 3x3: 9 products
    fp32_buffer = dataclasses.replace(fp16_acc, buffer_format="float32")
    assert accumulator_limit(fp32_buffer, 384) == math.sqrt(65504 / 128)  # a fold of 128 products
    dl_acc = dataclasses.replace(fp32_buffer, acc_format="dlfloat16", pair=True)
    assert accumulator_limit(dl_acc, 4096) == math.sqrt(float(get_format("dlfloat16").max_value) / 256)
    # the worst case, all operands at amax: with the limit no sum overflows the FP16 accumulator ...
    x, w = np.full((4, 128), 3.0, np.float32), np.full((128, 4), 0.5, np.float32)
    ops = DatapathOps("ocp_fp8", fp16_acc, "per_tensor")
    out = ops.matmul("m", x, w)
    record = ops.records[-1]
    assert 2**record.a.scale_log2_max * 3 <= math.sqrt(65504 / 128) < 2**(record.a.scale_log2_max + 1) * 3
    assert record.saturated_out == 0 and np.array_equal(out, np.full((4, 4), 192.0, np.float32))
    # ... while amax on E4M3's max of 448 (margin 0) saturates every output
    ops = DatapathOps("ocp_fp8", fp16_acc, "per_tensor", margin=0)
    ops.matmul("m", x, w)
    assert ops.records[-1].saturated_out == 16 and ops.records[-1].a.scale_log2_max == 7  # 3 * 128 = 384
    # FP16 operands are never scaled up
    ops = DatapathOps("fp16", fp16_acc, "per_channel")
    ops.matmul("m", x * 1e-3, w)
    assert ops.records[-1].a.scale_log2_max == ops.records[-1].b.scale_log2_max == 0


def test_overrides_give_layers_another_format(effnet_operands, single_product_arith):
    x, w, *geometry = effnet_operands["blocks.3.depthwise"]
    wide = dataclasses.replace(single_product_arith, pair=False)
    ops = DatapathOps("hfp8", single_product_arith, "per_channel", wide_arith=wide,
                      overrides={"blocks.*.depthwise": "float16"})
    ops.conv2d("blocks.3.depthwise", x, w, *geometry)
    ops.conv2d("head", x[:, :8], np.ones((4, 8, 1, 1), np.float32))
    (dw, head) = ops.records
    assert (dw.a.format, dw.b.format, head.a.format) == ("float16", "float16", FWD)
    assert dw.rel_error < head.rel_error and dw.rel_error < 0.01


def test_bad_settings_are_refused():
    with pytest.raises(TraceError, match="unknown scaling 'per_row'; allowed: per_tensor, per_channel"):
        DatapathOps("hfp8", None, "per_row")
    with pytest.raises(FormatError, match="scheme fp32: operand format float32 has 32 bits"):
        DatapathOps("fp32")
    with pytest.raises(FormatError, match="unknown scheme 'hfp9'"):
        DatapathOps("hfp9")
    with pytest.raises(TraceError, match="margin must be a non-negative integer"):
        DatapathOps("hfp8", margin=-1)
    with pytest.raises(NetworkOpError, match=r"m: matmul wants a \[..., M, K\]"):
        DatapathOps().matmul("m", np.zeros((2, 3), np.float32), np.zeros((4, 5), np.float32))
