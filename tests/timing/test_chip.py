"""Multi-core chip: ring and crossbar transfer times by hand, and speed-up limited by DRAM and the ring."""

import copy

import pytest
import simpy

from hfp8sim.config.arch import parse_arch
from hfp8sim.run import simulate_network
from hfp8sim.timing.chip import Noc, NocSpec
from tests.timing.conftest import BASE, one_gemm


def run_transfers(spec, cores, moves):
    env = simpy.Environment()
    noc = Noc(env, cores, spec)
    done = {}

    def move(name, kind, src, dst, nbytes):
        if kind == "transfer":
            yield env.process(noc.transfer(src, dst, nbytes))
        else:
            yield env.process(noc.multicast(src, nbytes))
        done[name] = env.now

    for name, kind, src, dst, nbytes in moves:
        env.process(move(name, kind, src, dst, nbytes))
    env.run()
    return done, noc


def test_ring_transfers_take_bytes_over_bandwidth_plus_hops_times_latency():
    ring = NocSpec("ring", link_bytes_per_cycle=10, hop_latency_cycles=2, bidirectional=True)
    done, noc = run_transfers(ring, 4, [("a", "transfer", 0, 2, 100)])
    assert done == {"a": 100 / 10 + 2 * 2} and noc.byte_hops == 200
    done, _ = run_transfers(ring, 4, [("a", "transfer", 0, 3, 100)])
    assert done == {"a": 10 + 2}  # one hop the other way round
    # 0->2 and 1->2 both need link 1->2: the second waits for the first
    done, _ = run_transfers(ring, 4, [("a", "transfer", 0, 2, 100), ("b", "transfer", 1, 2, 100)])
    assert done == {"a": 14, "b": 14 + 10 + 2}
    # a multicast from core 0 goes 2 hops clockwise and 1 hop counter-clockwise at once
    done, noc = run_transfers(ring, 4, [("m", "multicast", 0, None, 100)])
    assert done == {"m": 14} and noc.byte_hops == 300
    one_way = NocSpec("ring", link_bytes_per_cycle=10, hop_latency_cycles=2, bidirectional=False)
    done, _ = run_transfers(one_way, 4, [("a", "transfer", 0, 3, 100)])
    assert done == {"a": 10 + 3 * 2}


def test_crossbar_is_one_hop_and_contends_at_the_receiver():
    xbar = NocSpec("crossbar", link_bytes_per_cycle=10, hop_latency_cycles=2)
    done, _ = run_transfers(xbar, 4, [("a", "transfer", 0, 3, 100), ("b", "transfer", 1, 2, 100)])
    assert done == {"a": 12, "b": 12}
    done, _ = run_transfers(xbar, 4, [("a", "transfer", 0, 3, 100), ("b", "transfer", 1, 3, 100)])
    assert done == {"a": 12, "b": 24}


def chip(cores, dram, link=1024.0, partition="auto"):
    data = copy.deepcopy(BASE)
    data["array"].update(rows=16, cols=16, overlap_folds=True)
    data["dram"] = dram
    data["chip"] = {"cores": cores, "partition": partition,
                    "noc": {"topology": "ring", "link_bytes_per_cycle": link, "hop_latency_cycles": 2}}
    return parse_arch(data, "chip")


def speedup(dram, link=1024.0, partition="auto", dims=(1024, 512, 512)):
    net = one_gemm(*dims)
    one = simulate_network(chip(1, dram, link, partition), net).cycles
    four = simulate_network(chip(4, dram, link, partition), net)
    return one / four.cycles, four


def test_four_cores_speed_up_a_compute_bound_layer():
    ratio, result = speedup({"ideal": True})
    assert 3.5 < ratio <= 4.0
    assert result.layers[0].cores == 4 and result.macs == 1024 * 512 * 512


def test_speed_up_is_limited_by_narrow_dram_and_a_narrow_ring():
    # 1.3 MB of compulsory traffic over 0.25 B/cycle is 5.2 M cycles, against 1 M cycles of compute on one
    # core: every byte still crosses the one channel, so four cores barely help
    narrow_dram, result = speedup({"bw_bytes_per_cycle": 0.25})
    assert narrow_dram < 1.1
    narrow_ring, result = speedup({"ideal": True}, link=0.5, partition="rows")
    wide_ring, _ = speedup({"ideal": True}, link=1024.0, partition="rows")
    assert narrow_ring < 2.0 < 3.5 < wide_ring  # weights multicast over a 0.5 B/cycle ring starve the cores
    assert result.layers[0].noc_bytes > 0 and result.layers[0].partition == "rows"


@pytest.mark.parametrize("partition", ["output_channels", "rows", "reduction"])
def test_every_partition_counts_every_mac_once(partition):
    _, result = speedup({"bw_bytes_per_cycle": 64.0}, partition=partition, dims=(256, 128, 384))
    layer = result.layers[0]
    assert layer.macs == 256 * 128 * 384 and layer.partition == partition
    assert layer.dram_write_bytes == 256 * 128  # every output reaches DRAM once
