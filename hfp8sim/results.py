"""Typed, additive results: one row per layer, totals per network, written as CSV and JSON and read back here.

A run folder holds ``layers.csv`` (one :class:`LayerResult` row per layer, energy columns flattened) and
``summary.json`` (totals, the resolved config, the version); :meth:`NetworkResult.write` writes both and
:func:`read_run_folder` reads them back (for plots); :func:`read_rows` and :func:`read_result_json` read any
result table or JSON object (a sweep's ``points.csv`` and point files too), with numbers typed again.
"""

from __future__ import annotations

import csv
import dataclasses
import functools
import json
from pathlib import Path
from typing import Any

from .errors import ResultsError

RUN_FILES = ("layers.csv", "summary.json")
# written beside them by `hfp8sim run --format scalesim`
SCALESIM_REPORT_FILES = ("COMPUTE_REPORT.csv", "BANDWIDTH_REPORT.csv", "DETAILED_ACCESS_REPORT.csv",
                         "SCALESIM_LAYERS.csv")


@dataclasses.dataclass(frozen=True)
class LayerResult:
    name: str
    op: str
    kind: str  # "gemm" (array) or "vector" (not timed on the array)
    M: int = 0
    N: int = 0
    K: int = 0
    batch: int = 0
    macs: int = 0
    zero_operand_macs: float = 0.0  # MACs with a zero operand, measured in a trace (0 without one)
    # cycles are whole cycles (ints); for a GEMM layer cycles = fold_cycles + port_stall_cycles + stall_cycles
    cycles: int = 0
    compute_cycles: int = 0  # the array busy: fold cycles stretched by its edge ports (vector layers: exposed)
    stall_cycles: int = 0  # the array idle, waiting for DRAM transfers or a free output buffer
    fold_cycles: int = 0  # the closed-form fold schedule alone (ports as wide as needed)
    port_stall_cycles: int = 0  # folds stretched because a scratchpad port or the interconnect was too narrow
    folds: int = 0
    tiles: int = 0
    utilization: float = 0.0  # MACs / (cycles * peak MACs per cycle)
    mapping_efficiency: float = 0.0  # used PE positions / offered, over all folds
    dram_read_bytes: float = 0.0
    dram_write_bytes: float = 0.0
    compulsory_dram_bytes: float = 0.0
    sram_read_bytes: float = 0.0
    sram_write_bytes: float = 0.0
    sram_input_read_bytes: float = 0.0
    sram_input_write_bytes: float = 0.0
    sram_weight_read_bytes: float = 0.0
    sram_weight_write_bytes: float = 0.0
    sram_output_read_bytes: float = 0.0
    sram_output_write_bytes: float = 0.0
    interconnect_bytes: float = 0.0
    tile_shape: str = ""
    loop_order: str = ""
    mapping: str = ""  # how a GEMM layer ran: "gemm", "packed xG" (groups per fold) or "vector unit"
    vector_cycles: int = 0  # vector-unit busy cycles (exposed ones are in ``cycles``)
    vector_elementwise_ops: float = 0.0
    vector_special_ops: float = 0.0
    vector_reduction_ops: float = 0.0
    fused: bool = False  # an elementwise layer hidden behind the GEMM that produced its input
    folded: bool = False  # an inference batch norm folded into its conv's weights and bias: no work, no bytes
    cores: int = 1  # cores the layer ran on
    partition: str = ""  # how a GEMM layer was split over the cores
    noc_bytes: float = 0.0  # bytes moved between cores
    noc_byte_hops: float = 0.0
    objective: str = ""  # what the mapper minimised for a GEMM layer: time, energy or edp
    # the best other plan's cost under that objective (cycles, pJ, or pJ x cycles); None: it had no other
    runner_up_cost: float | None = None
    # a training step's rows: the pass (forward, backward_data, backward_weight, update), the forward layer a
    # row belongs to (its own name for a forward row), and the trainable parameters a forward row owns (an
    # inference run's rows keep these defaults)
    pass_: str = "forward"
    source_layer: str = ""
    param_elements: int = 0
    precision: str = ""  # the scheme a GEMM layer named in place of the run's ("": the run's)
    energy: dict[str, float] = dataclasses.field(default_factory=dict)  # energy_<component>_pj, energy_total_pj

    def row(self, training: bool = False) -> dict[str, Any]:
        """The CSV row; the training columns (``pass``, ``source_layer``, ``param_elements``) only for a row
        of a training step (``training``), so an inference run's tables keep their columns; ``precision`` only
        for a row that names one (:meth:`NetworkResult.write` fills the run's scheme into the others)."""
        row = dataclasses.asdict(self)
        energy = row.pop("energy")
        if not row["precision"]:
            del row["precision"]
        training_values = {"pass": row.pop("pass_"), "source_layer": row.pop("source_layer"),
                           "param_elements": row.pop("param_elements")}
        if training:
            row.update(training_values)
        row.update(energy)
        return row

    @classmethod
    def zero(cls) -> LayerResult:
        """The identity of ``+``: ``sum(layers, LayerResult.zero())`` totals a network."""
        return cls(name="", op="", kind="")

    def __add__(self, other: LayerResult) -> LayerResult:
        """Counts, bytes, cycles and energies add (layers that run one after another); what describes one layer
        (name, op, kind, shape, tiling, partition) is kept where both sides agree and blank otherwise, and the
        ratios (utilization, mapping efficiency) are not additive: they are left at 0 in a sum (a
        :class:`NetworkResult` computes its own utilization from its totals and peak)."""
        if not isinstance(other, LayerResult):
            return NotImplemented
        values: dict[str, Any] = {}
        for name in _ADDITIVE:
            values[name] = getattr(self, name) + getattr(other, name)
        for name in _DESCRIPTIVE:
            mine, theirs = getattr(self, name), getattr(other, name)
            values[name] = mine if mine == theirs or not theirs else theirs if not mine else \
                type(mine)()
        values["fused"] = self.fused and other.fused
        values["folded"] = self.folded and other.folded
        values["cores"] = max(self.cores, other.cores)
        values["runner_up_cost"] = None  # one layer's alternative; a sum of layers has none
        keys = list(self.energy) + [k for k in other.energy if k not in self.energy]
        values["energy"] = {k: self.energy.get(k, 0.0) + other.energy.get(k, 0.0) for k in keys}
        return LayerResult(**values)



# how each field of a LayerResult combines in ``+``
_DESCRIPTIVE = ("name", "op", "kind", "M", "N", "K", "batch", "tile_shape", "loop_order", "mapping", "partition",
                "objective", "pass_", "source_layer", "precision")
_RATIOS = ("utilization", "mapping_efficiency")
_ADDITIVE = tuple(f.name for f in dataclasses.fields(LayerResult)
                  if f.name not in (*_DESCRIPTIVE, *_RATIOS, "fused", "folded", "cores", "runner_up_cost", "energy"))


# what a training step's per-pass table reports of each pass (the last two are derived: read + written bytes,
# and the energy total)
PASS_FIELDS = ("cycles", "compute_cycles", "stall_cycles", "macs", "vector_cycles", "dram_bytes", "energy_total_pj")


@dataclasses.dataclass(frozen=True)
class NetworkResult:
    workload: str
    arch: str
    scheme: str
    clock_ghz: float
    peak_macs_per_cycle: int
    layers: tuple[LayerResult, ...]
    config: dict[str, Any] = dataclasses.field(default_factory=dict)
    # (layer, name, track, start cycle in the network, duration in cycles, detail); only when recorded
    events: tuple[tuple[str, str, str, float, float, str], ...] = ()

    @functools.cached_property
    def totals(self) -> LayerResult:
        """Every layer added up (see :meth:`LayerResult.__add__`)."""
        return sum(self.layers, LayerResult.zero())

    def total(self, field: str) -> float:
        return getattr(self.totals, field)

    @property
    def is_training(self) -> bool:
        """Whether the run is a training step (some row is not in the forward pass)."""
        return any(layer.pass_ != "forward" for layer in self.layers)

    def per_pass(self) -> dict[str, LayerResult]:
        """The rows of each pass added up, in the order the passes first appear (forward, backward_data,
        backward_weight, update): they sum to :attr:`totals`."""
        sums: dict[str, LayerResult] = {}
        for layer in self.layers:
            sums[layer.pass_] = sums.get(layer.pass_, dataclasses.replace(LayerResult.zero(),
                                                                          pass_=layer.pass_)) + layer
        return sums

    def pass_summary(self) -> dict[str, float]:
        """Flat per-pass totals for ``summary.json`` and a sweep's ``points.csv``: ``<pass>_<field>``."""
        flat: dict[str, float] = {}
        for name, total in self.per_pass().items():
            values = {field: getattr(total, field) for field in PASS_FIELDS[:-2]}
            values["dram_bytes"] = total.dram_read_bytes + total.dram_write_bytes
            values["energy_total_pj"] = total.energy.get("energy_total_pj", 0.0)
            flat.update({f"{name}_{field}": value for field, value in values.items()})
        return flat

    @property
    def cycles(self) -> int:
        return self.total("cycles")

    @property
    def macs(self) -> int:
        return int(self.total("macs"))

    @property
    def seconds(self) -> float:
        return self.cycles / (self.clock_ghz * 1e9)

    @property
    def utilization(self) -> float:
        return self.macs / (self.cycles * self.peak_macs_per_cycle) if self.cycles else 0.0

    def summary(self) -> dict[str, Any]:
        fields = ("cycles", "compute_cycles", "stall_cycles", "fold_cycles", "port_stall_cycles", "macs", "zero_operand_macs", "dram_read_bytes",
                  "dram_write_bytes", "compulsory_dram_bytes", "sram_read_bytes", "sram_write_bytes", "interconnect_bytes", "folds",
                  "tiles", "vector_cycles", "vector_elementwise_ops", "vector_special_ops", "vector_reduction_ops",
                  "noc_bytes", "noc_byte_hops")
        totals = {f: self.total(f) for f in fields}
        for key in sorted(self.totals.energy):
            totals[key] = self.totals.energy[key]
        if "energy_total_pj" in totals and self.cycles:
            joules = totals["energy_total_pj"] * 1e-12
            totals.update(energy_joules=joules, average_power_w=joules / self.seconds,
                          pj_per_mac=totals["energy_total_pj"] / self.macs if self.macs else 0.0,
                          tops_per_watt=2 * self.macs / joules / 1e12 if joules else 0.0)
            totals["tflops_per_watt"] = totals["tops_per_watt"]  # one MAC = two floating-point operations
            on_chip = totals.get("energy_on_chip_pj", 0.0)
            if on_chip:  # the chip's own energy (all but DRAM): what published chip efficiencies cover
                totals.update(on_chip_pj_per_mac=on_chip / self.macs if self.macs else 0.0,
                              on_chip_tflops_per_watt=2 * self.macs / on_chip)
        if self.is_training:
            totals.update(self.pass_summary())
            totals["param_elements"] = self.total("param_elements")
        totals.update(
            workload=self.workload, arch=self.arch, scheme=self.scheme, clock_ghz=self.clock_ghz,
            peak_macs_per_cycle=self.peak_macs_per_cycle,
            seconds=self.seconds, utilization=self.utilization,
            tera_macs_per_second=self.macs / self.seconds / 1e12 if self.cycles else 0.0,
            layers=len(self.layers), gemm_layers=sum(1 for layer in self.layers if layer.kind == "gemm"),
            array_cycles=sum(layer.cycles for layer in self.layers if layer.kind == "gemm"),
            # a conv on the vector unit waiting for DRAM counts that wait as stall cycles, like a GEMM does
            exposed_vector_cycles=sum(layer.cycles - layer.stall_cycles for layer in self.layers
                                      if layer.kind == "vector"),
        )
        return totals

    def write(self, out_dir: Path, extra: dict[str, Any] | None = None, run_id: str | None = None
              ) -> tuple[Path, Path]:
        """``layers.csv`` and ``summary.json`` (with the resolved config and version) into ``out_dir``.

        ``run_id`` (see :func:`run_id`) goes into both: a ``run_id`` key of the summary and a last
        ``run_id`` column of every layer row, so each file says which run it belongs to on its own."""
        from . import __version__

        out_dir.mkdir(parents=True, exist_ok=True)
        layers_path = out_dir / RUN_FILES[0]
        with layers_path.open("w", newline="") as handle:
            training = self.is_training
            rows = [layer.row(training) | ({"run_id": run_id} if run_id else {}) for layer in self.layers]
            if any(layer.precision for layer in self.layers):  # a column of its own: every row's scheme
                rows = [row | {"precision": row.get("precision", self.scheme)} for row in rows]
            fields = list(rows[0]) if rows else list(LayerResult.__dataclass_fields__)
            for row in rows:
                fields += [key for key in row if key not in fields]
            writer = csv.DictWriter(handle, fieldnames=fields, restval=0.0)
            writer.writeheader()
            writer.writerows(rows)
        summary_path = out_dir / RUN_FILES[1]
        payload = {"hfp8sim_version": __version__, "summary": self.summary(), "config": self.config}
        if extra:
            payload.update(extra)
        if run_id:
            payload["run_id"] = run_id
        summary_path.write_text(json.dumps(payload, indent=2, sort_keys=True, default=str) + "\n")
        return layers_path, summary_path


# ---- reading back ------------------------------------------------------------------------------------------

def typed_cell(text: Any) -> Any:
    """A CSV cell as the value it was written from: int, float, bool, None for an empty cell, else the text."""
    if not isinstance(text, str):
        return text
    if text == "":
        return None
    try:
        number = float(text)
    except ValueError:
        return {"True": True, "False": False}.get(text, text)
    return int(number) if number.is_integer() and "." not in text and "e" not in text.lower() else number


def read_rows(path: Path) -> list[dict[str, Any]]:
    """The rows of a result CSV (``layers.csv``, ``points.csv``), values typed."""
    try:
        with path.open(newline="") as handle:
            return [{k: typed_cell(v) for k, v in row.items()} for row in csv.DictReader(handle)]
    except (OSError, csv.Error, UnicodeDecodeError) as exc:
        raise ResultsError(f"{path}: cannot read: {exc}") from None


def read_result_json(path: Path) -> dict[str, Any]:
    """A result JSON object (``summary.json``, a sweep point, ``sweep.json``)."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ResultsError(f"{path}: cannot read: {exc}") from None
    if not isinstance(data, dict):
        raise ResultsError(f"{path}: not a result file (expected a JSON object)")
    return data


def is_run_folder(path: Path) -> bool:
    return all((path / name).is_file() for name in RUN_FILES)


def read_run_folder(folder: Path) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """(``summary.json`` payload, ``layers.csv`` rows) of a run folder written by :meth:`NetworkResult.write`."""
    return read_result_json(folder / RUN_FILES[1]), read_rows(folder / RUN_FILES[0])



def run_id(version: str, configs: list[dict[str, Any]], workload: str) -> str:
    """The id of one run: a hash of the version, the resolved configs (one per scheme run, without the
    path the arch was read from, which names a file rather than a core) and a digest of the workload.
    Equal ids mean the same simulation; ``plot`` uses them to refuse folders that mix runs."""
    import hashlib

    stripped = [{k: v for k, v in config.items() if k != "source"} for config in configs]
    text = json.dumps({"version": version, "configs": stripped, "workload": workload}, sort_keys=True,
                      separators=(",", ":"), default=str)
    return "run-" + hashlib.sha256(text.encode()).hexdigest()[:16]  # the prefix: never read back as a number


def is_result_folder(path: Path) -> bool:
    """A run folder, or a folder of run folders (``--compare``) possibly with ``plots/``: what a new run
    may replace."""
    if is_run_folder(path) or any(path.glob("*/" + RUN_FILES[1])):
        known = RUN_FILES + SCALESIM_REPORT_FILES + ("plots",)
        return all(child.name in known or is_run_folder(child) for child in path.iterdir())
    return False


def run_ids_by_file(folder: Path) -> dict[str, str | None]:
    """The run id recorded in each result file of a run folder and its run subfolders (None: written by a
    version without run ids); file paths as strings."""
    ids: dict[str, str | None] = {}
    for run_folder in [folder, *sorted(child for child in folder.iterdir() if child.is_dir())]:
        if not is_run_folder(run_folder):
            continue
        ids[str(run_folder / RUN_FILES[1])] = read_result_json(run_folder / RUN_FILES[1]).get("run_id")
        rows = read_rows(run_folder / RUN_FILES[0])
        ids[str(run_folder / RUN_FILES[0])] = rows[0].get("run_id") if rows else None
    return ids
