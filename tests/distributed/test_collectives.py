"""Collectives on an idle network against their closed forms (alpha-beta model), and the bytes each chip sends
per parameter under each protocol, for N = 2..64 on every topology; the full model against the reduced one."""

from __future__ import annotations

import pytest

from hfp8sim.distributed.collectives import ALL_GATHER, ALL_REDUCE, REDUCE_SCATTER, simulate_collective
from hfp8sim.distributed.topology import build_topology

GB, LAT_US = 25.0, 1.5
BYTES = 3_000_000.0
CHIPS = range(2, 65)


def _topology(kind: str, chips: int):
    per_node = max(d for d in (1, 2, 4) if chips % d == 0)
    return build_topology(kind, chips, gb_per_s=GB, latency_us=LAT_US, chips_per_node=per_node,
                          inter_gb_per_s=10.0, inter_latency_us=4.0)


def _dims(topology) -> list[tuple[int, float, float]]:
    """(ring size, bytes/s, latency s) per dimension, read from the topology's own figures."""
    return [(d.size, d.gb_per_s * 1e9, d.latency_us * 1e-6) for d in topology.dimensions]


def _scatter_closed_form(topology, nbytes: float) -> float:
    """sum over dimensions of (k - 1) (a + S / (P B)), P = the product of the sizes up to this dimension."""
    total, held = 0.0, 1
    for size, bandwidth, latency in _dims(topology):
        held *= size
        total += (size - 1) * (latency + nbytes / (held * bandwidth))
    return total


@pytest.mark.parametrize("chips", CHIPS)
def test_ring_all_reduce_is_the_textbook_closed_form(chips):
    ring = build_topology("ring", chips, gb_per_s=GB, latency_us=LAT_US)
    expected = 2 * (chips - 1) / chips * BYTES / (GB * 1e9) + 2 * (chips - 1) * LAT_US * 1e-6
    assert simulate_collective(ring, ALL_REDUCE, BYTES).seconds == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("kind", ["ring", "torus2d", "hierarchical"])
def test_collectives_on_every_topology_follow_the_per_dimension_closed_form(kind):
    for chips in CHIPS:
        topology = _topology(kind, chips)
        scatter = _scatter_closed_form(topology, BYTES)
        assert simulate_collective(topology, REDUCE_SCATTER, BYTES).seconds == pytest.approx(scatter, rel=1e-12)
        assert simulate_collective(topology, ALL_GATHER, BYTES).seconds == pytest.approx(scatter, rel=1e-12)
        assert simulate_collective(topology, ALL_REDUCE, BYTES).seconds == pytest.approx(2 * scatter, rel=1e-12)


@pytest.mark.parametrize("kind", ["ring", "torus2d", "hierarchical"])
def test_bytes_per_parameter_per_protocol(kind):
    """HFP8: reduce-scatter FP16 gradients + all-gather FP8 weights = (N-1)/N x (2 + 1) bytes per parameter;
    FP16 all-reduce = 2 x (N-1)/N x 2."""
    params = 1_000_000
    for chips in CHIPS:
        topology = _topology(kind, chips)
        hfp8 = (simulate_collective(topology, REDUCE_SCATTER, 2 * params, chunks=3).bytes_sent[0] +
                simulate_collective(topology, ALL_GATHER, 1 * params, chunks=3).bytes_sent[0])
        fp16 = simulate_collective(topology, ALL_REDUCE, 2 * params, chunks=3).bytes_sent[0]
        assert hfp8 / params == pytest.approx((chips - 1) / chips * (2 + 1), rel=1e-12)
        assert fp16 / params == pytest.approx(2 * (chips - 1) / chips * 2, rel=1e-12)


@pytest.mark.parametrize("chips,chunks,latency_us", [(2, 3, 1.0), (4, 3, 1.0), (16, 3, 1.0), (8, 8, 0.1),
                                                     (8, 2, 50.0), (64, 5, 2.0)])
def test_chunked_ring_pipelines_as_its_closed_form(chips, chunks, latency_us):
    """Chunks share the link: rounds of max(C sigma, sigma + a), K = 2 (N - 1) steps."""
    ring = build_topology("ring", chips, gb_per_s=GB, latency_us=latency_us)
    sigma, a, steps = BYTES / (chunks * chips * GB * 1e9), latency_us * 1e-6, 2 * (chips - 1)
    expected = (steps - 1) * max(chunks * sigma, sigma + a) + chunks * sigma + a
    assert simulate_collective(ring, ALL_REDUCE, BYTES, chunks=chunks).seconds == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("kind", ["ring", "torus2d", "hierarchical"])
def test_full_model_equals_reduced_model_on_small_systems(kind):
    for chips in range(2, 17):
        topology = _topology(kind, chips)
        for collective in (ALL_REDUCE, REDUCE_SCATTER, ALL_GATHER):
            reduced = simulate_collective(topology, collective, BYTES, chunks=3)
            full = simulate_collective(topology, collective, BYTES, chunks=3, model="full")
            assert full.seconds == reduced.seconds
            assert set(full.bytes_sent) == {reduced.bytes_sent[0]}  # every chip sends the same
            assert full.transfers == chips * reduced.transfers
