"""Conservation, on every shipped network x every shipped arch, in the arch's FP8 scheme and in FP16.

* No interval moves more DRAM bytes than the channel allows: every layer that owns its time (a GEMM, a layer
  alone on the vector unit), every fused group (a GEMM and the layers its output stage applies, whose bytes
  share the GEMM's time) and the whole run stay at or below the channel's bytes per cycle.
* DRAM bytes >= compulsory bytes, per layer and per run; and, independently of how a layer's compulsory
  bytes are defined, a GEMM reads its B operand and writes its output at least once.
* The array gets what it consumes: MACs = batch*M*N*K, scratchpad reads of A and B at least M*K and K*N
  per GEMM, and every byte filled into the input and weight scratchpads came from DRAM (or, on a chip, from
  DRAM or another core over a hop of the on-chip network).
* Every tensor a layer reads from DRAM was written there by its producer (the writes are counted).
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from hfp8sim.config.arch import load_arch
from hfp8sim.run import core_model, simulate_network
from hfp8sim.schedule.search import gemm_problem
from hfp8sim.timing.fusion import plan_placements
from hfp8sim.workloads.files import load_workload_file

ROOT = Path(__file__).resolve().parents[2]
ARCHS = sorted(p.stem for p in (ROOT / "arch_configs").glob("*.yaml"))
NETWORKS = sorted(p.stem for p in (ROOT / "workloads").glob("*.yaml"))
# (network, arch) pairs whose two runs took over a second of CPU each (measured: 17 pairs, ~530 s of CPU in
# all, nearly all of it the mapper's search on eyeriss_like's 12x14 array and on the 4-core chip); the other
# 43 pairs (86 runs) take ~15 s.  Marked slow: `-m "not slow"` leaves them out.
SLOW = {("gpt2_decode1024", "eyeriss_like"), ("gpt2_prefill1024", "eyeriss_like"),
        ("gpt2_prefill1024", "ibm_like_4core"), ("efficientnet_lite0", "eyeriss_like"),
        ("mobilenet_v2", "eyeriss_like"), ("resnet50", "eyeriss_like"), ("efficientnet_lite0", "ibm_like_4core"),
        ("vit_b16", "eyeriss_like"), ("transformer_base_wmt", "eyeriss_like"), ("mobilenet_v2", "ibm_like_4core"),
        ("bert_base_seq128", "eyeriss_like"), ("transformer_base_wmt", "ibm_like_4core"),
        ("gpt2_prefill1024", "default"), ("resnet50", "ibm_like_4core"), ("vit_b16", "ibm_like_4core"),
        ("bert_base_seq128", "ibm_like_4core"), ("minilm_l6_seq128", "eyeriss_like")}
SCHEMES = ("arch", "fp16")

_networks: dict[str, object] = {}


def _network(name: str):
    if name not in _networks:
        _networks[name] = load_workload_file(ROOT / "workloads" / f"{name}.yaml")
    return _networks[name]


def _cases():
    for network in NETWORKS:
        for arch in ARCHS:
            marks = [pytest.mark.slow] if (network, arch) in SLOW else []
            for scheme in SCHEMES:
                yield pytest.param(network, arch, scheme, marks=marks, id=f"{network}-{arch}-{scheme}")


def _within(moved: float, cycles: float, bytes_per_cycle: float) -> bool:
    """moved <= cycles * bandwidth, with room for float rounding of fractional cycles only."""
    return moved <= cycles * bytes_per_cycle * (1 + 1e-9) + 1e-6


def _groups(layers):
    """The run's rows cut into what owns its time: a GEMM with the fused rows after it, or one row."""
    groups: list[list] = []
    for layer in layers:
        if layer.fused and groups and groups[-1][0].mapping:  # a GEMM, or a grouped conv on the vector unit
            groups[-1].append(layer)
        else:
            assert not layer.fused, f"{layer.name}: a fused row that does not follow its GEMM's group"
            groups.append([layer])
    return groups


def _check_bandwidth(result, bytes_per_cycle: float) -> None:
    moved = lambda rows: sum(r.dram_read_bytes + r.dram_write_bytes for r in rows)  # noqa: E731
    for group in _groups(result.layers):
        assert _within(moved(group), sum(r.cycles for r in group), bytes_per_cycle), \
            f"{group[0].name} (+{len(group) - 1} fused): {moved(group)} B in {sum(r.cycles for r in group)} cycles"
        head = group[0]  # a GEMM's own traffic also fits its own cycles
        assert _within(moved([head]), head.cycles, bytes_per_cycle), head.name
    assert _within(moved(result.layers), result.cycles, bytes_per_cycle)


def _check_gemm_counts(layer, row, model) -> None:
    p = gemm_problem(layer, model)
    assert row.macs == p.batch * p.M * p.N * p.K, layer.name
    assert row.dram_read_bytes + row.dram_write_bytes >= row.compulsory_dram_bytes * (1 - 1e-12), layer.name
    # B at least once (a weight gradient's B is the conv input, read as the tensor its windows touch)
    assert row.dram_read_bytes >= p.batch * p.b_total_bytes * (1 - 1e-12), layer.name
    assert row.dram_write_bytes >= p.batch * p.M * p.N * p.out_bytes * (1 - 1e-12), layer.name  # outputs once
    assert row.sram_input_read_bytes >= p.batch * p.M * p.K * p.a_bytes * (1 - 1e-12), layer.name
    assert row.sram_weight_read_bytes >= p.batch * p.K * p.N * p.b_bytes * (1 - 1e-12), layer.name
    fills = row.sram_input_write_bytes + row.sram_weight_write_bytes
    if row.cores == 1:
        assert fills == pytest.approx(row.dram_read_bytes, rel=1e-12), layer.name
    else:  # a block fetched by one core reaches each other core over one hop of the on-chip network
        assert row.dram_read_bytes * (1 - 1e-12) <= fills <= (row.dram_read_bytes + row.noc_byte_hops) * (1 + 1e-12)


def _check_tensors_reach_dram(network, rows, model) -> None:
    """A tensor a layer reads from DRAM was written there: by a GEMM's stores (its group's last value), by
    a fused layer's spill, or by a layer alone that writes its output."""
    layers = list(network.layers)
    placements = plan_placements(layers, fuse=model.vector.fuse_elementwise, fits_on_chip=lambda work: (
        (work.in_elements + work.out_elements) * model.activation_bytes <= model.usable_scratchpad_bytes["output"]))
    by_name = {layer.name: layer for layer in layers}
    spilled_by = {p.tile_operand: name for name, p in placements.items() if p.spill_tile_operand}
    tails = {name for name, p in placements.items() if p.fused_into} - {p.tile_operand for p in placements.values()}

    def in_dram(name: str) -> bool:
        layer, placement = by_name[name], placements.get(name)
        if name in spilled_by:  # the output stage of the next member writes it
            return rows[spilled_by[name]].dram_write_bytes > 0
        if layer.is_gemm:
            return rows[name].dram_write_bytes > 0
        if placement.fused_into:  # the group's last value leaves through its GEMM's stores
            return name in tails and rows[placement.fused_into].dram_write_bytes > 0
        if layer.vector_work().out_elements == 0:  # a view: its data is its producer's
            return all(in_dram(p) for p in layer.producers)
        return placement.writes_output and rows[name].dram_write_bytes > 0

    for layer in layers:
        placement = placements.get(layer.name)
        on_chip = {placement.tile_operand, placement.on_chip_input} if placement else set()
        for producer in layer.producers:
            if producer not in on_chip:
                assert in_dram(producer), f"{network.name}: {layer.name} reads {producer} from DRAM, never written"


def test_the_matrix_covers_every_shipped_network_and_arch():
    assert len(NETWORKS) >= 12 and {"default", "eyeriss_like", "ibm_like_4core", "scalesim_32x32"} <= set(ARCHS)
    assert {n for n, _ in SLOW} <= set(NETWORKS) and {a for _, a in SLOW} <= set(ARCHS)  # no stale names


@pytest.mark.parametrize("network_name, arch_name, scheme", list(_cases()))
def test_conservation(network_name: str, arch_name: str, scheme: str):
    arch = load_arch(ROOT / "arch_configs" / f"{arch_name}.yaml")
    scheme_arg = None if scheme == "arch" else scheme
    _check_conservation(arch, _network(network_name), scheme_arg)


def _check_conservation(arch, network, scheme_arg) -> None:
    """Every invariant of this module on one run of ``network``."""
    result = simulate_network(arch, network, scheme=scheme_arg)
    model = core_model(arch, scheme_arg)
    bytes_per_cycle = model.timing.dram_bytes_per_cycle
    if math.isfinite(bytes_per_cycle):
        _check_bandwidth(result, bytes_per_cycle)
    totals = result.totals
    assert totals.dram_read_bytes + totals.dram_write_bytes >= totals.compulsory_dram_bytes * (1 - 1e-12)
    rows = {row.name: row for row in result.layers}
    for layer in network.layers:
        if layer.is_gemm:
            _check_gemm_counts(layer, rows[layer.name], model)
    if not model.scalesim_mode:  # SCALE-Sim mode times the array only: vector layers move nothing
        _check_tensors_reach_dram(network, rows, model)


@pytest.mark.parametrize("network_name, arch_name, scheme", [
    ("tiny_cnn", "default", "arch"), ("tiny_cnn", "ibm_like_4core", "fp16"), ("tiny_transformer", "default", "arch"),
    ("resnet50", "default", "arch"), ("resnet50", "default", "fp16"),
])
def test_conservation_of_training_steps(network_name: str, arch_name: str, scheme: str):
    """The same invariants on a derived training step: backward GEMMs, the vector unit's backward ops reading
    stashed forward tensors back from DRAM, and the optimizer's update."""
    from hfp8sim.workloads.training_step import derive_training_step

    arch = load_arch(ROOT / "arch_configs" / f"{arch_name}.yaml")
    scheme_arg = None if scheme == "arch" else scheme
    # default and ibm_like_4core: a finite DRAM channel, not SCALE-Sim mode, so every check of the helper runs
    _check_conservation(arch, derive_training_step(_network(network_name), batch=2), scheme_arg)
