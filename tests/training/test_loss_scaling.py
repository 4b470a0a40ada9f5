"""Loss scaling: growth after N good steps, backoff and skip on inf/NaN, static scale, min scale, the log."""

from __future__ import annotations

import numpy as np
import pytest

from hfp8sim.errors import Hfp8SimError, TrainingError
from hfp8sim.training.loss_scaling import (
    DynamicLossScaler, LossScaleStep, StaticLossScaler, make_loss_scaler,
)


def test_dynamic_defaults_are_the_usual_ones():
    scaler = DynamicLossScaler()
    assert scaler.scale == 65536.0
    assert (scaler.growth, scaler.backoff, scaler.growth_interval, scaler.min_scale) == (2.0, 0.5, 2000, 1.0)


def test_dynamic_grows_x2_after_exactly_n_good_steps():
    scaler = DynamicLossScaler(init=8.0, growth_interval=3)
    scales = []
    for _ in range(7):
        assert scaler.update(found_inf=False) is False
        scales.append(scaler.scale)
    # after steps 3 and 6 (the 3rd good step in a row each time) the scale doubles, and not before
    assert scales == [8.0, 8.0, 16.0, 16.0, 16.0, 32.0, 32.0]


def test_dynamic_backs_off_skips_and_restarts_the_good_step_count():
    scaler = DynamicLossScaler(init=1024.0, growth_interval=2)
    assert scaler.update(False) is False   # 1 good step
    assert scaler.update(True) is True     # overflow: skipped, 1024 -> 512, count restarts
    assert scaler.scale == 512.0
    assert scaler.update(False) is False   # 1 good step (not 2: the count restarted)
    assert scaler.scale == 512.0
    assert scaler.update(False) is False   # 2 good steps: grow
    assert scaler.scale == 1024.0
    assert scaler.skipped_steps == 1


def test_dynamic_never_goes_below_min_scale():
    scaler = DynamicLossScaler(init=8.0, min_scale=2.0)
    for _ in range(5):
        assert scaler.update(True) is True
    assert scaler.scale == 2.0
    assert [e.scale for e in scaler.log] == [8.0, 4.0, 2.0, 2.0, 2.0]


def test_static_scale_never_changes_but_still_skips_non_finite_steps():
    scaler = StaticLossScaler(128.0)
    outcomes = [scaler.update(flag) for flag in (False, True, False, True, True) + (False,) * 3000]
    assert scaler.scale == 128.0
    assert outcomes[:5] == [False, True, False, True, True]
    assert scaler.skipped_steps == 3
    assert {e.scale for e in scaler.log} == {128.0}


def test_log_records_step_scale_used_and_skipped():
    scaler = DynamicLossScaler(init=4.0, growth_interval=1)
    scaler.update(False)
    scaler.update(True)
    scaler.update(False)
    # the scale logged is the one the step's gradients were computed with (before the update)
    assert scaler.log == [LossScaleStep(0, 4.0, False), LossScaleStep(1, 8.0, True), LossScaleStep(2, 4.0, False)]
    assert scaler.steps == 3


def test_unscale_divides_in_place_and_reports_inf_and_nan():
    scaler = DynamicLossScaler(init=1024.0)
    g1 = np.array([1024.0, -2048.0, 3.0], np.float32)
    g2 = np.array([[512.0]], np.float32)
    assert scaler.unscale([g1, None, g2]) is False
    np.testing.assert_array_equal(g1, np.array([1.0, -2.0, 3.0 / 1024.0], np.float32))
    np.testing.assert_array_equal(g2, [[0.5]])
    assert scaler.unscale([np.array([1.0, np.inf], np.float32)]) is True
    assert scaler.unscale([np.array([1.0], np.float32), np.array([np.nan], np.float32)]) is True


def test_unscale_by_a_non_power_of_two_static_scale():
    scaler = StaticLossScaler(3.0)
    g = np.array([3.0, 6.0, 1.0], np.float32)
    assert scaler.unscale([g]) is False
    np.testing.assert_array_equal(g, np.array([1.0, 2.0, np.float32(1.0) / np.float32(3.0)], np.float32))


def test_scaled_small_gradient_survives_fp8_e5m2_underflow():
    # why loss scaling exists: 2**-20 flushes to zero in (1,5,2) (smallest subnormal 2**-16), scaled by 2**16 not
    from hfp8sim.formats import quantize

    scaler = DynamicLossScaler()
    tiny = np.array([2.0 ** -20], np.float32)
    assert quantize(tiny, "float8_e5m2")[0] == 0.0
    scaled = quantize(scaler.scale_loss(tiny), "float8_e5m2")
    assert scaler.unscale([scaled]) is False
    assert scaled[0] == np.float32(2.0 ** -20)


@pytest.mark.parametrize("kwargs", [
    {"init": 0.0}, {"init": float("inf")}, {"growth": 1.0}, {"backoff": 1.0}, {"backoff": -0.5},
    {"growth_interval": 0}, {"growth_interval": 2.5}, {"min_scale": 2.0 ** 17},
])
def test_bad_dynamic_settings_are_one_line_training_errors(kwargs):
    with pytest.raises(TrainingError) as info:
        DynamicLossScaler(**kwargs)
    assert isinstance(info.value, Hfp8SimError) and "\n" not in str(info.value)
    assert "loss scaling" in str(info.value)


def test_make_loss_scaler_names():
    assert isinstance(make_loss_scaler("dynamic"), DynamicLossScaler)
    assert make_loss_scaler("static", 512.0).scale == 512.0
    assert make_loss_scaler("none").scale == 1.0
    with pytest.raises(TrainingError, match="allowed: dynamic, static, none"):
        make_loss_scaler("adaptive")
