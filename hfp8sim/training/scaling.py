"""Tensor scaling recipes for FP8 operands, and the statistics of each quantization.

A recipe chooses the scale ``s`` by which a tensor is multiplied before it is encoded in its operand format
(``codes = encode(x * s)``; the GEMM result is divided by the product of its operands' scales).  Scales are
powers of two, so applying and removing them is exact: the only errors are the format's own rounding,
underflow and saturation.

* :class:`FixedBias` (scale 1): HFP8's forward format (1,4,3) with exponent bias 11 is already shifted to
  the range of activations and weights, and gradients rely on loss scaling; nothing is measured.
* :class:`CurrentScaling`: the scale of each tensor from its own amax (largest magnitude), so that amax
  lands at or just below the ``target`` (the format's max finite value, or less where the ops ask for
  accumulator headroom), then ``margin`` more factors of two down.  Needs the tensor's amax before
  encoding it (an extra pass over the data in hardware).
* :class:`DelayedScaling`: the scale from an **amax history** per tensor name, as NVIDIA Transformer Engine
  does: the history holds the amax of the last ``history_len`` uses of that tensor; the scale for this use
  comes from the history *before* this use (its maximum, ``algo="max"``, or its latest entry,
  ``algo="most_recent"``), and this use's amax is appended afterwards.  A tensor that outgrew its history
  saturates (counted in the statistics).

Guards: an amax that is zero or not finite (an all-zero gradient, an overflowed step) never produces an
infinite or NaN scale: current scaling uses 1, delayed scaling keeps the tensor's previous scale (1 before the
first good amax).  A tiny amax cannot produce a scale beyond 2^+-:data:`MAX_SCALE_LOG2` either.
"""

from __future__ import annotations

import collections
import dataclasses
import math

import numba
import numpy as np

from ..formats import FormatSpec
from ..formats.codec import encode_with_values
from .tensors import TrainingError

MAX_SCALE_LOG2 = 64  # |log2 scale| at most this: a float32 tensor times the scale stays finite and normal
DELAYED_ALGOS = ("max", "most_recent")


@dataclasses.dataclass(frozen=True)
class QuantStats:
    """What encoding one tensor did: ``elements``, ``nonzero`` inputs, ``underflow`` (nonzero inputs encoded to
    a zero), ``saturated`` (inputs whose scaled magnitude exceeds the format's largest finite value, clamped to
    it), the tensor's ``amax`` and the ``scale`` applied."""

    elements: int
    nonzero: int
    underflow: int
    saturated: int
    amax: float
    scale: float

    @property
    def underflow_fraction(self) -> float:
        """Underflowed share of the nonzero inputs (0 when all are zero)."""
        return self.underflow / self.nonzero if self.nonzero else 0.0


def power_of_two_scale(amax: float, target: float, margin: int = 0) -> float:
    """The largest power of two ``s`` with ``amax * s <= target``, then ``margin`` factors of two lower,
    clamped to 2^+-MAX_SCALE_LOG2; 1 for an amax that is zero or not finite."""
    if not (math.isfinite(amax) and amax > 0):
        return 1.0
    exponent = math.floor(math.log2(target / amax)) - margin
    # log2 in floating point can land one too high right at a power of two: step down if amax * s overshoots
    if math.ldexp(amax, exponent) > target:
        exponent -= 1
    return math.ldexp(1.0, max(-MAX_SCALE_LOG2, min(MAX_SCALE_LOG2, exponent)))


class ScalingRecipe:
    """How the scale of a tensor is chosen.  ``key`` names the tensor (layer, pass and operand), ``amax`` is
    this use's largest magnitude, ``target`` where amax should land.  :meth:`observe` is called after the
    tensor has been encoded with the scale :meth:`scale` gave."""

    name = "recipe"

    def scale(self, key: str, amax: float, spec: FormatSpec, target: float) -> float:
        raise NotImplementedError

    def observe(self, key: str, amax: float) -> None:
        """Record this use's amax (only delayed scaling keeps anything)."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class FixedBias(ScalingRecipe):
    """Scale 1: the format's exponent bias places its range (HFP8's shifted-bias (1,4,3))."""

    name = "fixed_bias"

    def scale(self, key: str, amax: float, spec: FormatSpec, target: float) -> float:
        return 1.0


class CurrentScaling(ScalingRecipe):
    """A power-of-two scale per tensor from its own amax (see the module notes)."""

    name = "current"

    def __init__(self, margin: int = 0):
        self.margin = _check_margin(margin)

    def scale(self, key: str, amax: float, spec: FormatSpec, target: float) -> float:
        return power_of_two_scale(amax, target, self.margin)

    def __repr__(self) -> str:
        return f"CurrentScaling(margin={self.margin})"


class DelayedScaling(ScalingRecipe):
    """A power-of-two scale from the amax history of each tensor name (see the module notes)."""

    name = "delayed"

    def __init__(self, history_len: int = 1024, algo: str = "max", margin: int = 0):
        if isinstance(history_len, bool) or not isinstance(history_len, int) or history_len < 1:
            raise TrainingError(f"delayed scaling: history_len must be a positive integer, got {history_len!r}")
        if algo not in DELAYED_ALGOS:
            raise TrainingError(f"delayed scaling: unknown amax algorithm {algo!r}; allowed: "
                                f"{', '.join(DELAYED_ALGOS)}")
        self.history_len = history_len
        self.algo = algo
        self.margin = _check_margin(margin)
        self.histories: dict[str, collections.deque[float]] = {}
        self._last_scale: dict[str, float] = {}

    def history(self, key: str) -> list[float]:
        """The amax history of a tensor, oldest first."""
        return list(self.histories.get(key, ()))

    def scale(self, key: str, amax: float, spec: FormatSpec, target: float) -> float:
        history = self.histories.get(key)
        previous = self._last_scale.get(key, 1.0)
        if not history:
            return previous
        reference = max(history) if self.algo == "max" else history[-1]
        if not (math.isfinite(reference) and reference > 0):
            return previous  # nothing measured yet, or an overflowed step: keep the last good scale
        scale = power_of_two_scale(reference, target, self.margin)
        self._last_scale[key] = scale
        return scale

    def observe(self, key: str, amax: float) -> None:
        history = self.histories.get(key)
        if history is None:
            history = self.histories[key] = collections.deque(maxlen=self.history_len)
        history.append(float(amax))

    def __repr__(self) -> str:
        return f"DelayedScaling(history_len={self.history_len}, algo={self.algo!r}, margin={self.margin})"


def _check_margin(margin) -> int:
    if isinstance(margin, bool) or not isinstance(margin, int) or margin < 0:
        raise TrainingError(f"scaling margin must be a non-negative integer number of factors of two, "
                            f"got {margin!r}")
    return margin


def tensor_amax(x: np.ndarray) -> float:
    """Largest |x| (NaN ignored; 0 for an empty tensor)."""
    if not x.size:
        return 0.0
    mags = np.abs(x)
    amax = mags.max()  # numpy's vectorised maximum; NaN propagates, so only then mask it (a slower pass)
    if amax != amax:
        amax = np.max(mags, where=~np.isnan(mags), initial=0.0)
    return float(amax)


@numba.njit(cache=True, parallel=True)
def _quant_counts(flat_x, flat_scaled, flat_values, max_value):
    """(nonzero inputs, nonzero inputs whose encoded value is zero, scaled inputs beyond ``max_value``)."""
    nonzero = 0
    underflow = 0
    saturated = 0
    for i in numba.prange(flat_x.size):
        if flat_x[i] != 0:
            nonzero += 1
            if flat_values[i] == 0:
                underflow += 1
        if abs(flat_scaled[i]) > max_value:  # false for NaN, as numpy's comparison
            saturated += 1
    return nonzero, underflow, saturated


def encode_scaled(x: np.ndarray, spec: FormatSpec, scale: float, *, amax: float | None = None,
                  with_values: bool = False):
    """``x * scale`` encoded in ``spec`` (round to nearest even, saturating), and the statistics of it.

    Returns codes for formats of at most 16 bits; for float32 the scaled values themselves (float32), which
    the ops multiply with numpy (the datapath takes operands of at most 16 bits).  ``amax``: the tensor's
    :func:`tensor_amax` when the caller has it already; ``with_values``: also return the float32 values of
    the codes, ``(data, stats, values)``, from the same encoding pass (what the datapath multiplies)."""
    x = np.asarray(x, dtype=np.float32)
    # exact: a power of two within 2^+-64 of a tensor it was chosen for; in x's memory order, which a float32
    # operand keeps into numpy's matmul (whose summation order can depend on it)
    scaled = x * np.float32(scale)
    if spec.bits > 16:
        data = values = scaled
    else:
        data, values = encode_with_values(scaled, spec)
    nonzero, underflow, saturated = _quant_counts(x.reshape(-1), scaled.reshape(-1), values.reshape(-1),
                                                  float(spec.max_value))
    stats = QuantStats(elements=int(x.size), nonzero=int(nonzero), underflow=int(underflow),
                       saturated=int(saturated), amax=tensor_amax(x) if amax is None else float(amax),
                       scale=float(scale))
    return (data, stats, values) if with_values else (data, stats)


__all__ = ["DELAYED_ALGOS", "MAX_SCALE_LOG2", "CurrentScaling", "DelayedScaling", "FixedBias", "QuantStats",
           "ScalingRecipe", "encode_scaled", "power_of_two_scale", "tensor_amax"]
