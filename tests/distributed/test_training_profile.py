"""Step profiles from real training-step runs: what the multi-chip model reads is what the chip simulated."""

from __future__ import annotations

import pytest

from hfp8sim.cli import main
from hfp8sim.config.arch import resolve_arch
from hfp8sim.distributed.profile import PROTOCOLS, protocol_named
from hfp8sim.run import simulate_network
from hfp8sim.step_profiles import StepProfiles, step_profile_from_result, training_step_profile
from hfp8sim.workloads import load_workload_file, workload_file_kind
from hfp8sim.workloads.training_step import derive_training_step


def _tiny_cnn():
    return load_workload_file(workload_file_kind("tiny_cnn")[0])


def test_profile_of_a_real_training_step_keeps_every_cycle_and_parameter():
    network, arch = _tiny_cnn(), resolve_arch(None)
    result = simulate_network(arch, derive_training_step(network, batch=4, update_rule="round_off_residual"))
    profile = step_profile_from_result(result, per_chip_batch=4)
    # one entry per forward layer, in forward order
    assert [layer.name for layer in profile.layers] == [layer.name for layer in network.layers]
    # every row of every pass lands in exactly one layer: the per-pass sums are the run's own
    per_pass = result.per_pass()
    assert sum(l.forward_cycles for l in profile.layers) == pytest.approx(per_pass["forward"].cycles, rel=1e-12)
    assert sum(l.backward_data_cycles for l in profile.layers) == \
        pytest.approx(per_pass["backward_data"].cycles, rel=1e-12)
    assert sum(l.backward_weight_cycles for l in profile.layers) == \
        pytest.approx(per_pass["backward_weight"].cycles, rel=1e-12)
    assert sum(l.update_cycles for l in profile.layers) == pytest.approx(per_pass["update"].cycles, rel=1e-12)
    assert sum(l.cycles for l in profile.layers) == pytest.approx(sum(r.cycles for r in result.layers), rel=1e-12)
    # parameters: the workload's, layer by layer; only layers with parameters are updated, and only GEMMs have a
    # weight-gradient pass (a batch norm's scale and shift gradients come out of its backward op)
    assert {l.name: l.param_elements for l in profile.layers} == \
        {layer.name: layer.weight_elements for layer in network.layers}
    for layer, forward in zip(profile.layers, network.layers):
        assert (layer.update_cycles > 0) == (layer.param_elements > 0)
        assert (layer.backward_weight_cycles > 0) == (layer.param_elements > 0 and forward.is_gemm)
    assert profile.layers[0].backward_data_cycles == 0  # the input needs no gradient
    assert profile.seconds(1) == 1 / (arch.clock_ghz * 1e9)


def test_each_protocol_trains_with_its_own_update_rule_simulated_once():
    simulated = []
    profiles = StepProfiles(resolve_arch(None), _tiny_cnn(), 4, on_simulate=simulated.append)
    by_protocol = {name: profiles.for_protocol(protocol_named(name)) for name in PROTOCOLS}
    assert simulated == ["round_off_residual", "fp32_master"]  # the two all-reduces share one run
    assert by_protocol["fp16_allreduce"] is by_protocol["fp32_allreduce"]
    assert by_protocol["hfp8"].master_weight_format == "forward format + float16 residual"
    assert by_protocol["fp32_allreduce"].master_weight_format == "float32"
    # the same run as a direct call, to the bit
    direct = training_step_profile(resolve_arch(None), _tiny_cnn(), 4, update_rule="round_off_residual")
    assert direct == by_protocol["hfp8"]
    # the two rules are two different updates (the same forward and backward GEMMs)
    hfp8, fp32 = by_protocol["hfp8"].layers, by_protocol["fp32_allreduce"].layers
    assert [l.update_cycles for l in hfp8] != [l.update_cycles for l in fp32]
    assert [l.backward_weight_cycles for l in hfp8] == [l.backward_weight_cycles for l in fp32]
    # an imposed rule is used for every protocol
    assert profiles.for_protocol(protocol_named("hfp8"), "fp32_master") is by_protocol["fp32_allreduce"]
    assert len(simulated) == 2


def test_global_batch_that_does_not_divide_across_chips_exits_2(capsys):
    assert main(["distributed", "default", "tiny_cnn", "--chips", "8", "--batch", "12"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "batch 12 does not divide across 8 chips" in err, err


def test_the_command_runs_the_per_chip_share_of_the_global_batch(capsys):
    assert main(["distributed", "default", "tiny_cnn", "--chips", "4", "--protocol", "hfp8,fp16_allreduce"]) == 0
    err = capsys.readouterr().err
    assert "at batch 32 (global 128)" in err  # the default: 32 per chip
    assert "(round_off_residual)" in err and "(fp32_master)" in err
    assert main(["distributed", "default", "tiny_cnn", "--chips", "4", "--batch", "8", "--protocol", "hfp8",
                 "--update-rule", "fp32_master"]) == 0
    err = capsys.readouterr().err
    assert "at batch 2 (global 8)" in err and "(fp32_master)" in err and "round_off_residual" not in err
