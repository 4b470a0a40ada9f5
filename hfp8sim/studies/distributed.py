"""Step profiles for the multi-chip model (``hfp8sim.distributed``) from single-chip runs.

:func:`step_profile_from_result` reads a training-step run: its rows carry ``pass_`` (forward, backward_data,
backward_weight, update), ``source_layer`` (the forward layer a row belongs to) and ``param_elements`` (on the
forward row).  :func:`training_step_profile` derives one chip's training step from a forward network
(:func:`~hfp8sim.workloads.training_step.derive_training_step`), simulates it and reads it;
:class:`StepProfiles` keeps one profile per weight-update rule, since each gradient protocol brings its own
(:attr:`~hfp8sim.distributed.profile.Protocol.update_rule`).
"""

from __future__ import annotations

from collections.abc import Iterable

from ..distributed.profile import LayerStepTimes, StepProfile
from ..errors import DistributedError
from ..results import LayerResult, NetworkResult
from ..run import check_limits, simulate_network
from ..workloads import Network
from ..workloads.training_step import derive_training_step

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


def training_step_profile(arch, network: Network, per_chip_batch: int, *, optimizer: str = "momentum",
                          update_rule: str = "fp32_master", scheme: str | None = None) -> StepProfile:
    """One chip's training step of the forward ``network`` at ``per_chip_batch`` samples, simulated on
    ``arch`` (in ``scheme``, default the arch's), as a step profile."""
    step = derive_training_step(network, batch=per_chip_batch, optimizer=optimizer, update_rule=update_rule)
    check_limits(arch, step, scheme)
    result = simulate_network(arch, step, scheme=scheme)
    return step_profile_from_result(result, per_chip_batch, MASTER_WEIGHTS.get(update_rule, update_rule))


class StepProfiles:
    """Step profiles of one (arch, network, per-chip batch, optimizer, scheme), one per weight-update rule,
    each simulated once when first asked for."""

    def __init__(self, arch, network: Network, per_chip_batch: int, *, optimizer: str = "momentum",
                 scheme: str | None = None, on_simulate=None):
        self.arch, self.network, self.per_chip_batch = arch, network, per_chip_batch
        self.optimizer, self.scheme, self.on_simulate = optimizer, scheme, on_simulate
        self._by_rule: dict[str, StepProfile] = {}

    def for_rule(self, update_rule: str) -> StepProfile:
        if update_rule not in self._by_rule:
            if self.on_simulate is not None:
                self.on_simulate(update_rule)
            self._by_rule[update_rule] = training_step_profile(
                self.arch, self.network, self.per_chip_batch, optimizer=self.optimizer, update_rule=update_rule,
                scheme=self.scheme)
        return self._by_rule[update_rule]

    def for_protocol(self, protocol, update_rule: str | None = None) -> StepProfile:
        """The profile of ``protocol``'s own update rule, or of ``update_rule`` when one is given."""
        return self.for_rule(update_rule or protocol.update_rule)

    @property
    def by_rule(self) -> dict[str, StepProfile]:
        """The profiles simulated so far, by update rule."""
        return dict(self._by_rule)
