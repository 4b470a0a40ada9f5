"""Gradient checks of every layer type (issue 13's acceptance).

* ``fp32`` scheme: dX and dW equal a float64 numpy reference to float32 rounding.  Each GEMM is checked
  element by element against ``gamma_K(2^-24) |A||B|`` plus the output's rounding (the ops' ``check_bounds``:
  every ratio <= 1), Linear and Conv2d also against independent float64 references (einsum, direct loops).
  Whole layers (several float32 GEMMs and elementwise ops in a chain) are compared with the same layer code
  run by ``Float64Ops`` with float64 parameters: ``max|got - ref| <= FP32_RTOL * max|ref|`` with
  ``FP32_RTOL = 32 * 2^-24``.  The worst-case chain bound (every output passes through at most K + 20 <= 64
  float32 roundings here) would be 64 units; these layers measure at most 3.2 units (attention and a 3x3
  convolution), so 32 units is tight enough to catch any float16-sized or double-rounding slip (2^-11 is
  8192 units) while leaving room for the cancellation in the normalisation backward formulas.
* ``hfp8`` scheme: every GEMM of every pass within the documented FP8 bound of ``hfp8sim.training.ops``
  (relative ~2^-3 per product for e4m3 x e4m3, ~2^-2.4 with an e5m2 gradient, plus DLFloat16 accumulation),
  checked element by element for every call; layers without GEMMs compute in float32 exactly as under fp32.
* A float64 finite-difference check of the analytic backward passes (directional derivatives).
"""

from __future__ import annotations

import numpy as np
import pytest

from hfp8sim.formats import get_format
from hfp8sim.training.layers import (
    GELU, AvgPool2d, BatchNorm, Conv2d, Embedding, Flatten, GlobalAvgPool, LayerNorm, Linear, MaxPool2d,
    MultiHeadAttention, ReLU, ReLU6, Residual, Sequential, SoftmaxCrossEntropy,
)
from hfp8sim.training.ops import Float64Ops, TrainingOps, gemm_error_bound
from hfp8sim.vocabulary import Pass

FP32_RTOL = 2.0**-24 * 32


def _rng(seed=0):
    return np.random.default_rng(seed)


# name -> (factory, input maker, has GEMMs)
def _image(shape, scale=1.0):
    return lambda: (_rng(1).standard_normal(shape) * scale).astype(np.float32)


LAYERS = {
    "linear": (lambda: Linear("fc", 5, 3, seed=2), _image((6, 5)), True),
    "conv": (lambda: Conv2d("conv", 3, 4, 3, padding=1, seed=2), _image((2, 3, 5, 5)), True),
    "conv_grouped_stride2": (lambda: Conv2d("gconv", 4, 6, 3, stride=2, padding=1, groups=2, seed=2),
                             _image((2, 4, 6, 6)), True),
    "conv_depthwise": (lambda: Conv2d("dw", 4, 4, 3, padding=1, groups=4, seed=2), _image((2, 4, 5, 5)), True),
    "batchnorm_2d": (lambda: BatchNorm("bn", 4), _image((8, 4), 2.0), False),
    "batchnorm_4d": (lambda: BatchNorm("bn", 3), _image((2, 3, 4, 4), 2.0), False),
    "relu": (lambda: ReLU(), _image((4, 6)), False),
    "relu6": (lambda: ReLU6(), _image((4, 6), 5.0), False),
    "gelu": (lambda: GELU(), _image((4, 6), 2.0), False),
    "maxpool": (lambda: MaxPool2d(2), _image((2, 3, 4, 4)), False),
    "avgpool": (lambda: AvgPool2d(3, 2), _image((2, 3, 5, 5)), False),
    "global_avgpool": (lambda: GlobalAvgPool(), _image((2, 3, 4, 4)), False),
    "flatten": (lambda: Flatten(), _image((2, 3, 2, 2)), False),
    "layernorm": (lambda: LayerNorm("ln", 6), _image((3, 4, 6), 2.0), False),
    "attention": (lambda: MultiHeadAttention("attn", 8, 2, seed=2), _image((2, 5, 8)), True),
    "residual": (lambda: Residual(Sequential(Linear("res.fc", 5, 5, seed=3), ReLU())), _image((4, 5)), True),
}


def _run(module, x, ops, dy):
    y = module.forward(x, ops, train=True)
    dx = module.backward(dy.astype(ops.float_dtype), ops)
    return y, dx, {p.name: p.grad for p in module.parameters()}


def _reference(factory, x, dy):
    """The same layer, float64 parameters, float64 numpy GEMMs."""
    module = factory()
    for p in module.parameters():
        p.value = p.value.astype(np.float64)
    return _run(module, x.astype(np.float64), Float64Ops(), dy)


def _dy(factory, x):
    y = factory().forward(x, Float64Ops(), train=True)
    return _rng(7).standard_normal(y.shape)


def _close(got, ref, what, magnitude=None):
    """max|got - ref| <= FP32_RTOL * magnitude (default max|ref|)."""
    got, ref = np.asarray(got, np.float64), np.asarray(ref, np.float64)
    assert got.shape == ref.shape, what
    err = np.max(np.abs(got - ref))
    magnitude = np.max(np.abs(ref)) if magnitude is None else magnitude
    assert err <= FP32_RTOL * magnitude, f"{what}: max error {err:.3g}, magnitude {magnitude:.3g}"


@pytest.mark.parametrize("layer", list(LAYERS))
def test_fp32_scheme_matches_float64_reference(layer):
    factory, make_x, has_gemm = LAYERS[layer]
    x = make_x()
    dy = _dy(factory, x)
    ops = TrainingOps("fp32", check_bounds=True)
    y, dx, grads = _run(factory(), x, ops, dy)
    y_ref, dx_ref, grads_ref = _reference(factory, x, dy)
    _close(y, y_ref, f"{layer} y")
    _close(dx, dx_ref, f"{layer} dX")
    assert grads.keys() == grads_ref.keys()
    largest = max((np.abs(g).max() for g in grads_ref.values()), default=0.0)
    for name in grads:
        # attention's key bias has a zero gradient by symmetry (softmax ignores a constant added to every
        # score of a row): float32 leaves the rounding residue of sums of gradient-sized terms, so its error is
        # measured against the layer's largest gradient
        zero_by_cancellation = np.abs(grads_ref[name]).max() <= 2.0**-40 * largest
        _close(grads[name], grads_ref[name], f"{layer} d{name}", largest if zero_by_cancellation else None)
    assert bool(ops.records) == has_gemm
    for call in ops.records:
        assert call.a_format == call.b_format == "float32" and call.arith is None
        assert call.bound_ratio <= 1.0, call


def test_fp32_linear_and_conv_equal_independent_references():
    rng = _rng(3)
    x = rng.standard_normal((6, 5)).astype(np.float32)
    dy = rng.standard_normal((6, 3)).astype(np.float32)
    layer = Linear("fc", 5, 3, seed=4)
    w = layer.weight.value.astype(np.float64)
    ops = TrainingOps("fp32")
    layer.forward(x, ops)
    dx = layer.backward(dy, ops)
    for got, ref, k in ((dx, dy.astype(np.float64) @ w.T, 3), (layer.weight.grad, x.astype(np.float64).T @ dy, 6)):
        bound = k * 2.0**-24 / (1 - k * 2.0**-24) * (np.abs(ref) + 1e-300) + 2.0**-24 * np.abs(ref)
        # componentwise: gamma_K |A||B| bounds the float32 GEMM; |A||B| >= |AB| so test against it
        absolute = (np.abs(dy) @ np.abs(w.T)) if got is dx else (np.abs(x).T @ np.abs(dy))
        bound = (k * 2.0**-24 / (1 - k * 2.0**-24) + 2.0**-24) * absolute
        assert np.all(np.abs(got - ref) <= bound)
    np.testing.assert_allclose(layer.bias.grad, dy.astype(np.float64).sum(0), rtol=8 * 2.0**-24)

    # a grouped, strided convolution against direct loops in float64
    conv = Conv2d("c", 4, 6, 3, stride=2, padding=1, groups=2, seed=5)
    xc = rng.standard_normal((2, 4, 5, 5)).astype(np.float32)
    yc = conv.forward(xc, ops)
    dyc = rng.standard_normal(yc.shape).astype(np.float32)
    dxc = conv.backward(dyc, ops)
    wc = conv.weight.value.astype(np.float64)
    xp = np.pad(xc.astype(np.float64), ((0, 0), (0, 0), (1, 1), (1, 1)))
    y_ref, dx_ref, dw_ref = np.zeros(yc.shape), np.zeros_like(xp), np.zeros(wc.shape)
    for n in range(2):
        for k in range(6):
            g = k // 3
            for p in range(3):
                for q in range(3):
                    patch = xp[n, 2 * g:2 * g + 2, 2 * p:2 * p + 3, 2 * q:2 * q + 3]
                    y_ref[n, k, p, q] = np.sum(patch * wc[k])
                    dx_ref[n, 2 * g:2 * g + 2, 2 * p:2 * p + 3, 2 * q:2 * q + 3] += dyc[n, k, p, q] * wc[k]
                    dw_ref[k] += dyc[n, k, p, q] * patch
    np.testing.assert_allclose(yc, y_ref, rtol=0, atol=FP32_RTOL * np.abs(y_ref).max())
    np.testing.assert_allclose(dxc, dx_ref[:, :, 1:-1, 1:-1], rtol=0, atol=FP32_RTOL * np.abs(dx_ref).max())
    np.testing.assert_allclose(conv.weight.grad, dw_ref, rtol=0, atol=FP32_RTOL * np.abs(dw_ref).max())


@pytest.mark.parametrize("layer", list(LAYERS))
def test_hfp8_every_gemm_within_the_fp8_bound(layer):
    factory, make_x, has_gemm = LAYERS[layer]
    x = make_x()
    dy = _dy(factory, x)
    ops = TrainingOps("hfp8", check_bounds=True)
    y, dx, grads = _run(factory(), x, ops, dy)
    if not has_gemm:  # no GEMM: float32 numpy, the same bits as under fp32
        y32, dx32, grads32 = _run(factory(), x, TrainingOps("fp32"), dy)
        assert np.array_equal(y, y32) and np.array_equal(dx, dx32)
        assert all(np.array_equal(grads[n], grads32[n]) for n in grads)
        assert not ops.records
        return
    passes = {(c.layer, c.pass_) for c in ops.records}
    for name in {c.layer for c in ops.records}:  # every GEMM ran all three passes
        assert {(name, p) for p in (Pass.FORWARD, Pass.BACKWARD_DATA, Pass.BACKWARD_WEIGHT)} <= passes
    for call in ops.records:
        assert call.a.saturated == call.b.saturated == 0
        assert 0 < call.bound_ratio <= 1.0, call  # nonzero: FP8 really rounded something


def test_hfp8_linear_and_depthwise_conv_end_to_end_bound():
    """dX and dW of single-GEMM layers against float64, with the bound computed here from the formula."""
    rng = _rng(11)
    x = rng.standard_normal((16, 12)).astype(np.float32)
    dy = (rng.standard_normal((16, 10)) * 1e-3).astype(np.float32)
    layer = Linear("fc", 12, 10, seed=12)
    ops = TrainingOps("hfp8")
    layer.forward(x, ops)
    dx = layer.backward(dy, ops)
    w = layer.weight.value.astype(np.float64)
    fwd, bwd_data, bwd_weight = ops.records
    e4m3, e5m2 = get_format("float8_e4m3b11fnuz"), get_format("float8_e5m2")
    for got, a, b, call, specs in ((dx, dy, w.T, bwd_data, (e5m2, e4m3)),
                                   (layer.weight.grad, x.T, dy, bwd_weight, (e4m3, e5m2))):
        a, b = np.asarray(a, np.float64)[None], np.asarray(b, np.float64)[None]
        bound = gemm_error_bound(np.abs(a), np.abs(b), *specs, call.a.scale, call.b.scale, call.arith)[0]
        err = np.abs(got - (a @ b)[0])
        assert np.all(err <= bound)
        assert err.max() > 2.0**-10 * np.abs((a @ b)[0]).max()  # FP8 error is visible, not float32-sized
        assert np.all(bound <= (2.0**-3 + 2.0**-4 + 2.0**-7 + 2.0**-8) * (np.abs(a) @ np.abs(b))[0] * 1.05
                      + 1e-9)  # and the bound is the documented ~2^-2.4 relative, not something looser


# ---- finite differences in float64 ----------------------------------------------------------------------

FD_LAYERS = ["linear", "conv_grouped_stride2", "conv_depthwise", "batchnorm_4d", "layernorm", "attention", "gelu",
             "avgpool", "maxpool"]


def _loss_fd(module, x, r, ops):
    return float(np.sum(module.forward(x, ops, train=True) * r))


@pytest.mark.parametrize("layer", FD_LAYERS)
def test_finite_differences_float64(layer):
    factory, make_x, _ = LAYERS[layer]
    module = factory()
    params = module.parameters()
    for p in params:
        p.value = p.value.astype(np.float64)
    x = make_x().astype(np.float64)
    ops = Float64Ops(record=False)
    r = _rng(5).standard_normal(module.forward(x, ops).shape)
    module.zero_grad()
    _loss_fd(module, x, r, ops)
    dx = module.backward(r, ops)
    rng = _rng(6)
    h = 1e-6
    for _ in range(3):
        vx = rng.standard_normal(x.shape)
        vp = [rng.standard_normal(p.value.shape) for p in params]
        analytic = np.sum(dx * vx) + sum(np.sum(p.grad * v) for p, v in zip(params, vp))
        values = [p.value.copy() for p in params]

        def at(t):
            for p, v0, v in zip(params, values, vp):
                p.value = v0 + t * v
            return _loss_fd(module, x + t * vx, r, ops)

        numeric = (at(h) - at(-h)) / (2 * h)
        for p, v0 in zip(params, values):
            p.value = v0
        assert abs(numeric - analytic) <= 1e-6 * max(1.0, abs(analytic)), (numeric, analytic)


def test_finite_differences_embedding_and_loss():
    ops = Float64Ops(record=False)
    emb = Embedding("emb", 7, 4, seed=1)
    emb.weight.value = emb.weight.value.astype(np.float64)
    ids = np.array([[1, 3, 3], [6, 0, 1]])
    r = _rng(2).standard_normal((2, 3, 4))
    emb.forward(ids, ops)
    assert emb.backward(r, ops) is None
    expected = np.zeros((7, 4))
    for (i, j), token in np.ndenumerate(ids):
        expected[token] += r[i, j]
    np.testing.assert_array_equal(emb.weight.grad, expected)

    loss = SoftmaxCrossEntropy()
    logits = _rng(3).standard_normal((4, 5))
    labels = np.array([0, 4, 2, 2])
    loss.forward(logits, labels, ops)
    grad = loss.backward(loss_scale=8.0)
    v = _rng(4).standard_normal(logits.shape)
    h = 1e-6
    numeric = (loss.forward(logits + h * v, labels, ops) - loss.forward(logits - h * v, labels, ops)) / (2 * h)
    assert abs(8.0 * numeric - np.sum(grad * v)) <= 1e-7


def test_softmax_input_in_float16_rounds_the_logits_first():
    logits = np.array([[1.0001, 2.0, 3.0]], np.float32)
    ops = TrainingOps("fp32")
    loss16 = SoftmaxCrossEntropy("float16").forward(logits, np.array([2]), ops)
    rounded = SoftmaxCrossEntropy().forward(logits.astype(np.float16).astype(np.float32), np.array([2]), ops)
    assert loss16 == rounded


def test_batchnorm_inference_uses_running_statistics():
    bn = BatchNorm("bn", 2, momentum=0.5)
    ops = TrainingOps("fp32")
    x = np.array([[1.0, 2.0], [3.0, 6.0]], np.float32)
    bn.forward(x, ops, train=True)
    np.testing.assert_allclose(bn.running_mean, [1.0, 2.0])  # 0.5 * 0 + 0.5 * batch mean (2, 4)
    np.testing.assert_allclose(bn.running_var, [0.5 + 0.5 * 2.0, 0.5 + 0.5 * 8.0])  # unbiased 2 and 8
    y = bn.forward(x, ops, train=False)
    np.testing.assert_allclose(y, (x - bn.running_mean) / np.sqrt(bn.running_var + 1e-5), rtol=1e-6)
