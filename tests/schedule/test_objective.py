"""The mapper's objective (``mapper.objective: time | energy | edp``): the search is exact for each (brute force
over every candidate agrees, and every bound is below what the simulation gives), each objective's choice is
no worse under its own measure than the others' on every GEMM layer of ResNet-50 and BERT-base, and the
choice and the runner-up's cost reach ``layers.csv``."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hfp8sim.config.arch import parse_arch
from hfp8sim.errors import ConfigError
from hfp8sim.io import read_yaml
from hfp8sim.io.shipped import default_arch_path
from hfp8sim.results import read_run_folder
from hfp8sim.run import core_model, objective_cost, simulate_network
from hfp8sim.schedule.mapper import GemmProblem, build_schedule, candidates
from hfp8sim.schedule.search import CyclesCost, gemm_problem, _pipeline_bound, _ranked_candidates, best_schedule
from hfp8sim.timing.simulator import CoreSimulator
from hfp8sim.workloads import MatMul, Network, load_workload, resolve_workload
from tests.schedule.conftest import examples
from tests.timing.conftest import make_arch

OBJECTIVES = ("time", "energy", "edp")
# counters of a simulation that Simulator.counted does not give (the simulation's own, or per tile only)
SIMULATED_ONLY = {"cycles", "stall_cycles", "sram_input_fill_bytes", "sram_weight_fill_bytes",
                  "tile_finish_order", "events"}


def default_core(objective: str):
    data = read_yaml(default_arch_path())
    data["mapper"] = {"objective": objective}
    return parse_arch(data, f"default.yaml ({objective})")


def brute_force(problem: GemmProblem, sim: CoreSimulator, cost) -> list[tuple[float, int, object, object]]:
    """Every candidate simulated to the end: (cost, mapper order, schedule, timing), cheapest first."""
    plans = []
    for order, cand in enumerate(candidates(problem, sim.model.array)):
        schedule = build_schedule(problem, sim.model.array, cand)
        timing = sim.simulate(schedule)
        plans.append((cost.of_plan(problem, [schedule], timing), order, schedule, timing))
    return sorted(plans, key=lambda plan: plan[:2])


small_cores = st.fixed_dictionaries({
    "array.rows": st.sampled_from([2, 4]), "array.cols": st.sampled_from([2, 4]),
    "array.dataflow": st.sampled_from(["ws", "os", "is"]),
    "array.overlap_folds": st.booleans(),
    "dram": st.sampled_from([{"ideal": True}, {"bw_bytes_per_cycle": 1}, {"bw_bytes_per_cycle": 4, "latency_cycles": 20},
                             {"bw_bytes_per_cycle": 16, "latency_cycles": 5}]),
    "interconnect.dma_engines": st.sampled_from([1, 2]),
    "scratchpads.input.size_kib": st.sampled_from([0.0625, 0.25, 64]),
    "scratchpads.weight.size_kib": st.sampled_from([0.0625, 0.25, 64]),
    "scratchpads.output.size_kib": st.sampled_from([0.25, 1, 64]),
    "scratchpads.input.double_buffered": st.booleans(),
    "scratchpads.output.double_buffered": st.booleans(),
    "scratchpads.input.read_bytes_per_cycle": st.sampled_from([1e9, 3]),
    "scratchpads.output.write_bytes_per_cycle": st.sampled_from([1e9, 8]),
    "mapper.objective": st.sampled_from(OBJECTIVES),
})


@examples(25)
@given(core=small_cores, dims=st.tuples(st.integers(1, 12), st.integers(1, 12), st.integers(1, 12)),
       batch=st.integers(1, 2))
def test_the_search_is_exact_and_its_bounds_are_lower_bounds(core, dims, batch):
    try:
        arch = make_arch(**{"mapper": {}}, **core)
    except ConfigError:
        return  # a minimal tile does not fit these scratchpads
    model = core_model(arch)
    sim = CoreSimulator.of(model)
    problem = GemmProblem("mm", *dims, batch, 1, 1, 1, 2)
    cost = objective_cost(model) or CyclesCost()
    plans = brute_force(problem, sim, cost)
    bw, latency = sim.core.dram_bytes_per_cycle, sim.core.dram_latency_cycles
    ranked = {entry.order: entry for entry in _ranked_candidates(problem, model.array, sim, cost, bw, latency)}
    for plan_cost, order, schedule, timing in plans:
        entry = ranked[order]
        assert entry.bound <= plan_cost * (1 + 1e-12)
        assert entry.cycles_bound <= timing.cycles * (1 + 1e-12)
        assert _pipeline_bound(schedule, sim, bw, latency) <= timing.cycles * (1 + 1e-12)
        if math.isinf(bw):  # ideal memory: the cycle bound is the closed form of the cycles
            assert entry.cycles_bound == pytest.approx(timing.cycles, rel=1e-12)
        counted = sim.counted(problem, entry.candidate)
        for name, value in vars(timing).items():
            if name not in SIMULATED_ONLY:
                assert getattr(counted, name) == pytest.approx(value, rel=1e-12), name
    choice = best_schedule(problem, model.array, sim, cost)
    assert choice.cost == pytest.approx(plans[0][0], rel=1e-12)
    assert choice.runner_up == (pytest.approx(plans[1][0], rel=1e-12) if len(plans) > 1 else None)
    if not (math.isinf(bw) and cost.objective == "time"):  # else ties are decided by the closed form
        assert (choice.schedule.tile_shape, choice.schedule.loop_order) == (plans[0][2].tile_shape,
                                                                           plans[0][2].loop_order)


@pytest.fixture(scope="module")
def default_runs() -> dict[tuple[str, str], object]:
    """ResNet-50 and BERT-base on the default core under each objective (identical layers plan once)."""
    runs = {}
    for workload in ("resnet50", "bert_base_seq128"):
        network = load_workload(resolve_workload(workload))
        for objective in OBJECTIVES:
            runs[workload, objective] = simulate_network(default_core(objective), network)
    return runs


@pytest.mark.parametrize("workload", ["resnet50", "bert_base_seq128"])
def test_each_objective_is_best_at_its_own_measure_on_every_layer(default_runs, workload):
    rows = {objective: [layer for layer in default_runs[workload, objective].layers if layer.kind == "gemm"]
            for objective in OBJECTIVES}
    assert len({len(layers) for layers in rows.values()}) == 1 and rows["time"]

    def energy(layer):
        return layer.energy["energy_total_pj"]

    slack = 1 + 1e-12  # the same plan priced again after the search: only rounding may differ
    for t, e, d in zip(rows["time"], rows["energy"], rows["edp"]):
        assert t.name == e.name == d.name
        assert (t.objective, e.objective, d.objective) == OBJECTIVES
        assert energy(e) <= energy(t) * slack and energy(e) <= energy(d) * slack
        assert t.cycles <= e.cycles and t.cycles <= d.cycles
        assert energy(d) * d.cycles <= min(energy(t) * t.cycles, energy(e) * e.cycles) * slack
        # the runner-up never beats the chosen plan
        for layer, own in ((t, t.cycles), (e, energy(e)), (d, energy(d) * d.cycles)):
            assert layer.runner_up_cost is None or layer.runner_up_cost >= own / slack


def test_energy_objective_moves_fewer_bytes_where_time_does_not_care(tmp_path):
    """FP16 2048^3 GEMM on the default core at the efficient operating point (1.0 GHz: 204.8 GB/s is 204.8
    bytes per cycle, so DRAM is not the bottleneck and the fastest tiling re-reads A 16 times).  Usable
    scratchpad per tile 512 KiB; A, B, C are 8 MiB each in FP16.
    time:   1024x128x256, n outside m: B's 2048x128 column block (512 KiB) fits and is reused over m; A is
            re-read per n-block: 16 x 8 + 8 + 8 = 144 MiB.
    energy: 512x256x256, m outside n: A's 512x2048 row block (2 MiB) does not fit: A is re-read per n-block
            (8x), B per m-block (4x): 64 + 32 + 8 = 104 MiB, a few cycles slower."""
    data = read_yaml(default_arch_path())
    data.update(scheme="fp16", clock_ghz=1.0, energy={"operating_point": "efficient"})
    network = Network("gemm2048", (MatMul(name="mm", M=2048, N=2048, K=2048),))
    layers = {}
    for objective in ("time", "energy"):
        data["mapper"] = {"objective": objective}
        layers[objective] = simulate_network(parse_arch(data, objective), network).layers[0]
    t, e = layers["time"], layers["energy"]
    mib = 1 << 20
    assert (t.tile_shape, t.loop_order, t.dram_read_bytes + t.dram_write_bytes) == ("1024x128x256", "n,m,k", 144 * mib)
    assert (e.tile_shape, e.loop_order, e.dram_read_bytes + e.dram_write_bytes) == ("512x256x256", "m,n,k", 104 * mib)
    assert e.energy["energy_total_pj"] < t.energy["energy_total_pj"] and e.cycles > t.cycles
    assert e.runner_up_cost >= e.energy["energy_total_pj"] and t.runner_up_cost >= t.cycles


def test_the_objective_and_runner_up_are_layers_csv_columns(tmp_path):
    arch = default_core("edp")
    model, network = core_model(arch), load_workload(resolve_workload("tiny_cnn"))
    result = simulate_network(arch, network)
    result.write(tmp_path)
    _, rows = read_run_folder(tmp_path)
    gemm = [row for row in rows if row["kind"] == "gemm"]
    assert gemm and all(row["objective"] == "edp" for row in gemm)
    assert any(row["runner_up_cost"] is not None for row in gemm)
    for row, layer in zip(rows, result.layers):
        assert row["runner_up_cost"] == layer.runner_up_cost  # an empty cell reads back as None
        if layer.runner_up_cost is not None:
            assert layer.runner_up_cost >= layer.energy["energy_total_pj"] * layer.cycles / (1 + 1e-12)
        elif layer.kind == "gemm":  # a layer with a single feasible tiling
            assert len(candidates(gemm_problem(network.layers[rows.index(row)], model), model.array)) == 1
        else:
            assert (row["objective"], row["runner_up_cost"]) == (None, None)
    assert result.totals.runner_up_cost is None  # one layer's alternative does not add up


def test_an_unknown_objective_names_the_key_and_the_choices():
    data = read_yaml(default_arch_path())
    data["mapper"] = {"objective": "speed"}
    with pytest.raises(ConfigError, match=r"mapper\.objective.*'time', 'energy' or 'edp'"):
        parse_arch(data, "arch.yaml")
