"""The data-parallel step: the full model equals the reduced one, buckets, and what a step must obey."""

from __future__ import annotations

import dataclasses

import pytest

from hfp8sim.distributed.profile import PROTOCOLS, LayerStepTimes, StepProfile, protocol_named
from hfp8sim.distributed.step import make_buckets, simulate_step
from hfp8sim.distributed.topology import build_topology
from hfp8sim.errors import DistributedError
from hfp8sim.results import LayerResult, NetworkResult
from hfp8sim.step_profiles import layer_step_times, step_profile_from_result

CLOCK = 1e9


def _profile(layers: int = 6, params: int = 400_000) -> StepProfile:
    """A small network: cycles and sizes vary per layer; one layer without parameters (a ReLU)."""
    rows = [LayerStepTimes(f"l{i}", 20_000 + 3_000 * i, 0 if i == 0 else 25_000 + 1_000 * i, 30_000 - 2_000 * i,
                           0 if i == 2 else 4_000, 0 if i == 2 else params * (i + 1)) for i in range(layers)]
    return StepProfile("toy", tuple(rows), CLOCK, per_chip_batch=8)


def _topology(kind: str, chips: int, gb: float = 5.0):
    per_node = max(d for d in (1, 2, 4) if chips % d == 0)
    return build_topology(kind, chips, gb_per_s=gb, latency_us=2.0, chips_per_node=per_node,
                          inter_gb_per_s=gb / 2, inter_latency_us=5.0)


@pytest.mark.parametrize("kind", ["ring", "torus2d", "hierarchical"])
@pytest.mark.parametrize("protocol", list(PROTOCOLS))
def test_full_model_equals_reduced_model(kind, protocol):
    profile = _profile()
    for chips in (2, 3, 4, 6, 8, 12, 16):
        topology = _topology(kind, chips)
        reduced = simulate_step(profile, topology, protocol_named(protocol), bucket_bytes=2e6, chunks=2)
        full = simulate_step(profile, topology, protocol_named(protocol), bucket_bytes=2e6, chunks=2, model="full")
        assert dataclasses.replace(full, model="reduced", link_transfers=0) == \
            dataclasses.replace(reduced, link_transfers=0)
        assert full.link_transfers == chips * reduced.link_transfers


@pytest.mark.parametrize("protocol", list(PROTOCOLS))
def test_a_step_obeys_its_budget(protocol):
    profile = _profile()
    chosen = protocol_named(protocol)
    for kind in ("ring", "torus2d", "hierarchical"):
        result = simulate_step(profile, _topology(kind, 8), chosen, bucket_bytes=2e6)
        assert result.step_seconds >= result.compute_seconds
        # the engine only ever waits for weights, so every exposed second has a collective in flight
        assert result.exposed_comm_seconds == pytest.approx(result.comm_seconds - result.overlapped_comm_seconds,
                                                            rel=1e-9, abs=1e-15)
        assert result.wire_bytes_per_param == pytest.approx(chosen.wire_bytes_per_param(8), rel=1e-12)
        shard = 8 if chosen.sharded else 1
        assert result.compute_seconds == pytest.approx(sum(
            l.forward_cycles + l.backward_data_cycles + l.backward_weight_cycles + l.update_cycles / shard
            for l in profile.layers) / CLOCK, rel=1e-12)


def test_fast_links_hide_the_communication_and_slow_ones_expose_it():
    profile = _profile()
    fast = simulate_step(profile, build_topology("ring", 8, gb_per_s=1e6, latency_us=0), protocol_named("hfp8"))
    slow = simulate_step(profile, build_topology("ring", 8, gb_per_s=1.0, latency_us=1), protocol_named("hfp8"))
    # a free network leaves only the last bucket's zero-time collective: the step is the compute
    assert fast.exposed_comm_seconds < 1e-3 * fast.compute_seconds
    # a slow one sends 3 x 7/8 bytes per parameter over 1 GB/s, nearly all of it after the backward pass
    wire = 3 * 7 / 8 * profile.param_elements / 1e9
    assert wire <= slow.comm_seconds < slow.step_seconds
    assert slow.exposed_comm_seconds > 0.5 * wire


def test_hfp8_sends_fewer_bytes_and_takes_less_time_than_all_reduce_on_a_slow_network():
    profile, ring = _profile(), build_topology("ring", 16, gb_per_s=2.0, latency_us=1)
    steps = {name: simulate_step(profile, ring, protocol_named(name)) for name in PROTOCOLS}
    assert steps["hfp8"].bytes_sent_per_chip == pytest.approx(0.75 * steps["fp16_allreduce"].bytes_sent_per_chip)
    assert steps["fp32_allreduce"].bytes_sent_per_chip == pytest.approx(2 * steps["fp16_allreduce"].bytes_sent_per_chip)
    assert steps["hfp8"].step_seconds < steps["fp16_allreduce"].step_seconds < steps["fp32_allreduce"].step_seconds


def test_buckets_fill_in_backward_order_to_the_cap():
    profile = _profile()  # parameters per layer: 0.4M, 0.8M, 0, 1.6M, 2.0M, 2.4M
    buckets = make_buckets(profile, gradient_bytes=2, bucket_bytes=5e6)
    # 2 bytes each: 4.8 MB < 5 MB, + 4.0 MB closes; 3.2 + 1.6 MB < 5 MB, + 0.8 MB closes
    assert [b.layers for b in buckets] == [(5, 4), (3, 1, 0)]
    assert [b.param_elements for b in buckets] == [4_400_000, 2_800_000]
    assert [b.layers for b in make_buckets(profile, 2, 6e6)] == [(5, 4), (3, 1, 0)]
    assert [b.layers for b in make_buckets(profile, 2, 9e6)] == [(5, 4, 3), (1, 0)]
    assert sum(b.param_elements for b in buckets) == profile.param_elements
    assert [b.layers for b in make_buckets(profile, 2, 1.0)] == [(5,), (4,), (3,), (1,), (0,)]


def test_a_profile_refuses_an_update_without_parameters():
    with pytest.raises(DistributedError, match="relu: 5 update cycles but no parameters"):
        StepProfile("toy", (LayerStepTimes("relu", 1, 1, 0, 5, 0),), CLOCK)


@pytest.mark.parametrize("bad", [
    dict(kind="ring", gb_per_s=0.0, latency_us=1.0),
    dict(kind="ring", gb_per_s=-5.0, latency_us=1.0),
    dict(kind="ring", gb_per_s=float("nan"), latency_us=1.0),
    dict(kind="torus2d", gb_per_s=10.0, latency_us=-1.0),
    dict(kind="mesh", gb_per_s=10.0, latency_us=1.0),
    dict(kind="hierarchical", gb_per_s=10.0, latency_us=1.0, chips_per_node=3),
    dict(kind="hierarchical", gb_per_s=10.0, latency_us=1.0, inter_gb_per_s=0.0),
    dict(kind="torus2d", gb_per_s=10.0, latency_us=1.0, torus_dims=(3, 3)),
])
def test_impossible_networks_are_refused(bad):
    kind = bad.pop("kind")
    with pytest.raises(DistributedError):
        build_topology(kind, 8, **bad)


def test_chip_counts_outside_the_range_are_refused():
    for chips in (0, 1, 4097):
        with pytest.raises(DistributedError, match="chips"):
            build_topology("ring", chips, gb_per_s=10, latency_us=1)


@dataclasses.dataclass(frozen=True)
class _TrainingRow(LayerResult):
    """A training-step row as h-trainstep's LayerResult will carry it (pass, forward layer, parameters)."""

    pass_: str = "forward"
    source_layer: str = ""
    param_elements: int = 0


def test_step_profile_groups_training_rows_by_forward_layer_and_pass():
    rows = [_TrainingRow("conv1", "conv2d", "gemm", cycles=100, source_layer="conv1", param_elements=9408),
            _TrainingRow("relu1", "relu", "vector", cycles=7, source_layer="relu1"),
            _TrainingRow("fc", "matmul", "gemm", cycles=50, source_layer="fc", param_elements=2000),
            _TrainingRow("fc.dW", "matmul", "gemm", cycles=55, pass_="backward_weight", source_layer="fc"),
            _TrainingRow("fc.dX", "matmul", "gemm", cycles=51, pass_="backward_data", source_layer="fc"),
            _TrainingRow("fc.sgd", "update", "vector", cycles=9, pass_="update", source_layer="fc"),
            _TrainingRow("relu1.mask", "relu", "vector", cycles=8, pass_="backward_data", source_layer="relu1"),
            _TrainingRow("conv1.dW", "conv2d", "gemm", cycles=210, pass_="backward_weight", source_layer="conv1"),
            _TrainingRow("conv1.sgd", "update", "vector", cycles=3, pass_="update", source_layer="conv1")]
    result = NetworkResult("toy", "arch", "hfp8", 1.5, 1024, tuple(rows))
    profile = step_profile_from_result(result, per_chip_batch=32)
    assert profile.layers == (LayerStepTimes("conv1", 100, 0, 210, 3, 9408), LayerStepTimes("relu1", 7, 8, 0, 0, 0),
                              LayerStepTimes("fc", 50, 51, 55, 9, 2000))
    assert (profile.clock_hz, profile.per_chip_batch, profile.param_elements) == (1.5e9, 32, 11408)
    # rows without the training fields (a forward run) are forward rows of their own layer
    assert layer_step_times([LayerResult("a", "relu", "vector", cycles=4)]) == (LayerStepTimes("a", 4, 0, 0, 0, 0),)
