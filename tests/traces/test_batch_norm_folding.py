"""Inference batch norm folded into the conv before it: the datapath quantizes the folded weights (checked bit
for bit against a fold done by hand in numpy), and the timing model gives a folded norm no work and no bytes,
for a workload and for a real network's trace alike."""

from __future__ import annotations

import dataclasses
import hashlib

import numpy as np
import pytest

from hfp8sim.config.arch import load_arch
from hfp8sim.datapath.conv import conv2d as datapath_conv2d
from hfp8sim.errors import TraceError
from hfp8sim.formats import encode, get_scheme
from hfp8sim.formats.scaling import tensor_scale
from hfp8sim.io import default_arch_path
from hfp8sim.networks import conv2d_bias, fold_batch_norm, read_legacy_pth
from hfp8sim.networks.efficientnet_lite0 import BATCH_NORM_EPS
from hfp8sim.networks.packages import efficientnet_lite0_weights_path
from hfp8sim.run import simulate_network
from hfp8sim.traces import DatapathOps
from hfp8sim.traces.datapath_ops import accumulator_limit
from hfp8sim.traces.schema import Trace, with_digest
from hfp8sim.traces.timing_view import network_from_trace
from hfp8sim.traces.trace import trace_workload
from hfp8sim.workloads import load_workload, resolve_workload

EPS = 1e-3


def _hand_fold(w, b, gamma, beta, mean, var, eps):
    """The fold written out in numpy, independently of hfp8sim: float64, one rounding to float32 at the end."""
    s = gamma.astype(np.float64) / np.sqrt(var.astype(np.float64) + eps)
    w_folded = (w.astype(np.float64) * s[:, None, None, None]).astype(np.float32)
    b_folded = ((b.astype(np.float64) - mean) * s + beta).astype(np.float32)
    return w_folded, b_folded


def _quantized(values, spec):
    """The project's quantizer with one power-of-two scale per tensor, amax on the format's largest value."""
    scale = np.float32(tensor_scale(values, spec))
    return encode(values * scale, spec), scale


def _bn_stats(rng, channels):
    return (rng.uniform(0.5, 2.0, channels).astype(np.float32), rng.normal(0, 0.5, channels).astype(np.float32),
            rng.normal(0, 0.3, channels).astype(np.float32), rng.uniform(0.05, 3.0, channels).astype(np.float32))


@pytest.mark.parametrize("groups, stride, padding", [(1, 2, (1, 1, 1, 1)), (6, 1, (1, 0, 1, 0))])
def test_folded_conv_is_bit_exact_with_a_fold_by_hand(groups, stride, padding):
    rng = np.random.default_rng(11 + groups)
    x = np.maximum(rng.normal(size=(2, 6, 9, 9)), 0).astype(np.float32)  # post-ReLU activations
    w = rng.normal(0, 0.4, size=(6, 6 // groups, 3, 3)).astype(np.float32)
    b = rng.normal(0, 0.1, 6).astype(np.float32)
    gamma, beta, mean, var = _bn_stats(rng, 6)
    arch = load_arch(default_arch_path())
    ops = DatapathOps.from_arch(arch)  # hfp8 on the default core, pair mode: as the default core adds
    spec = get_scheme("hfp8").forward
    assert accumulator_limit(ops.arith, w[0].size) >= float(spec.max_value)  # the scale lands amax on the max

    # the folding path: hfp8sim folds, DatapathOps quantizes and runs the conv, the bias comes after
    folded_w, folded_b = fold_batch_norm(w, b, gamma, beta, mean, var, EPS, np.dtype(np.float32))
    out = conv2d_bias(ops, "conv", x, folded_w, folded_b, (stride, stride), padding, (1, 1), groups)

    # the reference: fold by hand, quantize, run the datapath conv on the codes, unscale, add the bias
    ref_w, ref_b = _hand_fold(w, b, gamma, beta, mean, var, EPS)
    assert np.array_equal(folded_w.view(np.uint32), ref_w.view(np.uint32))
    assert np.array_equal(folded_b.view(np.uint32), ref_b.view(np.uint32))
    w_codes, w_scale = _quantized(ref_w, spec)
    x_codes, x_scale = _quantized(x, spec)
    acc = datapath_conv2d(x_codes, w_codes, spec, spec, ops.arith, stride=stride, padding=padding, groups=groups)
    ref = (acc / (np.float64(x_scale) * np.float64(w_scale))).astype(np.float32) + ref_b[None, :, None, None]

    assert ops.records[0].b.codes_sha256 == hashlib.sha256(w_codes.tobytes()).hexdigest()
    assert out.dtype == np.float32 and np.array_equal(out.view(np.uint32), ref.view(np.uint32))
    out_scale = np.float32(tensor_scale(ref, spec))  # the FP8 codes the next layer would read are the same too
    assert np.array_equal(encode(out * out_scale, spec), encode(ref * out_scale, spec))

    # not vacuous: quantizing the trained weights and scaling after the conv gives other bits
    raw_codes, _ = _quantized(w, spec)
    assert not np.array_equal(raw_codes, w_codes)
    unfolded = DatapathOps.from_arch(arch).conv2d("conv", x, w, (stride, stride), padding, (1, 1), groups)
    s = gamma.astype(np.float64) / np.sqrt(var.astype(np.float64) + EPS)
    affine = (unfolded * s[None, :, None, None].astype(np.float32)
              + ((b - mean) * s + beta).astype(np.float32)[None, :, None, None])
    assert not np.array_equal(affine, out)
    assert np.abs(affine - out).max() < 0.1 * np.abs(out).max()  # ... of the same function


# ------------------------------------------------------------------------------------------------------------
# EfficientNet-Lite0: the trace's weights and the timing model


@pytest.fixture(scope="module")
def lite0_trace():
    return trace_workload("efficientnet_lite0", images=1)  # the default core, folded (the default)


@pytest.mark.parametrize("conv, bn", [("stem", "_bn0"), ("blocks.3.depthwise", "_bn1"),
                                      ("blocks.15.project", "_bn2"), ("head", "_bn1")])
def test_lite0_trace_ran_the_folded_weights(lite0_trace, conv, bn):
    tensors = read_legacy_pth(efficientnet_lite0_weights_path())
    prefix = {"stem": "_conv_stem", "head": "_conv_head"}.get(conv)
    if prefix is None:
        block, part = conv.split(".")[1:]
        prefix = f"_blocks.{block}._{part}_conv"
        bn = f"_blocks.{block}.{bn}"
    w = tensors[prefix + ".weight"]
    stats = [tensors[f"{bn}.{field}"] for field in ("weight", "bias", "running_mean", "running_var")]
    folded, _ = _hand_fold(w, np.zeros(w.shape[0], np.float32), *stats, BATCH_NORM_EPS)
    spec = get_scheme(lite0_trace.document["scheme"]["name"]).forward
    layer = next(entry for entry in lite0_trace.document["layers"] if entry["name"] == conv)
    assert layer["b_codes_sha256"] == hashlib.sha256(_quantized(folded, spec)[0].tobytes()).hexdigest()
    assert layer["b_codes_sha256"] != hashlib.sha256(_quantized(w, spec)[0].tobytes()).hexdigest()


def test_lite0_trace_and_workload_agree_the_batch_norms_are_folded(lite0_trace):
    document = lite0_trace.document
    bns = [entry for entry in document["layers"] if entry["op"] == "batchnorm"]
    assert len(bns) == 49 and all(entry["folded"] is True for entry in bns)
    assert document["batch_norm"].startswith("49 folded into their conv (w' = w * gamma/sqrt(var+eps)")
    arch = load_arch(default_arch_path())
    from_trace = simulate_network(arch, network_from_trace(lite0_trace))
    workload = load_workload(resolve_workload("efficientnet_lite0"))
    from_workload = simulate_network(arch, workload)
    for result in (from_trace, from_workload):
        rows = {row.name: row for row in result.layers}
        assert {name for name, row in rows.items() if row.folded} == {entry["name"] for entry in bns}
        for entry in bns:
            row = rows[entry["name"]]
            assert (row.cycles, row.vector_cycles, row.vector_elementwise_ops, row.dram_read_bytes,
                    row.dram_write_bytes, row.sram_read_bytes, row.sram_write_bytes) == (0, 0, 0, 0, 0, 0, 0)
    # unfolded, each batch norm is one scale and one shift per element on the vector unit again
    unfolded = simulate_network(arch, dataclasses.replace(workload, fold_batch_norms=False))
    stem_bn = next(row for row in unfolded.layers if row.name == "stem.bn")
    assert not stem_bn.folded and stem_bn.vector_elementwise_ops == 2 * 32 * 112 * 112
    # it runs in its conv's output stage either way (fused, no DRAM round trip); folded, the lanes skip it
    assert stem_bn.fused and unfolded.totals.dram_read_bytes == from_workload.totals.dram_read_bytes
    assert unfolded.totals.vector_cycles > from_workload.totals.vector_cycles


def test_a_trace_may_fold_only_forward_batch_norms(lite0_trace):
    document = dict(lite0_trace.document)
    layers = [dict(entry) for entry in document["layers"]]
    relu = next(entry for entry in layers if entry["op"] == "relu6")
    relu["folded"] = True
    relu["vector_work"] = dict(relu["vector_work"], folded=True)
    layers[layers.index(relu)] = with_digest(relu)  # as if written so: the field check, not the digest, refuses it
    with pytest.raises(TraceError, match=r"stem.relu6\): only a forward batchnorm can be folded, not a relu6"):
        Trace.from_document({**document, "layers": layers}, "t.json")
