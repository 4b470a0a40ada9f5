"""Step profiles for the multi-chip model (``hfp8sim.distributed``) from single-chip runs.

:func:`step_profile_from_result` reads a training-step run: its rows carry ``pass_`` (forward, backward_data,
backward_weight, update), ``source_layer`` (the forward layer a row belongs to) and ``param_elements`` (on the
forward row).  :func:`training_step_profile` derives one chip's training step from a forward network
(:func:`~hfp8sim.workloads.training_step.derive_training_step`), simulates it and reads it;
:class:`StepProfiles` keeps one profile per weight-update rule, since each gradient protocol brings its own
(:attr:`~hfp8sim.distributed.profile.Protocol.update_rule`).  :func:`data_parallel_row` runs the data-parallel
step of a profile (the reduced SimPy model) and flattens it into a row; :class:`DataParallelSetup` and
:func:`simulate_data_parallel` are one such system as a point of a sweep.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, MutableMapping

from .distributed.profile import LayerStepTimes, Protocol, StepProfile, protocol_named
from .distributed.step import simulate_step
from .distributed.topology import Topology, build_topology
from .errors import DistributedError
from .results import LayerResult, NetworkResult
from .run import check_limits, simulate_network
from .workloads import Network
from .workloads.training_step import derive_training_step
from .workloads.training_step import per_chip_batch as split_global_batch

PASS_FIELDS = {"forward": "forward_cycles", "backward_data": "backward_data_cycles",
               "backward_weight": "backward_weight_cycles", "update": "update_cycles"}

# what the update keeps per parameter under each rule (StepProfile.master_weight_format, informational)
MASTER_WEIGHTS = {"fp32_master": "float32", "round_off_residual": "forward format + float16 residual"}
DEFAULT_PER_CHIP_BATCH = 32


def layer_step_times(rows: Iterable[LayerResult]) -> tuple[LayerStepTimes, ...]:
    """Rows of a training-step run grouped by the forward layer they belong to (first appearance order),
    cycles summed per pass; parameters from the forward rows."""
    cycles: dict[str, dict[str, float]] = {}
    params: dict[str, int] = {}
    for row in rows:
        source = getattr(row, "source_layer", "") or row.name
        pass_ = getattr(row, "pass_", "forward") or "forward"
        if pass_ not in PASS_FIELDS:
            raise DistributedError(f"layer {row.name}: pass {pass_!r}; known passes: {', '.join(PASS_FIELDS)}")
        per_pass = cycles.setdefault(source, dict.fromkeys(PASS_FIELDS.values(), 0.0))
        per_pass[PASS_FIELDS[pass_]] += row.cycles
        if pass_ == "forward":
            params[source] = params.get(source, 0) + int(getattr(row, "param_elements", 0) or 0)
    return tuple(LayerStepTimes(name, param_elements=params.get(name, 0), **per_pass)
                 for name, per_pass in cycles.items())


def step_profile_from_result(result: NetworkResult, per_chip_batch: int = 1,
                             master_weight_format: str = "float32") -> StepProfile:
    """The step profile of a training-step run (one chip)."""
    return StepProfile(result.workload, layer_step_times(result.layers), result.clock_ghz * 1e9, per_chip_batch,
                       master_weight_format)


def simulate_training_step(arch, network: Network, per_chip_batch: int, *, optimizer: str = "momentum",
                           update_rule: str = "fp32_master",
                           scheme: str | None = None) -> tuple[NetworkResult, StepProfile]:
    """One chip's training step of the forward ``network`` at ``per_chip_batch`` samples, simulated on ``arch``
    (in ``scheme``, default the arch's): the run and its step profile."""
    step = derive_training_step(network, batch=per_chip_batch, optimizer=optimizer, update_rule=update_rule)
    check_limits(arch, step, scheme)
    result = simulate_network(arch, step, scheme=scheme)
    return result, step_profile_from_result(result, per_chip_batch, MASTER_WEIGHTS.get(update_rule, update_rule))


def training_step_profile(arch, network: Network, per_chip_batch: int, *, optimizer: str = "momentum",
                          update_rule: str = "fp32_master", scheme: str | None = None) -> StepProfile:
    """The step profile of :func:`simulate_training_step`."""
    return simulate_training_step(arch, network, per_chip_batch, optimizer=optimizer, update_rule=update_rule,
                                  scheme=scheme)[1]


class StepProfiles:
    """Step profiles of one (arch, network, per-chip batch, optimizer, scheme), one per weight-update rule,
    each simulated once when first asked for (with the run's summary: :meth:`summary`)."""

    def __init__(self, arch, network: Network, per_chip_batch: int, *, optimizer: str = "momentum",
                 scheme: str | None = None, on_simulate=None):
        self.arch, self.network, self.per_chip_batch = arch, network, per_chip_batch
        self.optimizer, self.scheme, self.on_simulate = optimizer, scheme, on_simulate
        self._by_rule: dict[str, StepProfile] = {}
        self._summaries: dict[str, dict] = {}

    def for_rule(self, update_rule: str) -> StepProfile:
        if update_rule not in self._by_rule:
            if self.on_simulate is not None:
                self.on_simulate(update_rule)
            result, self._by_rule[update_rule] = simulate_training_step(
                self.arch, self.network, self.per_chip_batch, optimizer=self.optimizer, update_rule=update_rule,
                scheme=self.scheme)
            self._summaries[update_rule] = result.summary()
        return self._by_rule[update_rule]

    def for_protocol(self, protocol, update_rule: str | None = None) -> StepProfile:
        """The profile of ``protocol``'s own update rule, or of ``update_rule`` when one is given."""
        return self.for_rule(update_rule or protocol.update_rule)

    def summary(self, update_rule: str) -> dict:
        """The summary of the one-chip run behind :meth:`for_rule` (cycles, energy, DRAM bytes of one step)."""
        self.for_rule(update_rule)
        return self._summaries[update_rule]

    @property
    def by_rule(self) -> dict[str, StepProfile]:
        """The profiles simulated so far, by update rule."""
        return dict(self._by_rule)


def data_parallel_row(profile: StepProfile, topology: Topology, protocol: Protocol, *, bucket_mib: float,
                      chunks: int, update_rule: str | None = None) -> dict:
    """One data-parallel step of ``profile`` on ``topology`` under ``protocol`` (the reduced SimPy model), as a
    flat row: the system, the step time and its parts in ms, bytes on the wire per parameter, samples per
    second.  The update is one chip's full update, or its 1/N shard under a sharded protocol (HFP8's);
    ``update_rule``: the rule ``profile`` was simulated with, when not the protocol's own."""
    result = simulate_step(profile, topology, protocol, bucket_bytes=bucket_mib * 2**20, chunks=chunks)
    update = profile.seconds(sum(layer.update_cycles for layer in profile.layers))
    if protocol.sharded:
        update /= topology.chips
    first = topology.dimensions[0]
    return {"per_chip_batch": profile.per_chip_batch, "global_batch": profile.per_chip_batch * topology.chips,
            "protocol": protocol.name, "update_rule": update_rule or protocol.update_rule, "topology": topology.kind,
            "chips": topology.chips, "link_gb_per_s": first.gb_per_s, "link_latency_us": first.latency_us,
            "bucket_mib": bucket_mib, "chunks": chunks, "param_elements": profile.param_elements,
            "step_ms": result.step_seconds * 1e3, "compute_ms": result.compute_seconds * 1e3,
            "forward_backward_ms": (result.compute_seconds - update) * 1e3, "update_ms": update * 1e3,
            "exposed_comm_ms": result.exposed_comm_seconds * 1e3, "comm_ms": result.comm_seconds * 1e3,
            "overlapped_comm_ms": result.overlapped_comm_seconds * 1e3,
            "wire_bytes_per_param": result.wire_bytes_per_param,
            "samples_per_second": profile.per_chip_batch * topology.chips / result.step_seconds}


@dataclasses.dataclass(frozen=True)
class DataParallelSetup:
    """One data-parallel system around a chip: what a sweep point with distributed keys simulates.  The field
    names are the keys a sweep sets (``--set distributed.KEY=...``, or ``--chips``, ``--topology``, ...)."""

    chips: int = 64
    topology: str = "ring"
    link_gb_per_s: float = 25.0  # per direction: the ring's or torus' links, or the intra-node ring's
    link_latency_us: float = 1.0
    protocol: str = "hfp8"
    bucket_mib: float = 25.0  # gradient bucket (PyTorch DDP's bucket_cap_mb)
    chunks: int = 4  # chunks per collective
    chips_per_node: int | None = None  # hierarchical: None is 8, or all the chips when there are fewer
    inter_gb_per_s: float = 12.5  # hierarchical: a chip's switch port (100 Gb/s)
    inter_latency_us: float = 2.0
    global_batch: int | None = None  # strong scaling: split over the chips; None: per_chip_batch each (weak)
    per_chip_batch: int = DEFAULT_PER_CHIP_BATCH

    def topology_model(self) -> Topology:
        per_node = self.chips_per_node if self.chips_per_node is not None else \
            min(8, self.chips) if isinstance(self.chips, int) else 8
        return build_topology(self.topology, self.chips, gb_per_s=self.link_gb_per_s,
                              latency_us=self.link_latency_us, chips_per_node=per_node,
                              inter_gb_per_s=self.inter_gb_per_s, inter_latency_us=self.inter_latency_us)

    def samples_per_chip(self) -> int:
        """The per-chip batch: the global batch split (it must divide), or ``per_chip_batch``."""
        if self.global_batch is None:
            return self.per_chip_batch
        return split_global_batch(self.global_batch, self.chips)


SWEEP_KEYS = tuple(f.name for f in dataclasses.fields(DataParallelSetup) if f.name != "per_chip_batch")
"""The keys of :class:`DataParallelSetup` a sweep may set (the per-chip batch is the sweep's ``--batch``)."""


def simulate_data_parallel(arch, network: Network, setup: DataParallelSetup, *, optimizer: str = "momentum",
                           update_rule: str | None = None, profiles: MutableMapping[tuple, StepProfiles] | None = None,
                           chip_key: str = "") -> tuple[dict, dict]:
    """(one chip's training-step summary, the data-parallel row) of ``network`` on ``setup`` with ``arch`` as
    the chip.  The topology, protocol and batch are checked before the chip is simulated; ``update_rule``
    (default: the protocol's own) is the chip's weight update.  With ``profiles`` and a ``chip_key`` that names
    (arch, network) for the caller, the chip's :class:`StepProfiles` are kept there per (chip_key, per-chip
    batch, optimizer): points that differ only in the system around the chip simulate it once."""
    topology = setup.topology_model()
    protocol = protocol_named(setup.protocol)
    per_chip = setup.samples_per_chip()
    key = (chip_key, per_chip, optimizer)
    chip = profiles.get(key) if profiles is not None and chip_key else None
    if chip is None:
        chip = StepProfiles(arch, network, per_chip, optimizer=optimizer)
        if profiles is not None and chip_key:
            profiles[key] = chip
    rule = update_rule or protocol.update_rule
    row = data_parallel_row(chip.for_rule(rule), topology, protocol, bucket_mib=setup.bucket_mib,
                            chunks=setup.chunks, update_rule=rule)
    return chip.summary(rule), row
