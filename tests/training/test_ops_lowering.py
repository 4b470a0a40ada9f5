"""The training ops lower the codes' values, in the layout the kernel reads, and may compute a product as
``(B^T A^T)^T``: every pass must still give the bits of the plain route, i.e. encode each operand with the
scale the call recorded, lower the codes, ``accumulate`` them, unscale."""

from __future__ import annotations

import numpy as np
import pytest

from hfp8sim.datapath import accumulate
from hfp8sim.formats import encode
from hfp8sim.training.ops import (
    TrainingOps, conv_backward_data_lowering, conv_backward_weight_lowering, conv_forward_lowering,
    conv_output_from_gemm, conv_weight_from_gemm, products_transposed,
)
from hfp8sim.vocabulary import Pass, Role

CONVS = [  # x shape, w shape, stride, padding, groups
    ((2, 3, 9, 8), (4, 3, 3, 3), 1, 1, 1),  # few output channels: computed transposed
    ((2, 4, 9, 9), (20, 2, 3, 3), 2, 1, 2),  # strided: the backward-data gradient is dilated
    ((3, 6, 7, 7), (6, 1, 3, 3), 1, 1, 6),  # depthwise
    ((2, 16, 5, 5), (32, 16, 1, 1), 1, 0, 1),  # pointwise, wide: not transposed
    ((1, 2, 8, 7), (3, 2, 2, 3), (2, 1), (1, 0, 2, 1), 1),
    ((2, 3, 6, 9), (5, 3, 3, 3), (1, 2), 1, 1),
]


def _plain(ops: TrainingOps, layer: str, call, a_in, b_in, lower):
    a_spec, b_spec = ops.operand_format(layer, call.a_role), ops.operand_format(layer, call.b_role)
    a_codes = encode(np.asarray(a_in, np.float32) * np.float32(call.a.scale), a_spec)
    b_codes = encode(np.asarray(b_in, np.float32) * np.float32(call.b.scale), b_spec)
    a_low, b_low = lower(a_codes, b_codes)
    acc = accumulate(a_low, b_low, a_spec, b_spec, ops.arithmetic(a_spec, b_spec))
    return acc / (call.a.scale * call.b.scale)


def _same_bits(got, expected):
    assert got.dtype == expected.dtype and got.shape == expected.shape and got.flags.c_contiguous
    assert np.array_equal(got.view(np.uint32), expected.view(np.uint32))


@pytest.mark.parametrize("overrides", [{}, {"conv": "float16"}], ids=["hfp8", "float16"])
@pytest.mark.parametrize("x_shape, w_shape, stride, padding, groups", CONVS)
def test_every_conv_pass_gives_the_bits_of_the_plain_route(overrides, x_shape, w_shape, stride, padding, groups):
    rng = np.random.default_rng(sum(x_shape) + sum(w_shape))
    ops = TrainingOps("hfp8", overrides=overrides)
    x = rng.standard_normal(x_shape).astype(np.float32)
    w = (rng.standard_normal(w_shape) * 0.3).astype(np.float32)
    y = ops.conv2d("conv", x, w, stride, padding, groups)
    dy = (rng.standard_normal(y.shape) * 1e-3).astype(np.float32)
    dx = ops.conv2d_backward_data("conv", dy, w, x.shape, stride, padding, groups)
    dw = ops.conv2d_backward_weight("conv", x, dy, w.shape, stride, padding, groups)
    forward, backward_data, backward_weight = ops.records

    def forward_lower(a, b):
        return conv_forward_lowering(a, b, stride, padding, groups)[:2]

    def data_lower(a, b):
        return conv_backward_data_lowering(a, b, x.shape, stride, padding, groups)[:2]

    def weight_lower(a, b):
        return conv_backward_weight_lowering(a, b, w.shape, stride, padding, groups)

    _same_bits(y, conv_output_from_gemm(_plain(ops, "conv", forward, x, w, forward_lower), y.shape)
               .astype(np.float32))
    _same_bits(dx, conv_output_from_gemm(_plain(ops, "conv", backward_data, dy, w, data_lower), x.shape)
               .astype(np.float32))
    _same_bits(dw, conv_weight_from_gemm(_plain(ops, "conv", backward_weight, x, dy, weight_lower), w.shape)
               .astype(np.float32))
    # the cases exercise both routes
    assert forward.pass_ == Pass.FORWARD and backward_weight.a_role == Role.ACTIVATION


def test_the_conv_cases_cover_both_routes():
    routes = set()
    for x_shape, w_shape, _stride, _padding, groups in CONVS:
        routes.add(products_transposed(x_shape[0] * 4, w_shape[0] // groups))
        routes.add(products_transposed(w_shape[1] * w_shape[2] * w_shape[3], w_shape[0] // groups))
    assert routes == {True, False}


@pytest.mark.parametrize("m, k, n", [(40, 12, 3), (5, 12, 30), (40, 12, 30)])
def test_matmul_gives_the_bits_of_the_plain_route(m, k, n):
    rng = np.random.default_rng(m * n)
    ops = TrainingOps("hfp8")
    a = rng.standard_normal((m, k)).astype(np.float32)
    b = rng.standard_normal((n, k)).astype(np.float32).T  # a transposed view, as Linear's backward passes
    out = ops.matmul("fc", Pass.BACKWARD_DATA, a, b, Role.GRADIENT, Role.WEIGHT)
    expected = _plain(ops, "fc", ops.records[-1], a, b, lambda x, y: (x[None], y[None]))[0].astype(np.float32)
    _same_bits(out, expected)


@pytest.mark.parametrize("overrides", [{}, {"*": "float16"}], ids=["hfp8", "float16"])
def test_infinite_and_nan_inputs_give_the_bits_of_the_plain_route(overrides):
    # the encoder saturates, so the ops tell the datapath that no operand holds an infinity: check it with one
    rng = np.random.default_rng(11)
    ops = TrainingOps("hfp8", overrides=overrides)
    x = rng.standard_normal((2, 3, 6, 6)).astype(np.float32)
    w = rng.standard_normal((4, 3, 3, 3)).astype(np.float32)
    x[0, 1, 2, 3], x[1, 0, 0, 0], w[2, 1, 0, 0] = np.inf, np.nan, -np.inf
    y = ops.conv2d("conv", x, w, 1, 1)
    expected = conv_output_from_gemm(_plain(ops, "conv", ops.records[-1], x, w,
                                            lambda a, b: conv_forward_lowering(a, b, 1, 1, 1)[:2]), y.shape)
    expected = expected.astype(np.float32)
    assert np.array_equal(np.isnan(y), np.isnan(expected)) and np.isnan(y).any()
    assert np.array_equal(y[~np.isnan(y)], expected[~np.isnan(expected)])
