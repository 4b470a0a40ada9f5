"""Step profiles for the multi-chip model (``hfp8sim.distributed``) from single-chip runs.

:func:`step_profile_from_result` reads a training-step run: its rows carry ``pass_`` (forward, backward_data,
backward_weight, update), ``source_layer`` (the forward layer a row belongs to) and ``param_elements`` (on the
forward row).  :func:`stand_in_profile` makes a profile from a forward-only run for as long as the CLI has no
training-step runs: it is the one place that guesses backward and update times.
"""

from __future__ import annotations

from collections.abc import Iterable

from ..distributed.profile import LayerStepTimes, StepProfile
from ..errors import DistributedError
from ..results import LayerResult, NetworkResult
from ..workloads import Network

PASS_FIELDS = {"forward": "forward_cycles", "backward_data": "backward_data_cycles",
               "backward_weight": "backward_weight_cycles", "update": "update_cycles"}

STAND_IN_NOTE = ("stand-in: backward-data and weight-gradient cycles = forward cycles, no update cycles "
                 "(a forward run; no training-step run given)")


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


def stand_in_profile(network: Network, forward: NetworkResult, per_chip_batch: int = 1) -> StepProfile:
    """STAND-IN until training-step runs exist: from a forward run, backward-data = weight-gradient = forward
    cycles per layer (the first layer has no backward-data), no update cycles; parameters from the workload."""
    weights = {layer.name: layer.weight_elements for layer in network.layers}
    layers = []
    for index, row in enumerate(forward.layers):
        layers.append(LayerStepTimes(row.name, row.cycles, 0 if index == 0 else row.cycles,
                                     row.cycles if weights.get(row.name) else 0, 0, weights.get(row.name, 0)))
    return StepProfile(forward.workload, tuple(layers), forward.clock_ghz * 1e9, per_chip_batch,
                       stand_in=STAND_IN_NOTE)
