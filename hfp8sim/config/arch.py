"""Architecture configs: the YAML schema of one core (and, later, a chip), strictly validated.

Every problem in a file is reported at once, each with the file and the key path; unknown keys are errors.
Cross-field rules (a minimal tile must fit the scratchpads, pair mode needs two FP8 MACs per PE) are checked
after the types, also all at once.

Shape of a file (see ``arch_configs/default.yaml`` for a commented example)::

    name: ...
    clock_ghz: 1.6
    scheme: hfp8                       # a scheme name, or {forward, backward, accumulate}
    mode: hfp8sim                      # or scalesim (SCALE-Sim v3 conventions: no overlap, ideal memory)
    array: {rows, cols, dataflow, macs_per_pe_per_cycle: {8: 2, 16: 1, 32: 1}, pipeline_latency_cycles,
            overlap_folds, accumulator: {format, buffer_format, chunk, chain, rounding, overflow}}
    scratchpads: {input: {...}, weight: {...}, output: {...}}   # size_kib, banks, read/write bytes per cycle,
                                                                 # double_buffered
    dram: {bw_bytes_per_cycle | bw_gb_per_s, latency_cycles, conv_input_layout: tensor|im2col}
    interconnect: {bw_bytes_per_cycle, latency_cycles, dma_engines}
    vector_unit: {lanes, special_op_cycles, fp32_rate, fuse_elementwise}   # optional
    chip: {cores, partition: auto|output_channels|rows|reduction,               # optional, 1 core by default
           noc: {topology: ring|crossbar, link_bytes_per_cycle, hop_latency_cycles, bidirectional}}
    energy: {tech, operating_point, dram_kind, zero_gating, pe_operand_bits,
             static_reference_macs_per_cycle}   # optional
    mapper: {objective: time | energy | edp}                    # optional, time by default
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import pydantic

from ..errors import ConfigError, FormatError
from ..formats.spec import FormatSpec, Scheme, get_format, get_scheme
from ..io import ARCH_CONFIGS, default_arch_path, read_yaml, resolve_shipped, validation_error
from ..io.file_kinds import FileKind, detect_file_kind
from .scalesim_cfg import scalesim_cfg_to_arch_data
from .tech import load_tech

_STRICT = pydantic.ConfigDict(extra="forbid", strict=True, frozen=True)

PositiveInt = pydantic.conint(strict=True, gt=0)
NonNegativeInt = pydantic.conint(strict=True, ge=0)
PositiveFloat = pydantic.confloat(gt=0)


class AccumulatorConfig(pydantic.BaseModel):
    model_config = _STRICT
    format: str | None = None  # None: the scheme's accumulate format
    buffer_format: str | None = None  # ws/is accumulator buffer; None: the accumulator format
    chunk: PositiveInt | None = None  # os only
    chain: bool = False  # ws/is only
    rounding: Literal["nearest_even", "toward_zero", "nearest_away"] = "nearest_even"
    overflow: Literal["saturate", "nonsaturating"] = "saturate"


class ArrayConfig(pydantic.BaseModel):
    model_config = _STRICT
    rows: PositiveInt
    cols: PositiveInt
    dataflow: Literal["os", "ws", "is"] = "ws"
    # MACs each PE completes per cycle, by operand width in bits (IBM's core: two FP8 or one FP16)
    macs_per_pe_per_cycle: dict[Literal[8, 16, 32], Literal[1, 2]] = {8: 1, 16: 1, 32: 1}
    pipeline_latency_cycles: NonNegativeInt = 0
    overlap_folds: bool = True
    accumulator: AccumulatorConfig = AccumulatorConfig()


class ScratchpadConfig(pydantic.BaseModel):
    model_config = _STRICT
    size_kib: PositiveFloat
    banks: PositiveInt = 1
    read_bytes_per_cycle: PositiveFloat
    write_bytes_per_cycle: PositiveFloat
    double_buffered: bool = True


class ScratchpadsConfig(pydantic.BaseModel):
    model_config = _STRICT
    input: ScratchpadConfig
    weight: ScratchpadConfig
    output: ScratchpadConfig


class DramConfig(pydantic.BaseModel):
    model_config = _STRICT
    bw_bytes_per_cycle: PositiveFloat | None = None
    bw_gb_per_s: PositiveFloat | None = None
    latency_cycles: NonNegativeInt = 0
    ideal: bool = False  # infinite bandwidth, zero latency (SCALE-Sim CALC-like)
    # what DRAM holds of a conv's input: the tensor (the scratchpad holds input tiles with their halos and an
    # address generator makes the im2col rows on chip) or the lowered im2col matrix (hardware that stores it)
    conv_input_layout: Literal["tensor", "im2col"] = "tensor"


class InterconnectConfig(pydantic.BaseModel):
    model_config = _STRICT
    bw_bytes_per_cycle: PositiveFloat
    latency_cycles: NonNegativeInt = 0
    dma_engines: PositiveInt = 1


class VectorUnitConfig(pydantic.BaseModel):
    """The per-core vector / special-function unit for the layers that are not GEMMs."""

    model_config = _STRICT
    lanes: PositiveInt | None = None  # None: as many lanes as the array has columns
    special_op_cycles: PositiveFloat = 4.0  # lane-cycles of exp/erf/rsqrt/reciprocal
    fp32_rate: PositiveFloat = 0.5  # lane-ops per cycle per lane in FP32 (FP16: 1)
    fuse_elementwise: bool = True  # elementwise ops after a GEMM ride on its output drain


class NocConfig(pydantic.BaseModel):
    """The network between cores (IBM's chip: a pair of wide rings)."""

    model_config = _STRICT
    topology: Literal["ring", "crossbar"] = "ring"
    link_bytes_per_cycle: PositiveFloat = 64.0
    hop_latency_cycles: NonNegativeInt = 1
    bidirectional: bool = True


class ChipConfig(pydantic.BaseModel):
    """Several identical cores sharing the DRAM channel(s) of ``dram``."""

    model_config = _STRICT
    cores: PositiveInt = 1
    partition: Literal["auto", "output_channels", "rows", "reduction"] = "auto"
    noc: NocConfig = NocConfig()


class EnergyConfig(pydantic.BaseModel):
    """Which technology table prices the counted actions, at which operating point."""

    model_config = _STRICT
    tech: str = "tech_7nm"  # a shipped name (arch_configs/tech/NAME.yaml) or a file path
    operating_point: str = "peak"
    dram_kind: str = "hbm2"
    zero_gating: bool = True  # PEs bypass a zero multiplicand (IBM's chip does)
    # the operand widths the PEs are built for (their area, hence leakage): a PE holds
    # macs_per_pe_per_cycle[w] MAC units of its widest width w; None: the widths of the scheme being run
    pe_operand_bits: pydantic.conlist(Literal[8, 16, 32], min_length=1) | None = None
    # legacy tech tables only (static_power_mw_per_core): that leakage is for a core of this many MACs per
    # cycle; other cores scale it with their MAC count
    static_reference_macs_per_cycle: PositiveInt = 2048


class MapperConfig(pydantic.BaseModel):
    """What the schedule search minimises for each GEMM layer (every objective is searched exactly)."""

    model_config = _STRICT
    objective: Literal["time", "energy", "edp"] = "time"


class SchemeConfig(pydantic.BaseModel):
    model_config = _STRICT
    forward: str
    backward: str
    accumulate: str


class ArchConfigModel(pydantic.BaseModel):
    model_config = _STRICT
    name: str
    description: str = ""
    clock_ghz: PositiveFloat
    scheme: str | SchemeConfig = "hfp8"
    mode: Literal["hfp8sim", "scalesim"] = "hfp8sim"
    array: ArrayConfig
    scratchpads: ScratchpadsConfig
    dram: DramConfig
    interconnect: InterconnectConfig
    vector_unit: VectorUnitConfig = VectorUnitConfig()
    chip: ChipConfig = ChipConfig()
    energy: EnergyConfig = EnergyConfig()
    mapper: MapperConfig = MapperConfig()


class ArchConfig:
    """A validated architecture with its formats resolved (immutable).

    ``scheme`` is the arch's own :class:`Scheme` object: a registered one when the file names it, or one built
    for this arch alone (named ``NAME:scheme``) when the file defines it inline; parsing never touches the
    global scheme registry.  Resolve a scheme name in the context of this arch with :meth:`resolve_scheme`.
    """

    def __init__(self, model: ArchConfigModel, source: str | None, scheme: Scheme):
        self.model = model
        self.source = source
        self.scheme = scheme

    def __getattr__(self, name: str) -> Any:
        return getattr(self.model, name)

    def __repr__(self) -> str:
        return f"ArchConfig({self.model.name!r}, {self.model.array.rows}x{self.model.array.cols} " \
               f"{self.model.array.dataflow}, scheme {self.scheme.name})"

    @property
    def dram_bytes_per_cycle(self) -> float:
        """DRAM bandwidth in bytes per core cycle (inf for ideal memory)."""
        dram = self.model.dram
        if dram.ideal:
            return float("inf")
        if dram.bw_bytes_per_cycle is not None:
            return float(dram.bw_bytes_per_cycle)
        return float(dram.bw_gb_per_s) / float(self.model.clock_ghz)  # GB/s / (G cycles/s)

    def macs_per_pe(self, operand_bits: int) -> int:
        rates = self.model.array.macs_per_pe_per_cycle
        width = 8 if operand_bits <= 8 else 16 if operand_bits <= 16 else 32
        return int(rates.get(width, 1))

    def resolve_scheme(self, scheme: str | Scheme | None = None) -> Scheme:
        """The scheme ``scheme`` means on this arch: None or the name of the arch's own scheme give that scheme
        (an inline one is known only here), a :class:`Scheme` is itself, any other name is looked up in the
        registry (an unknown name raises FormatError listing the registered ones)."""
        if scheme is None or scheme == self.scheme.name:
            return self.scheme
        return get_scheme(scheme)

    def accumulator_format(self) -> FormatSpec:
        acc = self.model.array.accumulator
        return get_format(acc.format) if acc.format else self.scheme.accumulate

    def to_dict(self) -> dict:
        """The resolved config (as written beside every result)."""
        data = self.model.model_dump(mode="json")
        data["scheme"] = {"name": self.scheme.name, "forward": self.scheme.forward.name,
                          "backward": self.scheme.backward_name, "accumulate": self.scheme.accumulate.name}
        data["source"] = self.source
        return data


def _resolve_scheme(model: ArchConfigModel) -> Scheme:
    if isinstance(model.scheme, str):
        return get_scheme(model.scheme)
    inline = model.scheme
    # built for this arch alone, not registered: two archs may define different inline schemes in one process
    return Scheme(f"{model.name}:scheme", get_format(inline.forward), get_format(inline.backward),
                  get_format(inline.accumulate), f"inline scheme of {model.name}")


# Physically plausible ranges (inclusive) of the numeric keys.  A value outside is a typo or a unit mistake
# (GB/s given as B/s, a latency in picoseconds), and an infinite or absurd one makes cycle counts hundreds of
# digits long; the ranges are wide enough for any real or imagined core.  (key path, low, high, unit)
_PLAUSIBLE: tuple[tuple[str, float, float, str], ...] = (
    ("clock_ghz", 1e-6, 100.0, "GHz"),
    ("array.rows", 1, 65536, "PEs"),
    ("array.cols", 1, 65536, "PEs"),
    ("array.pipeline_latency_cycles", 0, 1e9, "cycles"),
    ("dram.bw_bytes_per_cycle", 1e-6, 1e9, "bytes per cycle"),
    ("dram.bw_gb_per_s", 1e-6, 1e9, "GB/s"),
    ("dram.latency_cycles", 0, 1e9, "cycles"),
    ("interconnect.bw_bytes_per_cycle", 1e-6, 1e9, "bytes per cycle"),
    ("interconnect.latency_cycles", 0, 1e9, "cycles"),
    ("interconnect.dma_engines", 1, 1024, "engines"),
    ("vector_unit.lanes", 1, 1 << 20, "lanes"),
    ("vector_unit.special_op_cycles", 1e-6, 1e9, "lane-cycles"),
    ("vector_unit.fp32_rate", 1e-6, 1e6, "lane-ops per cycle"),
    ("chip.cores", 1, 4096, "cores"),
    ("chip.noc.link_bytes_per_cycle", 1e-6, 1e9, "bytes per cycle"),
    ("chip.noc.hop_latency_cycles", 0, 1e9, "cycles"),
    *((f"scratchpads.{pad}.{key}", low, high, unit) for pad in ("input", "weight", "output")
      for key, low, high, unit in (("size_kib", 1e-6, 1 << 30, "KiB"), ("banks", 1, 1 << 16, "banks"),
                                   ("read_bytes_per_cycle", 1e-6, 1e9, "bytes per cycle"),
                                   ("write_bytes_per_cycle", 1e-6, 1e9, "bytes per cycle"))),
)


def _implausible(model: ArchConfigModel) -> list[str]:
    """``key: value is outside the plausible range low..high unit`` for every numeric key out of its range
    (infinity included), plus the DRAM bandwidth per cycle that GB/s and the clock give together."""
    problems = []
    for key, low, high, unit in _PLAUSIBLE:
        value: Any = model
        for part in key.split("."):
            value = getattr(value, part)
        if value is not None and not low <= value <= high:
            problems.append(f"{key}: {value:g} is outside the plausible range {low:g}..{high:g} {unit}")
    dram = model.dram
    if dram.bw_gb_per_s is not None and not problems:
        per_cycle = dram.bw_gb_per_s / model.clock_ghz
        if not 1e-6 <= per_cycle <= 1e9:
            problems.append(f"dram.bw_gb_per_s: {dram.bw_gb_per_s:g} GB/s at {model.clock_ghz:g} GHz is "
                            f"{per_cycle:g} bytes per cycle, outside the plausible range 1e-06..1e+09")
    return problems


def _cross_field_problems(model: ArchConfigModel, scheme: Scheme) -> list[str]:
    problems = _implausible(model)
    array = model.array
    acc = array.accumulator
    has_bandwidth = model.dram.bw_bytes_per_cycle is not None or model.dram.bw_gb_per_s is not None
    if not model.dram.ideal and not has_bandwidth:
        problems.append("dram: give bw_bytes_per_cycle or bw_gb_per_s, or ideal: true")
    if model.dram.bw_bytes_per_cycle is not None and model.dram.bw_gb_per_s is not None:
        problems.append("dram: give bw_bytes_per_cycle or bw_gb_per_s, not both")
    if acc.chunk is not None and array.dataflow != "os":
        problems.append(f"array.accumulator.chunk: applies to dataflow os only (dataflow is {array.dataflow})")
    if acc.chain and array.dataflow == "os":
        problems.append("array.accumulator.chain: applies to dataflows ws/is only")
    for key in ("format", "buffer_format"):
        name = getattr(acc, key)
        if name is not None:
            try:
                get_format(name)
            except FormatError as exc:
                problems.append(f"array.accumulator.{key}: {exc}")
    # the energy section names a technology table: its operating point and DRAM kind must exist there
    try:
        tech = load_tech(model.energy.tech)
    except ConfigError as exc:
        problems.append(f"energy.tech: {exc}")
    else:
        points = list(tech.model.operating_points)
        if model.energy.operating_point not in points:
            problems.append(f"energy.operating_point: unknown operating point {model.energy.operating_point!r} in "
                            f"{tech.name}; known: {', '.join(points)}")
        kinds = list(tech.model.dram_pj_per_byte)
        if model.energy.dram_kind not in kinds:
            problems.append(f"energy.dram_kind: unknown DRAM kind {model.energy.dram_kind!r} in {tech.name}; "
                            f"known: {', '.join(kinds)}")
    if model.mode == "scalesim":
        # SCALE-Sim mode reproduces its CALC mode: memory is ideal and the scratchpads only log traffic, so
        # their sizes never reject a config, and a bandwidth would be silently ignored: refuse it instead
        if has_bandwidth or not model.dram.ideal:
            problems.append("dram: SCALE-Sim mode models its CALC mode (ideal memory, no stalls): set "
                            "dram: {ideal: true} without a bandwidth; a finite bandwidth (its USER mode) is not "
                            "modelled, use mode: hfp8sim for it")
        return problems
    # a minimal tile (one fold of the array) must fit each scratchpad, double-buffered if so configured
    element = scheme.widest_operand_bits / 8
    acc_bytes = 4.0
    needs = {
        "input": array.rows * array.cols * element if array.dataflow == "is" else array.rows * element,
        "weight": array.rows * array.cols * element if array.dataflow == "ws" else array.cols * element,
        "output": array.rows * array.cols * acc_bytes if array.dataflow == "os" else array.cols * acc_bytes,
    }
    for name, need in needs.items():
        pad = getattr(model.scratchpads, name)
        have = pad.size_kib * 1024 / (2 if pad.double_buffered else 1)
        if need > have:
            problems.append(f"scratchpads.{name}.size_kib: {pad.size_kib:g} KiB cannot hold a minimal tile of "
                            f"{need / 1024:.2f} KiB{' per buffer (double-buffered)' if pad.double_buffered else ''}")
    return problems


def parse_arch(data: Any, source: str = "<arch>") -> ArchConfig:
    if not isinstance(data, dict):
        raise ConfigError("an arch config is a mapping of keys (name, clock_ghz, array, ...)", file=source)
    try:
        model = ArchConfigModel.model_validate(data)
    except pydantic.ValidationError as exc:
        raise validation_error(exc, source) from None
    try:
        scheme = _resolve_scheme(model)
    except FormatError as exc:
        raise ConfigError(str(exc), file=source, key_path="scheme") from None
    problems = _cross_field_problems(model, scheme)
    if problems:
        message = problems[0] if len(problems) == 1 else f"{len(problems)} problems: " + "; ".join(problems)
        raise ConfigError(message, file=source)
    return ArchConfig(model, source, scheme)


def load_arch(path: str | Path) -> ArchConfig:
    """Read and validate an arch config file: hfp8sim YAML, or a SCALE-Sim INI config (told apart by content)."""
    if detect_file_kind(path) == FileKind.SCALESIM_CFG:
        return parse_arch(scalesim_cfg_to_arch_data(path), str(path))
    return parse_arch(read_yaml(path), str(path))


def resolve_arch(arch: ArchConfig | str | Path | None) -> ArchConfig:
    """An ArchConfig, an arch file, or the name of a shipped one (``default``, ``tpu_v1_like``, ...); None is
    the default core."""
    if isinstance(arch, ArchConfig):
        return arch
    if arch is None:
        return load_arch(default_arch_path())
    return load_arch(resolve_shipped(arch, ARCH_CONFIGS))
