"""Loss scaling: keep small FP8 (1,5,2) gradients above the underflow threshold by scaling the loss.

The backward pass runs on gradients multiplied by ``scale``; before the optimizer sees them they are divided
back (``unscale``), and a gradient that overflowed to inf/NaN makes the step be skipped.  Two policies:

* :class:`StaticLossScaler`: one scale for the whole run (``StaticLossScaler(1.0)`` is "no loss scaling").
* :class:`DynamicLossScaler`: the usual mixed-precision semantics (as in NVIDIA Apex and PyTorch's
  GradScaler): start at ``2**16``; after ``growth_interval`` consecutive good steps multiply the scale by
  ``growth``; on an inf/NaN gradient skip the step, multiply by ``backoff`` (not below ``min_scale``) and
  restart the count of good steps.

Both skip a step whose gradients are not finite: applying an inf/NaN update would destroy the weights, and a
static scaler has no other way to recover.  Every step is logged as a :class:`LossScaleStep`.

One training step uses a scaler as::

    dlogits = loss_grad * scaler.scale          # (or scale the loss before backward)
    ... backward ...
    found_inf = scaler.unscale(grads)           # grads divided by the scale, in place
    if not scaler.update(found_inf):            # False: the step is skipped
        apply the optimizer
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from hfp8sim.errors import TrainingError


@dataclass(frozen=True)
class LossScaleStep:
    """One step of the log: the scale the step's gradients were computed with, and whether it was skipped."""

    step: int
    scale: float
    skipped: bool


def _check_scale(name: str, value: float) -> float:
    if not isinstance(value, (int, float, np.floating)) or isinstance(value, bool):
        raise TrainingError(f"loss scaling: {name} must be a number, got {value!r}")
    value = float(value)
    if not math.isfinite(value) or value <= 0:
        raise TrainingError(f"loss scaling: {name} must be a finite number > 0, got {value!r}")
    return value


class LossScaler:
    """What both policies share: the current ``scale``, ``unscale`` and the per-step ``log``."""

    def __init__(self, scale: float):
        self.scale = _check_scale("scale", scale)
        self.log: list[LossScaleStep] = []

    @property
    def steps(self) -> int:
        return len(self.log)

    @property
    def skipped_steps(self) -> int:
        return sum(entry.skipped for entry in self.log)

    def scale_loss(self, value):
        """``value * scale`` in float32 (the loss, or the loss gradient that starts the backward pass)."""
        return np.asarray(value, np.float32) * np.float32(self.scale)

    def unscale(self, grads: Iterable[np.ndarray | None]) -> bool:
        """Divide every gradient by the scale, in place (float32); True when any of them holds an inf or NaN.

        ``None`` entries (parameters without a gradient) are passed over.  The check is made after the
        division, so a finite gradient that the division makes infinite (a scale below 1) counts too.
        """
        found_inf = False
        inverse = np.float32(1.0 / self.scale) if self._power_of_two() else None
        for grad in grads:
            if grad is None:
                continue
            if grad.dtype != np.float32:
                raise TrainingError(f"loss scaling: gradients are float32 arrays, got dtype {grad.dtype}")
            # A power-of-two scale is undone exactly by multiplying with its inverse; any other by dividing.
            if inverse is not None:
                np.multiply(grad, inverse, out=grad)
            else:
                np.divide(grad, np.float32(self.scale), out=grad)
            if not found_inf and not np.all(np.isfinite(grad)):
                found_inf = True
        return found_inf

    def _power_of_two(self) -> bool:
        mantissa, _ = math.frexp(self.scale)
        return mantissa == 0.5

    def update(self, found_inf: bool) -> bool:
        """Record the step and adapt the scale; True when the step is skipped (its gradients were not finite)."""
        skipped = bool(found_inf)
        self.log.append(LossScaleStep(step=len(self.log), scale=self.scale, skipped=skipped))
        self._adapt(skipped)
        return skipped

    def _adapt(self, skipped: bool) -> None:
        raise NotImplementedError


class StaticLossScaler(LossScaler):
    """One scale for the whole run; a step with inf/NaN gradients is skipped but the scale never changes."""

    def _adapt(self, skipped: bool) -> None:
        return None


class DynamicLossScaler(LossScaler):
    """Grow the scale after ``growth_interval`` good steps in a row; back off and skip on inf/NaN."""

    def __init__(self, init: float = 2.0 ** 16, growth: float = 2.0, backoff: float = 0.5,
                 growth_interval: int = 2000, min_scale: float = 1.0):
        super().__init__(init)
        self.growth = _check_scale("growth", growth)
        self.backoff = _check_scale("backoff", backoff)
        self.min_scale = _check_scale("min_scale", min_scale)
        if self.growth <= 1.0:
            raise TrainingError(f"loss scaling: growth must be > 1, got {growth!r}")
        if self.backoff >= 1.0:
            raise TrainingError(f"loss scaling: backoff must be < 1, got {backoff!r}")
        if self.min_scale > self.scale:
            raise TrainingError(f"loss scaling: min_scale {min_scale!r} is above the initial scale {init!r}")
        if not isinstance(growth_interval, (int, np.integer)) or isinstance(growth_interval, bool) \
                or growth_interval < 1:
            raise TrainingError(f"loss scaling: growth_interval must be an integer >= 1, got {growth_interval!r}")
        self.growth_interval = int(growth_interval)
        self.good_steps = 0  # consecutive finite steps since the last change of scale

    def _adapt(self, skipped: bool) -> None:
        if skipped:
            self.scale = max(self.scale * self.backoff, self.min_scale)
            self.good_steps = 0
            return
        self.good_steps += 1
        if self.good_steps == self.growth_interval:
            self.scale *= self.growth
            self.good_steps = 0


LOSS_SCALINGS = ("dynamic", "static", "none")


def make_loss_scaler(kind: str, scale: float | None = None) -> LossScaler:
    """``"dynamic"`` (initial 2**16 unless ``scale`` is given), ``"static"`` (``scale``, default 2**16) or
    ``"none"`` (a static scale of 1)."""
    if kind == "dynamic":
        return DynamicLossScaler() if scale is None else DynamicLossScaler(init=scale, min_scale=min(1.0, scale))
    if kind == "static":
        return StaticLossScaler(2.0 ** 16 if scale is None else scale)
    if kind == "none":
        return StaticLossScaler(1.0)
    raise TrainingError(f"unknown loss scaling {kind!r}; allowed: {', '.join(LOSS_SCALINGS)}")
