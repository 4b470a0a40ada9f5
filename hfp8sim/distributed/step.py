"""A data-parallel training step on N chips in SimPy: compute, bucketed gradient collectives, updates.

Each chip has one compute engine (forward, backward and update jobs, one at a time) and the links of its
topology.  Per step and chip:

1. Forward, layers in order.  From the second step on, a layer's forward waits until its weights of the
   previous step are final (all-reduced and updated, or shard-updated and all-gathered).
2. Backward, layers in reverse order: each layer's weight gradient, then its input gradient (ASTRA-sim's
   data-parallel order).  A layer's gradient is ready when its weight-gradient job ends (a layer with
   parameters but no weight-gradient pass, a batch norm, when its backward job ends).
3. Gradients go into buckets in backward order (PyTorch DDP's scheme: a bucket closes once it holds at least
   ``bucket_bytes`` of gradients).  A bucket's collective starts when its last gradient is ready, overlapping
   the rest of the backward pass, and is cut into ``chunks`` chunks.
4. All-reduce protocols: when the bucket's all-reduce ends, the engine updates all its parameters.  HFP8: when
   the reduce-scatter ends, the engine updates the chip's 1/N shard (update cycles / N), then the updated
   weights are all-gathered in FP8.

Four steps (0-3) are simulated; step 2, whose forward waits for step 1's communication, is the steady state:
step time = end of step 2 - end of step 1, where a step ends when its last weights are final.  Exposed
communication = step time - compute time (the engine's idle time per step, all of it spent waiting for
weights); communication time = how long a collective of the chip is in flight within the window; overlapped =
the part of that during which the engine computes.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import simpy

from ..errors import DistributedError
from .collectives import ALL_GATHER, ALL_REDUCE, REDUCE_SCATTER, run_collective
from .fabric import make_fabric
from .profile import Protocol, StepProfile
from .topology import Topology

DEFAULT_BUCKET_BYTES = 25 * 2**20  # PyTorch DDP's bucket_cap_mb = 25 (MiB)
DEFAULT_CHUNKS = 4
STEPS_SIMULATED = 4
# Step 0 starts with its weights in place, so the window is steps 1 -> 2, both steady; step 3 is there because
# its forward may begin before step 2's last weights are final (layers whose weights are), inside the window.
WINDOW = (1, 2)


@dataclasses.dataclass(frozen=True)
class Bucket:
    index: int
    layers: tuple[int, ...]  # positions in the profile (forward order), in the order their gradients are ready
    param_elements: int


def make_buckets(profile: StepProfile, gradient_bytes: int, bucket_bytes: float) -> tuple[Bucket, ...]:
    """Layers with parameters in backward order, cut into buckets of at least ``bucket_bytes`` (the last one
    takes what is left)."""
    if not bucket_bytes > 0:
        raise DistributedError(f"bucket size {bucket_bytes!r} bytes; a gradient bucket holds a positive size")
    buckets: list[Bucket] = []
    members: list[int] = []
    elements = 0
    for position in reversed(range(len(profile.layers))):
        if profile.layers[position].param_elements:
            members.append(position)
            elements += profile.layers[position].param_elements
            if elements * gradient_bytes >= bucket_bytes:
                buckets.append(Bucket(len(buckets), tuple(members), elements))
                members, elements = [], 0
    if members:
        buckets.append(Bucket(len(buckets), tuple(members), elements))
    return tuple(buckets)


@dataclasses.dataclass(frozen=True)
class StepResult:
    workload: str
    topology: str
    chips: int
    protocol: str
    model: str  # reduced or full
    step_seconds: float
    compute_seconds: float
    exposed_comm_seconds: float
    comm_seconds: float
    overlapped_comm_seconds: float
    bytes_sent_per_chip: float  # per step
    param_elements: int
    buckets: int
    chunks: int
    link_transfers: int  # link jobs simulated (both steps, every simulated chip): the model's size

    @property
    def wire_bytes_per_param(self) -> float:
        return self.bytes_sent_per_chip / self.param_elements if self.param_elements else 0.0

    def row(self) -> dict:
        return {**dataclasses.asdict(self), "wire_bytes_per_param": self.wire_bytes_per_param}


def simulate_step(profile: StepProfile, topology: Topology, protocol: Protocol, *,
                  bucket_bytes: float = DEFAULT_BUCKET_BYTES, chunks: int = DEFAULT_CHUNKS,
                  model: str = "reduced") -> StepResult:
    """The steady-state training step of ``profile`` on every chip of ``topology`` under ``protocol``."""
    if not (isinstance(chunks, int) and chunks >= 1):
        raise DistributedError(f"chunks: {chunks!r}; a collective is cut into at least 1 chunk")
    sim = _StepSimulation(profile, topology, protocol, make_buckets(profile, protocol.gradient_bytes,
                                                                    bucket_bytes), chunks, model)
    return sim.run()


class _StepSimulation:
    def __init__(self, profile: StepProfile, topology: Topology, protocol: Protocol,
                 buckets: tuple[Bucket, ...], chunks: int, model: str):
        self.profile, self.topology, self.protocol = profile, topology, protocol
        self.buckets, self.chunks, self.model = buckets, chunks, model
        self.env = simpy.Environment()
        self.fabric = make_fabric(self.env, topology, model)
        # (chip, step, bucket) -> the bucket's weights of that step are final on that chip
        self.weights_final = {(chip, step, bucket.index): self.env.event() for chip in self.fabric.chips
                              for step in range(STEPS_SIMULATED) for bucket in buckets}
        self.bucket_of = {position: bucket.index for bucket in buckets for position in bucket.layers}
        self.comm_spans: list[tuple[float, float]] = []  # chip 0's collectives in flight
        self.fired: dict[tuple[int, int, object], float] = {}  # (chip, step, bucket or "compute") -> time

    def run(self) -> StepResult:
        for chip in self.fabric.chips:
            self.env.process(self._compute(chip))
        self.env.run()
        ends = [max(t for (chip, step, _), t in self.fired.items() if chip == 0 and step == s)
                for s in range(STEPS_SIMULATED)]
        return self._result(ends[WINDOW[0]], ends[WINDOW[1]])

    def _fire(self, chip: int, step: int, what: object) -> None:
        """Mark ``what`` (a bucket's final weights, or "compute") of ``step`` done on ``chip`` now."""
        self.fired[(chip, step, what)] = self.env.now
        if what != "compute":
            self.weights_final[(chip, step, what)].succeed()

    def _job(self, chip: int, key: tuple, seconds: float):
        """Run a job on the chip's engine (skipped when it takes no time)."""
        if seconds > 0:
            yield self.fabric.engines[chip].submit(key, seconds)

    def _compute(self, chip: int):
        layers, seconds = self.profile.layers, self.profile.seconds
        for step in range(STEPS_SIMULATED):
            for position, layer in enumerate(layers):
                if step and position in self.bucket_of:
                    yield self.weights_final[(chip, step - 1, self.bucket_of[position])]
                yield from self._job(chip, (step, 0, position), seconds(layer.forward_cycles))
            waiting = {bucket.index: len(bucket.layers) for bucket in self.buckets}
            for order, position in enumerate(reversed(range(len(layers)))):
                layer = layers[position]
                # a GEMM's gradient is ready after its weight-gradient job; a layer with parameters but no
                # weight-gradient pass (a batch norm: its backward op yields them) after its backward job
                early = layer.backward_weight_cycles > 0
                yield from self._job(chip, (step, 0, len(layers) + 2 * order), seconds(layer.backward_weight_cycles))
                if early:
                    self._gradient_ready(chip, step, position, waiting)
                yield from self._job(chip, (step, 0, len(layers) + 2 * order + 1),
                                     seconds(layer.backward_data_cycles))
                if not early:
                    self._gradient_ready(chip, step, position, waiting)
            self._fire(chip, step, "compute")

    def _gradient_ready(self, chip: int, step: int, position: int, waiting: dict[int, int]) -> None:
        """Count the gradient of the layer at ``position`` into its bucket; a full bucket starts communicating."""
        if position in self.bucket_of:
            index = self.bucket_of[position]
            waiting[index] -= 1
            if not waiting[index]:
                self.env.process(self._communicate(chip, step, self.buckets[index]))

    def _communicate(self, chip: int, step: int, bucket: Bucket):
        protocol, chips = self.protocol, self.topology.chips
        update = self.profile.seconds(sum(self.profile.layers[p].update_cycles for p in bucket.layers))
        gradient_bytes = bucket.param_elements * protocol.gradient_bytes
        if protocol.sharded:
            yield from self._collective(chip, REDUCE_SCATTER, gradient_bytes, (step, bucket.index, 0))
            yield from self._job(chip, (step, 1, bucket.index), update / chips)
            yield from self._collective(chip, ALL_GATHER, bucket.param_elements * protocol.weight_bytes,
                                        (step, bucket.index, 1))
        else:
            yield from self._collective(chip, ALL_REDUCE, gradient_bytes, (step, bucket.index, 0))
            yield from self._job(chip, (step, 1, bucket.index), update)
        self._fire(chip, step, bucket.index)

    def _collective(self, chip: int, kind: str, nbytes: float, key: tuple):
        start = self.env.now
        yield run_collective(self.fabric, chip, kind, nbytes, self.chunks, key)
        if chip == 0:
            self.comm_spans.append((start, self.env.now))

    def _result(self, first_end: float, second_end: float) -> StepResult:
        profile = self.profile
        update_share = self.topology.chips if self.protocol.sharded else 1
        compute = profile.seconds(sum(l.forward_cycles + l.backward_data_cycles + l.backward_weight_cycles +
                                      l.update_cycles / update_share for l in profile.layers))
        window = (first_end, second_end)
        comm = _merged(_clipped(self.comm_spans, window))
        busy = _merged(_clipped(self.fabric.engines[0].spans or [], window))
        step = second_end - first_end
        sent = sum(self.fabric.bytes_sent[0]) / STEPS_SIMULATED  # every step sends the same
        return StepResult(profile.workload, self.topology.describe(), self.topology.chips, self.protocol.name,
                          self.model, step, compute, step - compute, _measure(comm), _measure(_intersection(comm, busy)),
                          sent, profile.param_elements, len(self.buckets), self.chunks,
                          sum(link.jobs for links in self.fabric.links for link in links))


Spans = Sequence[tuple[float, float]]


def _clipped(spans: Spans, window: tuple[float, float]) -> list[tuple[float, float]]:
    low, high = window
    return [(max(a, low), min(b, high)) for a, b in spans if b > low and a < high]


def _merged(spans: Spans) -> list[tuple[float, float]]:
    merged: list[list[float]] = []
    for a, b in sorted(spans):
        if merged and a <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], b)
        else:
            merged.append([a, b])
    return [(a, b) for a, b in merged]


def _measure(spans: Spans) -> float:
    return sum(b - a for a, b in spans)


def _intersection(first: Spans, second: Spans) -> list[tuple[float, float]]:
    """The overlap of two merged, sorted span lists."""
    out, i, j = [], 0, 0
    while i < len(first) and j < len(second):
        low, high = max(first[i][0], second[j][0]), min(first[i][1], second[j][1])
        if low < high:
            out.append((low, high))
        if first[i][1] < second[j][1]:
            i += 1
        else:
            j += 1
    return out
