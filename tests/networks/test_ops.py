"""The ops contract: conv lowering order, conv results against a direct loop, padding, recording."""

from __future__ import annotations

import numpy as np
import pytest

from hfp8sim.networks import (
    ACTIVATION, WEIGHT, Float32Ops, Float64Ops, GemmOps, RecordingOps, conv2d_output_size, conv_weight_matrix,
    im2col, tf_same_padding,
)


def direct_conv2d(x, w, stride, padding, dilation, groups):
    """The convolution written out as its definition, in float64 (slow, tiny shapes only)."""
    n, _, h, width = x.shape
    k, c_group, r_taps, s_taps = w.shape
    top, bottom, left, right = padding
    xp = np.pad(x.astype(np.float64), ((0, 0), (0, 0), (top, bottom), (left, right)))
    p = (h + top + bottom - (r_taps - 1) * dilation[0] - 1) // stride[0] + 1
    q = (width + left + right - (s_taps - 1) * dilation[1] - 1) // stride[1] + 1
    out = np.zeros((n, k, p, q))
    k_group = k // groups
    for b in range(n):
        for f in range(k):
            g = f // k_group
            for i in range(p):
                for j in range(q):
                    for ch in range(c_group):
                        for r in range(r_taps):
                            for s in range(s_taps):
                                out[b, f, i, j] += (xp[b, g * c_group + ch, i * stride[0] + r * dilation[0],
                                                       j * stride[1] + s * dilation[1]] * w[f, ch, r, s])
    return out


def test_im2col_reduction_order_is_r_s_then_channel_fastest():
    # Channel c holds 100*c + 10*row + col, so each entry names where it came from.
    rows, cols = np.meshgrid(np.arange(3), np.arange(3), indexing="ij")
    x = np.stack([100 * c + 10 * rows + cols for c in range(2)])[None].astype(np.float32)
    columns = im2col(x, (2, 2))
    assert columns.shape == (4, 8)  # 2x2 output pixels, 2x2 taps x 2 channels
    # output pixel (0, 1): taps (0,0) (0,1) (1,0) (1,1), each as channel 0 then channel 1
    np.testing.assert_array_equal(columns[1], [1, 101, 2, 102, 11, 111, 12, 112])
    w = np.arange(3 * 2 * 2 * 2).reshape(3, 2, 2, 2)  # KCRS
    matrix = conv_weight_matrix(w)
    assert matrix.shape == (8, 3)
    np.testing.assert_array_equal(matrix[:, 0], [w[0, 0, 0, 0], w[0, 1, 0, 0], w[0, 0, 0, 1], w[0, 1, 0, 1],
                                                 w[0, 0, 1, 0], w[0, 1, 1, 0], w[0, 0, 1, 1], w[0, 1, 1, 1]])


@pytest.mark.parametrize("c, k, kernel, stride, padding, dilation, groups", [
    (3, 4, (3, 3), (1, 1), (1, 1, 1, 1), (1, 1), 1),  # plain 3x3
    (3, 5, (3, 3), (2, 2), (0, 1, 0, 1), (1, 1), 1),  # stride 2 with TF SAME's bottom/right padding
    (4, 6, (1, 1), (1, 1), (0, 0, 0, 0), (1, 1), 1),  # pointwise
    (4, 6, (3, 2), (1, 2), (2, 0, 1, 1), (2, 1), 2),  # grouped, rectangular, dilated, asymmetric
    (5, 5, (5, 5), (2, 2), (1, 2, 1, 2), (1, 1), 5),  # depthwise 5x5 stride 2 (the fast path)
    (4, 4, (3, 3), (1, 1), (1, 1, 1, 1), (2, 2), 4),  # depthwise dilated
])
@pytest.mark.parametrize("ops", [Float32Ops(), Float64Ops()], ids=repr)
def test_conv2d_equals_the_definition(ops, c, k, kernel, stride, padding, dilation, groups):
    rng = np.random.default_rng(7)
    x = rng.standard_normal((2, c, 9, 8)).astype(np.float32)
    w = rng.standard_normal((k, c // groups, *kernel)).astype(np.float32)
    out = ops.conv2d("t", x, w, stride, padding, dilation, groups)
    expected = direct_conv2d(x, w, stride, padding, dilation, groups)
    assert out.dtype == ops.float_dtype and out.shape == expected.shape
    tolerance = 1e-5 if ops.float_dtype == np.float32 else 1e-12
    np.testing.assert_allclose(out, expected, rtol=0, atol=tolerance)


def test_depthwise_fast_path_equals_one_gemm_per_group():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((1, 6, 10, 10))
    w = rng.standard_normal((6, 1, 3, 3))
    out = Float64Ops().conv2d("dw", x, w, (2, 2), tf_same_padding(10, 10, (3, 3), (2, 2)), (1, 1), 6)
    for ch in range(6):  # the im2col lowering of one group: [P*Q, 9] @ [9, 1]
        lowered = im2col(x[:, ch:ch + 1], (3, 3), (2, 2), (0, 1, 0, 1)) @ conv_weight_matrix(w[ch:ch + 1])
        np.testing.assert_allclose(out[0, ch].ravel(), lowered[:, 0], rtol=0, atol=1e-13)


def test_tf_same_padding_puts_the_odd_pixel_at_the_bottom_right():
    assert tf_same_padding(224, 224, (3, 3), (2, 2)) == (0, 1, 0, 1)  # EfficientNet stem
    assert tf_same_padding(112, 112, (3, 3), (1, 1)) == (1, 1, 1, 1)
    assert tf_same_padding(112, 112, (5, 5), (2, 2)) == (1, 2, 1, 2)
    assert tf_same_padding(7, 7, (1, 1), (1, 1)) == (0, 0, 0, 0)
    assert tf_same_padding(224, 224, (3, 3), (2, 2)) != (1, 1, 1, 1)  # not PyTorch's symmetric k // 2
    for size in (7, 14, 28, 56, 112, 224):
        for kernel in (1, 3, 5):
            for stride in (1, 2):
                pad = tf_same_padding(size, size, (kernel, kernel), (stride, stride))
                assert conv2d_output_size(size, size, (kernel, kernel), (stride, stride), pad) == \
                    (-(-size // stride),) * 2


def test_matmul_shapes_roles_and_dtype():
    ops = Float32Ops()
    a = np.ones((2, 3, 4, 5))
    b = np.ones((5, 6))
    out = ops.matmul("m", a, b, ACTIVATION, WEIGHT)
    assert out.shape == (2, 3, 4, 6) and out.dtype == np.float32 and out[0, 0, 0, 0] == 5
    assert ops.matmul("m", a, np.ones((2, 3, 5, 1)), ACTIVATION, ACTIVATION).shape == (2, 3, 4, 1)
    with pytest.raises(ValueError, match="role 'bias'"):
        ops.matmul("m", a, b, ACTIVATION, "bias")
    with pytest.raises(ValueError, match=r"m: matmul wants a \[..., M, K\] and b \[..., K, N\]"):
        ops.matmul("m", a, np.ones((4, 6)))
    with pytest.raises(ValueError, match="3 groups do not split"):
        ops.conv2d("c", np.ones((1, 4, 5, 5)), np.ones((4, 1, 3, 3)), groups=3)


def test_recording_ops_counts_gemm_shapes_and_macs():
    recorder = RecordingOps(Float64Ops())
    assert isinstance(recorder, GemmOps) and recorder.float_dtype == np.float64
    recorder.matmul("qk", np.ones((2, 12, 7, 32)), np.ones((2, 12, 32, 7)), ACTIVATION, ACTIVATION)
    recorder.conv2d("dw", np.ones((3, 8, 10, 10)), np.ones((8, 1, 3, 3)), (2, 2), (0, 1, 0, 1), (1, 1), 8)
    recorder.conv2d("pw", np.ones((3, 8, 5, 5)), np.ones((16, 8, 1, 1)))
    qk, dw, pw = recorder.calls
    assert (qk.name, qk.count, qk.m, qk.n, qk.k, qk.b_role) == ("qk", 24, 7, 7, 32, ACTIVATION)
    assert (dw.kind, dw.count, dw.m, dw.n, dw.k) == ("conv2d", 8, 3 * 5 * 5, 1, 9)
    assert (pw.count, pw.m, pw.n, pw.k) == (1, 75, 16, 8)
    assert recorder.total_macs == 24 * 7 * 7 * 32 + 8 * 75 * 9 + 75 * 16 * 8


@pytest.mark.parametrize("c, k, kernel, stride, padding, dilation, groups", [
    (3, 4, (3, 3), (2, 2), (0, 1, 0, 1), (1, 1), 1),
    (4, 6, (3, 2), (1, 2), (2, 0, 1, 1), (2, 1), 2),
    (5, 5, (5, 5), (1, 1), (2, 2, 2, 2), (1, 1), 5),
])
def test_lowering_is_the_datapaths(c, k, kernel, stride, padding, dilation, groups):
    # The FP8 datapath lowers a conv to GEMMs with hfp8sim.datapath.conv.lower_conv; the float reference must
    # cut the same GEMMs, so that per-layer FP8-vs-float comparisons compare like with like.
    from hfp8sim.datapath.conv import lower_conv

    rng = np.random.default_rng(11)
    x = rng.integers(1, 256, size=(2, c, 7, 6), dtype=np.uint8)  # code-like values: every entry distinct enough
    w = rng.integers(1, 256, size=(k, c // groups, *kernel), dtype=np.uint8)
    columns, weights, _ = lower_conv(x, w, stride, padding, dilation, groups)
    c_group, k_group = c // groups, k // groups
    for g in range(groups):
        np.testing.assert_array_equal(
            im2col(x[:, g * c_group:(g + 1) * c_group], kernel, stride, padding, dilation), columns[g])
        np.testing.assert_array_equal(conv_weight_matrix(w[g * k_group:(g + 1) * k_group]), weights[g])
