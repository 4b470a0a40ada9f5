"""Optimizers against hand-computed float64 steps; update rules: float32 master, stochastic rounding (unbiased,
seeded), round-off residual (tracks the exact sum), float16 round-to-nearest (loses small updates)."""

from __future__ import annotations

import numpy as np
import pytest

from hfp8sim.errors import Hfp8SimError, TrainingError
from hfp8sim.formats import quantize
from hfp8sim.training.optim import (
    SGD, Adam, Fp16Nearest, Fp16StochasticRounding, Fp32Master, RoundOffResidual, Updater, make_optimizer,
    make_update_rule,
)

from ._param import Parameter


class ConstantDelta:
    """An 'optimizer' whose update is a fixed array: isolates the update rule from the optimizer."""

    def __init__(self, delta):
        self.delta = np.asarray(delta, np.float32)

    def update(self, param):
        return np.broadcast_to(self.delta, param.value.shape).astype(np.float32)


def run_constant_updates(rule, value, delta, steps):
    param = Parameter("w", value)
    updater = Updater([param], ConstantDelta(delta), rule)
    param.grad = np.zeros_like(param.value)
    for _ in range(steps):
        updater.step()
    return param


# ---- optimizers -----------------------------------------------------------------------------------------


def test_sgd_momentum_weight_decay_against_hand_computed_steps():
    # lr 0.1, momentum 0.9, weight decay 0.01, w0 = 1, gradients 0.5, 0.25, -1:
    #   g1 = 0.5 + 0.01*1 = 0.51;              buf = 0.51;                       w = 1 - 0.051 = 0.949
    #   g2 = 0.25 + 0.00949 = 0.25949;         buf = 0.459 + 0.25949 = 0.71849;  w = 0.949 - 0.071849 = 0.877151
    #   g3 = -1 + 0.00877151 = -0.99122849;    buf = 0.646641 - 0.99122849 = -0.34458749
    #                                                                            w = 0.877151 + 0.034458749
    expected = [0.949, 0.877151, 0.911609749]
    param = Parameter("w", [1.0])
    updater = Updater([param], SGD(0.1, momentum=0.9, weight_decay=0.01), Fp32Master())
    for grad, want in zip((0.5, 0.25, -1.0), expected):
        param.grad = np.array([grad], np.float32)
        updater.step()
        assert param.value[0] == pytest.approx(want, rel=2e-7, abs=0)


def float64_adam(w, grads, lr, b1, b2, eps):
    m = v = 0.0
    out = []
    for t, g in enumerate(grads, start=1):
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        w = w - lr * (m / (1 - b1 ** t)) / (np.sqrt(v / (1 - b2 ** t)) + eps)
        out.append(w)
    return out


def test_adam_against_float64_steps():
    # first step by hand: m_hat = g, v_hat = g*g, so w1 = w0 - lr * g / (|g| + eps) = 1 - 0.01 * 0.5/(0.5 + 1e-8)
    grads = [0.5, 0.25, -1.0, 2.0, 1e-3]
    reference = float64_adam(1.0, grads, lr=0.01, b1=0.9, b2=0.999, eps=1e-8)
    assert reference[0] == pytest.approx(1.0 - 0.01 * 0.5 / (0.5 + 1e-8), rel=1e-15)
    param = Parameter("w", [1.0])
    updater = Updater([param], Adam(lr=0.01, betas=(0.9, 0.999), eps=1e-8), Fp32Master())
    for grad, want in zip(grads, reference):
        param.grad = np.array([grad], np.float32)
        updater.step()
        assert param.value[0] == pytest.approx(want, rel=1e-6, abs=0)


def test_optimizer_state_is_per_parameter_and_params_without_grad_are_left_alone():
    a, b, frozen = Parameter("a", [1.0]), Parameter("b", [1.0]), Parameter("frozen", [3.0])
    updater = Updater([a, b, frozen], SGD(1.0, momentum=0.5), Fp32Master())
    a.grad = np.array([1.0], np.float32)
    b.grad = np.array([2.0], np.float32)
    updater.step()
    updater.step()
    # a: buf 1 then 1.5 -> 1 - 1 - 1.5; b: buf 2 then 3 -> 1 - 2 - 3
    assert (a.value[0], b.value[0], frozen.value[0]) == (-1.5, -4.0, 3.0)
    updater.zero_grad()
    assert a.grad is None and b.grad is None


def test_updater_with_a_loss_scaler_unscales_and_skips_non_finite_steps():
    from hfp8sim.training.loss_scaling import DynamicLossScaler

    param = Parameter("w", [1.0, 2.0])
    scaler = DynamicLossScaler(init=1024.0)
    updater = Updater([param], SGD(0.5), Fp32Master())
    param.grad = np.array([1024.0, -2048.0], np.float32)  # scaled gradients 1 and -2
    assert updater.step(scaler) is False
    np.testing.assert_array_equal(param.value, [0.5, 3.0])
    param.grad = np.array([np.inf, 0.0], np.float32)
    assert updater.step(scaler) is True
    np.testing.assert_array_equal(param.value, [0.5, 3.0])
    assert scaler.scale == 512.0 and updater.steps == 1 and scaler.skipped_steps == 1


# ---- update rules ---------------------------------------------------------------------------------------


def test_fp32_master_is_float32_arithmetic_bit_for_bit():
    rng = np.random.default_rng(1)
    w0 = rng.standard_normal(1000).astype(np.float32)
    grads = rng.standard_normal((20, 1000)).astype(np.float32) * np.float32(1e-3)
    param = Parameter("w", w0)
    updater = Updater([param], SGD(0.05), Fp32Master())
    expected = w0.copy()
    for grad in grads:
        param.grad = grad
        updater.step()
        expected = expected + (-np.float32(0.05) * grad)
    np.testing.assert_array_equal(param.value.view(np.uint32), expected.view(np.uint32))
    assert param.compute_value is param.value and param.value.dtype == np.float32


def test_fp16_nearest_loses_small_updates():
    # 1e-4 is below half a float16 ulp at 1.0 (2**-11 = 4.9e-4): every single update rounds back to 1.0
    param = run_constant_updates(Fp16Nearest(), np.ones(4), 1e-4, 1000)
    np.testing.assert_array_equal(param.value, np.ones(4, np.float32))
    master = run_constant_updates(Fp32Master(), np.ones(4), 1e-4, 1000)
    np.testing.assert_allclose(master.value, 1.1, rtol=1e-4)


def test_round_off_residual_accumulates_small_updates():
    rule = RoundOffResidual()
    param = run_constant_updates(rule, np.ones(4), 1e-4, 1000)
    weight, residual = rule.weight_and_residual("w")
    # the FP8 (1,4,3) weight moved to the grid point nearest 1.1 (grid step 0.125 in [1, 2)) ...
    np.testing.assert_array_equal(weight, np.full(4, 1.125, np.float32))
    np.testing.assert_array_equal(param.compute_value, weight)
    # ... and weight + residual holds the accumulated 1 + 1000 * 1e-4 up to the residual's own roundings: at most
    # half a float16 ulp of a residual below 2**-4 per step (2**-16), i.e. 0.015 over 1000 steps.  A constant
    # update rounds the same way every time, so this drift is systematic: measured 1.0952 (95% of the 0.1 kept;
    # float16 round-to-nearest keeps 0%).
    exact = 1.0 + 1000 * np.float64(np.float32(1e-4))
    total = weight.astype(np.float64) + residual
    assert np.all(np.abs(total - exact) <= 1000 * 2.0 ** -16)
    assert np.all(total - 1.0 > 0.09)
    np.testing.assert_array_equal(param.value, weight + residual)


def test_round_off_residual_tracks_the_exact_update_within_one_fp16_ulp_of_the_residual_each_step():
    rng = np.random.default_rng(2)
    w0 = rng.standard_normal(2000).astype(np.float32)
    rule = RoundOffResidual()
    param = Parameter("w", w0)
    deltas = (rng.standard_normal((100, 2000)) * 1e-3).astype(np.float32)
    updater = Updater([param], ConstantDelta(0.0), rule)
    param.grad = np.zeros_like(w0)
    weight, residual = rule.weight_and_residual("w")
    np.testing.assert_array_equal(weight, quantize(w0, "float8_e4m3b11fnuz"))
    exact = w0.astype(np.float64)
    worst_error_in_ulps = 0.0
    drift_bound = np.zeros_like(exact)  # the sum of each step's half-ulp bound, per element
    for delta in deltas:
        before = weight.astype(np.float64) + residual
        updater.optimizer = ConstantDelta(delta)
        updater.step()
        weight, residual = rule.weight_and_residual("w")
        exact += delta
        after = weight.astype(np.float64) + residual
        residual_ulp = np.spacing(np.abs(residual).astype(np.float16)).astype(np.float64)
        step_error = np.abs(after - (before + delta.astype(np.float64)))
        assert np.all(step_error <= residual_ulp)
        worst_error_in_ulps = max(worst_error_in_ulps, float(np.max(step_error / residual_ulp)))
        drift_bound += residual_ulp / 2
        # the residual is what FP8 rounding dropped: never more than half an FP8 ulp, so FP8 holds the weight
        assert np.all(np.abs(residual) <= np.abs(weight) * 2.0 ** -4 + 2.0 ** -14)
    assert worst_error_in_ulps <= 0.5  # round to nearest: half an ulp at most
    # over 100 steps the drift from the exact float64 sum is at most the sum of those half ulps (measured:
    # 3.8e-4 at worst, on weights near 1.5 whose residual ulp is 2**-15)
    drift = np.abs(weight.astype(np.float64) + residual - exact)
    assert np.all(drift <= drift_bound) and np.max(drift) < 1e-3
    nearest = Parameter("w", w0)
    nearest_updater = Updater([nearest], ConstantDelta(0.0), Fp16Nearest())
    nearest.grad = np.zeros_like(w0)
    for delta in deltas:
        nearest_updater.optimizer = ConstantDelta(delta)
        nearest_updater.step()
    assert np.max(np.abs(nearest.value - exact)) > 10 * np.max(np.abs(weight.astype(np.float64) + residual - exact))


def test_stochastic_rounding_is_unbiased_over_a_million_samples():
    n = 1_000_000
    # a constant update far below float16's resolution: nearest rounding loses all of it (error -1e-4 each),
    # stochastic rounding rounds up about 10% of the time and is right on average
    delta = np.float32(1e-4)
    exact = 1.0 + np.float64(delta)
    stochastic = run_constant_updates(Fp16StochasticRounding(seed=11), np.ones(n), delta, 1)
    error = stochastic.value.astype(np.float64) - exact
    standard_error = error.std() / np.sqrt(n)
    assert abs(error.mean()) < 3 * standard_error
    assert set(np.unique(stochastic.value)) == {np.float32(1.0), np.float32(1.0 + 2.0 ** -10)}
    nearest = run_constant_updates(Fp16Nearest(), np.ones(n), delta, 1)
    assert abs((nearest.value.astype(np.float64) - exact).mean()) > 30 * standard_error
    # random weights and updates of every size
    rng = np.random.default_rng(5)
    w0 = quantize(rng.standard_normal(n).astype(np.float32), "float16")
    deltas = (rng.standard_normal(n) * 10.0 ** rng.uniform(-6, -1, n)).astype(np.float32)
    param = Parameter("w", w0)
    updater = Updater([param], ConstantDelta(deltas), Fp16StochasticRounding(seed=3))
    param.grad = np.zeros_like(w0)
    updater.step()
    error = param.value.astype(np.float64) - (w0.astype(np.float64) + deltas)
    assert abs(error.mean()) < 3 * error.std() / np.sqrt(n)


def test_stochastic_rounding_is_deterministic_for_a_seed_and_draws_fresh_bits_every_step():
    rng = np.random.default_rng(9)
    w0 = rng.standard_normal(5000).astype(np.float32)
    delta = (rng.standard_normal(5000) * 1e-4).astype(np.float32)

    def bits(seed):
        return run_constant_updates(Fp16StochasticRounding(seed), w0, delta, 5).value.view(np.uint32)

    np.testing.assert_array_equal(bits(7), bits(7))
    assert np.count_nonzero(bits(7) != bits(8)) > 100
    # 1000 updates of 1e-4 on 1.0: each element must land near 1.1.  Reusing one draw per element would send
    # ~10% of the elements up every step (to ~1.98) and leave the rest at 1.0.
    param = run_constant_updates(Fp16StochasticRounding(seed=1), np.ones(1000), 1e-4, 1000)
    assert abs(param.value.mean() - 1.1) < 2e-3
    assert param.value.std() < 0.02 and param.value.max() < 1.15


def test_update_rules_prepare_store_the_initial_weights_in_their_format():
    w0 = np.array([1.0 + 2.0 ** -12, 0.3, -7.7], np.float32)
    for rule, stored in ((Fp32Master(), w0), (Fp16Nearest(), quantize(w0, "float16")),
                         (Fp16StochasticRounding(0), quantize(w0, "float16"))):
        param = Parameter("w", w0)
        Updater([param], SGD(0.1), rule)
        np.testing.assert_array_equal(param.value, stored)
        np.testing.assert_array_equal(param.compute_value, stored)
    rule = RoundOffResidual()
    param = Parameter("w", w0)
    Updater([param], SGD(0.1), rule)
    np.testing.assert_array_equal(param.compute_value, quantize(w0, "float8_e4m3b11fnuz"))
    np.testing.assert_allclose(param.value, w0, rtol=2.0 ** -14)


def test_non_weight_parameters_can_keep_their_own_rule():
    weight, bias = Parameter("fc.weight", [0.3]), Parameter("fc.bias", [0.3], kind="bias")
    updater = Updater([weight, bias], SGD(0.1), RoundOffResidual(), non_weight_rule=Fp32Master())
    assert weight.compute_value[0] == np.float32(0.3125)  # FP8 (1,4,3), grid 2**-5 in [0.25, 0.5): 9.6 steps -> 10
    assert bias.compute_value[0] == np.float32(0.3)
    weight.grad = bias.grad = np.array([1.0], np.float32)
    updater.step()
    assert bias.value[0] == np.float32(0.3) - np.float32(0.1)
    # 0.3 - 0.1 = 0.2 on FP8's grid of 2**-6 in [0.125, 0.25): 12.8 steps -> 13 * 2**-6 = 0.203125
    assert updater.rule.weight_and_residual("fc.weight")[0][0] == np.float32(0.203125)


# ---- names and bad input --------------------------------------------------------------------------------


def test_factories_by_name():
    assert isinstance(make_optimizer("sgd", 0.1, momentum=0.9), SGD)
    assert isinstance(make_optimizer("adam", 1e-3, betas=(0.8, 0.9)), Adam)
    assert isinstance(make_update_rule("fp32_master"), Fp32Master)
    assert make_update_rule("fp16_stochastic", seed=4).seed == 4
    assert make_update_rule("round_off_residual", weight_format="float8_e4m3fn").weight_format == "float8_e4m3fn"
    assert isinstance(make_update_rule("fp16_nearest"), Fp16Nearest)
    from hfp8sim.formats import get_scheme

    # the lead passes the scheme's forward format, a FormatSpec
    assert make_update_rule("round_off_residual", weight_format=get_scheme("hfp8").forward).weight_format == \
        "float8_e4m3b11fnuz"


@pytest.mark.parametrize("call, text", [
    (lambda: make_optimizer("rmsprop", 0.1), "unknown optimizer 'rmsprop'; allowed: sgd, adam"),
    (lambda: make_optimizer("sgd", 0.1, betas=(0.9, 0.9)), "optimizer sgd:"),
    (lambda: make_update_rule("bf16"), "unknown weight-update rule 'bf16'; allowed: fp32_master, fp16_stochastic"),
    (lambda: SGD(0.0), "sgd: lr must be a finite number > 0"),
    (lambda: SGD(0.1, momentum=1.0), "sgd: momentum must be a finite number >= 0 and < 1"),
    (lambda: Adam(betas=(0.9,)), "adam: betas must be a pair"),
    (lambda: Fp16StochasticRounding(-1), "seed must be an integer >= 0"),
    (lambda: Updater([Parameter("w", [1.0]), Parameter("w", [2.0])], SGD(0.1), Fp32Master()),
     "parameter names must be unique"),
])
def test_bad_input_is_one_line_training_error(call, text):
    with pytest.raises(TrainingError) as info:
        call()
    assert isinstance(info.value, Hfp8SimError) and "\n" not in str(info.value)
    assert text in str(info.value)


def test_gradient_shape_mismatch_names_the_parameter():
    param = Parameter("fc1.weight", np.zeros((2, 3)))
    param.grad = np.zeros((3, 2), np.float32)
    with pytest.raises(TrainingError, match=r"fc1.weight: gradient shape \(3, 2\) does not match"):
        SGD(0.1).update(param)
