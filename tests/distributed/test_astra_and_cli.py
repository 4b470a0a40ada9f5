"""ASTRA-sim export checked against the published examples' grammar, and the `distributed` command's bad inputs."""

from __future__ import annotations

from pathlib import Path

import pytest

from hfp8sim.cli import main
from hfp8sim.distributed.astra import astra_workload_text, parse_astra_workload
from hfp8sim.distributed.profile import LayerStepTimes, StepProfile, protocol_named
from hfp8sim.errors import DistributedError

DATA = Path(__file__).parent / "data"
PUBLISHED = DATA / "astra_sim_1_0_Resnet50_DataParallel.txt"


def test_the_published_resnet50_example_parses():
    layers = parse_astra_workload(PUBLISHED.read_text(), PUBLISHED.name)
    assert len(layers) == 54
    assert (layers[0].name, layers[0].fwd_compute, layers[0].wg_comm, layers[0].update) == \
        ("conv1", 13003, ("ALLREDUCE", 37632), 3229)
    assert layers[-1].name == "fc1000" and layers[-1].wg_comm == ("ALLREDUCE", 8192000)  # 2048 x 1000 FP32


@pytest.mark.parametrize("text,problem", [
    ((DATA / "astra_sim_1_0_microAllReduce.txt").read_text(), "policy DATA"),
    ("DATA\n2\nconv1 -1 5 NONE 0 5 NONE 0 5 ALLREDUCE 64 5\n", "says 2 layers"),
    ("DATA\n1\nconv1 -1 5 NONE 0 5 NONE 0 5 ALLREDUCE 64\n", "11 fields"),
    ("DATA\n1\nconv1 -1 5 NONE 0 5 NONE 0 5 BROADCAST 64 5\n", "BROADCAST"),
    ("DATA\n1\nconv1 -1 5.5 NONE 0 5 NONE 0 5 ALLREDUCE 64 5\n", "not an integer"),
    ("DATA\n1\n\nconv1 -1 5 NONE 0 5 NONE 0 5 ALLREDUCE 64 5\n", "says 1 layers"),
])
def test_the_reader_refuses_what_the_format_does_not_allow(text, problem):
    with pytest.raises(DistributedError, match=problem):
        parse_astra_workload(text)


def test_the_writer_round_trips_every_protocol():
    profile = StepProfile("toy", (LayerStepTimes("conv 1", 100.4, 0, 210.6, 80, 9408),
                                  LayerStepTimes("relu", 7, 8, 0, 0, 0)), 1e9)
    for name, wg, fwd, update in (("fp32_allreduce", ("ALLREDUCE", 37632), ("NONE", 0), 80),
                                  ("fp16_allreduce", ("ALLREDUCE", 18816), ("NONE", 0), 80),
                                  ("hfp8", ("REDUCESCATTER", 18816), ("ALLGATHER", 9408), 10)):
        conv, relu = parse_astra_workload(astra_workload_text(profile, protocol_named(name), chips=8))
        assert (conv.name, conv.reserved, conv.fwd_compute, conv.ig_compute, conv.wg_compute) == \
            ("conv_1", -1, 100, 0, 211)
        assert (conv.wg_comm, conv.fwd_comm, conv.ig_comm, conv.update) == (wg, fwd, ("NONE", 0), update)
        assert (relu.wg_comm, relu.fwd_comm, relu.update) == (("NONE", 0), ("NONE", 0), 0)


def test_resnet50_export_through_the_command(tmp_path, capsys):
    out = tmp_path / "resnet50.txt"
    assert main(["distributed", "--chips", "16", "--protocol", "fp32_allreduce,hfp8", "--astra-out", str(out),
                 "--csv", str(tmp_path / "steps.csv")]) == 0
    layers = parse_astra_workload(out.read_text(), out.name)
    assert len(layers) == 174  # every layer of the shipped ResNet-50, in forward order
    assert layers[0].name == "conv1" and layers[0].wg_comm == ("ALLREDUCE", 9408 * 4)
    assert sum(layer.wg_comm[1] for layer in layers) == 25_556_032 * 4  # every parameter once, FP32
    printed = capsys.readouterr().out
    assert "fp32_allreduce" in printed and "hfp8" in printed and "wrote" in printed
    rows = (tmp_path / "steps.csv").read_text().splitlines()
    assert len(rows) == 3 and rows[0].startswith("workload,topology,chips,protocol")


@pytest.mark.parametrize("args,message", [
    (["--link-gb-per-s", "0"], "ring link bandwidth: 0.0 GB/s; a link needs a positive finite bandwidth"),
    (["--link-gb-per-s", "-3"], "ring link bandwidth: -3.0 GB/s"),
    (["--link-gb-per-s", "nan"], "ring link bandwidth: nan GB/s"),
    (["--link-latency-us", "-1"], "ring link latency: -1.0 us"),
    (["--topology", "mesh"], "unknown topology 'mesh'; known: ring, torus2d, hierarchical"),
    (["--topology", "hierarchical", "--inter-gb-per-s", "0"], "inter-node (switch port) bandwidth: 0.0 GB/s"),
    (["--topology", "hierarchical", "--chips-per-node", "3"], "chips per node: 3 does not divide 64 chips"),
    (["--topology", "torus2d", "--torus-dims", "3x5"], "torus dimensions 3x5 do not make 64 chips"),
    (["--topology", "torus2d", "--torus-dims", "big"], "--torus-dims 'big'"),
    (["--chips", "1"], "chips: 1; a data-parallel system has 2 to 4096 chips"),
    (["--protocol", "int4"], "unknown protocol 'int4'"),
    (["--model", "exact"], "--model 'exact'; known: reduced, full"),
])
def test_bad_network_inputs_exit_2_with_one_line(args, message, capsys):
    assert main(["distributed", *args]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err, err
