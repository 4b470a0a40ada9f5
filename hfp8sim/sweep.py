"""Sweeps: a grid of arch configs x workloads (x schemes), each point a full network simulation.

A **point** is (a resolved arch config dict: the base file with the point's overrides, a workload, the scheme in
that dict).  :func:`build_sweep` expands the grid from ``KEY=V1,V2,...`` overrides (dotted keys into the arch
YAML, checked against the config schema, unknown keys answered with the closest valid key) and the shortcuts
for the usual axes (array shape, dataflow, scheme, scratchpad size, core count); the axes are crossed
(Cartesian product) or zipped.  :func:`run_sweep` runs the points in local processes
(``concurrent.futures.ProcessPoolExecutor``), serially in this process (``jobs=1``) or on a Dask distributed
cluster (``scheduler="tcp://host:port"``; Dask is imported only then), and writes as each point finishes:

- ``points/<id>.json``: one file per point: status, error, parameters, the full summary, every layer row, the
  resolved config.  The id is a stable hash of the point's resolved arch config and the workload's file
  contents, so ``resume=True`` skips the points that already have a file.
- ``points.csv``: one tidy row per finished point (swept parameters, descriptive columns, summary metrics,
  status and error), rewritten atomically after each point in grid order.
- ``sweep.json``: the grid (axes, parameter columns, every point id), written before the first point runs.

**Data-parallel points.**  The keys ``distributed.*`` (shortcuts ``--chips``, ``--topology``,
``--link-gb-per-s``, ``--protocol``, ``--global-batch``; the fields of
:class:`~hfp8sim.step_profiles.DataParallelSetup`) are axes too, though not arch keys: with any of them every
point is one data-parallel training step on N chips (one chip's training step on the point's arch, then the
reduced SimPy model of the network), the protocol axis defaulting to all three protocols.  ``--batch`` is then
per chip (weak scaling; default 32) and ``--global-batch`` the samples over all chips (strong scaling); a worker
simulates each chip configuration once for all the points that share it.

A point that fails (an invalid value such as ``array.rows=0``, a schedule that does not fit, a global batch that
does not divide across the chips) is recorded with its error and the others carry on.  Reports read these files; nothing in ``hfp8sim.reports`` simulates.
"""

from __future__ import annotations

import collections
import concurrent.futures
import copy
import csv
import dataclasses
import difflib
import hashlib
import io
import itertools
import json
import math
import multiprocessing
import os
import sys
import time
import traceback
import types
import typing
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from .errors import Hfp8SimError, SweepError

__all__ = [
    "Axis", "Point", "PointTask", "Sweep", "SweepResult", "Training", "arch_keys", "build_sweep", "check_key",
    "csv_row", "load_points", "parse_set", "parse_value", "run_point", "run_sweep",
]

POINTS_CSV = "points.csv"
POINTS_DIR = "points"
MANIFEST = "sweep.json"

# Columns every row has, whatever was swept (from the resolved config, so failed points have them too).
DESCRIPTIVE_COLUMNS = ("workload", "arch", "scheme", "rows", "cols", "dataflow", "pes", "cores", "clock_ghz",
                       "dram_gb_per_s", "peak_macs_per_cycle", "objective")
# Summary metrics in this order first; any other summary field (energy_*_pj, ...) follows in its own order.
LEAD_METRICS = ("cycles", "seconds", "tera_macs_per_second", "tera_flops_per_second", "inferences_per_second",
                "utilization", "peak_tera_macs_per_second", "compute_cycles", "stall_cycles", "stall_fraction",
                "macs", "dram_bytes", "dram_read_bytes", "dram_write_bytes", "compulsory_dram_bytes")
# A data-parallel point's system and step first (then one chip's LEAD_METRICS: the chip's training step).
DATA_PARALLEL_METRICS = ("per_chip_batch", "global_batch", "chips", "topology", "link_gb_per_s", "link_latency_us",
                         "protocol", "update_rule", "bucket_mib", "chunks", "param_elements", "step_ms",
                         "samples_per_second", "compute_ms", "forward_backward_ms", "update_ms", "exposed_comm_ms",
                         "overlapped_comm_ms", "comm_ms", "wire_bytes_per_param")
# Shortcut options and the arch keys they set.
SHORTCUTS = {
    "array": ("array.rows", "array.cols"),
    "dataflow": ("array.dataflow",),
    "scheme": ("scheme",),
    "scratchpads_kib": ("scratchpads.input.size_kib", "scratchpads.weight.size_kib", "scratchpads.output.size_kib"),
    "cores": ("chip.cores",),
}
# Keys of a data-parallel point (not arch keys): DATA_PARALLEL.<field of step_profiles.DataParallelSetup>
DATA_PARALLEL = "distributed"
DATA_PARALLEL_SHORTCUTS = {"chips": "chips", "topology": "topology", "link_gb_per_s": "link_gb_per_s",
                           "protocol": "protocol", "global_batch": "global_batch"}
# Setting one key of a group drops the others from the base config (the schema allows only one of them).
EXCLUSIVE = (("dram.bw_gb_per_s", "dram.bw_bytes_per_cycle"),)


# ------------------------------------------------------------------------------------------ config keys


def _field_kinds(annotation: Any) -> tuple[list[type], bool, bool]:
    """(pydantic models, is a mapping, is a plain value) among the alternatives of a field annotation."""
    import pydantic

    origin = typing.get_origin(annotation)
    alternatives = typing.get_args(annotation) if origin in (typing.Union, types.UnionType) else (annotation,)
    models, mapping, value = [], False, False
    for alt in alternatives:
        if alt is type(None):
            continue
        if isinstance(alt, type) and issubclass(alt, pydantic.BaseModel):
            models.append(alt)
        elif typing.get_origin(alt) is dict:
            mapping = True
        else:
            value = True
    return models, mapping, value


def arch_keys() -> dict[str, str]:
    """Every dotted key of an arch config: ``value`` (set it), ``mapping`` (set it or any ``key.SUB``), or
    ``section`` (a group of keys).  Read from the config schema, so new keys (``chip.cores``) appear here."""
    from .config.arch import ArchConfigModel

    keys: dict[str, str] = {}

    def walk(model, prefix: str) -> None:
        for name, field in model.model_fields.items():
            key = prefix + name
            models, mapping, value = _field_kinds(field.annotation)
            keys[key] = "mapping" if mapping else "value" if (value or not models) else "section"
            for sub in models:
                walk(sub, key + ".")

    walk(ArchConfigModel, "")
    return keys


def sweep_keys() -> dict[str, str]:
    """:func:`arch_keys` and the data-parallel keys (``distributed.chips``, ...; section ``distributed``)."""
    from .step_profiles import SWEEP_KEYS

    return {**arch_keys(), DATA_PARALLEL: "section", **{f"{DATA_PARALLEL}.{k}": "value" for k in SWEEP_KEYS}}


def column(key: str) -> str:
    """The points.csv column of a swept key: the key itself, or a data-parallel key without its prefix."""
    return key.removeprefix(DATA_PARALLEL + ".")


def _suggestion(key: str, keys: dict[str, str]) -> str:
    settable = [k for k, kind in keys.items() if kind != "section"]
    same_name = [k for k in settable if k.rsplit(".", 1)[-1] == key]
    if len(same_name) == 1:  # `chips` -> `distributed.chips`, before `chip.cores` looks close
        return f"; did you mean {same_name[0]!r}?"
    same_section = [k for k in settable if "." in key and k.startswith(key.split(".", 1)[0] + ".")]
    match = difflib.get_close_matches(key, same_section, n=1, cutoff=0.6) \
        or difflib.get_close_matches(key, settable, n=1, cutoff=0.6)
    if not match:  # `rows` -> `array.rows`; `array.rws` is caught above
        last = key.rsplit(".", 1)[-1]
        by_last = {k.rsplit(".", 1)[-1]: k for k in settable}
        close = difflib.get_close_matches(last, list(by_last), n=1, cutoff=0.75)
        match = [by_last[close[0]]] if close else []
    if match:
        return f"; did you mean {match[0]!r}?"
    section = key.split(".", 1)[0]
    inside = [k for k in settable if k.startswith(section + ".")]
    if inside:
        return f"; keys of {section}: {', '.join(inside)}"
    return f"; top-level keys: {', '.join(k for k in keys if '.' not in k)}"


def check_key(key: str, keys: dict[str, str] | None = None) -> tuple[Any, ...]:
    """The path of a dotted arch or data-parallel key (``array.rows`` -> ``('array', 'rows')``), or a one-line
    SweepError with the closest valid key."""
    keys = keys if keys is not None else sweep_keys()
    if not key or any(part == "" for part in key.split(".")):
        raise SweepError(f"bad arch config key {key!r}: expected dotted names such as array.rows")
    kind = keys.get(key)
    if kind == "section":
        inside = [k for k, kd in keys.items() if k.startswith(key + ".") and kd != "section"]
        raise SweepError(f"{key!r} is a section of the arch config, not a value; set one of its keys: "
                         f"{', '.join(inside)}")
    if kind is not None:
        return tuple(key.split("."))
    parts = key.split(".")
    parent = ".".join(parts[:-1])
    if len(parts) > 1 and keys.get(parent) == "mapping":  # array.macs_per_pe_per_cycle.8
        return (*parts[:-1], parse_value(parts[-1]))
    raise SweepError(f"unknown {'data-parallel' if parts[0] == DATA_PARALLEL else 'arch config'} key {key!r}"
                     f"{_suggestion(key, keys)}")


def parse_value(text: str) -> Any:
    """One value of a ``--set`` list: YAML scalars (``8``, ``1.5``, ``true``, ``null``, ``ws``), and ``1e3`` as a
    number."""
    import yaml

    text = text.strip()
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError:
        return text
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return value
    return value


# ------------------------------------------------------------------------------------------ the grid


@dataclasses.dataclass(frozen=True)
class Axis:
    """One dimension of the grid: the keys it sets together and its values (one tuple per grid position)."""

    label: str  # how the user gave it: "--set array.rows", "--array", ...
    keys: tuple[str, ...]  # dotted keys (the CSV columns of the axis)
    values: tuple[tuple[Any, ...], ...]


@dataclasses.dataclass(frozen=True)
class Point:
    index: int  # position in the grid (order of rows in points.csv)
    point_id: str
    params: dict[str, Any]  # swept column -> value
    arch_file: str
    workload: str  # the network's name
    arch: dict[str, Any]  # the resolved arch config (base file with the overrides)
    cost: float  # a rough relative run time (MACs / PEs), to start the slow points first
    data_parallel: dict[str, Any] | None = None  # a DataParallelSetup's fields: the point is a data-parallel step


@dataclasses.dataclass(frozen=True)
class PointTask:
    """What a worker needs to run one point (picklable; no paths needed on a remote worker)."""

    point_id: str
    arch: dict[str, Any]
    source: str
    network: Any  # hfp8sim.workloads.Network
    format_libraries: tuple[tuple[str, Any], ...] = ()  # (file, parsed YAML) registered before the arch
    data_parallel: dict[str, Any] | None = None  # Point.data_parallel
    training: Training | None = None  # the optimizer and update rule of a data-parallel point
    chip_key: str = ""  # names (arch, workload, libraries): a worker simulates each chip once for its points


@dataclasses.dataclass
class Sweep:
    archs: list[tuple[str, dict[str, Any]]]  # (file, parsed YAML)
    networks: dict[str, Any]  # name -> Network
    axes: list[Axis]
    zipped: bool
    points: list[Point]
    param_columns: list[str]
    duplicates: int = 0
    format_libraries: tuple[tuple[str, Any], ...] = ()  # (file, parsed YAML) of each --formats file
    training: Training | None = None

    def task(self, point: Point) -> PointTask:
        if point.data_parallel is None:
            return PointTask(point.point_id, point.arch, point.arch_file, self.networks[point.workload],
                             self.format_libraries)
        chip_key = _digest([point.arch, point.workload, [data for _, data in self.format_libraries]])
        return PointTask(point.point_id, point.arch, point.arch_file, self.networks[point.workload],
                         self.format_libraries, point.data_parallel, self.training, chip_key)

    def manifest(self) -> dict[str, Any]:
        from . import __version__

        return {
            "hfp8sim_version": __version__,
            "arch_files": [path for path, _ in self.archs],
            **({"format_libraries": [path for path, _ in self.format_libraries]} if self.format_libraries else {}),
            "workloads": list(self.networks),
            "axes": [{"option": a.label, "keys": list(a.keys), "values": [list(v) for v in a.values]}
                     for a in self.axes],
            "mode": "zip" if self.zipped else "product",
            **({"data_parallel": dataclasses.asdict(self.training)} if self.training and self.training.data_parallel
               else {}),
            "param_columns": self.param_columns,
            "points": [{"point_id": p.point_id, "params": p.params, "workload": p.workload} for p in self.points],
        }


def parse_set(text: str) -> tuple[str, list[str]]:
    """``KEY=V1,V2,...`` -> (key, raw values)."""
    key, sep, values = text.partition("=")
    if not sep:
        raise SweepError(f"--set expects KEY=V1,V2,... (e.g. array.rows=8,16,32), got {text!r}")
    return key.strip(), [v.strip() for v in values.split(",") if v.strip()]


def _split_list(text: str | None) -> list[str]:
    return [] if text is None else [v.strip() for v in text.split(",") if v.strip()]


def _array_values(text: str) -> list[tuple[int, int]]:
    shapes = []
    for token in _split_list(text):
        rows, sep, cols = token.lower().partition("x")
        try:
            shape = (int(rows), int(cols) if sep else int(rows))
        except ValueError:
            raise SweepError(f"--array expects ROWSxCOLS values like 8x8,16x16 (or 8,16 for squares), "
                             f"got {token!r}") from None
        shapes.append(shape)
    return shapes


def _set_path(data: dict[str, Any], path: tuple[Any, ...], value: Any) -> None:
    node = data
    for part in path[:-1]:
        child = node.get(part)
        if not isinstance(child, dict):
            child = {}
            node[part] = child
        node = child
    node[path[-1]] = value


def _drop_path(data: dict[str, Any], path: tuple[Any, ...]) -> None:
    node = data
    for part in path[:-1]:
        node = node.get(part)
        if not isinstance(node, dict):
            return
    node.pop(path[-1], None)


def _digest(data: Any) -> str:
    text = json.dumps(data, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def build_sweep(arch: str | Sequence[str], workload: str | Sequence[str], *, sets: Sequence[str] = (),
                array: str | None = None, dataflow: str | None = None, scheme: str | None = None,
                scratchpads_kib: str | None = None, cores: str | None = None, zipped: bool = False,
                format_libraries: Sequence[str] = (), training: Training | None = None,
                data_parallel: dict[str, str] | None = None) -> Sweep:
    """Expand a grid.  ``arch`` and ``workload``: comma-separated names or files (or lists); ``sets``:
    ``KEY=V1,V2`` strings; the shortcuts take comma-separated lists (``array="8x8,16x16"``).  The axes are
    crossed, or zipped (lists of one value are repeated); several arch files or workloads are always crossed
    with the rest.  Raises a one-line SweepError for unknown keys, empty lists or zip lists of unequal
    lengths.  ``format_libraries``: format files whose formats and schemes the configs and ``scheme`` may
    name; they are loaded here and in every worker, and their contents are part of every point's id.
    ``data_parallel``: shortcut lists of data-parallel keys (``{"chips": "8,64", "protocol": "hfp8"}``, the
    keys of :data:`DATA_PARALLEL_SHORTCUTS`); with these or any ``distributed.*`` set, every point is a
    data-parallel training step (see the module notes)."""
    from .config import read_format_library

    libraries = tuple(read_format_library(path) for path in format_libraries)  # before the archs name them
    training = training or Training()
    arch_names = _split_list(arch) if isinstance(arch, str) else list(arch)
    workload_names = _split_list(workload) if isinstance(workload, str) else list(workload)
    if not arch_names:
        raise SweepError("empty grid: no arch config given")
    if not workload_names:
        raise SweepError("empty grid: no workload given")
    archs = _load_archs(arch_names)
    keys = sweep_keys()
    axes = _build_axes(keys, sets=sets, array=array, dataflow=dataflow, scheme=scheme,
                       scratchpads_kib=scratchpads_kib, cores=cores, data_parallel=data_parallel or {})
    _check_schemes(axes)
    training = _data_parallel_axes(axes, training)
    networks, digests = _load_workloads(workload_names, training)
    combos = _zip_axes(axes) if zipped and axes else list(itertools.product(*(a.values for a in axes)))
    param_columns = (["arch_file"] if len(archs) > 1 else []) + [column(k) for a in axes for k in a.keys] \
        + (["batch"] if training.batches else [])
    paths = {key: check_key(key, keys) for a in axes for key in a.keys}
    points, duplicates = _expand_points(archs, networks, digests, axes, combos, paths,
                                        [data for _, data in libraries], training.data_parallel)
    if not points:
        raise SweepError("empty grid: no points")
    return Sweep(archs, networks, axes, zipped, points, param_columns, duplicates, libraries, training)


def _data_parallel_axes(axes: list[Axis], training: Training) -> Training:
    """With a data-parallel axis: the names of topologies and protocols checked (a typo would fail every point
    of its part), the protocol axis added when missing (all three), and ``training`` marked data parallel."""
    from .distributed.profile import PROTOCOLS
    from .distributed.topology import TOPOLOGIES

    swept = {key for a in axes for key in a.keys if key.startswith(DATA_PARALLEL + ".")}
    if not swept:
        return training
    if training.batches and f"{DATA_PARALLEL}.global_batch" in swept:
        raise SweepError("--batch (samples per chip) and --global-batch (samples over all chips) cannot both be "
                         "swept; give one of them")
    for key, known in (("topology", TOPOLOGIES), ("protocol", tuple(PROTOCOLS))):
        for axis in axes:
            if f"{DATA_PARALLEL}.{key}" in axis.keys:
                position = axis.keys.index(f"{DATA_PARALLEL}.{key}")
                for values in axis.values:
                    if values[position] not in known:
                        raise SweepError(f"{axis.label}: unknown {key} {values[position]!r}; known: "
                                         f"{', '.join(known)}")
    if f"{DATA_PARALLEL}.protocol" not in swept:
        axes.append(Axis("--protocol (default: all)", (f"{DATA_PARALLEL}.protocol",),
                         tuple((name,) for name in PROTOCOLS)))
    return dataclasses.replace(training, train=True, data_parallel=True)


def _load_archs(names: list[str]) -> list[tuple[str, dict[str, Any]]]:
    """(file, parsed YAML) of each arch config name or path.  Each file is validated here, in the parent,
    so a broken or implausible file stops the sweep before any worker starts; a point's overrides are
    validated with the point (a bad value fails that point only)."""
    from .config.arch import parse_arch
    from .io import ARCH_CONFIGS, read_yaml, resolve_shipped

    archs = []
    for name in names:
        path = Path(resolve_shipped(name, ARCH_CONFIGS))
        data = read_yaml(path)
        if not isinstance(data, dict):
            raise SweepError(f"{path}: an arch config is a mapping of keys (name, clock_ghz, array, ...)")
        parse_arch(copy.deepcopy(data), str(path))
        archs.append((str(path), data))
    return archs


@dataclasses.dataclass(frozen=True)
class Training:
    """What a sweep does with its workloads: ``train`` simulates each as a training step (``optimizer``,
    ``update_rule``, default fp32_master); ``batches`` (empty: the workload's own) is an axis of batch sizes,
    crossed with the others (a ``batch`` column of ``points.csv``).  ``data_parallel`` (set by the grid when a
    data-parallel key is swept): the workloads stay forward networks, each point derives its chip's step at its
    per-chip batch (``batches``: per chip), and ``update_rule`` None means each protocol's own."""

    train: bool = False
    batches: tuple[int, ...] = ()
    optimizer: str = "momentum"
    update_rule: str | None = None
    data_parallel: bool = False
    first_last_fp16: bool = False  # the first and last GEMM layers with weights in fp16 (keep_first_last)

    def identity(self) -> list[Any]:
        """What of this setting a derived workload's point id depends on (new settings only when set: the ids
        of sweeps without them stay as they were)."""
        extra = ["first_last_fp16"] if self.first_last_fp16 else []
        if self.data_parallel:
            return [self.train, list(self.batches), self.optimizer, self.update_rule, "data_parallel", *extra]
        return [self.train, list(self.batches), self.optimizer, self.update_rule or "fp32_master", *extra]

    def variants(self, network: Any) -> list[tuple[Any, int | None]]:
        """(network to simulate, its batch or None) for each batch of the axis."""
        from .workloads import keep_first_last
        from .workloads.training_step import derive_training_step, rescale_batch

        if self.first_last_fp16:
            network = keep_first_last(network, "fp16")
        out = []
        for batch in self.batches or (None,):
            if self.data_parallel:
                out.append((network, batch))
            elif self.train:
                out.append((derive_training_step(network, batch=batch, optimizer=self.optimizer,
                                                 update_rule=self.update_rule or "fp32_master"), batch))
            else:
                out.append((rescale_batch(network, batch) if batch else network, batch))
        return out


def _load_workloads(names: list[str], training: Training) -> tuple[dict[str, Any], dict[str, str]]:
    """Networks by name (``NAME@batch=B`` for each batch of the axis), and the SHA-256 of each one's file
    with what was derived from it (part of its points' ids)."""
    from .workloads import load_workload, resolve_workload

    networks: dict[str, Any] = {}
    digests: dict[str, str] = {}
    for name in names:
        path = resolve_workload(name)
        digest = hashlib.sha256(Path(path).read_bytes()).hexdigest()
        for network, batch in training.variants(load_workload(path)):
            key = network.name + (f"@batch={batch}" if batch else "")
            networks[key] = network
            digests[key] = digest if not (training.train or batch or training.first_last_fp16) else \
                _digest([digest, training.identity(), batch])
    return networks, digests


def _build_axes(keys: dict[str, str], *, sets: Sequence[str], array: str | None, dataflow: str | None,
                scheme: str | None, scratchpads_kib: str | None, cores: str | None,
                data_parallel: dict[str, str]) -> list[Axis]:
    """The grid's axes in column order: ``--array``, each ``--set``, the other shortcuts, then the
    data-parallel shortcuts."""
    axes: list[Axis] = []

    def add(label: str, axis_keys: tuple[str, ...], values: list[tuple[Any, ...]]) -> None:
        if not values:
            raise SweepError(f"empty grid: {label} has no values")
        for key in axis_keys:
            check_key(key, keys)
            for other in axes:
                if key in other.keys:
                    raise SweepError(f"{key} is swept twice ({other.label} and {label})")
        axes.append(Axis(label, axis_keys, tuple(values)))

    if array is not None:
        add("--array", SHORTCUTS["array"], _array_values(array))
    for text in sets:
        key, raw = parse_set(text)
        add(f"--set {key}", (key,), [(parse_value(v),) for v in raw])
    if scratchpads_kib is not None:
        add("--scratchpads-kib", SHORTCUTS["scratchpads_kib"],
            [(v,) * 3 for v in (parse_value(t) for t in _split_list(scratchpads_kib))])
    if cores is not None:
        add("--cores", SHORTCUTS["cores"], [(parse_value(t),) for t in _split_list(cores)])
    if dataflow is not None:
        add("--dataflow", SHORTCUTS["dataflow"], [(v,) for v in _split_list(dataflow)])
    if scheme is not None:
        add("--scheme", SHORTCUTS["scheme"], [(v,) for v in _split_list(scheme)])
    for name, text in data_parallel.items():
        if name not in DATA_PARALLEL_SHORTCUTS:
            raise SweepError(f"unknown data-parallel option {name!r}; known: {', '.join(DATA_PARALLEL_SHORTCUTS)}")
        if text is not None:
            add(f"--{name.replace('_', '-')}", (f"{DATA_PARALLEL}.{DATA_PARALLEL_SHORTCUTS[name]}",),
                [(parse_value(t),) for t in _split_list(text)])
    return axes


def _zip_axes(axes: list[Axis]) -> list[tuple[tuple[Any, ...], ...]]:
    """The combinations of ``--zip``: position i of every axis, a one-value axis repeated."""
    lengths = {a.label: len(a.values) for a in axes}
    longest = max(lengths.values())
    uneven = {label: n for label, n in lengths.items() if n not in (1, longest)}
    if uneven:
        raise SweepError("--zip needs lists of equal length (or of one value): "
                         + ", ".join(f"{label} has {n}" for label, n in lengths.items()))
    return [tuple(a.values[i if len(a.values) > 1 else 0] for a in axes) for i in range(longest)]


def _expand_points(archs: list[tuple[str, dict[str, Any]]], networks: dict[str, Any], digests: dict[str, str],
                   axes: list[Axis], combos: list[tuple[tuple[Any, ...], ...]],
                   paths: dict[str, tuple[Any, ...]], libraries: list[Any],
                   data_parallel: bool = False) -> tuple[list[Point], int]:
    """Every (arch file, workload, combination) as a point, in grid order; a point whose resolved config and
    workload (and data-parallel system) repeat an earlier one's is counted as a duplicate, not kept."""
    points: list[Point] = []
    seen: set[str] = set()
    duplicates = 0
    for arch_file, base in archs:
        for name, network in networks.items():
            for combo in combos:
                data = copy.deepcopy(base)
                system: dict[str, Any] | None = {} if data_parallel else None
                params: dict[str, Any] = {"arch_file": arch_file} if len(archs) > 1 else {}
                params.update(_apply_combo(data, axes, combo, paths, system))
                if "@batch=" in name:
                    params["batch"] = int(name.rpartition("@batch=")[2])
                    if system is not None:
                        system["per_chip_batch"] = params["batch"]
                identity = {"arch": data, "workload": name, "workload_sha256": digests[name]}
                if system is not None:
                    identity["data_parallel"] = system
                if libraries:  # a scheme's name means what its library says (absent: ids as before)
                    identity["format_libraries"] = libraries
                point_id = _digest(identity)[:16]
                if point_id in seen:
                    duplicates += 1
                    continue
                seen.add(point_id)
                points.append(Point(len(points), point_id, params, arch_file, name, data,
                                    _cost(data, network), system))
    return points, duplicates


def _apply_combo(data: dict[str, Any], axes: list[Axis], combo: tuple[tuple[Any, ...], ...],
                 paths: dict[str, tuple[Any, ...]], system: dict[str, Any] | None = None) -> dict[str, Any]:
    """Set one combination's values in the config ``data`` (a data-parallel key in ``system`` instead);
    returns them by column.  Setting a key of an :data:`EXCLUSIVE` group drops the group's other keys that are
    not swept themselves."""
    params: dict[str, Any] = {}
    for axis, values in zip(axes, combo):
        for key, value in zip(axis.keys, values):
            if paths[key][0] == DATA_PARALLEL and system is not None:
                system[paths[key][1]] = value
                params[column(key)] = value
                continue
            for group in EXCLUSIVE:
                if key in group:
                    for other in group:
                        if other != key and other not in paths:
                            _drop_path(data, tuple(other.split(".")))
            _set_path(data, paths[key], value)
            params[key] = value
    return params


def _check_schemes(axes: list[Axis]) -> None:
    """Scheme names are looked up before anything runs: a typo would fail every point of its half."""
    from .formats.spec import get_scheme

    for axis in axes:
        if "scheme" in axis.keys:
            column = axis.keys.index("scheme")
            for values in axis.values:
                if isinstance(values[column], str):
                    try:
                        get_scheme(values[column])
                    except Hfp8SimError as exc:
                        raise SweepError(f"{axis.label}: {exc}") from None


def _cost(data: dict[str, Any], network: Any) -> float:
    array = data.get("array") if isinstance(data.get("array"), dict) else {}
    rows, cols = array.get("rows"), array.get("cols")
    pes = rows * cols if isinstance(rows, int) and isinstance(cols, int) and rows > 0 and cols > 0 else 1
    return float(network.macs) / pes


# ------------------------------------------------------------------------------------------ one point


def run_point(task: PointTask) -> dict[str, Any]:
    """Simulate one point (in a worker).  Never raises: a failure comes back as ``status: error`` with the
    message (and the traceback for anything that is not a user error)."""
    from . import __version__

    start, cpu = time.perf_counter(), time.process_time()
    payload: dict[str, Any] = {"point_id": task.point_id, "status": "ok", "error": "", "error_type": "",
                               "hfp8sim_version": __version__}
    try:
        from .config import register_format_library
        from .config.arch import parse_arch
        from .run import simulate_network

        for source, library in task.format_libraries:
            register_format_library(library, source)
        arch = parse_arch(copy.deepcopy(task.arch), task.source)
        bw = arch.dram_bytes_per_cycle
        if task.data_parallel is not None:
            payload.update(_data_parallel_point(arch, task), config=task.arch,
                           dram_bytes_per_cycle=bw if math.isfinite(bw) else None)
        else:
            result = simulate_network(arch, task.network)
            payload.update(summary=result.summary(),
                           layers=[layer.row(result.is_training) for layer in result.layers],
                           config=result.config, peak_macs_per_cycle=result.peak_macs_per_cycle,
                           dram_bytes_per_cycle=bw if math.isfinite(bw) else None)
    except Hfp8SimError as exc:
        payload.update(status="error", error=str(exc), error_type=type(exc).__name__)
    except Exception as exc:  # a bug: keep the traceback with the point, let the others run
        payload.update(status="error", error=f"{type(exc).__name__}: {exc}", error_type=type(exc).__name__,
                       traceback=traceback.format_exc())
    payload["elapsed_s"] = time.perf_counter() - start
    payload["cpu_s"] = time.process_time() - cpu
    return payload


# one chip's training-step profiles per worker process, by chip key (see PointTask.chip_key), oldest first and
# at most CHIP_PROFILES_KEPT: the points of a data-parallel sweep that share a chip simulate it once per worker
_CHIP_PROFILES: collections.OrderedDict[tuple, Any] = collections.OrderedDict()
CHIP_PROFILES_KEPT = 8


def _data_parallel_point(arch: Any, task: PointTask) -> dict[str, Any]:
    """A data-parallel point's payload fields: the summary is one chip's training step (under the update rule
    of the point's protocol, or the sweep's) merged with the data-parallel row (step_ms, exposed_comm_ms, ...);
    no layer rows (``hfp8sim run ARCH WORKLOAD --train`` gives them)."""
    from .step_profiles import DataParallelSetup, simulate_data_parallel

    setup = DataParallelSetup(**task.data_parallel)  # the grid sets only its fields (sweep_keys)
    training = task.training or Training(data_parallel=True)
    summary, row = simulate_data_parallel(arch, task.network, setup, optimizer=training.optimizer,
                                          update_rule=training.update_rule, profiles=_CHIP_PROFILES,
                                          chip_key=task.chip_key)
    for key in list(_CHIP_PROFILES)[:-CHIP_PROFILES_KEPT]:
        del _CHIP_PROFILES[key]
    peak = summary.get("peak_macs_per_cycle")
    return {"summary": {**summary, **row}, "peak_macs_per_cycle": peak}


def _worker_version() -> str:
    from . import __version__

    return __version__


# ------------------------------------------------------------------------------------------ rows


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _describe(arch: dict[str, Any]) -> dict[str, Any]:
    """Descriptive columns from a (possibly invalid) resolved config."""
    array = arch.get("array") if isinstance(arch.get("array"), dict) else {}
    dram = arch.get("dram") if isinstance(arch.get("dram"), dict) else {}
    chip = arch.get("chip") if isinstance(arch.get("chip"), dict) else {}
    mapper = arch.get("mapper") if isinstance(arch.get("mapper"), dict) else {}
    scheme = arch.get("scheme", "hfp8")
    if isinstance(scheme, dict):
        scheme = scheme.get("name") or "/".join(str(scheme.get(k, "?")) for k in ("forward", "backward",
                                                                                    "accumulate"))
    rows, cols = array.get("rows"), array.get("cols")
    clock = _number(arch.get("clock_ghz"))
    bw = _number(dram.get("bw_gb_per_s"))
    if bw is None and _number(dram.get("bw_bytes_per_cycle")) is not None and clock is not None:
        bw = dram["bw_bytes_per_cycle"] * clock
    if dram.get("ideal") is True:
        bw = math.inf
    both = _number(rows) is not None and _number(cols) is not None
    return {"arch": arch.get("name", ""), "scheme": scheme, "rows": rows, "cols": cols,
            "dataflow": array.get("dataflow", "ws"), "pes": rows * cols if both else None,
            "cores": chip.get("cores", 1), "clock_ghz": clock, "dram_gb_per_s": bw,
            "objective": mapper.get("objective", "time")}


def _flat_summary(summary: dict[str, Any]) -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in summary.items():
        if isinstance(value, dict):
            if key == "energy" and isinstance(value.get("components_pj"), dict):
                for name, pj in value["components_pj"].items():
                    flat[f"energy_{name.replace('.', '_')}_pj"] = pj
                for name in ("dynamic_pj", "static_pj", "total_pj"):
                    if name in value:
                        flat[f"energy_{name}"] = value[name]
            continue
        if isinstance(value, (list, tuple)):
            continue
        flat[key] = value
    return flat


def csv_row(point: Point, payload: dict[str, Any]) -> dict[str, Any]:
    """The points.csv row of a finished point."""
    row: dict[str, Any] = {"point_id": point.point_id, "status": payload.get("status", "error")}
    row.update(point.params)
    described = _describe(payload.get("config") or point.arch)
    described["workload"] = point.workload
    summary = payload.get("summary") or {}
    if payload.get("status") == "ok" and summary:
        flat = _flat_summary(summary)
        described["arch"] = flat.pop("arch", described["arch"])
        described["scheme"] = flat.pop("scheme", described["scheme"])
        flat.pop("workload", None)
        described["clock_ghz"] = flat.pop("clock_ghz", described["clock_ghz"])
        peak = payload.get("peak_macs_per_cycle")
        described["peak_macs_per_cycle"] = peak
        cycles, seconds = flat.get("cycles", 0.0), flat.get("seconds", 0.0)
        tmacs = flat.get("tera_macs_per_second", 0.0)
        flat["tera_flops_per_second"] = 2.0 * tmacs
        flat["inferences_per_second"] = 1.0 / seconds if seconds else 0.0
        if peak is not None and described["clock_ghz"]:
            flat["peak_tera_macs_per_second"] = peak * described["clock_ghz"] / 1e3
        flat["stall_fraction"] = flat.get("stall_cycles", 0.0) / cycles if cycles else 0.0
        flat["dram_bytes"] = flat.get("dram_read_bytes", 0.0) + flat.get("dram_write_bytes", 0.0)
        for key in DESCRIPTIVE_COLUMNS:
            row.setdefault(key, described.get(key))
        for key in (DATA_PARALLEL_METRICS if "step_ms" in flat else ()) + LEAD_METRICS:
            if key in flat:
                row[key] = flat.pop(key)
        for key, value in flat.items():
            row.setdefault(key, value)
    else:
        for key in DESCRIPTIVE_COLUMNS:
            row.setdefault(key, described.get(key))
    row["elapsed_s"] = payload.get("elapsed_s")
    row["cpu_s"] = payload.get("cpu_s")
    row["error_type"] = payload.get("error_type", "")
    row["error"] = payload.get("error", "")
    return row


def _header(rows: Sequence[dict[str, Any]], param_columns: Sequence[str]) -> list[str]:
    head = ["point_id", "status", *param_columns, *DESCRIPTIVE_COLUMNS]
    tail = ["elapsed_s", "cpu_s", "error_type", "error"]
    columns = list(dict.fromkeys(head))
    seen = set(columns) | set(tail)
    for row in rows:
        for key in row:
            if key not in seen:
                columns.append(key)
                seen.add(key)
    return columns + tail


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def _format_cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, float) and math.isinf(value):
        return "inf"
    return value


def _write_csv(path: Path, rows: Sequence[dict[str, Any]], param_columns: Sequence[str]) -> None:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=_header(rows, param_columns), lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: _format_cell(v) for k, v in row.items()})
    _atomic_write(path, buffer.getvalue())


def load_points(out_dir: str | Path) -> list[dict[str, str]]:
    """The rows of a sweep's points.csv (strings, as written)."""
    path = Path(out_dir) / POINTS_CSV
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


# ------------------------------------------------------------------------------------------ running


@dataclasses.dataclass
class SweepResult:
    out_dir: Path
    rows: list[dict[str, Any]]  # points.csv rows in grid order
    computed: list[str]  # ids run this time
    skipped: list[str]  # ids found done (resume)
    failed: list[str]  # ids with status error (this run or found)
    lost: list[str]  # ids whose worker died: no file written, rerun them with resume
    not_run: list[str]  # ids left out (limit, interruption)
    wall_s: float
    mode: str

    @property
    def complete(self) -> bool:
        return not self.not_run and not self.lost


def die_with_parent(parent_pid: int) -> None:
    """Initializer of the local worker processes: on Linux, ask the kernel to SIGKILL the worker when its parent,
    the sweep's own process, dies, so a sweep that is killed (even with SIGKILL, which runs no clean-up) leaves
    no worker computing points for nobody.  A parent that died while the worker was still starting is caught by
    comparing the parent's pid after the request."""
    if sys.platform.startswith("linux"):
        import ctypes
        import signal

        pr_set_pdeathsig = 1  # <linux/prctl.h>
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGKILL)
    if os.getppid() != parent_pid:
        os._exit(1)


def _mp_context():
    # spawn: the workers are children of this process itself (a forkserver's workers are the forkserver's, which
    # outlives a killed sweep), so die_with_parent ties them to it; no fork of a process running threads
    return multiprocessing.get_context("spawn")


def _progress_bar(total: int, show: bool | None, mode: str):
    from tqdm import tqdm

    return tqdm(total=total, unit="pt", desc=f"sweep ({mode})", file=sys.stderr, dynamic_ncols=True,
                disable=(not sys.stderr.isatty()) if show is None else not show, smoothing=0.1)


def _dask_client(address: str, timeout: float):
    try:
        import distributed
    except ImportError:
        raise SweepError("--scheduler needs Dask distributed: pip install 'hfp8sim[cluster]'") from None
    try:
        client = distributed.Client(address, timeout=timeout, set_as_default=False)
    except Exception as exc:  # OSError, TimeoutError, ValueError for a malformed address ...
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise SweepError(f"cannot reach the Dask scheduler at {address}: {reason}") from None
    try:
        client.wait_for_workers(1, timeout=timeout)
        client.run(_worker_version)
    except Exception as exc:
        client.close()
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise SweepError(f"the Dask cluster at {address} cannot run hfp8sim (no workers, or workers without "
                         f"hfp8sim installed): {reason}") from None
    return client


def _payload_digest(payload: dict[str, Any]) -> str:
    """SHA-256 of a point's canonical JSON without the digest itself: an edited or damaged file fails it."""
    body = {key: value for key, value in payload.items() if key != "digest"}
    return hashlib.sha256(json.dumps(body, separators=(",", ":"), sort_keys=True, default=str).encode()).hexdigest()


def _load_done(path: Path, point_id: str) -> tuple[dict[str, Any] | None, str]:
    """(the finished point's payload, "") or (None, why it cannot be trusted; "" when there is no file).
    A point found done on ``--resume`` must be this point's, complete, and unchanged since it was written."""
    from . import __version__

    if not path.exists():
        return None, ""
    try:
        payload = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        return None, f"not readable JSON ({str(exc).splitlines()[0]})"
    if not isinstance(payload, dict) or payload.get("status") not in ("ok", "error"):
        return None, "not a finished point (no status ok or error)"
    if payload.get("point_id") != point_id:
        return None, f"holds point {payload.get('point_id')!r}"
    if payload.get("digest") != _payload_digest(payload):
        return None, "changed since it was written (its digest does not match its contents)"
    if payload.get("hfp8sim_version") != __version__:
        return None, f"written by hfp8sim {payload.get('hfp8sim_version')}, this is {__version__}"
    return payload, ""


def run_sweep(sweep: Sweep, out_dir: str | Path, *, jobs: int | None = None, scheduler: str | None = None,
              resume: bool = False, retry_failed: bool = False, limit: int | None = None,
              progress: bool | None = None, connect_timeout: float = 10.0,
              on_point: Callable[[Point, dict[str, Any]], None] | None = None) -> SweepResult:
    """Run the points of ``sweep`` and write ``out_dir/points.csv``, ``out_dir/points/<id>.json`` and
    ``out_dir/sweep.json`` as they finish.

    ``jobs``: local worker processes (default: every CPU; 1 runs in this process); ``scheduler``: a Dask
    scheduler address (then ``jobs`` is ignored); ``resume``: skip points whose JSON exists (with
    ``retry_failed``, rerun the ones recorded as errors); ``limit``: run at most this many of the remaining
    points (the others are left for a later ``resume``); ``on_point(point, payload)`` is called in this
    process after each point is written.  A KeyboardInterrupt stops the sweep; what finished is on disk.
    """
    start = time.perf_counter()
    client = _dask_client(scheduler, connect_timeout) if scheduler else None  # fail before writing anything
    out = Path(out_dir)
    ledger = _Ledger(sweep, out)
    ledger.points_dir.mkdir(parents=True, exist_ok=True)
    _atomic_write(out / MANIFEST, json.dumps(sweep.manifest(), indent=1, default=str) + "\n")
    pending = ledger.take_pending(resume, retry_failed)
    to_run = pending if limit is None else pending[:limit]
    not_run = [p.point_id for p in pending[len(to_run):]]
    mode = "dask" if scheduler else "serial" if (jobs == 1 or len(to_run) <= 1) else "processes"
    ledger.write_csv()
    bar = _progress_bar(len(to_run), progress, mode)

    def record(point: Point, payload: dict[str, Any]) -> None:
        payload = ledger.record(point, payload)
        bar.update(1)
        if ledger.failed:
            bar.set_postfix_str(f"{len(ledger.failed)} failed", refresh=False)
        if on_point is not None:
            on_point(point, payload)

    ordered = sorted(to_run, key=lambda p: -p.cost)  # longest first: a shorter tail
    try:
        _execute(sweep, ordered, client, mode, jobs, record)
    finally:  # on KeyboardInterrupt too: every finished point is already on disk
        bar.close()
        if client is not None:
            client.close()
    return SweepResult(out, ledger.ordered_rows(), ledger.computed, ledger.skipped, ledger.failed, ledger.lost,
                       not_run, time.perf_counter() - start, mode)


@dataclasses.dataclass
class _Ledger:
    """What a running sweep knows of its points, kept on disk as it changes: the points.csv rows by grid
    position, and the point ids by outcome (the lists of :class:`SweepResult`)."""

    sweep: Sweep
    out: Path
    rows: dict[int, dict[str, Any]] = dataclasses.field(default_factory=dict)
    computed: list[str] = dataclasses.field(default_factory=list)
    skipped: list[str] = dataclasses.field(default_factory=list)
    failed: list[str] = dataclasses.field(default_factory=list)
    lost: list[str] = dataclasses.field(default_factory=list)

    @property
    def points_dir(self) -> Path:
        return self.out / POINTS_DIR

    def ordered_rows(self) -> list[dict[str, Any]]:
        return [self.rows[i] for i in sorted(self.rows)]

    def write_csv(self) -> None:
        _write_csv(self.out / POINTS_CSV, self.ordered_rows(), self.sweep.param_columns)

    def take_pending(self, resume: bool, retry_failed: bool) -> list[Point]:
        """The points still to run, in grid order; with ``resume``, the ones found done become skipped rows
        (a recorded error is rerun only with ``retry_failed``)."""
        pending: list[Point] = []
        for point in self.sweep.points:
            done, problem = _load_done(self.points_dir / f"{point.point_id}.json", point.point_id) if resume \
                else (None, "")
            if problem:
                print(f"sweep: {self.points_dir / point.point_id}.json: {problem}; running the point again",
                      file=sys.stderr)
            if done is not None and not (retry_failed and done["status"] != "ok"):
                self.rows[point.index] = csv_row(point, done)
                self.skipped.append(point.point_id)
                if done["status"] != "ok":
                    self.failed.append(point.point_id)
            else:
                pending.append(point)
        return pending

    def record(self, point: Point, payload: dict[str, Any]) -> dict[str, Any]:
        """Write a finished point's JSON (a lost point has none) and rewrite points.csv; returns the payload
        as written."""
        from . import __version__

        payload = {**payload, "point_id": point.point_id, "params": point.params, "workload": point.workload,
                   "arch_file": point.arch_file, "hfp8sim_version": payload.get("hfp8sim_version", __version__)}
        if "config" not in payload:
            payload["config"] = point.arch
        if payload["status"] == "lost":
            self.lost.append(point.point_id)
        else:
            payload["digest"] = _payload_digest(payload)
            _atomic_write(self.points_dir / f"{point.point_id}.json",
                          json.dumps(payload, separators=(",", ":"), sort_keys=True, default=str) + "\n")
            self.computed.append(point.point_id)
            if payload["status"] != "ok":
                self.failed.append(point.point_id)
        self.rows[point.index] = csv_row(point, payload)
        self.write_csv()
        return payload


def _execute(sweep: Sweep, ordered: list[Point], client, mode: str, jobs: int | None, record) -> None:
    """Run ``ordered`` on the Dask cluster, in this process, or in a pool of local processes."""
    if client is not None:
        _run_dask(sweep, ordered, client, record)
    elif mode == "serial":
        for point in ordered:
            record(point, run_point(sweep.task(point)))
    elif ordered:
        _run_processes(sweep, ordered, jobs or os.cpu_count() or 1, record)


def _lost(point: Point, reason: str) -> dict[str, Any]:
    return {"status": "lost", "error": reason, "error_type": "WorkerLost", "elapsed_s": None}


def _run_processes(sweep: Sweep, ordered: list[Point], jobs: int, record) -> None:
    from concurrent.futures.process import BrokenProcessPool

    pending, attempts = list(ordered), dict.fromkeys((p.point_id for p in ordered), 0)
    while pending:
        broken: list[Point] = []
        pool = concurrent.futures.ProcessPoolExecutor(max_workers=min(jobs, len(pending)), mp_context=_mp_context(),
                                                      initializer=die_with_parent, initargs=(os.getpid(),))
        try:
            futures = {pool.submit(run_point, sweep.task(p)): p for p in pending}
            for future in concurrent.futures.as_completed(futures):
                point = futures[future]
                try:
                    payload = future.result()
                except BrokenProcessPool:
                    broken.append(point)
                    continue
                except Exception as exc:  # the task could not be pickled or unpickled
                    payload = {"status": "error", "error": f"{type(exc).__name__}: {exc}",
                               "error_type": type(exc).__name__, "elapsed_s": None}
                record(point, payload)
        except BaseException:
            pool.shutdown(wait=False, cancel_futures=True)
            for process in list((getattr(pool, "_processes", None) or {}).values()):
                process.terminate()  # our own worker processes, by handle
            raise
        else:
            pool.shutdown(wait=True)
        pending = []
        for point in sorted(broken, key=lambda p: -p.cost):
            attempts[point.point_id] += 1
            if attempts[point.point_id] < 2:
                pending.append(point)  # a fresh pool: the point may only have shared a pool with a crash
            else:
                record(point, _lost(point, "worker process died twice while this point was running or queued"))


def _run_dask(sweep: Sweep, ordered: list[Point], client, record) -> None:
    import distributed

    futures = {}
    try:
        for rank, point in enumerate(ordered):
            future = client.submit(run_point, sweep.task(point), key=f"hfp8sim-point-{point.point_id}",
                                   priority=len(ordered) - rank, pure=False)
            futures[future] = point
        for future in distributed.as_completed(list(futures), loop=client.loop):
            point = futures[future]
            try:
                payload = future.result()
            except Exception as exc:  # KilledWorker, a worker that cannot unpickle the task ...
                payload = _lost(point, f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}")
            record(point, payload)
    except BaseException:
        for future in futures:
            future.cancel()
        raise
