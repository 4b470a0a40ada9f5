"""A layer's counted actions, priced: what every row of a run's results pays in picojoules.

:class:`EnergyAccountant` is built once per run from the core model: the technology table and operating
point of the arch's ``energy`` section, each scratchpad's bank (capacity and port widths: SRAM energy per
access depends on both), the operand width (FP8, FP16 or FP32 MACs) and the hardware that leaks and is
clocked.  ``price(result)`` turns one :class:`~hfp8sim.results.LayerResult` into its ``energy_<component>_pj``
columns; ``actions(result)`` gives the counts it prices.

Leakage and clock (tables with the area model, ``leakage_mw_per_mm2``): every core's PEs (as MAC units of
their widest width), SRAM KiB, vector lanes and the core itself count one unit-cycle per elapsed cycle, busy
or idle.  Legacy tables (``static_power_mw_per_core``): the core leaks that power, scaled by its MAC count
over ``energy.static_reference_macs_per_cycle``, as before.  Time is the arch's cycles at its clock; the
counts are expressed in cycles of the operating point's clock so that the energy model's cycles / clock of
the point is that time.
"""

from __future__ import annotations

from ..core.model import CoreModel, element_bytes
from ..results import LayerResult
from ..config.tech import load_tech
from .model import EnergyBreakdown, energy_of

_WIDTH_NAMES = {8: "fp8", 16: "fp16", 32: "fp32"}


class EnergyAccountant:
    def __init__(self, core: CoreModel):
        cfg = core.arch.model.energy
        self.config = cfg
        self.tech = load_tech(cfg.tech)
        point = self.tech.operating_point(cfg.operating_point)  # unknown names fail here, listed
        self.sram_kib = core.scratchpad_kib
        self.sram_banks = core.scratchpad_banks
        scheme = core.scheme
        self.width = {8: "fp8", 16: "fp16"}.get(scheme.widest_operand_bits, "fp32")
        self.vector_precision = "fp32" if core.fp32_vector else "fp16"
        self.operand_bytes = element_bytes(scheme.forward)
        self.acc_register_bytes = element_bytes(core.arithmetic.acc_format)
        self.time_scale = point.clock_ghz / core.clock_ghz  # arch cycles -> cycles of the point's clock
        self.per_cycle = self._per_cycle_units(core)

    def _per_cycle_units(self, core: CoreModel) -> dict[str, float]:
        """Unit-cycle actions per elapsed cycle of the whole chip (all cores)."""
        if not self.tech.area_model:  # legacy: one per-core leakage, scaled by the core's MAC count
            return {"cycles": core.cores * core.hardware_macs_per_cycle /
                    self.config.static_reference_macs_per_cycle}
        width, units_per_pe = core.pe_datapath
        pes = core.rows * core.cols
        return {
            f"mac_unit_cycles.{_WIDTH_NAMES[width]}": float(core.cores * pes * units_per_pe),
            "sram_kib_cycles": float(core.cores * sum(self.sram_kib.values())),
            "vector_lane_cycles": float(core.cores * core.vector.lanes),
            "pe_cycles": float(core.cores * pes),
            "core_cycles": float(core.cores),
        }

    @property
    def leaking_area_mm2(self) -> float:
        """Area the leakage model powers, whole chip (mm^2); 0 with a legacy table."""
        if not self.tech.area_model:
            return 0.0
        areas = self.tech.model.area_mm2
        per_unit = {**{f"mac_unit_cycles.{w}": getattr(areas, f"mac_unit_{w}") for w in _WIDTH_NAMES.values()},
                    "sram_kib_cycles": areas.sram_per_kib, "vector_lane_cycles": areas.vector_lane}
        return sum(count * per_unit[action].value for action, count in self.per_cycle.items()
                   if action in per_unit and per_unit[action] is not None)

    def actions(self, r: LayerResult) -> dict[str, float]:
        """The layer's counted actions under the technology table's action names."""
        w, v = self.width, self.vector_precision
        if r.pass_ == "update":  # an optimizer step computes in FP32 lanes whatever the scheme
            v = "fp32"
        cycles = r.cycles * self.time_scale
        # a conv mapped on the vector unit counts its MACs (for throughput) but pays for them as lane-ops
        array_macs = 0.0 if r.kind == "vector" else float(r.macs)
        counts = {
            f"mac_{w}": array_macs, f"mac_zero_{w}": float(r.zero_operand_macs) if array_macs else 0.0,
            # each MAC latches an operand byte passed to its neighbour and its partial sum
            "pe_register_bytes": array_macs * (self.operand_bytes + self.acc_register_bytes),
            "sram_read_bytes.input": r.sram_input_read_bytes, "sram_write_bytes.input": r.sram_input_write_bytes,
            "sram_read_bytes.weight": r.sram_weight_read_bytes, "sram_write_bytes.weight": r.sram_weight_write_bytes,
            "sram_read_bytes.output": r.sram_output_read_bytes, "sram_write_bytes.output": r.sram_output_write_bytes,
            "dram_read_bytes": r.dram_read_bytes, "dram_write_bytes": r.dram_write_bytes,
            "edge_bytes": r.interconnect_bytes, "noc_byte_hops": r.noc_byte_hops,
            f"vector_ops.elementwise_{v}": r.vector_elementwise_ops, f"vector_ops.special_{v}": r.vector_special_ops,
            f"vector_ops.reduction_{v}": r.vector_reduction_ops,
            "cycles": cycles,
        }
        for action, per_cycle in self.per_cycle.items():
            counts[action] = per_cycle * cycles
        return counts

    def breakdown(self, result: LayerResult) -> EnergyBreakdown:
        """The layer's energy by component (pJ)."""
        e = self.config
        return energy_of(self.actions(result), self.tech, op_point=e.operating_point, sram_size_kib=self.sram_kib,
                         sram_banks=self.sram_banks, dram_kind=e.dram_kind, zero_gating=e.zero_gating)

    def price(self, result: LayerResult) -> dict[str, float]:
        """``energy_<component>_pj``, ``energy_on_chip_pj`` and ``energy_total_pj`` of one layer."""
        return self.breakdown(result).as_row()
