"""Data-parallel numerics on a small softmax-regression model with analytic gradients (numpy, in this file)."""

from __future__ import annotations

import numpy as np
import pytest

from hfp8sim.errors import TrainingError
from hfp8sim.formats import get_scheme, quantize
from hfp8sim.training.loss_scaling import DynamicLossScaler
from hfp8sim.training.optim import SGD, Adam, Fp32Master, RoundOffResidual, Updater
from hfp8sim.training.parallel import DataParallel, chunk_bounds, ring_reduce_scatter

from ._param import Parameter

FP8 = "float8_e4m3b11fnuz"
FEATURES, CLASSES, BATCH = 12, 5, 32


def make_task(seed=0, batches=6):
    rng = np.random.default_rng(seed)
    true_w = rng.standard_normal((FEATURES, CLASSES))
    data = []
    for _ in range(batches):
        x = rng.standard_normal((BATCH, FEATURES)).astype(np.float32)
        y = np.argmax(x @ true_w + 0.3 * rng.standard_normal((BATCH, CLASSES)), axis=1)
        data.append((x, y))
    return data


def make_params(seed=1):
    rng = np.random.default_rng(seed)
    return [Parameter("fc.weight", 0.1 * rng.standard_normal((FEATURES, CLASSES))),
            Parameter("fc.bias", np.zeros(CLASSES), kind="bias")]


def softmax_regression(params, scale=1.0):
    """grads_of(worker, shard): mean cross-entropy gradients on the shard, float32, from compute_value."""

    def grads_of(worker, shard):
        x, y = shard
        weight, bias = params[0].compute_value, params[1].compute_value
        logits = x @ weight + bias
        p = np.exp(logits - logits.max(axis=1, keepdims=True))
        p /= p.sum(axis=1, keepdims=True)
        p[np.arange(len(y)), y] -= 1.0
        dlogits = (p / np.float32(len(y)) * np.float32(scale)).astype(np.float32)
        return [x.T @ dlogits, dlogits.sum(axis=0)]

    return grads_of


def loss_of(params, data):
    x = np.concatenate([d[0] for d in data])
    y = np.concatenate([d[1] for d in data])
    logits = x @ params[0].value + params[1].value
    logits = logits - logits.max(axis=1, keepdims=True)
    return float(np.mean(np.log(np.exp(logits).sum(axis=1)) - logits[np.arange(len(y)), y]))


def train(workers, data, *, optimizer=None, rule=None, epochs=3, **options):
    params = make_params()
    parallel = DataParallel(params, softmax_regression(params), optimizer or SGD(0.5, momentum=0.9),
                            rule or Fp32Master(), workers=workers, **options)
    for _ in range(epochs):
        for batch in data:
            parallel.step(batch)
    return params, parallel


# ---- ring reduce-scatter --------------------------------------------------------------------------------


def test_chunk_bounds_cover_the_vector():
    assert chunk_bounds(10, 4) == [(0, 3), (3, 6), (6, 8), (8, 10)]
    assert chunk_bounds(3, 4) == [(0, 1), (1, 2), (2, 3), (3, 3)]


def test_float16_ring_rounds_at_every_hop_hand_computed():
    # worker 0 holds 1.0, workers 1-3 hold 2**-11 (half a float16 ulp at 1.0) in every chunk.  Chunk c is summed
    # g[c+1], g[c+2], g[c+3], g[c] (mod 4), rounding to float16 at each hop:
    #   chunk 0: 2**-11 + 2**-11 + 2**-11 = 3*2**-11 (exact), + 1 = 1 + 1.5 ulp -> tie to even -> 1 + 2**-9
    #   chunk 1: 2**-10 (exact), + 1 = 1 + 2**-10 (exact, odd), + 2**-11 -> 1 + 1.5 ulp -> even -> 1 + 2**-9
    #   chunk 2: 2**-11 + 1 -> tie -> 1.0; + 2**-11 -> 1.0; + 2**-11 -> 1.0
    #   chunk 3: 1 + 2**-11 -> 1.0, three times
    # (the exact sum, 1 + 3*2**-11, rounds once to 1 + 2**-9: chunks 2 and 3 lost it in the ring)
    half_ulp = 2.0 ** -11
    gradients = [np.ones(4, np.float32)] + [np.full(4, half_ulp, np.float32)] * 3
    reduced = ring_reduce_scatter(gradients, "float16")
    assert [float(c[0]) for c in reduced] == [1 + 2.0 ** -9, 1 + 2.0 ** -9, 1.0, 1.0]
    assert [float(c[0]) for c in ring_reduce_scatter(gradients, "float32")] == [1 + 3 * half_ulp] * 4


@pytest.mark.parametrize("workers", [2, 4, 8])
def test_float16_ring_equals_numpy_float16_sums_in_ring_order(workers):
    rng = np.random.default_rng(workers)
    length = 37  # chunks of unequal size
    gradients = [(rng.standard_normal(length) * 10.0 ** rng.uniform(-4, 1, length)).astype(np.float32)
                 for _ in range(workers)]
    reduced = ring_reduce_scatter(gradients, "float16")
    for c, (start, stop) in enumerate(chunk_bounds(length, workers)):
        order = [(c + 1 + k) % workers for k in range(workers)]
        acc = gradients[order[0]][start:stop].astype(np.float16)
        for w in order[1:]:
            acc = acc + gradients[w][start:stop].astype(np.float16)  # numpy float16 adds round to float16
        np.testing.assert_array_equal(reduced[c].view(np.uint32), acc.astype(np.float32).view(np.uint32))


def test_bfloat16_ring_and_overflow_to_inf():
    reduced = ring_reduce_scatter([np.array([1.0], np.float32), np.array([2.0 ** -8], np.float32)], "bfloat16")
    assert float(reduced[0][0]) == 1.0  # 1 + half a bfloat16 ulp: tie to even
    big = np.array([60000.0], np.float32)
    assert np.isinf(ring_reduce_scatter([big, big], "float16")[0][0])


# ---- data-parallel training ---------------------------------------------------------------------------------


def test_one_worker_is_the_plain_update_loop_bit_for_bit():
    data = make_task()
    params, _ = train(1, data)
    plain = make_params()
    updater = Updater(plain, SGD(0.5, momentum=0.9), Fp32Master())
    grads_of = softmax_regression(plain)
    for _ in range(3):
        for batch in data:
            for param, grad in zip(plain, grads_of(0, batch)):
                param.grad = grad
            updater.step()
    for a, b in zip(params, plain):
        np.testing.assert_array_equal(a.value.view(np.uint32), b.value.view(np.uint32))


@pytest.mark.parametrize("workers", [2, 4, 8])
@pytest.mark.parametrize("optimizer", [lambda: SGD(0.5, momentum=0.9), lambda: Adam(0.05)])
def test_float32_reduction_matches_one_worker_on_the_global_batch(workers, optimizer):
    data = make_task()
    single, _ = train(1, data, optimizer=optimizer())
    parallel, engine = train(workers, data, optimizer=optimizer())
    assert engine.steps == 18
    for a, b in zip(parallel, single):
        # the same arithmetic but for the order of the float32 gradient sums
        np.testing.assert_allclose(a.value, b.value, rtol=1e-5, atol=1e-6)
    # and the model learned something, so the comparison is not between two untouched weights
    assert loss_of(single, data) < 0.7 * loss_of(make_params(), data)


def test_fp8_all_gather_equals_quantizing_the_updated_master_locally():
    data = make_task()
    params = make_params()
    engine = DataParallel(params, softmax_regression(params), SGD(0.5, momentum=0.9), Fp32Master(), workers=4,
                          gather_format=FP8)
    # a local reference: one process, float32 master, forward weights quantized to FP8 where they are used
    local = make_params()
    local_updater = Updater(local, SGD(0.5, momentum=0.9), Fp32Master())
    local_grads = softmax_regression(local)
    for batch in data * 2:
        weight, bias = params
        np.testing.assert_array_equal(weight.compute_value.view(np.uint32),
                                      quantize(weight.value, FP8).view(np.uint32))
        np.testing.assert_array_equal(bias.compute_value, bias.value)  # biases travel in float32
        engine.step(batch)
        local[0].compute_value = quantize(local[0].value, FP8)
        for param, grad in zip(local, local_grads(0, batch)):
            param.grad = grad
        local_updater.step()
        for a, b in zip(params, local):
            np.testing.assert_allclose(a.value, b.value, rtol=1e-5, atol=1e-6)
    assert not np.array_equal(params[0].compute_value, params[0].value)  # the FP8 grid is really in use


def test_round_off_residual_workers_gather_fp8_weights():
    data = make_task()
    forward = get_scheme("hfp8").forward  # the scheme's forward format, a FormatSpec
    params, engine = train(4, data, rule=RoundOffResidual(forward), gather_format=forward)
    weight = params[0]
    np.testing.assert_array_equal(weight.compute_value, quantize(weight.compute_value, FP8))
    assert loss_of(params, data) < 0.7 * loss_of(make_params(), data)
    assert {shard.name for shard in engine.shards} == {"worker0", "worker1", "worker2", "worker3"}


def test_float16_reduction_with_loss_scaling_skips_an_overflowing_step():
    data = make_task()
    params = make_params()
    scaler = DynamicLossScaler(init=2.0 ** 20, growth_interval=1000)
    # the gradients are multiplied by the loss scale; 2**20 overflows float16 in the reduction
    engine = DataParallel(params, softmax_regression(params, scale=2.0 ** 20), SGD(0.5), Fp32Master(), workers=4,
                          reduce_format="float16", loss_scaler=scaler)
    before = [p.value.copy() for p in params]
    assert engine.step(data[0]) is True
    for p, b in zip(params, before):
        np.testing.assert_array_equal(p.value, b)
    assert scaler.scale == 2.0 ** 19 and engine.steps == 0
    # with a scale the float16 sums can hold, the step is taken and undone exactly (powers of two)
    params2 = make_params()
    scaler2 = DynamicLossScaler(init=2.0 ** 8)
    engine2 = DataParallel(params2, softmax_regression(params2, scale=2.0 ** 8), SGD(0.5), Fp32Master(),
                           workers=4, reduce_format="float16", loss_scaler=scaler2)
    assert engine2.step(data[0]) is False
    reference, _ = train(4, data[:1], optimizer=SGD(0.5), epochs=1)
    np.testing.assert_allclose(params2[0].value, reference[0].value, atol=1e-3)


@pytest.mark.parametrize("options, text", [
    ({"workers": 0}, "workers must be an integer from 1 to 8"),
    ({"workers": 9}, "workers must be an integer from 1 to 8"),
    ({"workers": 2, "reduce_format": "float8_e5m2"}, "unknown gradient reduction format 'float8_e5m2'"),
])
def test_bad_settings_are_one_line_training_errors(options, text):
    params = make_params()
    with pytest.raises(TrainingError) as info:
        DataParallel(params, softmax_regression(params), SGD(0.1), Fp32Master(), **options)
    assert text in str(info.value) and "\n" not in str(info.value)


def test_bad_batches_and_gradients_are_rejected():
    params = make_params()
    x, y = make_task()[0]
    engine = DataParallel(params, softmax_regression(params), SGD(0.1), Fp32Master(), workers=3)
    with pytest.raises(TrainingError, match="a batch of 32 examples does not split into 3 equal shards"):
        engine.step((x, y))
    wrong = DataParallel(params, lambda w, shard: [np.zeros((2, 2), np.float32)] * 2, SGD(0.1), Fp32Master(),
                         workers=2)
    with pytest.raises(TrainingError, match=r"gradient of fc.weight has shape \(2, 2\)"):
        wrong.step((x, y))
