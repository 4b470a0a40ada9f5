"""Which batch norms a network folds into their conv (or linear), and what a folded one costs the timing model."""

from __future__ import annotations

import dataclasses

import pytest

from hfp8sim.config.arch import load_arch
from hfp8sim.errors import WorkloadError
from hfp8sim.io import default_arch_path
from hfp8sim.results import LayerResult
from hfp8sim.run import simulate_network
from hfp8sim.workloads import load_workload, parse_workload_text, resolve_workload, save_workload
from hfp8sim.workloads.layers import Conv2d, Elementwise, MatMul, Norm, Pool, VectorWork
from hfp8sim.workloads.network import Network

IMAGE = (1, 8, 16, 16)


def _conv(name="conv", **kw):
    return Conv2d(name=name, C=8, H=16, W=16, K=8, R=3, S=3, padding=1, **kw)


def _bn(name="bn", producer="conv", **kw):
    return Norm(name=name, kind="batchnorm", shape=IMAGE, inputs=(producer,), **kw)


def _folded(network: Network) -> dict[str, bool]:
    return {layer.name: layer.folded for layer in network.layers if isinstance(layer, Norm)}


def test_an_inference_batch_norm_after_a_conv_or_a_linear_folds():
    net = Network("n", (_conv(), _bn(), Elementwise(name="relu", kind="relu", shape=IMAGE, inputs=("bn",)),
                        MatMul(name="fc", M=4, N=32, K=16, inputs=(None,)),
                        Norm(name="fc.bn", kind="batchnorm", shape=(4, 32), inputs=("fc",))))
    assert _folded(net) == {"bn": True, "fc.bn": True}
    assert net["bn"].vector_work() == VectorWork(folded=True) and net["bn"].vector_work().lane_ops == 0
    assert _folded(dataclasses.replace(net, fold_batch_norms=False)) == {"bn": False, "fc.bn": False}


def test_batch_norms_that_cannot_fold_stay_on_the_vector_unit():
    relu = Elementwise(name="relu", kind="relu", shape=IMAGE, inputs=("conv",))
    pool = Pool(name="pool", kind="maxpool", C=8, H=16, W=16, R=1, S=1, stride=1, inputs=("conv",))
    # the conv's own output is read by another layer too: folding would change what that layer reads
    assert _folded(Network("n", (_conv(), _bn(), relu))) == {"bn": False}
    # its producer is not a GEMM with weights
    assert _folded(Network("n", (_conv(), pool, _bn(producer="pool")))) == {"bn": False}
    attention = MatMul(name="qk", M=4, N=32, K=16, a_role="activation", b_role="activation", inputs=(None, None))
    assert _folded(Network("n", (attention, Norm(name="bn", kind="batchnorm", shape=(4, 32), inputs=("qk",))))) \
        == {"bn": False}
    # a training step normalises with the batch's statistics: nothing folds, not even the forward norm
    backward = Conv2d(name="conv.dX", C=8, H=16, W=16, K=8, R=3, S=3, padding=1, inputs=("bn",),
                      pass_="backward_data")
    assert _folded(Network("n", (_conv(), _bn(), backward))) == {"bn": False}


def test_folded_is_checked():
    with pytest.raises(WorkloadError, match="only a forward batchnorm folds into its producer's weights, not a "
                                            "layernorm"):
        Norm(name="ln", kind="layernorm", shape=(4, 8), folded=True)
    relu = Elementwise(name="relu", kind="relu", shape=IMAGE, inputs=("conv",))
    with pytest.raises(WorkloadError, match=r"layers\[1\] \(bn\): marked folded, but a batch norm folds only"):
        Network("n", (_conv(), _bn(folded=True), relu))


def test_a_workload_file_may_keep_its_batch_norms_unfolded(tmp_path):
    text = """
name: t
fold_batch_norms: false
layers:
  - {name: conv, op: conv2d, C: 3, H: 8, W: 8, K: 4, R: 3, S: 3, padding: 1}
  - {name: bn, op: batchnorm}
"""
    net = parse_workload_text(text, "t.yaml")
    assert not net.fold_batch_norms and _folded(net) == {"bn": False}
    again = load_workload(save_workload(net, tmp_path / "t.yaml"))
    assert dataclasses.replace(again, file="t.yaml") == net and "fold_batch_norms: false" in (tmp_path / "t.yaml").read_text()
    assert _folded(parse_workload_text(text.replace("fold_batch_norms: false\n", ""), "t.yaml")) == {"bn": True}


def test_shipped_cnns_fold_every_batch_norm():
    for name, count in (("resnet50", 53), ("mobilenet_v2", 52), ("efficientnet_lite0", 49), ("tiny_cnn", 1)):
        folded = _folded(load_workload(resolve_workload(name)))
        assert len(folded) == count and all(folded.values()), name


def test_a_folded_batch_norm_costs_nothing_and_changes_no_other_row():
    arch = load_arch(default_arch_path())
    net = load_workload(resolve_workload("tiny_cnn"))
    folded = simulate_network(arch, net)
    unfolded = simulate_network(arch, dataclasses.replace(net, fold_batch_norms=False))
    bn_folded, bn_unfolded = folded.layers[1], unfolded.layers[1]
    assert bn_folded.name == "conv1.bn" and bn_folded.folded and not bn_unfolded.folded
    # it stays in its conv's fused group (so the ReLU after it still fuses) and costs nothing there
    assert dataclasses.replace(bn_folded, energy={}) == LayerResult("conv1.bn", "norm", "vector", folded=True,
                                                                    fused=True)
    # unfolded: one scale and one shift per element of the 16x32x32 output, on the vector unit
    assert bn_unfolded.vector_elementwise_ops == 2 * 16 * 32 * 32 and bn_unfolded.vector_cycles > 0
    assert [r for i, r in enumerate(folded.layers) if i != 1] == [r for i, r in enumerate(unfolded.layers) if i != 1]
    assert folded.totals.energy["energy_total_pj"] < unfolded.totals.energy["energy_total_pj"]
    # the totals of a network's rows keep folded only where every row is folded
    assert not folded.totals.folded and (bn_folded + bn_folded).folded
