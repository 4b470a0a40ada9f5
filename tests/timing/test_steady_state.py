"""Steady-state extrapolation (hfp8sim.timing.steady) against the full simulation it replaces: every field of
LayerTiming equal, over random GEMM shapes, arrays, dataflows, scratchpads, schemes and DRAM channels
(Hypothesis), with the share of cases that did skip periods checked so the comparison is not vacuous."""

from __future__ import annotations

import dataclasses

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hfp8sim.errors import Hfp8SimError
from hfp8sim.run import core_model
from hfp8sim.schedule.mapper import GemmProblem, build_schedule, candidates
from hfp8sim.schedule.tile_cycles import tile_cycles_for
from hfp8sim.timing.engine import simulate_layer
from hfp8sim.timing.steady import SteadyStats, _binary_places
from tests.timing.conftest import make_arch

MAX_TILES = 1500  # keeps the full simulations of the Hypothesis cases to a few seconds in all


@dataclasses.dataclass(frozen=True)
class Case:
    arch: dict
    scheme: str
    gemm: tuple[int, int, int, int]
    pick: int  # which candidate tiling (modulo their number)


@st.composite
def cases(draw) -> Case:
    side = st.sampled_from([2, 3, 4, 8])
    pad = st.sampled_from([0.25, 0.5, 1, 2, 8])
    arch = {"array.rows": draw(side), "array.cols": draw(side),
            "array.dataflow": draw(st.sampled_from(["ws", "os", "is"])),
            "array.overlap_folds": draw(st.booleans()),
            "array.macs_per_pe_per_cycle": {8: draw(st.sampled_from([1, 2])), 16: 1, 32: 1},
            "dram": {"bw_bytes_per_cycle": draw(st.sampled_from([0.5, 1.0, 3.0, 7.5, 16.0, 64.0, 1e9])),
                     "latency_cycles": draw(st.sampled_from([0, 1, 7, 50, 300]))},
            "interconnect.dma_engines": draw(st.integers(1, 3))}
    for name in ("input", "weight", "output"):
        arch[f"scratchpads.{name}.size_kib"] = draw(pad)
        arch[f"scratchpads.{name}.double_buffered"] = draw(st.booleans())
    gemm = (draw(st.integers(1, 200)), draw(st.integers(1, 200)), draw(st.integers(1, 400)), draw(st.integers(1, 3)))
    return Case(arch, draw(st.sampled_from(["hfp8", "fp16"])), gemm, draw(st.integers(0, 50)))


def _schedule_and_model(case: Case, max_tiles: int = MAX_TILES):
    """The case's schedule and core model, or None when no tiling fits or every one is too long to simulate."""
    m, n, k, batch = case.gemm
    problem = GemmProblem("mm", m, n, k, batch, 1.0 if case.scheme == "hfp8" else 2.0,
                          1.0 if case.scheme == "hfp8" else 2.0, 2.0, 2.0)
    try:
        model = core_model(make_arch(**case.arch), case.scheme)
        found = [c for c in candidates(problem, model.array) if c.tiles <= max_tiles]
    except Hfp8SimError:  # scratchpads too small for the array or the problem: nothing to compare
        return None
    if not found:
        return None
    return build_schedule(problem, model.array, found[case.pick % len(found)]), model


def test_extrapolated_runs_equal_full_simulation():
    outcomes: list[int] = []  # tiles skipped per compared case

    @settings(max_examples=70, deadline=None, derandomize=True, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
    @given(case=cases())
    def check(case: Case):
        built = _schedule_and_model(case)
        if built is None:
            return
        schedule, model = built
        tile_cycles = tile_cycles_for(model)
        stats = SteadyStats()
        full = simulate_layer(schedule, model.timing, tile_cycles, extrapolate=False)
        fast = simulate_layer(schedule, model.timing, tile_cycles, stats=stats)
        assert fast == full  # every field, the finish order included
        assert sorted(fast.tile_finish_order) == list(range(len(schedule.tiles)))
        for give_up in (full.cycles // 3, full.cycles - 1, full.cycles):  # the search's early exit
            cut = simulate_layer(schedule, model.timing, tile_cycles, give_up_after=give_up)
            assert cut == simulate_layer(schedule, model.timing, tile_cycles, give_up_after=give_up,
                                         extrapolate=False)
        outcomes.append(stats.tiles_skipped)

    check()
    assert len(outcomes) >= 40, len(outcomes)  # most drawn cases have a tiling to compare
    jumped = [skipped for skipped in outcomes if skipped > 0]
    assert len(jumped) >= len(outcomes) // 3, (len(jumped), len(outcomes))
    assert sum(jumped) >= 10_000  # whole steady states were skipped, not one period here and there


def test_a_long_layer_skips_almost_every_tile_and_counts_exactly():
    case = Case({"array.rows": 4, "array.cols": 4, "dram": {"bw_bytes_per_cycle": 3.0, "latency_cycles": 40},
                 "scratchpads.input.size_kib": 0.5, "scratchpads.weight.size_kib": 0.5,
                 "scratchpads.output.size_kib": 0.5}, "hfp8", (256, 256, 512, 2), 0)
    schedule, model = _schedule_and_model(case, max_tiles=10**6)
    assert len(schedule.tiles) >= 2000
    tile_cycles = tile_cycles_for(model)
    stats = SteadyStats()
    fast = simulate_layer(schedule, model.timing, tile_cycles, stats=stats)
    assert fast == simulate_layer(schedule, model.timing, tile_cycles, extrapolate=False)
    assert stats.tiles_skipped >= 0.9 * len(schedule.tiles)
    assert fast.macs == 256 * 256 * 512 * 2


def test_a_recorded_run_is_simulated_in_full():
    case = Case({"dram": {"bw_bytes_per_cycle": 2.0, "latency_cycles": 5}, "scratchpads.input.size_kib": 0.5,
                 "scratchpads.weight.size_kib": 0.5, "scratchpads.output.size_kib": 0.5},
                "hfp8", (64, 64, 256, 1), 0)
    schedule, model = _schedule_and_model(case)
    tile_cycles = tile_cycles_for(model)
    stats = SteadyStats()
    recorded = simulate_layer(schedule, model.timing, tile_cycles, record=True, stats=stats)
    assert stats.jumps == 0
    assert len([e for e in recorded.events if e[1] == "array"]) == len(schedule.tiles)
    plain = simulate_layer(schedule, model.timing, tile_cycles)
    assert dataclasses.replace(recorded, events=[]) == plain


def test_binary_places_of_counter_increments():
    assert _binary_places(4096.0) == 0
    assert _binary_places(0.5) == 1
    assert _binary_places(3.75) == 2
    assert _binary_places(0.1) == 55  # not a short binary fraction: sums of it are rounded, so no jump
