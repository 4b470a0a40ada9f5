"""Technology (energy) tables: per-action energies at a nominal voltage, strictly validated from YAML.

A tech file is the Energy Reference Table (Timeloop/Accelergy ERT style) of one technology.  The timing model
only counts actions; :func:`hfp8sim.energy.model.energy_of` multiplies those counts by this table.  The table
is configuration (an arch config names one and is checked against it), so it lives in ``config`` and the
energy model imports it from here.  Every number
may carry its ``source`` and a sweep ``range``; every problem in a file is reported at once as
``file: key.path: message``, and unknown keys are errors.

Shape of a file (see ``arch_configs/tech/tech_7nm.yaml`` for a commented example)::

    name: tech_7nm
    node_nm: 7
    nominal_voltage_v: 0.75                # the voltage the energies below are given at
    nominal_sram_voltage_v: 0.95           # optional: SRAM on its own rail (then every operating point gives one)
    mac_pj:       {fp8: E, fp16: E, fp32: E}          # per multiply-accumulate, by operand width
    zero_gated_fraction: E                 # a zero-operand MAC costs this fraction of a MAC when PEs gate zeros
    pe_register_pj_per_byte: E             # PE pipeline registers (operands forwarded PE to PE, partial sums)
    sram_access_pj: {points: [{bank_kib, port_bits, read, write}, ...], source}   # pJ per access of one bank,
                                           # a full grid; log-log in bank size and port width, clamped
    sram_pj_per_byte: {points: [{size_kib, read, write}, ...], source}   # legacy: by pad size only
    dram_pj_per_byte: {hbm2: {read, write, source}, lpddr4: ..., ...}
    edge_pj_per_byte: E                    # scratchpad <-> array-edge wires
    noc_pj_per_byte_hop: E                 # core-to-core network, per byte per hop
    vector_pj: {elementwise_fp16: E, elementwise_fp32: E, special_fp16: E, special_fp32: E,
                reduction_fp16: E, reduction_fp32: E}
    area_mm2: {mac_unit_fp8: E, mac_unit_fp16: E, mac_unit_fp32: E, sram_per_kib: E, vector_lane: E}
    leakage_mw_per_mm2: E                  # leakage power density at the nominal voltage (area model)
    clock_pj_per_cycle: {per_pe: E, per_vector_lane: E, per_core: E}   # clock tree and control, every cycle
    static_power_mw_per_core: E            # legacy leakage per core (instead of the area model)
    static_voltage_exponent: E             # optional, default 1: P_static ~ (V/V_nominal)^exponent
    operating_points: {peak: {clock_ghz, voltage_v, sram_voltage_v}, ...}

where ``E`` is either a number or ``{value: number, source: "...", range: [low, high]}``.  Entries other than
``name``, ``nominal_voltage_v`` and ``operating_points`` may be left out: a table without, say, FP32 MACs is
fine until a workload counts one (then :func:`energy_of` names the missing action and the file).
"""

from __future__ import annotations

import bisect
import functools
import math
import re
from typing import NamedTuple
from pathlib import Path
from typing import Any

import pydantic
from pydantic_core import PydanticCustomError

from ..io import TECH_TABLES, read_yaml, resolve_shipped, validation_error
from ..errors import ConfigError

__all__ = [
    "AreaTable", "ClockTable", "DramEntry", "Entry", "OperatingPoint", "SramBank", "SramBankPoint", "SramBankTable",
    "SramCurve", "SramPoint", "TechTable", "TechTableModel", "load_tech", "parse_tech", "shipped_tech_files",
    "DEFAULT_TECH",
]

DEFAULT_TECH = "tech_7nm"

_STRICT = pydantic.ConfigDict(extra="forbid", strict=True, frozen=True)

NonNegativeFloat = pydantic.confloat(ge=0, allow_inf_nan=False)
PositiveFloat = pydantic.confloat(gt=0, allow_inf_nan=False)
_Range = pydantic.conlist(NonNegativeFloat, min_length=2, max_length=2)
_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")


def _number_to_entry(data: Any) -> Any:
    """``key: 0.2`` is shorthand for ``key: {value: 0.2}``."""
    if isinstance(data, (int, float)) and not isinstance(data, bool):
        return {"value": data}
    return data


class Entry(pydantic.BaseModel):
    """One energy (pJ, pJ/B, pJ/B/hop), power (mW) or fraction, at the table's nominal voltage."""

    model_config = _STRICT
    value: NonNegativeFloat
    source: str = ""
    range: _Range | None = None  # a sweep range [low, high]

    @pydantic.model_validator(mode="before")
    @classmethod
    def _shorthand(cls, data: Any) -> Any:
        return _number_to_entry(data)

    @pydantic.model_validator(mode="after")
    def _value_in_range(self) -> Entry:
        if self.range is not None:
            low, high = self.range
            if low > high:
                raise PydanticCustomError("range_order", "range [{low}, {high}] must be [low, high]",
                                          {"low": low, "high": high})
            if not low <= self.value <= high:
                raise PydanticCustomError("outside_range", "value {value} is outside its range [{low}, {high}]",
                                          {"value": self.value, "low": low, "high": high})
        return self


class FractionEntry(Entry):
    value: pydantic.confloat(ge=0, le=1, allow_inf_nan=False)


class MacTable(pydantic.BaseModel):
    """pJ per multiply-accumulate by operand width (8-bit operands accumulate in FP16/DLFloat16)."""

    model_config = _STRICT
    fp8: Entry | None = None
    fp16: Entry | None = None
    fp32: Entry | None = None


class VectorTable(pydantic.BaseModel):
    """pJ per vector/SFU operation (one element)."""

    model_config = _STRICT
    elementwise_fp16: Entry | None = None
    elementwise_fp32: Entry | None = None
    special_fp16: Entry | None = None
    special_fp32: Entry | None = None
    reduction_fp16: Entry | None = None
    reduction_fp32: Entry | None = None


class SramPoint(pydantic.BaseModel):
    model_config = _STRICT
    size_kib: PositiveFloat
    read: PositiveFloat  # pJ per byte read (> 0: the curve is interpolated in log-log)
    write: PositiveFloat  # pJ per byte written


class SramCurve(pydantic.BaseModel):
    """pJ per byte versus scratchpad size: log-log interpolation between points, clamped at the ends."""

    model_config = _STRICT
    points: list[SramPoint]
    source: str = ""

    @pydantic.field_validator("points")
    @classmethod
    def _sizes_increase(cls, points: list[SramPoint]) -> list[SramPoint]:
        if not points:
            raise PydanticCustomError("too_short", "give at least one point (size_kib, read, write)")
        for i in range(1, len(points)):
            if points[i].size_kib <= points[i - 1].size_kib:
                raise PydanticCustomError(
                    "not_increasing", "sizes must increase: point {i} has size_kib {size} after {previous}",
                    {"i": i, "size": points[i].size_kib, "previous": points[i - 1].size_kib})
        return points


class SramBank(NamedTuple):
    """One bank of a scratchpad as the SRAM energy sees it: capacity and the width of its read and write ports."""

    bank_kib: float
    read_port_bits: float
    write_port_bits: float


class SramBankPoint(pydantic.BaseModel):
    model_config = _STRICT
    bank_kib: PositiveFloat
    port_bits: PositiveFloat
    read: PositiveFloat  # pJ per access of port_bits (> 0: interpolated in log-log)
    write: PositiveFloat


class SramBankTable(pydantic.BaseModel):
    """pJ per access of one SRAM bank by bank capacity and port width (a CACTI-style table).

    The points form a full grid (every capacity with every width, once); between them the energy is bilinear in
    log(capacity), log(width) and log(energy), and each axis is clamped to the grid's ends."""

    model_config = _STRICT
    points: list[SramBankPoint]
    source: str = ""

    @pydantic.field_validator("points")
    @classmethod
    def _full_grid(cls, points: list[SramBankPoint]) -> list[SramBankPoint]:
        if not points:
            raise PydanticCustomError("too_short", "give at least one point (bank_kib, port_bits, read, write)")
        keys = [(p.bank_kib, p.port_bits) for p in points]
        if len(set(keys)) != len(keys):
            raise PydanticCustomError("duplicate", "each (bank_kib, port_bits) may appear once")
        caps, widths = {k[0] for k in keys}, {k[1] for k in keys}
        if len(keys) != len(caps) * len(widths):
            raise PydanticCustomError(
                "not_a_grid", "the points must form a full grid: {caps} capacities x {widths} widths need {need} "
                "points, not {have}", {"caps": len(caps), "widths": len(widths), "need": len(caps) * len(widths),
                                       "have": len(keys)})
        return points


class AreaTable(pydantic.BaseModel):
    """mm^2 per unit of hardware at the node: what leaks (area x ``leakage_mw_per_mm2``)."""

    model_config = _STRICT
    mac_unit_fp8: Entry | None = None  # one MAC unit of a PE with its registers, by its widest operand width
    mac_unit_fp16: Entry | None = None
    mac_unit_fp32: Entry | None = None
    sram_per_kib: Entry | None = None
    vector_lane: Entry | None = None


class ClockTable(pydantic.BaseModel):
    """pJ per cycle of clock tree and control, charged every cycle whether the unit works or not."""

    model_config = _STRICT
    per_pe: Entry | None = None
    per_vector_lane: Entry | None = None
    per_core: Entry | None = None


class DramEntry(pydantic.BaseModel):
    """pJ per byte transferred to/from one kind of off-chip memory (device + interface)."""

    model_config = _STRICT
    read: NonNegativeFloat
    write: NonNegativeFloat
    source: str = ""
    range: _Range | None = None

    @pydantic.model_validator(mode="after")
    def _values_in_range(self) -> DramEntry:
        if self.range is not None:
            low, high = self.range
            if low > high:
                raise PydanticCustomError("range_order", "range [{low}, {high}] must be [low, high]",
                                          {"low": low, "high": high})
            for key in ("read", "write"):
                value = getattr(self, key)
                if not low <= value <= high:
                    raise PydanticCustomError("outside_range", "{key} {value} is outside its range [{low}, {high}]",
                                              {"key": key, "value": value, "low": low, "high": high})
        return self


class OperatingPoint(pydantic.BaseModel):
    model_config = _STRICT
    clock_ghz: PositiveFloat
    voltage_v: PositiveFloat
    sram_voltage_v: PositiveFloat | None = None  # only with the table's nominal_sram_voltage_v
    source: str = ""


class TechTableModel(pydantic.BaseModel):
    model_config = _STRICT
    name: str
    description: str = ""
    node_nm: PositiveFloat | None = None
    source: str = ""
    nominal_voltage_v: PositiveFloat
    nominal_sram_voltage_v: PositiveFloat | None = None
    mac_pj: MacTable = MacTable()
    zero_gated_fraction: FractionEntry | None = None
    pe_register_pj_per_byte: Entry | None = None
    sram_access_pj: SramBankTable | None = None
    sram_pj_per_byte: SramCurve | None = None  # legacy: energy by pad capacity only
    dram_pj_per_byte: dict[str, DramEntry] = {}
    edge_pj_per_byte: Entry | None = None
    noc_pj_per_byte_hop: Entry | None = None
    vector_pj: VectorTable = VectorTable()
    area_mm2: AreaTable = AreaTable()
    leakage_mw_per_mm2: Entry | None = None
    clock_pj_per_cycle: ClockTable = ClockTable()
    static_power_mw_per_core: Entry | None = None  # legacy: leakage per core instead of the area model
    static_voltage_exponent: Entry | None = None  # default 1 (linear in V)
    operating_points: dict[str, OperatingPoint]


def _cross_field_problems(model: TechTableModel) -> list[str]:
    problems = []
    if not model.operating_points:
        problems.append("operating_points: give at least one operating point {clock_ghz, voltage_v}")
    for group in ("operating_points", "dram_pj_per_byte"):
        for key in getattr(model, group):
            if not _NAME.match(key):
                problems.append(f"{group}.{key}: names are letters, digits and underscores")
    if model.leakage_mw_per_mm2 is not None and model.static_power_mw_per_core is not None:
        problems.append("static_power_mw_per_core: give either the area model (leakage_mw_per_mm2) or the legacy "
                        "per-core leakage, not both")
    split_rail = model.nominal_sram_voltage_v is not None
    for name, point in model.operating_points.items():
        if split_rail and point.sram_voltage_v is None:
            problems.append(f"operating_points.{name}.sram_voltage_v: required key is missing "
                            "(the table gives nominal_sram_voltage_v)")
        if not split_rail and point.sram_voltage_v is not None:
            problems.append(f"operating_points.{name}.sram_voltage_v: needs nominal_sram_voltage_v in the table")
    return problems


class TechTable:
    """A validated technology table (immutable); ``source`` is the file it came from."""

    def __init__(self, model: TechTableModel, source: str | None):
        self.model = model
        self.source = source

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") or name == "model":  # not set yet (unpickling): no recursion
            raise AttributeError(name)
        return getattr(self.model, name)

    def __repr__(self) -> str:
        points = ", ".join(f"{n} {p.clock_ghz:g} GHz/{p.voltage_v:g} V" for n, p in self.model.operating_points.items())
        return f"TechTable({self.model.name!r}, {self.model.nominal_voltage_v:g} V nominal; {points})"

    @property
    def name(self) -> str:
        return self.model.name

    def operating_point(self, name: str) -> OperatingPoint:
        try:
            return self.model.operating_points[name]
        except KeyError:
            known = ", ".join(self.model.operating_points)
            raise ConfigError(f"unknown operating point {name!r}; known: {known}", file=self.source,
                              key_path="operating_points") from None

    def dynamic_scale(self, op_point: str) -> float:
        """(V / V_nominal)^2 of the logic rail at an operating point."""
        return (self.operating_point(op_point).voltage_v / self.model.nominal_voltage_v) ** 2

    def sram_scale(self, op_point: str) -> float:
        """(V_sram / V_sram_nominal)^2, or the logic rail's factor when SRAM shares it."""
        point = self.operating_point(op_point)
        if self.model.nominal_sram_voltage_v is None:
            return self.dynamic_scale(op_point)
        return (point.sram_voltage_v / self.model.nominal_sram_voltage_v) ** 2

    def static_scale(self, op_point: str) -> float:
        """(V / V_nominal)^exponent for leakage power (exponent 1 unless the table says otherwise)."""
        exponent = 1.0 if self.model.static_voltage_exponent is None else self.model.static_voltage_exponent.value
        return (self.operating_point(op_point).voltage_v / self.model.nominal_voltage_v) ** exponent

    def sram_pj_per_byte(self, size_kib: float, access: str = "read") -> float:
        """pJ per byte read or written at the nominal voltage for a scratchpad of ``size_kib``.

        Log-log interpolation between the curve's points; below the first point and above the last the end
        values are used (clamped).  Exactly the tabulated value at a point.
        """
        if access not in ("read", "write"):
            # internal invariant: only the energy model calls this, with the literals "read" and "write"
            raise ValueError(f"access is 'read' or 'write', not {access!r}")
        curve = self.model.sram_pj_per_byte
        if curve is None:
            raise ConfigError("the table has no SRAM energies", file=self.source, key_path="sram_pj_per_byte")
        if not (isinstance(size_kib, (int, float)) and math.isfinite(size_kib) and size_kib > 0):
            raise ConfigError(f"scratchpad size_kib must be a positive number, not {size_kib!r}", file=self.source,
                              key_path="sram_pj_per_byte")
        sizes = [p.size_kib for p in curve.points]
        values = [getattr(p, access) for p in curve.points]
        if size_kib <= sizes[0]:
            return values[0]
        if size_kib >= sizes[-1]:
            return values[-1]
        i = bisect.bisect_right(sizes, size_kib) - 1  # sizes[i] <= size_kib < sizes[i + 1]
        if size_kib == sizes[i]:
            return values[i]
        t = math.log(size_kib / sizes[i]) / math.log(sizes[i + 1] / sizes[i])
        return values[i] * (values[i + 1] / values[i]) ** t

    @property
    def area_model(self) -> bool:
        """Leakage from area (``leakage_mw_per_mm2``) rather than the legacy ``static_power_mw_per_core``."""
        return self.model.leakage_mw_per_mm2 is not None

    def sram_access_pj(self, bank_kib: float, port_bits: float, access: str = "read") -> float:
        """pJ per access of one bank of ``bank_kib`` through a ``port_bits``-wide port, at the nominal voltage.

        Bilinear in log(capacity), log(width), log(energy) between the grid's points; each axis clamped to the
        grid's ends; exactly the tabulated value at a point."""
        if access not in ("read", "write"):
            raise ValueError(f"access is 'read' or 'write', not {access!r}")  # internal: only called with literals
        table = self.model.sram_access_pj
        if table is None:
            raise ConfigError("the table has no SRAM bank energies", file=self.source, key_path="sram_access_pj")
        for name, value in (("bank size (KiB)", bank_kib), ("port width (bits)", port_bits)):
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
                raise ConfigError(f"scratchpad {name} must be a positive number, not {value!r}", file=self.source,
                                  key_path="sram_access_pj")
        grid, caps, widths = self._sram_grid(access)
        (c0, c1, tc), (w0, w1, tw) = _bracket(caps, bank_kib), _bracket(widths, port_bits)
        narrow = _power_between(grid[(c0, w0)], grid[(c1, w0)], tc)
        wide = _power_between(grid[(c0, w1)], grid[(c1, w1)], tc)
        return _power_between(narrow, wide, tw)

    @functools.lru_cache(maxsize=2)  # noqa: B019 - tables are immutable and few; priced once per layer
    def _sram_grid(self, access: str) -> tuple[dict[tuple[float, float], float], list[float], list[float]]:
        grid = {(p.bank_kib, p.port_bits): getattr(p, access) for p in self.model.sram_access_pj.points}
        return grid, sorted({k[0] for k in grid}), sorted({k[1] for k in grid})

    def summary(self) -> dict[str, Any]:
        """The table as plain data (for result files)."""
        data = self.model.model_dump(mode="json")
        data["file"] = self.source
        return data


def _bracket(axis: list[float], x: float) -> tuple[float, float, float]:
    """Neighbours ``a <= x <= b`` on a sorted axis and x's log-position between them (clamped to the ends)."""
    if x <= axis[0]:
        return axis[0], axis[0], 0.0
    if x >= axis[-1]:
        return axis[-1], axis[-1], 0.0
    i = bisect.bisect_right(axis, x) - 1
    if axis[i] == x:
        return x, x, 0.0
    return axis[i], axis[i + 1], math.log(x / axis[i]) / math.log(axis[i + 1] / axis[i])


def _power_between(a: float, b: float, t: float) -> float:
    """a (b/a)^t: linear in log-log; exactly ``a`` at t = 0."""
    return a if t == 0.0 else a * (b / a) ** t


def parse_tech(data: Any, source: str = "<tech>") -> TechTable:
    """Validate a parsed tech file; every problem at once, each with its key path."""
    if not isinstance(data, dict):
        raise ConfigError("a tech file is a mapping of keys (name, nominal_voltage_v, mac_pj, ...)", file=source)
    try:
        model = TechTableModel.model_validate(data)
    except pydantic.ValidationError as exc:
        raise validation_error(exc, source) from None
    problems = _cross_field_problems(model)
    if problems:
        message = problems[0] if len(problems) == 1 else f"{len(problems)} problems: " + "; ".join(problems)
        raise ConfigError(message, file=source)
    return TechTable(model, source)


def shipped_tech_files() -> dict[str, Path]:
    """The shipped tech files by name (file stem): ``arch_configs/tech/*.yaml``."""
    return TECH_TABLES.files()


def load_tech(path: str | Path = DEFAULT_TECH) -> TechTable:
    """Read and validate a tech file: a path, or a shipped name such as ``tech_7nm``."""
    file = resolve_shipped(path, TECH_TABLES)
    return parse_tech(read_yaml(file), str(file))
