"""Scales that map real tensors into a format's range (per tensor or per channel).

A scale ``s`` multiplies a tensor before it is encoded (``codes = encode(x * s)``) and divides the decoded
result (``x ~= decode(codes) / s``).  It is chosen from the tensor's absolute maximum (amax) so that
``amax * s`` lands on the format's largest finite value, or, with ``power_of_two=True``, on the largest
power-of-two step that stays at or below it (a pure exponent shift, exact to apply and to undo, as hardware
with a shared-exponent register does).  ``margin`` backs off by that many factors of two (headroom for
outliers not seen when the scale was measured).
"""

from __future__ import annotations

import math

import numpy as np

from ..errors import FormatError
from .spec import FormatSpec, get_format


def amax(values, *, channel_axis: int | None = None) -> np.ndarray:
    """Largest |value| (NaN ignored): a 0-d array, or one entry per channel along ``channel_axis``."""
    arr = np.asarray(values, dtype=np.float64)
    mags = np.where(np.isnan(arr), 0.0, np.abs(arr))
    if channel_axis is None:
        return np.asarray(mags.max(initial=0.0))
    if not -arr.ndim <= channel_axis < arr.ndim:
        raise FormatError(f"channel_axis {channel_axis} is out of range for a tensor of {arr.ndim} dimensions")
    axes = tuple(a for a in range(arr.ndim) if a != channel_axis % arr.ndim)
    return mags.max(axis=axes, initial=0.0)


def scale_from_amax(amax_values, fmt: str | FormatSpec, *, power_of_two: bool = True, margin: int = 0) -> np.ndarray:
    """Scale(s) mapping ``amax`` onto the format's max finite value; 1 where amax is 0 or not finite."""
    spec = get_format(fmt)
    if not isinstance(margin, int) or margin < 0:
        raise FormatError(f"margin must be a non-negative integer number of factors of two, got {margin!r}")
    a = np.asarray(amax_values, dtype=np.float64)
    usable = np.isfinite(a) & (a > 0)
    ratio = np.where(usable, float(spec.max_value) / np.where(usable, a, 1.0), 1.0)
    if power_of_two:
        scale = np.exp2(np.floor(np.log2(ratio)) - margin)
    else:
        scale = ratio * math.ldexp(1.0, -margin)
    return np.where(usable, scale, 1.0)


def tensor_scale(values, fmt: str | FormatSpec, *, power_of_two: bool = True, margin: int = 0) -> float:
    """One scale for the whole tensor."""
    return float(scale_from_amax(amax(values), fmt, power_of_two=power_of_two, margin=margin))


def channel_scales(values, fmt: str | FormatSpec, *, channel_axis: int = 0, power_of_two: bool = True,
                   margin: int = 0) -> np.ndarray:
    """One scale per channel, shaped to broadcast against ``values`` (size 1 on every other axis)."""
    arr = np.asarray(values)
    scales = scale_from_amax(amax(arr, channel_axis=channel_axis), fmt, power_of_two=power_of_two, margin=margin)
    shape = [1] * arr.ndim
    shape[channel_axis] = arr.shape[channel_axis]
    return scales.reshape(shape)
