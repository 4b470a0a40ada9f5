"""A layer's counted actions, priced: what every row of a run's results pays in picojoules.

:class:`EnergyAccountant` is built once per run from the core model: the technology table and operating
point of the arch's ``energy`` section, the scratchpad sizes (SRAM energy per byte depends on capacity), the
operand width (FP8, FP16 or FP32 MACs) and the leakage scale.  ``price(result)`` turns one
:class:`~hfp8sim.results.LayerResult` into its ``energy_<component>_pj`` columns.

Leakage: the table gives it per core of ``static_reference_macs_per_cycle`` MACs per cycle; a core of another
size leaks in proportion, and time is cycles at the arch's clock.  Both are folded into the ``cycles`` count
passed to the energy model (static = P_core * cores * cycles / clock_of_the_point).  The hardware's size does
not depend on the scheme, so its PEs are counted at their FP8 rate.
"""

from __future__ import annotations

from ..core.model import CoreModel, element_bytes
from ..results import LayerResult
from ..config.tech import load_tech
from .model import energy_of


class EnergyAccountant:
    def __init__(self, core: CoreModel):
        cfg = core.arch.model.energy
        self.config = cfg
        self.tech = load_tech(cfg.tech)
        point = self.tech.operating_point(cfg.operating_point)  # unknown names fail here, listed
        self.sram_kib = core.scratchpad_kib
        scheme = core.scheme
        self.width = {8: "fp8", 16: "fp16"}.get(max(scheme.forward.bits, scheme.backward.bits), "fp32")
        self.vector_precision = "fp32" if core.fp32_vector else "fp16"
        self.operand_bytes = element_bytes(scheme.forward)
        self.acc_register_bytes = element_bytes(core.arithmetic.acc_format)
        self.leak_factor = (point.clock_ghz / core.clock_ghz) * core.cores * core.hardware_macs_per_cycle / \
            cfg.static_reference_macs_per_cycle

    def actions(self, r: LayerResult) -> dict[str, float]:
        """The layer's counted actions under the technology table's action names."""
        w, v = self.width, self.vector_precision
        # a conv mapped on the vector unit counts its MACs (for throughput) but pays for them as lane-ops
        array_macs = 0.0 if r.kind == "vector" else float(r.macs)
        return {
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
            "cycles": r.cycles * self.leak_factor,
        }

    def price(self, result: LayerResult) -> dict[str, float]:
        """``energy_<component>_pj`` and ``energy_total_pj`` of one layer."""
        e = self.config
        breakdown = energy_of(self.actions(result), self.tech, op_point=e.operating_point,
                              sram_size_kib=self.sram_kib, dram_kind=e.dram_kind, zero_gating=e.zero_gating)
        return breakdown.as_row()
