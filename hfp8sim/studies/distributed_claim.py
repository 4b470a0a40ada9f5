"""IBM's distributed-training claim, measured: the HFP8 protocol's step-time reduction versus N and link speed.

IBM's HFP8 material says: once FP8 compute makes the chips fast, weight-gradient communication bounds
data-parallel training; reduce-scattering the gradients, updating each chip's shard and all-gathering **8-bit
weights** cuts training time by 30-60% (blog) and by 32-38% end to end on ResNet-50 (paper material, a
secondary source; /work/shared/reference/hfp8_facts.md section 1.3).

This study simulates, for ResNet-50 and BERT-base (the shipped ``resnet50`` and ``bert_base_seq128``, 32
samples per chip: weak scaling, the global batch grows with N), one chip's training step on the default core
per weight-update rule, then the data-parallel step on N chips (powers of 2, 2 to 1,024; the reduced SimPy
model) for every link bandwidth and gradient protocol:

- ``hfp8``: the HFP8 chip, reduce-scatter FP16 gradients, shard update (round-off residual: FP8 weights and an
  FP16 residual), all-gather FP8 weights;
- ``fp16_allreduce`` / ``fp32_allreduce``: the HFP8 chip, ring all-reduce of FP16 / FP32 gradients, every chip
  updating every parameter from FP32 master weights;
- the reference line ``fp16_chip``: an all-FP16 chip (scheme ``fp16``: half the MAC rate) with FP16 all-reduce.

Rows (:data:`FIELDS`) carry each system's step, compute, exposed and overlapped communication, its update time
and bytes on the wire per parameter; :func:`decompose` splits the HFP8 protocol's saving against a baseline into
what comes from exposed communication, from the update (full update versus 1/N shard) and from the forward and
backward passes (the update rule's weight formats).  The report (``hfp8sim.reports.distributed``) reads the CSV.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
from collections.abc import Callable
from pathlib import Path

from ..config.arch import resolve_arch
from ..distributed.profile import Protocol, protocol_named
from ..distributed.topology import build_topology
from ..step_profiles import StepProfiles, data_parallel_row
from ..workloads import keep_first_last, load_workload_file, workload_file_kind

ROWS_CSV = "distributed.csv"
STUDY_JSON = "study.json"
DECOMPOSITION_CSV = "distributed_decomposition.csv"
HFP8 = "hfp8"
BASELINES = ("fp16_allreduce", "fp32_allreduce", "fp16_chip")
# system -> (chip scheme, None for the arch's own; protocol)
SYSTEMS = {"hfp8": (None, "hfp8"), "fp16_allreduce": (None, "fp16_allreduce"),
           "fp32_allreduce": (None, "fp32_allreduce"), "fp16_chip": ("fp16", "fp16_allreduce")}
PUBLISHED = {"all": (0.30, 0.60, "IBM Research blog (HFP8, 2019): 30-60% shorter training [P per "
                                 "training_and_distributed.md; the figure is not in the paper material]"),
             "resnet50": (0.32, 0.38, "HFP8 paper material: 32-38% end-to-end on ResNet-50 [S, CHIALU summary of "
                                      "Sun et al. 2019]")}
# link classes (per direction; assumptions of the class, not measurements of a system)
LINKS = {1.25: "10 Gb/s Ethernet", 10.0: "PCIe 3.0 x16-class", 25.0: "one NVLink-3 link",
         50.0: "two NVLink-3 links", 100.0: "NVLink-class node fabric"}
FIELDS = ("workload", "per_chip_batch", "global_batch", "system", "chip_scheme", "protocol", "update_rule",
          "topology", "chips", "link_gb_per_s", "link_latency_us", "bucket_mib", "chunks", "param_elements",
          "step_ms", "compute_ms", "forward_backward_ms", "update_ms", "exposed_comm_ms", "comm_ms",
          "overlapped_comm_ms", "wire_bytes_per_param", "reduction_vs_fp16_allreduce",
          "reduction_vs_fp32_allreduce", "reduction_vs_fp16_chip")
DECOMPOSITION_FIELDS = ("workload", "topology", "chips", "link_gb_per_s", "baseline", "baseline_step_ms",
                        "hfp8_step_ms", "reduction", "from_exposed_comm_ms", "from_update_ms",
                        "from_forward_backward_ms", "baseline_wire_bytes_per_param", "hfp8_wire_bytes_per_param")


@dataclasses.dataclass(frozen=True)
class ClaimStudy:
    """What the study simulates (the defaults are the report's)."""

    workloads: tuple[tuple[str, int], ...] = (("resnet50", 32), ("bert_base_seq128", 32))  # (name, per chip)
    chips: tuple[int, ...] = tuple(2**k for k in range(1, 11))
    link_gb_per_s: tuple[float, ...] = tuple(LINKS)
    latency_us: float = 1.0
    bucket_mib: float = 25.0  # PyTorch DDP's bucket_cap_mb
    chunks: int = 4
    arch: str | None = None  # the default core
    systems: tuple[str, ...] = tuple(SYSTEMS)
    # the other topologies at these chip counts and this bandwidth (hierarchical: 8 chips per node on the link,
    # nodes on a switch with 12.5 GB/s, 2 us ports)
    topology_chips: tuple[int, ...] = (64, 1024)
    topology_gb_per_s: float = 25.0
    # IBM's HFP8 training keeps the first and last layers (stem conv, classifier) in FP16, in every pass
    first_last_fp16: bool = True


def run_claim_study(study: ClaimStudy, progress: Callable[[str], None] = lambda line: None) -> list[dict]:
    """Every row of the study, in a fixed order (workload, topology, bandwidth, chips, system)."""
    rows: list[dict] = []
    arch = resolve_arch(study.arch)
    for name, per_chip in study.workloads:
        network = load_workload_file(workload_file_kind(name)[0])
        if study.first_last_fp16:
            network = keep_first_last(network, "fp16")
        profiles = {scheme: StepProfiles(arch, network, per_chip, scheme=scheme,
                                         on_simulate=lambda rule, s=scheme: progress(
                                             f"{name}: one chip's training step, scheme {s or arch.scheme.name}, "
                                             f"{rule}, batch {per_chip}"))
                    for scheme in dict.fromkeys(SYSTEMS[system][0] for system in study.systems)}
        for topology, gb, chips in _network_points(study):
            progress(f"{name}: {topology} {chips} chips {gb:g} GB/s")
            built = build_topology(topology, chips, gb_per_s=gb, latency_us=study.latency_us,
                                   chips_per_node=min(8, chips), inter_gb_per_s=12.5, inter_latency_us=2.0)
            point = [_row(study, name, per_chip, system, profiles[SYSTEMS[system][0]], built)
                     for system in study.systems]
            rows += _with_reductions(point)
    return rows


def _network_points(study: ClaimStudy) -> list[tuple[str, float, int]]:
    """(topology, link GB/s, chips): the ring at every bandwidth and N, the other topologies at a few N."""
    points = [("ring", gb, chips) for gb in study.link_gb_per_s for chips in study.chips]
    points += [(topology, study.topology_gb_per_s, chips) for topology in ("torus2d", "hierarchical")
               for chips in study.topology_chips]
    return points


def _row(study: ClaimStudy, workload: str, per_chip: int, system: str, profiles: StepProfiles, topology) -> dict:
    scheme, protocol_name = SYSTEMS[system]
    protocol: Protocol = protocol_named(protocol_name)
    row = data_parallel_row(profiles.for_protocol(protocol), topology, protocol, bucket_mib=study.bucket_mib,
                            chunks=study.chunks)
    row = {**row, "workload": workload, "system": system, "chip_scheme": scheme or profiles.arch.scheme.name}
    return {field: row[field] for field in FIELDS if field in row}


def _with_reductions(point: list[dict]) -> list[dict]:
    """The HFP8 row gets its step-time reduction against each baseline present (1 - hfp8 / baseline)."""
    by_system = {row["system"]: row for row in point}
    hfp8 = by_system.get(HFP8)
    for row in point:
        for baseline in BASELINES:
            row[f"reduction_vs_{baseline}"] = "" if row is not hfp8 or baseline not in by_system else \
                1 - hfp8["step_ms"] / by_system[baseline]["step_ms"]
    return point


def decompose(rows: list[dict]) -> list[dict]:
    """Per network point and baseline: the HFP8 protocol's saving in ms, split into exposed communication,
    update and forward + backward (they add up to the step-time difference exactly)."""
    out = []
    points: dict[tuple, dict[str, dict]] = {}
    for row in rows:
        points.setdefault((row["workload"], row["topology"], row["chips"], row["link_gb_per_s"]), {})[
            row["system"]] = row
    for (workload, topology, chips, gb), systems in points.items():
        hfp8 = systems.get(HFP8)
        for baseline in BASELINES:
            base = systems.get(baseline)
            if hfp8 is None or base is None:
                continue
            out.append({"workload": workload, "topology": topology, "chips": chips, "link_gb_per_s": gb,
                        "baseline": baseline, "baseline_step_ms": base["step_ms"], "hfp8_step_ms": hfp8["step_ms"],
                        "reduction": 1 - hfp8["step_ms"] / base["step_ms"],
                        "from_exposed_comm_ms": base["exposed_comm_ms"] - hfp8["exposed_comm_ms"],
                        "from_update_ms": base["update_ms"] - hfp8["update_ms"],
                        "from_forward_backward_ms": base["forward_backward_ms"] - hfp8["forward_backward_ms"],
                        "baseline_wire_bytes_per_param": base["wire_bytes_per_param"],
                        "hfp8_wire_bytes_per_param": hfp8["wire_bytes_per_param"]})
    return out


def csv_text(rows: list[dict], fields: tuple[str, ...]) -> str:
    """The rows as CSV text (floats in repr: the same simulation gives the same bytes)."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(fields), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def study_description(study: ClaimStudy) -> dict:
    """What the report states about the study: its settings, the chip, the published figures, link classes."""
    arch = resolve_arch(study.arch)
    return {"study": dataclasses.asdict(study),
            "chip": {"name": arch.name, "clock_ghz": arch.clock_ghz, "rows": arch.array.rows,
                     "cols": arch.array.cols, "dataflow": arch.array.dataflow, "scheme": arch.scheme.name,
                     "file": study.arch or "arch_configs/default.yaml"},
            "published": {key: list(value) for key, value in PUBLISHED.items()},
            "links": [[gb, LINKS.get(gb, "")] for gb in study.link_gb_per_s]}


def write_claim_study(rows: list[dict], study: ClaimStudy, out_dir: Path) -> tuple[Path, Path, Path]:
    """``distributed.csv`` (every row), ``distributed_decomposition.csv`` and ``study.json`` into ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    table, parts, described = out_dir / ROWS_CSV, out_dir / DECOMPOSITION_CSV, out_dir / STUDY_JSON
    table.write_text(csv_text(rows, FIELDS))
    parts.write_text(csv_text(decompose(rows), DECOMPOSITION_FIELDS))
    described.write_text(json.dumps(study_description(study), indent=1, sort_keys=True) + "\n")
    return table, parts, described
