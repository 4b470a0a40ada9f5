"""Per-tensor and per-channel scales from amax."""

import numpy as np
import pytest

from hfp8sim.errors import FormatError
from hfp8sim.formats import decode, encode
from hfp8sim.formats.scaling import amax, channel_scales, scale_from_amax, tensor_scale


def test_power_of_two_scale_is_the_largest_that_keeps_amax_in_range():
    # e4m3b11fnuz max is 30: amax 3.0 -> 30/3 = 10 -> 2**3 = 8 (24 <= 30, and 16 would give 48 > 30)
    assert scale_from_amax(3.0, "float8_e4m3b11fnuz") == 8.0
    assert scale_from_amax(3.0, "float8_e4m3b11fnuz", margin=1) == 4.0
    assert scale_from_amax(3.0, "float8_e4m3b11fnuz", power_of_two=False) == 10.0
    assert scale_from_amax(448.0, "float8_e4m3fn") == 1.0
    assert scale_from_amax(0.0, "float8_e4m3fn") == 1.0  # all-zero tensor: leave it alone
    assert scale_from_amax(np.inf, "float8_e4m3fn") == 1.0


def test_tensor_and_channel_scales_map_values_into_range():
    rng = np.random.default_rng(0)
    w = rng.standard_normal((4, 3, 3, 3)) * np.array([0.01, 1.0, 100.0, 1e4])[:, None, None, None]
    per_channel = channel_scales(w, "float8_e4m3b11fnuz", channel_axis=0)
    assert per_channel.shape == (4, 1, 1, 1)
    scaled = w * per_channel
    per_channel_amax = np.abs(scaled).reshape(4, -1).max(axis=1)
    assert np.all(per_channel_amax <= 30) and np.all(per_channel_amax > 15)  # within one factor of two of max
    s = tensor_scale(w, "float8_e4m3b11fnuz")
    assert np.abs(w * s).max() <= 30
    # per-channel keeps the small channel's values, per-tensor flushes most of them to zero
    small = w[0]
    per_tensor_err = np.abs(decode(encode(small * s, "float8_e4m3b11fnuz"), "float8_e4m3b11fnuz") / s - small).mean()
    per_channel_err = np.abs(
        decode(encode(small * per_channel[0], "float8_e4m3b11fnuz"), "float8_e4m3b11fnuz") / per_channel[0] - small
    ).mean()
    typical = np.abs(small).mean()
    assert per_channel_err < 0.05 * typical  # about 3 % relative error of a 3-bit mantissa
    assert per_tensor_err > 0.5 * typical  # most values of the small channel are lost


def test_amax_ignores_nan_and_checks_the_axis():
    assert amax(np.array([1.0, np.nan, -3.0])) == 3.0
    assert amax(np.array([[1.0, -5.0], [2.0, 0.5]]), channel_axis=1).tolist() == [2.0, 5.0]
    with pytest.raises(FormatError, match="channel_axis 2 is out of range"):
        amax(np.zeros((2, 2)), channel_axis=2)
    with pytest.raises(FormatError, match="margin must be a non-negative integer"):
        scale_from_amax(1.0, "float16", margin=-1)
