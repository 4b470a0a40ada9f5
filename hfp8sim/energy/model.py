"""Energy = counted actions x per-action energy (a pure step after timing, Timeloop/Accelergy ERT style).

The timing model counts **actions** per layer (additive across layers and cores); :func:`energy_of` turns one
set of counts into picojoules by component.  The action names are the contract between the two models:

=================================================  =======================================================
action                                             energy (at the table's nominal voltage)
=================================================  =======================================================
``mac_fp8``, ``mac_fp16``, ``mac_fp32``            ``mac_pj.<width>`` per MAC (all MACs, zeros included)
``mac_zero_fp8``, ``mac_zero_fp16``,               of those MACs, the ones with a zero operand: they cost
``mac_zero_fp32``                                  ``zero_gated_fraction`` of a MAC when ``zero_gating``,
                                                   a full MAC otherwise
``pe_register_bytes``                              ``pe_register_pj_per_byte`` per byte
``sram_read_bytes.<pad>``, ``sram_write_bytes.     ``sram_access_pj`` at the pad's bank size and port width,
<pad>`` (pad: ``input``, ``weight``, ``output``)    divided by the port's bytes (legacy tables:
                                                   ``sram_pj_per_byte`` at the pad's size)
``dram_read_bytes``, ``dram_write_bytes``          ``dram_pj_per_byte.<kind>.read/write`` per byte
``edge_bytes``                                     ``edge_pj_per_byte`` per byte
``noc_byte_hops``                                  ``noc_pj_per_byte_hop`` per byte per hop
``vector_ops.<op>`` (``elementwise_fp16``, ...)    ``vector_pj.<op>`` per operation
``mac_unit_cycles.<w>`` (``fp8``, ``fp16``,        leakage: ``area_mm2.mac_unit_<w>`` x
``fp32``), ``sram_kib_cycles``,                    ``leakage_mw_per_mm2`` x time (also ``sram_per_kib``,
``vector_lane_cycles``                             ``vector_lane``)
``pe_cycles``, ``vector_lane_cycles``,             clock tree and control: ``clock_pj_per_cycle.per_pe``,
``core_cycles``                                    ``per_vector_lane``, ``per_core`` per unit-cycle
``cycles``                                         elapsed cycles; legacy tables only: leakage
                                                   ``static_power_mw_per_core`` x cores x cycles / clock
=================================================  =======================================================

Unit-cycles count hardware units times the cycles they are powered (all of them, idle or busy: nothing is
power-gated or clock-gated per unit), so leakage and clock energy grow with the array, the SRAM and the lanes.

Voltage: dynamic energies scale with (V/V_nominal)^2 (C V^2 switching energy at a fixed activity); SRAM on
its own rail with (V_sram/V_sram_nominal)^2; clock and control like logic; DRAM energy does not scale
(off-chip, its own supply).  Static
power scales with (V/V_nominal)^e, e = ``static_voltage_exponent`` (default 1: P = V * I_leak with the leakage
current held constant, a first-order model that ignores DIBL and temperature, which make real leakage fall
faster than linearly as V drops).
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from collections.abc import Iterable, Mapping

from ..errors import ConfigError, EnergyError
from ..config.tech import Entry, SramBank, TechTable

__all__ = [
    "ACTIONS", "COMPONENTS", "SCRATCHPADS", "VECTOR_OPS", "WIDTHS", "EnergyBreakdown", "SramBank", "average_power_w",
    "energy_of", "sum_breakdowns", "tflops_per_watt", "tops_per_watt",
]

WIDTHS = ("fp8", "fp16", "fp32")
SCRATCHPADS = ("input", "weight", "output")
VECTOR_OPS = ("elementwise_fp16", "elementwise_fp32", "special_fp16", "special_fp32", "reduction_fp16",
              "reduction_fp32")

ACTIONS: tuple[str, ...] = (
    *(f"mac_{w}" for w in WIDTHS),
    *(f"mac_zero_{w}" for w in WIDTHS),
    "pe_register_bytes",
    *(f"sram_read_bytes.{pad}" for pad in SCRATCHPADS),
    *(f"sram_write_bytes.{pad}" for pad in SCRATCHPADS),
    "dram_read_bytes", "dram_write_bytes",
    "edge_bytes",
    "noc_byte_hops",
    *(f"vector_ops.{op}" for op in VECTOR_OPS),
    "cycles",
    *(f"mac_unit_cycles.{w}" for w in WIDTHS),
    "sram_kib_cycles", "vector_lane_cycles", "pe_cycles", "core_cycles",
)
"""Every action name :func:`energy_of` accepts (an unknown name is an error)."""

COMPONENTS: tuple[str, ...] = ("mac", "pe_registers", "sram.input", "sram.weight", "sram.output", "dram", "edge",
                               "noc", "vector", "clock", "static")
"""The components of a breakdown, in order; all but ``static`` (leakage) are dynamic; ``clock`` is the clock tree
and control, ``dram`` the only off-chip one."""

_ACTION_SET = frozenset(ACTIONS)


@dataclasses.dataclass(frozen=True)
class EnergyBreakdown:
    """Energy in pJ by component.  ``sum(components.values()) == total_pj`` exactly (same order of additions),
    and ``dynamic_pj + static_pj == total_pj`` exactly.  Breakdowns of the layers of one run add with ``+``."""

    components: Mapping[str, float]
    dynamic_pj: float
    static_pj: float
    total_pj: float
    op_point: str
    voltage_v: float
    clock_ghz: float
    cycles: float = 0.0

    @classmethod
    def from_components(cls, components: Mapping[str, float], *, op_point: str, voltage_v: float,
                        clock_ghz: float, cycles: float = 0.0) -> EnergyBreakdown:
        ordered = {name: float(components.get(name, 0.0)) for name in COMPONENTS}
        unknown = set(components) - set(COMPONENTS)
        if unknown:
            raise EnergyError(f"unknown energy components {sorted(unknown)}; known: {', '.join(COMPONENTS)}")
        dynamic = 0.0
        for name in COMPONENTS[:-1]:
            dynamic += ordered[name]
        static = ordered["static"]
        return cls(components=ordered, dynamic_pj=dynamic, static_pj=static, total_pj=dynamic + static,
                   op_point=op_point, voltage_v=voltage_v, clock_ghz=clock_ghz, cycles=float(cycles))

    def __getitem__(self, component: str) -> float:
        return self.components[component]

    @property
    def sram_pj(self) -> float:
        return self.components["sram.input"] + self.components["sram.weight"] + self.components["sram.output"]

    @property
    def on_chip_pj(self) -> float:
        """Everything but DRAM: what a chip's own power covers.  ``on_chip_pj + components['dram'] == total_pj``."""
        return self.total_pj - self.components["dram"]

    @property
    def seconds(self) -> float:
        return self.cycles / (self.clock_ghz * 1e9)

    def __add__(self, other: EnergyBreakdown) -> EnergyBreakdown:
        if not isinstance(other, EnergyBreakdown):
            return NotImplemented
        if (other.op_point, other.voltage_v, other.clock_ghz) != (self.op_point, self.voltage_v, self.clock_ghz):
            raise EnergyError(f"cannot add energies at different operating points ({self.op_point} "
                             f"{self.clock_ghz:g} GHz/{self.voltage_v:g} V and {other.op_point} "
                             f"{other.clock_ghz:g} GHz/{other.voltage_v:g} V)")
        return EnergyBreakdown.from_components(
            {name: self.components[name] + other.components[name] for name in COMPONENTS},
            op_point=self.op_point, voltage_v=self.voltage_v, clock_ghz=self.clock_ghz,
            cycles=self.cycles + other.cycles)

    def as_row(self) -> dict[str, float]:
        """Flat columns for a results table: ``energy_<component>_pj`` (dots become underscores) and totals
        (``energy_on_chip_pj``: all but DRAM)."""
        row = {f"energy_{name.replace('.', '_')}_pj": value for name, value in self.components.items()}
        row.update(energy_dynamic_pj=self.dynamic_pj, energy_static_pj=self.static_pj,
                   energy_on_chip_pj=self.on_chip_pj, energy_total_pj=self.total_pj)
        return row

    def as_dict(self) -> dict:
        """Nested plain data (for ``summary.json``)."""
        return {"components_pj": dict(self.components), "dynamic_pj": self.dynamic_pj, "static_pj": self.static_pj,
                "on_chip_pj": self.on_chip_pj, "total_pj": self.total_pj, "op_point": self.op_point, "voltage_v": self.voltage_v,
                "clock_ghz": self.clock_ghz, "cycles": self.cycles}


def sum_breakdowns(breakdowns: Iterable[EnergyBreakdown]) -> EnergyBreakdown:
    """Network total of per-layer breakdowns (at least one)."""
    items = list(breakdowns)
    if not items:
        raise EnergyError("sum_breakdowns needs at least one breakdown")
    total = items[0]
    for item in items[1:]:
        total = total + item
    return total


def _check_counts(actions: Mapping[str, float]) -> dict[str, float]:
    counts = {}
    problems = []
    for name, count in actions.items():
        if name not in _ACTION_SET:
            problems.append(f"unknown action {name!r}")
            continue
        if isinstance(count, bool) or not isinstance(count, numbers.Real) or not math.isfinite(float(count)) \
                or count < 0:
            problems.append(f"action {name!r}: count must be a finite number >= 0, not {count!r}")
            continue
        counts[name] = float(count)
    if problems:
        raise ConfigError("; ".join(problems) + f" (actions: {', '.join(ACTIONS)})")
    return counts


def energy_of(actions: Mapping[str, float], tech: TechTable, *, op_point: str,
              sram_size_kib: Mapping[str, float] | None = None, dram_kind: str, zero_gating: bool, cores: int = 1,
              sram_banks: Mapping[str, SramBank] | None = None) -> EnergyBreakdown:
    """Energy of one set of action counts (pJ by component) at an operating point of ``tech``.

    ``actions`` maps action names (:data:`ACTIONS`) to counts; missing names count 0.  Counts are totals over
    all ``cores``; ``cycles`` is the elapsed time in cycles (with a legacy table, every core leaks
    ``static_power_mw_per_core`` during it; with the area model the unit-cycle actions carry leakage).
    ``sram_banks`` gives each scratchpad's bank (capacity, read and write port widths) for a table with
    ``sram_access_pj``; ``sram_size_kib`` each pad's size for a legacy ``sram_pj_per_byte`` curve (``input``,
    ``weight``, ``output``; needed for the pads with traffic).
    ``zero_gating``: the PEs clock-gate/bypass MACs with a zero operand (IBM's chip bypasses its FPU on a zero
    multiplicand), which then cost ``zero_gated_fraction`` of a MAC.

    Raises :class:`ConfigError` for an unknown action or a bad count, an operating point or DRAM kind the table
    does not have, or an action counted (nonzero) that the table has no energy for (naming both).
    """
    counts = _check_counts(actions)
    point = tech.operating_point(op_point)
    if dram_kind not in tech.model.dram_pj_per_byte:
        known = ", ".join(tech.model.dram_pj_per_byte) or "(none)"
        raise ConfigError(f"unknown DRAM kind {dram_kind!r}; known: {known}", file=tech.source,
                          key_path="dram_pj_per_byte")
    if isinstance(cores, bool) or not isinstance(cores, numbers.Integral) or cores < 1:
        raise EnergyError(f"cores must be an integer >= 1, not {cores!r}")
    logic = tech.dynamic_scale(op_point)
    sram_scale = tech.sram_scale(op_point)
    model = tech.model
    dram = model.dram_pj_per_byte[dram_kind]
    # Components in this order: a table missing several entries names the first one, as it always did.
    components: dict[str, float] = {
        "mac": _mac_pj(counts, tech, zero_gating) * logic,
        "pe_registers": _per_count_pj(counts, tech, "pe_register_bytes", model.pe_register_pj_per_byte,
                                      "pe_register_pj_per_byte", logic),
        **_sram_pj(counts, tech, sram_size_kib, sram_banks, sram_scale),
        "dram": counts.get("dram_read_bytes", 0.0) * dram.read + counts.get("dram_write_bytes", 0.0) * dram.write,
        "edge": _per_count_pj(counts, tech, "edge_bytes", model.edge_pj_per_byte, "edge_pj_per_byte", logic),
        "noc": _per_count_pj(counts, tech, "noc_byte_hops", model.noc_pj_per_byte_hop, "noc_pj_per_byte_hop",
                             logic),
        "vector": _vector_pj(counts, tech) * logic,
        "clock": _clock_pj(counts, tech) * logic,
        "static": _static_pj(counts, tech, op_point, cores, point.clock_ghz),
    }
    return EnergyBreakdown.from_components(components, op_point=op_point, voltage_v=point.voltage_v,
                                           clock_ghz=point.clock_ghz, cycles=counts.get("cycles", 0.0))


def _table_value(entry: Entry | None, counts: Mapping[str, float], tech: TechTable, action: str,
                 key_path: str) -> float:
    """The table's value for a counted action (only called when the count is nonzero)."""
    if entry is None:
        raise ConfigError(f"action {action!r} is counted ({counts.get(action, 0.0):g}) but the tech table has no "
                          f"energy for it (add {key_path})", file=tech.source, key_path=key_path)
    return entry.value


def _mac_pj(counts: Mapping[str, float], tech: TechTable, zero_gating: bool) -> float:
    """MAC energy at the nominal voltage, by operand width; the zero-operand MACs are a subset."""
    mac = 0.0
    for width in WIDTHS:
        total, zeros = counts.get(f"mac_{width}", 0.0), counts.get(f"mac_zero_{width}", 0.0)
        if zeros > total:
            raise ConfigError(f"action 'mac_zero_{width}' ({zeros:g}) exceeds 'mac_{width}' ({total:g}): zero-operand "
                              "MACs are a subset of the MACs")
        if total == 0:
            continue
        per_mac = _table_value(getattr(tech.model.mac_pj, width), counts, tech, f"mac_{width}", f"mac_pj.{width}")
        if zero_gating and zeros > 0:
            gated = _table_value(tech.model.zero_gated_fraction, counts, tech, f"mac_zero_{width}",
                                 "zero_gated_fraction")
            mac += ((total - zeros) + zeros * gated) * per_mac
        else:
            mac += total * per_mac
    return mac


def _per_count_pj(counts: Mapping[str, float], tech: TechTable, action: str, entry: Entry | None, key_path: str,
                  scale: float) -> float:
    """count x the table's energy per unit x the voltage scale; exactly 0.0 for an action not counted."""
    count = counts.get(action, 0.0)
    return count * _table_value(entry, counts, tech, action, key_path) * scale if count else 0.0


def _sram_pj(counts: Mapping[str, float], tech: TechTable, sram_size_kib: Mapping[str, float] | None,
             sram_banks: Mapping[str, SramBank] | None, sram_scale: float) -> dict[str, float]:
    """The ``sram.<pad>`` components: read and write bytes priced per access of each pad's bank (or, with a
    legacy table, on the capacity curve at each pad's size)."""
    components = {}
    for pad in SCRATCHPADS:
        reads, writes = counts.get(f"sram_read_bytes.{pad}", 0.0), counts.get(f"sram_write_bytes.{pad}", 0.0)
        energy = 0.0
        if reads or writes:
            read_pj, write_pj = _sram_pj_per_byte(counts, tech, pad, reads, sram_size_kib, sram_banks)
            energy = reads * read_pj + writes * write_pj
        components[f"sram.{pad}"] = energy * sram_scale
    return components


def _sram_pj_per_byte(counts: Mapping[str, float], tech: TechTable, pad: str, reads: float,
                      sram_size_kib: Mapping[str, float] | None,
                      sram_banks: Mapping[str, SramBank] | None) -> tuple[float, float]:
    """(read, write) pJ per byte of one pad: an access moves a port's width, so per byte = per access / port
    bytes (accesses are full-width: the array's edges consume whole port words)."""
    model = tech.model
    if model.sram_access_pj is not None:
        if not sram_banks or pad not in sram_banks:
            raise ConfigError(f"sram_banks has no bank for scratchpad {pad!r} (it has bytes counted); give each of "
                              f"{', '.join(SCRATCHPADS)} its bank_kib and port widths")
        bank = sram_banks[pad]
        return (tech.sram_access_pj(bank.bank_kib, bank.read_port_bits, "read") / (bank.read_port_bits / 8),
                tech.sram_access_pj(bank.bank_kib, bank.write_port_bits, "write") / (bank.write_port_bits / 8))
    if model.sram_pj_per_byte is None:
        action = f"sram_read_bytes.{pad}" if reads else f"sram_write_bytes.{pad}"
        _table_value(None, counts, tech, action, "sram_access_pj")
    if not sram_size_kib or pad not in sram_size_kib:
        raise ConfigError(f"sram_size_kib has no size for scratchpad {pad!r} (it has bytes counted); "
                          f"give {', '.join(SCRATCHPADS)}")
    size = sram_size_kib[pad]
    return tech.sram_pj_per_byte(size, "read"), tech.sram_pj_per_byte(size, "write")


def _vector_pj(counts: Mapping[str, float], tech: TechTable) -> float:
    """Vector-unit energy at the nominal voltage, by operation."""
    vector = 0.0
    for op in VECTOR_OPS:
        count = counts.get(f"vector_ops.{op}", 0.0)
        if count:
            vector += count * _table_value(getattr(tech.model.vector_pj, op), counts, tech, f"vector_ops.{op}",
                                           f"vector_pj.{op}")
    return vector


_LEAKING = (*((f"mac_unit_cycles.{w}", f"mac_unit_{w}") for w in WIDTHS), ("sram_kib_cycles", "sram_per_kib"),
            ("vector_lane_cycles", "vector_lane"))
_CLOCKED = (("pe_cycles", "per_pe"), ("vector_lane_cycles", "per_vector_lane"), ("core_cycles", "per_core"))


def _clock_pj(counts: Mapping[str, float], tech: TechTable) -> float:
    """Clock tree and control at the nominal voltage: pJ per unit-cycle of PEs, vector lanes and cores."""
    clock = 0.0
    for action, key in _CLOCKED:
        count = counts.get(action, 0.0)
        if count:
            clock += count * _table_value(getattr(tech.model.clock_pj_per_cycle, key), counts, tech, action,
                                          f"clock_pj_per_cycle.{key}")
    return clock


def _static_pj(counts: Mapping[str, float], tech: TechTable, op_point: str, cores: int, clock_ghz: float) -> float:
    """Leakage: with the area model, every unit's area x the power density over its unit-cycles; with a legacy
    table, ``static_power_mw_per_core`` of every core over the elapsed ``cycles``."""
    scale = tech.static_scale(op_point)
    if tech.area_model:
        area_cycles = 0.0  # mm^2 x cycles
        for action, key in _LEAKING:
            count = counts.get(action, 0.0)
            if count:
                area_cycles += count * _table_value(getattr(tech.model.area_mm2, key), counts, tech, action,
                                                    f"area_mm2.{key}")
        # mW/mm^2 x mm^2 x ns = pJ; cycles / GHz = ns
        return tech.model.leakage_mw_per_mm2.value * area_cycles * scale / clock_ghz if area_cycles else 0.0
    for action, key in _LEAKING:
        if counts.get(action, 0.0):  # an area-model count priced by a legacy table: say what is missing
            _table_value(None, counts, tech, action, "leakage_mw_per_mm2")
    cycles = counts.get("cycles", 0.0)
    if not cycles:
        return 0.0
    power_mw = _table_value(tech.model.static_power_mw_per_core, counts, tech, "cycles", "static_power_mw_per_core")
    return power_mw * cores * scale * cycles / clock_ghz


def average_power_w(breakdown: EnergyBreakdown, cycles: float, clock_ghz: float) -> float:
    """Mean power in watts of ``breakdown`` spent over ``cycles`` at ``clock_ghz`` (pJ / ns = mW)."""
    if not cycles > 0 or not clock_ghz > 0:
        raise EnergyError(f"cycles and clock_ghz must be > 0 (got {cycles!r}, {clock_ghz!r})")
    return breakdown.total_pj / (cycles / clock_ghz) * 1e-3


def tops_per_watt(macs: float, breakdown: EnergyBreakdown) -> float:
    """Tera-operations per second per watt = operations per picojoule (1 MAC = 2 operations)."""
    if not breakdown.total_pj > 0:
        raise EnergyError("the breakdown has no energy")
    return 2.0 * macs / breakdown.total_pj


def tflops_per_watt(macs: float, breakdown: EnergyBreakdown) -> float:
    """Tera-FLOPs per second per watt (1 MAC = 2 FLOPs); the same number as :func:`tops_per_watt` for FP MACs."""
    return tops_per_watt(macs, breakdown)
