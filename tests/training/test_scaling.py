"""Scaling recipes (fixed bias, current, delayed with an amax history) and the exact underflow and saturation
counts of encoding, on hand-made tensors."""

from __future__ import annotations

import math

import numpy as np
import pytest

from hfp8sim.formats import get_format
from hfp8sim.training.scaling import (
    MAX_SCALE_LOG2, CurrentScaling, DelayedScaling, FixedBias, encode_scaled, power_of_two_scale,
)
from hfp8sim.training.ops import TrainingOps
from hfp8sim.training.tensors import Parameter, TrainingError

E4M3 = get_format("float8_e4m3b11fnuz")  # max 30, smallest subnormal 2^-13
E5M2 = get_format("float8_e5m2")  # max 57344, smallest subnormal 2^-16


def test_power_of_two_scale_lands_amax_at_or_below_the_target():
    assert power_of_two_scale(3.0, 30.0) == 8.0  # 24 <= 30 < 48
    assert power_of_two_scale(1.875, 30.0) == 16.0  # exactly 30: on the target is allowed
    assert power_of_two_scale(3.0, 30.0, margin=2) == 2.0
    assert power_of_two_scale(100.0, 30.0) == 0.25
    for bad in (0.0, math.inf, math.nan, -1.0):
        assert power_of_two_scale(bad, 30.0) == 1.0
    tiny = power_of_two_scale(1e-300, 30.0)
    huge = power_of_two_scale(1e300, 30.0)
    assert tiny == 2.0**MAX_SCALE_LOG2 and huge == 2.0**-MAX_SCALE_LOG2


def test_fixed_bias_is_always_one():
    recipe = FixedBias()
    assert recipe.scale("t", 1e-9, E4M3, 30.0) == 1.0
    assert recipe.scale("t", 1e9, E4M3, 30.0) == 1.0


def test_current_scaling_uses_this_tensors_amax_and_guards_zero():
    recipe = CurrentScaling()
    assert recipe.scale("t", 0.1, E4M3, 30.0) == 256.0  # 25.6
    assert recipe.scale("t", 0.0, E4M3, 30.0) == 1.0
    assert CurrentScaling(margin=1).scale("t", 0.1, E4M3, 30.0) == 128.0
    with pytest.raises(TrainingError, match="margin"):
        CurrentScaling(margin=-1)


def test_delayed_scaling_history_max_and_length():
    recipe = DelayedScaling(history_len=3, algo="max")
    assert recipe.scale("w", 5.0, E4M3, 30.0) == 1.0  # nothing measured yet
    for amax in (1.0, 3.0, 0.5):
        recipe.observe("w", amax)
    assert recipe.history("w") == [1.0, 3.0, 0.5]
    assert recipe.scale("w", 100.0, E4M3, 30.0) == 8.0  # from max 3.0, not this use's 100
    recipe.observe("w", 0.25)  # pushes 1.0 out; 3.0 still the max
    assert recipe.history("w") == [3.0, 0.5, 0.25]
    assert recipe.scale("w", 0.0, E4M3, 30.0) == 8.0
    recipe.observe("w", 0.1)
    recipe.observe("w", 0.1)  # 3.0 has left the 3-long window: max is 0.25
    assert recipe.scale("w", 0.0, E4M3, 30.0) == 64.0
    assert recipe.history("other") == [] and recipe.scale("other", 1.0, E4M3, 30.0) == 1.0  # per tensor name


def test_delayed_scaling_most_recent_and_zero_guard():
    recipe = DelayedScaling(history_len=8, algo="most_recent")
    recipe.observe("g", 4.0)
    recipe.observe("g", 0.1)
    assert recipe.scale("g", 0.0, E4M3, 30.0) == 256.0  # the latest amax, 0.1
    recipe.observe("g", 0.0)  # an all-zero gradient: keep the last good scale, never infinity
    assert recipe.scale("g", 0.0, E4M3, 30.0) == 256.0
    recipe.observe("g", math.inf)  # an overflowed step
    assert recipe.scale("g", 0.0, E4M3, 30.0) == 256.0
    only_zeros = DelayedScaling(history_len=2)
    only_zeros.observe("z", 0.0)
    assert only_zeros.scale("z", 0.0, E4M3, 30.0) == 1.0
    with pytest.raises(TrainingError, match="history_len"):
        DelayedScaling(history_len=0)
    with pytest.raises(TrainingError, match="amax algorithm"):
        DelayedScaling(algo="mean")


def test_delayed_scaling_through_the_ops_uses_the_previous_call():
    recipe = DelayedScaling(history_len=4)
    ops = TrainingOps("hfp8", recipe=recipe)
    w = np.full((4, 2), 0.5, np.float32)
    ops.matmul("fc", "forward", np.full((3, 4), 2.0, np.float32), w, "activation", "weight")
    ops.matmul("fc", "forward", np.full((3, 4), 0.2, np.float32), w, "activation", "weight")
    first, second = ops.records
    assert first.a.scale == 1.0 and first.b.scale == 1.0  # empty histories
    assert second.a.scale == 8.0  # amax 2.0 of the first call: 16 <= 30
    assert second.b.scale == 32.0  # amax 0.5
    assert recipe.history("fc/forward/a") == [2.0, float(np.float32(0.2))]


def test_encode_counts_underflow_and_saturation_exactly():
    x = np.array([0.0, 1e-5, 2.0**-14, 2.0**-13, -(2.0**-13) * 1.4, 1.0, 30.0, 31.0, -100.0, np.float32(-0.0)],
                 np.float32)
    codes, stats = encode_scaled(x, E4M3, 1.0)
    assert codes.dtype == np.uint8
    assert stats.elements == 10 and stats.nonzero == 8
    assert stats.underflow == 2  # 1e-5 and 2^-14 (a tie, to even: zero); 2^-13 and 1.4 x 2^-13 survive
    assert stats.saturated == 2  # 31 and -100; 30 is the max itself
    assert stats.amax == 100.0 and stats.scale == 1.0
    _, scaled = encode_scaled(x, E4M3, 2.0)
    assert scaled.underflow == 1 and scaled.saturated == 3  # 2^-14 x 2 = 2^-13 survives; 30 x 2 saturates
    _, grad = encode_scaled(np.array([2.0**-17, 2.0**-16, 6e4, 5e4], np.float32), E5M2, 1.0)
    assert (grad.underflow, grad.saturated) == (1, 1)
    assert grad.underflow_fraction == 0.25


def test_ops_records_the_gradient_underflow_of_each_layer():
    ops = TrainingOps("hfp8", gradient_recipe=FixedBias(), recipe=FixedBias())
    dy = np.array([[1e-7, 1.0], [2.0**-16, 0.0]], np.float32)  # one e5m2 underflow, one exact subnormal
    w = np.ones((3, 2), np.float32)
    ops.matmul("head", "backward_data", dy, w.T, "gradient", "weight")
    ops.matmul("head", "backward_weight", np.ones((3, 2), np.float32), dy, "activation", "gradient")
    summary = ops.underflow_by_layer()
    assert summary == {"head": {"elements": 8, "nonzero": 6, "underflow": 2, "saturated": 0}}


def test_parameter_compute_copy_and_gradient_accumulation():
    p = Parameter("fc.weight", [[1.0, 2.0]])
    assert p.value.dtype == np.float32 and p.grad is None and p.compute_value is p.value
    p.compute_value = np.array([[1.0, 2.5]], np.float32)
    assert p.compute_value[0, 1] == 2.5 and p.value[0, 1] == 2.0
    p.compute_value = None
    assert p.compute_value is p.value
    p.add_grad([[1.0, 1.0]])
    p.add_grad([[0.5, 0.0]])
    np.testing.assert_array_equal(p.grad, [[1.5, 1.0]])
    p.zero_grad()
    assert p.grad is None
    with pytest.raises(TrainingError, match="fc.weight"):
        p.add_grad([1.0])
    with pytest.raises(TrainingError, match="kind"):
        Parameter("x", [1.0], kind="buffer")
