"""The core model: every fact about one core under one scheme that both sides of the simulator read.

An arch config says what the hardware is (array rows and columns, dataflow, PE rates, accumulators,
scratchpads, DRAM, vector unit, chip); a scheme says which number format each operand role uses.  From the
pair, :class:`CoreModel` derives, once, everything the datapath and the timing model need:

* the **accumulation contract** (:class:`~hfp8sim.datapath.ArrayArithmetic`) for operands of a given width:
  the same array and fold order the timing model schedules, pair (FMMA) mode when the PEs complete two MACs
  per cycle at that width;
* each role's **format and element bytes** (activations and weights in the forward format, gradients in the
  backward one);
* the **mapper's view** of the array (:class:`ArraySpec`: geometry and usable scratchpad bytes per tile);
* the **timing parameters** of a core (:class:`CoreTiming`), of its vector unit (:class:`VectorUnitSpec`) and
  of the network between cores (:class:`NocSpec`);
* peak rates, and the SCALE-Sim compatibility switches (ideal memory, no fold overlap, unlimited scratchpads).

The arch config's ``array.rows`` / ``array.cols`` and the scheme are read here and nowhere else on the way to
a fold's cycles and a sum's rounding: the schedule, the SimPy engine, the energy accounting and the traces all
take a ``CoreModel``.
"""

from __future__ import annotations

import dataclasses
import math
from functools import cached_property

from ..config.arch import ArchConfig
from ..config.tech import SramBank
from ..datapath.contract import ArrayArithmetic
from ..errors import FormatError
from ..formats.spec import FormatSpec, Scheme, get_format
from ..vocabulary import Dataflow, Objective, Partition, Role


def element_bytes(spec: FormatSpec) -> int:
    """Storage bytes of one element: 8-bit formats 1, 16-bit 2, float32 4 (odd widths round up)."""
    return max(1, math.ceil(spec.bits / 8))


@dataclasses.dataclass(frozen=True)
class ArraySpec:
    """The array as the mapper sees it: geometry and the scratchpad bytes one tile may use."""

    rows: int
    cols: int
    dataflow: str
    pair: bool = False  # two products per PE step (ws/is rows cover 2 k)
    chunk: int | None = None  # os chunk length: k-tiles are cut at chunk boundaries
    input_bytes: float = math.inf  # usable scratchpad bytes per tile (already halved if double-buffered)
    weight_bytes: float = math.inf
    output_bytes: float = math.inf


@dataclasses.dataclass(frozen=True)
class CoreTiming:
    """The timing parameters of one core (bandwidths in bytes per core cycle; ``math.inf`` is ideal)."""

    rows: int
    cols: int
    dataflow: str
    pair: bool
    overlap_folds: bool
    dram_bytes_per_cycle: float
    dram_latency_cycles: int
    dma_engines: int
    interconnect_bytes_per_cycle: float
    input_read_bytes_per_cycle: float
    weight_read_bytes_per_cycle: float
    output_read_bytes_per_cycle: float
    output_write_bytes_per_cycle: float
    double_buffered_inputs: bool = True
    double_buffered_output: bool = True


@dataclasses.dataclass(frozen=True)
class VectorUnitSpec:
    lanes: int
    special_op_cycles: float = 4.0
    fp32_rate: float = 0.5
    fuse_elementwise: bool = True


@dataclasses.dataclass(frozen=True)
class NocSpec:
    topology: str = "ring"  # ring | crossbar
    link_bytes_per_cycle: float = 64.0
    hop_latency_cycles: int = 1
    bidirectional: bool = True


SCRATCHPADS = ("input", "weight", "output")


@dataclasses.dataclass(frozen=True, eq=False)
class CoreModel:
    """One core of ``arch`` under ``scheme`` (build it with :meth:`build`)."""

    arch: ArchConfig
    scheme: Scheme

    @classmethod
    def build(cls, arch: ArchConfig, scheme: Scheme | None = None) -> CoreModel:
        """The core model of ``arch`` under ``scheme`` (default: the arch's own scheme)."""
        return cls(arch, scheme if scheme is not None else arch.scheme)

    # ---- what the hardware is -------------------------------------------------------------------------
    @property
    def name(self) -> str:
        return self.arch.model.name

    @property
    def clock_ghz(self) -> float:
        return self.arch.model.clock_ghz

    @cached_property
    def dataflow(self) -> Dataflow:
        return Dataflow(self.arch.model.array.dataflow)

    @property
    def rows(self) -> int:
        return self.array.rows

    @property
    def cols(self) -> int:
        return self.array.cols

    @cached_property
    def scalesim_mode(self) -> bool:
        """SCALE-Sim v3 conventions: ideal memory, no fold overlap, scratchpads that only log traffic."""
        return self.arch.model.mode == "scalesim"

    def macs_per_pe(self, operand_bits: int) -> int:
        """MACs a PE completes per cycle on operands of ``operand_bits`` (2 is IBM's FP8 pair mode)."""
        return self.arch.macs_per_pe(operand_bits)

    # ---- number formats -------------------------------------------------------------------------------
    def format(self, role: Role | str) -> FormatSpec:
        """The scheme's format of an operand role: gradients backward, activations and weights forward."""
        if role == Role.GRADIENT and self.scheme.backward is None:
            raise FormatError(f"scheme {self.scheme.name} has no backward format (inference only): no gradient "
                              "operand can be encoded")
        return self.scheme.backward if role == Role.GRADIENT else self.scheme.forward

    def element_bytes(self, role: Role | str) -> int:
        return element_bytes(self.format(role))

    @cached_property
    def accumulator_format(self) -> FormatSpec:
        acc = self.arch.model.array.accumulator
        return get_format(acc.format) if acc.format else self.scheme.accumulate

    # ---- the accumulation contract (datapath) ---------------------------------------------------------
    def arithmetic_for_bits(self, operand_bits: int) -> ArrayArithmetic:
        """The datapath arithmetic for operands of ``operand_bits``: the same array, fold order and
        accumulators the timing model schedules, pair (FMMA) mode when the PEs do two MACs per cycle."""
        m = self.arch.model
        acc = m.array.accumulator
        return ArrayArithmetic(
            dataflow=m.array.dataflow, rows=m.array.rows, cols=m.array.cols, acc_format=self.accumulator_format,
            acc_rounding=acc.rounding, acc_overflow=acc.overflow, buffer_format=acc.buffer_format,
            chunk=acc.chunk, chain=acc.chain, pair=self.macs_per_pe(operand_bits) == 2)

    @cached_property
    def arithmetic(self) -> ArrayArithmetic:
        """The arithmetic of the scheme's forward operands (what the timing model schedules)."""
        return self.arithmetic_for_bits(self.scheme.forward.bits)

    @property
    def pair(self) -> bool:
        return self.arithmetic.pair

    @property
    def psum_format(self) -> FormatSpec:
        """The format partial sums are kept in between folds (the accumulator buffer for ws/is)."""
        return self.arithmetic.segment_sum_format

    # ---- the mapper's and the engine's view -----------------------------------------------------------
    @cached_property
    def usable_scratchpad_bytes(self) -> dict[str, float]:
        """Bytes of each scratchpad one tile may take: half of it when double-buffered; unlimited in
        SCALE-Sim mode, whose scratchpads only log traffic."""
        pads = self.arch.model.scratchpads
        if self.scalesim_mode:
            return {name: math.inf for name in SCRATCHPADS}
        return {name: getattr(pads, name).size_kib * 1024 / (2 if getattr(pads, name).double_buffered else 1)
                for name in SCRATCHPADS}

    @cached_property
    def scratchpad_kib(self) -> dict[str, float]:
        return {name: getattr(self.arch.model.scratchpads, name).size_kib for name in SCRATCHPADS}

    @cached_property
    def scratchpad_banks(self) -> dict[str, SramBank]:
        """Each scratchpad's bank as SRAM energy sees it: capacity size_kib / banks, and read and write ports of
        (bytes per cycle x 8 / banks) bits: the pad's bandwidth is spread over its banks."""
        banks = {}
        for name in SCRATCHPADS:
            pad = getattr(self.arch.model.scratchpads, name)
            banks[name] = SramBank(pad.size_kib / pad.banks, pad.read_bytes_per_cycle * 8 / pad.banks,
                                   pad.write_bytes_per_cycle * 8 / pad.banks)
        return banks

    @cached_property
    def pe_datapath(self) -> tuple[int, int]:
        """(widest operand bits the PEs are built for, MAC units of that width per PE): what a PE's area is.
        ``energy.pe_operand_bits`` when the arch gives it, else the widths of the scheme being run; narrower
        widths share the widest one's units (IBM's FMMA: two FP8 products on the FP16 datapath)."""
        given = self.arch.model.energy.pe_operand_bits
        bits = given if given else tuple(spec.bits for spec in self.scheme.operand_formats)
        widest = max(bits)
        width_class = 8 if widest <= 8 else 16 if widest <= 16 else 32  # as macs_per_pe classes widths
        return width_class, self.macs_per_pe(width_class)

    @cached_property
    def array(self) -> ArraySpec:
        a, usable = self.arch.model.array, self.usable_scratchpad_bytes
        return ArraySpec(a.rows, a.cols, a.dataflow, self.pair, self.arithmetic.chunk, usable["input"],
                         usable["weight"], usable["output"])

    @cached_property
    def conv_input_layout(self) -> str:
        """What DRAM holds of a conv's input: ``tensor`` (tiles with halos, im2col made on chip) or ``im2col``.
        SCALE-Sim mode keeps SCALE-Sim's own view (it fetches the IFMAP through its im2col address map)."""
        return "im2col" if self.scalesim_mode else self.arch.model.dram.conv_input_layout

    @cached_property
    def timing(self) -> CoreTiming:
        m, ideal = self.arch.model, self.scalesim_mode
        pads = m.scratchpads

        def port(bytes_per_cycle: float) -> float:
            return math.inf if ideal else bytes_per_cycle

        return CoreTiming(
            rows=m.array.rows, cols=m.array.cols, dataflow=m.array.dataflow, pair=self.pair,
            overlap_folds=m.array.overlap_folds and not ideal,
            dram_bytes_per_cycle=math.inf if ideal else self.arch.dram_bytes_per_cycle,
            dram_latency_cycles=0 if (ideal or m.dram.ideal) else m.dram.latency_cycles,
            dma_engines=m.interconnect.dma_engines,
            interconnect_bytes_per_cycle=port(m.interconnect.bw_bytes_per_cycle),
            input_read_bytes_per_cycle=port(pads.input.read_bytes_per_cycle),
            weight_read_bytes_per_cycle=port(pads.weight.read_bytes_per_cycle),
            output_read_bytes_per_cycle=port(pads.output.read_bytes_per_cycle),
            output_write_bytes_per_cycle=port(pads.output.write_bytes_per_cycle),
            double_buffered_inputs=pads.input.double_buffered and pads.weight.double_buffered,
            double_buffered_output=pads.output.double_buffered,
        )

    @cached_property
    def vector(self) -> VectorUnitSpec:
        vu = self.arch.model.vector_unit
        return VectorUnitSpec(vu.lanes or self.arch.model.array.cols, vu.special_op_cycles, vu.fp32_rate,
                              vu.fuse_elementwise)

    @property
    def fp32_vector(self) -> bool:
        """The vector unit works at FP32 rate when the scheme's operands are wider than 16 bits."""
        return self.scheme.forward.bits > 16

    @property
    def activation_bytes(self) -> int:
        return self.element_bytes(Role.ACTIVATION)

    # ---- the chip -------------------------------------------------------------------------------------
    @property
    def cores(self) -> int:
        return self.arch.model.chip.cores

    @cached_property
    def partitions(self) -> tuple[Partition, ...]:
        chosen = self.arch.model.chip.partition
        return tuple(Partition) if chosen == "auto" else (Partition(chosen),)

    @cached_property
    def noc(self) -> NocSpec:
        noc = self.arch.model.chip.noc
        return NocSpec(noc.topology, noc.link_bytes_per_cycle, noc.hop_latency_cycles, noc.bidirectional)

    # ---- the mapper -----------------------------------------------------------------------------------
    @cached_property
    def objective(self) -> Objective:
        """What the schedule search minimises per GEMM layer: cycles, energy or energy x delay."""
        return Objective(self.arch.model.mapper.objective)

    # ---- peaks ----------------------------------------------------------------------------------------
    @property
    def peak_macs_per_cycle(self) -> int:
        """MACs per cycle of one core at the scheme's operand width."""
        return self.rows * self.cols * (2 if self.pair else 1)

    @property
    def peak_chip_macs_per_cycle(self) -> int:
        return self.peak_macs_per_cycle * self.cores

    @property
    def hardware_macs_per_cycle(self) -> int:
        """MACs per cycle of one core at its FP8 rate: the size of the hardware, whatever the scheme."""
        return self.rows * self.cols * self.macs_per_pe(8)
