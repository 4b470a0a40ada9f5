"""The plain inputs of the multi-chip model: one chip's training step per layer, and the gradient protocol.

The model takes numbers, not simulator objects: a :class:`StepProfile` (per layer, in forward order, the
cycles of its forward, backward-data, weight-gradient and update passes on one chip, and its parameter count)
and a :class:`Protocol` (what goes on the wire).  ``hfp8sim.step_profiles`` builds profiles from
training-step runs of the single-chip simulator.
"""

from __future__ import annotations

import dataclasses
import math

from ..errors import DistributedError


@dataclasses.dataclass(frozen=True)
class LayerStepTimes:
    """One layer's share of one chip's training step (cycles at the profile's clock)."""

    name: str
    forward_cycles: float
    backward_data_cycles: float  # the input gradient (none for the first layer)
    backward_weight_cycles: float  # the weight gradient
    update_cycles: float  # the optimizer step of all this layer's parameters on one chip
    param_elements: int  # parameters whose gradients are communicated (0: nothing to communicate)

    @property
    def cycles(self) -> float:
        return self.forward_cycles + self.backward_data_cycles + self.backward_weight_cycles + self.update_cycles


@dataclasses.dataclass(frozen=True)
class StepProfile:
    workload: str
    layers: tuple[LayerStepTimes, ...]  # forward order; the backward pass runs them in reverse
    clock_hz: float
    per_chip_batch: int = 1
    master_weight_format: str = "float32"  # what the update reads and writes; informational here

    def __post_init__(self) -> None:
        if not self.layers:
            raise DistributedError(f"{self.workload}: a step profile needs at least one layer")
        if not (0 < self.clock_hz < math.inf):
            raise DistributedError(f"{self.workload}: clock {self.clock_hz!r} Hz; a clock is positive and finite")
        for layer in self.layers:
            times = (layer.forward_cycles, layer.backward_data_cycles, layer.backward_weight_cycles,
                     layer.update_cycles)
            if not all(0 <= t < math.inf for t in times) or layer.param_elements < 0:
                raise DistributedError(f"{self.workload}: layer {layer.name}: cycles and parameters are finite "
                                       f"and >= 0, got {times} cycles, {layer.param_elements} parameters")
            if layer.update_cycles and not layer.param_elements:
                raise DistributedError(f"{self.workload}: layer {layer.name}: {layer.update_cycles} update cycles "
                                       "but no parameters to update")

    @property
    def param_elements(self) -> int:
        return sum(layer.param_elements for layer in self.layers)

    def seconds(self, cycles: float) -> float:
        return cycles / self.clock_hz


@dataclasses.dataclass(frozen=True)
class Protocol:
    """How gradients and weights cross the chips.

    ``sharded`` False: all-reduce the gradients (``gradient_bytes`` per element), then every chip updates every
    parameter.  ``sharded`` True: reduce-scatter the gradients, each chip updates its 1/N shard of the
    parameters, then all-gather the updated weights (``weight_bytes`` per element)."""

    name: str
    gradient_bytes: int
    sharded: bool
    weight_bytes: int = 0
    description: str = ""
    # the chip's weight update this protocol goes with (a training-step update rule): HFP8 keeps FP8 weights
    # and an FP16 round-off residual; the all-reduce baselines keep FP32 master weights
    update_rule: str = "fp32_master"

    def wire_bytes_per_param(self, chips: int) -> float:
        """Bytes a chip sends per parameter per step, from the ring algorithm's (N - 1) / N."""
        share = (chips - 1) / chips
        if self.sharded:
            return share * (self.gradient_bytes + self.weight_bytes)
        return 2 * share * self.gradient_bytes


PROTOCOLS = {
    "hfp8": Protocol("hfp8", 2, True, 1, "reduce-scatter FP16 gradients, update the local shard, all-gather FP8 "
                                         "weights (IBM HFP8)", "round_off_residual"),
    "fp16_allreduce": Protocol("fp16_allreduce", 2, False, 0, "ring all-reduce of FP16 gradients, full update on "
                                                              "every chip"),
    "fp32_allreduce": Protocol("fp32_allreduce", 4, False, 0, "ring all-reduce of FP32 gradients, full update on "
                                                              "every chip"),
}


def protocol_named(name: str) -> Protocol:
    if name not in PROTOCOLS:
        raise DistributedError(f"unknown protocol {name!r}; known: {', '.join(PROTOCOLS)}")
    return PROTOCOLS[name]
