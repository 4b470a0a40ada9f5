"""encode / decode / quantize: exhaustive round trips, ml_dtypes agreement, the exact oracle, stochastic
rounding, saturation and bad input."""

from __future__ import annotations

import math
from fractions import Fraction

import ml_dtypes
import numpy as np
import pytest

from hfp8sim.errors import FormatError
from hfp8sim.formats import (
    OVERFLOW_NONSATURATING, OVERFLOW_SATURATE, ROUND_NEAREST_AWAY, ROUND_NEAREST_EVEN, ROUND_STOCHASTIC,
    ROUND_TOWARD_ZERO, FormatSpec, canonical_code, decode, decode_table, encode, format_names, get_format,
    quantize, random_bits,
)
from hfp8sim.formats.oracle import decode_exact, round_exact

ML_DTYPES_TWINS = {
    "float8_e4m3b11fnuz": ml_dtypes.float8_e4m3b11fnuz,
    "float8_e5m2": ml_dtypes.float8_e5m2,
    "float8_e4m3fn": ml_dtypes.float8_e4m3fn,
    "float8_e4m3": ml_dtypes.float8_e4m3,
    "float8_e4m3fnuz": ml_dtypes.float8_e4m3fnuz,
    "float8_e5m2fnuz": ml_dtypes.float8_e5m2fnuz,
    "float8_e3m4": ml_dtypes.float8_e3m4,  # a custom name (grammar), not registered
    "bfloat16": ml_dtypes.bfloat16,
    "float16": np.float16,
}
SMALL_FORMATS = [n for n in format_names() if get_format(n).bits <= 16]


def all_codes(spec):
    return np.arange(1 << spec.bits, dtype=spec.code_dtype)


def is_nan_code(codes, spec):
    return np.isnan(decode_table(spec)[codes])


# ---- round trips ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", SMALL_FORMATS + ["float8_e3m4", "e2m5", "e5m2b13fn", "e3m2fnuz"])
def test_every_code_round_trips(name):
    """decode -> encode returns every code unchanged, except documented canonicalisations."""
    spec = get_format(name)
    codes = all_codes(spec)
    back = encode(decode(codes, spec), spec, overflow="nonsaturating")
    nan = is_nan_code(codes, spec)
    # NaN codes canonicalise to the canonical NaN of their sign; nothing else moves, except below
    expected = codes.astype(np.int64).copy()
    for c in np.flatnonzero(nan):
        expected[c] = canonical_code(int(c), spec)
    if not spec.subnormals:  # denormals-are-zero: subnormal codes read as (signed) zero
        exp_field = (codes >> spec.man_bits) & ((1 << spec.exp_bits) - 1)
        daz = (exp_field == 0)
        expected[daz] = codes[daz] & spec.sign_bit
    assert np.array_equal(back.astype(np.int64), expected)
    # the scalar definition (canonical_code) says the same, on a sample of codes
    sample = codes[:: max(1, codes.size // 512)]
    assert [canonical_code(int(c), spec) for c in sample] == expected[sample.astype(np.int64)].tolist()


def test_nan_canonicalisation_is_documented_behaviour():
    e5m2 = get_format("float8_e5m2")
    assert [canonical_code(c, e5m2) for c in (0x7D, 0x7E, 0x7F, 0xFD, 0xFF)] == [0x7E, 0x7E, 0x7E, 0xFE, 0xFE]
    assert canonical_code(0x80, get_format("float8_e4m3b11fnuz")) == 0x80
    dl = get_format("dlfloat16")
    assert canonical_code(0x0001, dl) == 0x0000 and canonical_code(0x8123 & 0x81FF, dl) == 0x8000
    assert encode(np.float32(np.nan), dl) == 0x7FFF


# ---- ml_dtypes agreement -------------------------------------------------------------------------------

def edge_inputs(spec) -> np.ndarray:
    """Float32 inputs that stress a format: every binade, every midpoint (tie), edges and specials."""
    rng = np.random.default_rng(1234)
    table = decode_table(spec)
    finite = np.unique(table[np.isfinite(table) & (table > 0)])
    mids = (finite[:-1] + finite[1:]) / 2  # exact: at most 11 significant bits, well inside float32 (float64 here)
    top = float(spec.max_value)
    ulp_top = top - finite[-2] if finite.size > 1 else top
    edges = [
        top, top + ulp_top / 2, top + ulp_top, 2 * top, float(spec.min_subnormal) / 2,
        float(spec.min_subnormal) * 1.5, float(spec.min_normal), float(spec.min_normal) / 2, 1e-45, 3.4e38,
    ]
    with np.errstate(over="ignore"):  # bfloat16's edges beyond its max are inf in float32, as intended
        base = np.concatenate([finite, mids, np.array(edges)]).astype(np.float32)
    neighbours = np.concatenate([base, np.nextafter(base, np.float32(np.inf)), np.nextafter(base, np.float32(0))])
    lo = max(spec.smallest_positive_exponent - 3, -149)
    hi = min(spec.emax + 3, 127)
    binades = np.arange(lo, hi + 1)
    per_binade = max(2000, 700_000 // binades.size)
    significands = rng.uniform(1.0, 2.0, size=(binades.size, per_binade))
    randoms = (significands * np.exp2(binades)[:, None]).astype(np.float32).ravel()
    values = np.concatenate([neighbours, randoms])
    specials = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, -np.nan], np.float32)
    out = np.concatenate([values, -values, specials])
    pad = 1_000_000 - out.size
    if pad > 0:
        out = np.concatenate([out, (rng.standard_normal(pad) * top).astype(np.float32)])
    return out


@pytest.mark.parametrize("name", sorted(ML_DTYPES_TWINS))
def test_bit_identical_to_ml_dtypes(name):
    spec = get_format(name)
    x = edge_inputs(spec)
    assert x.size >= 1_000_000
    with np.errstate(over="ignore", invalid="ignore"):
        ref = x.astype(ML_DTYPES_TWINS[name]).view(spec.code_dtype)
    got = encode(x, spec, overflow="nonsaturating")
    bad = np.flatnonzero(got != ref)
    assert bad.size == 0, f"{bad.size} mismatches, first x={x[bad[0]]!r} got {got[bad[0]]:#x} ref {ref[bad[0]]:#x}"
    # quantize agrees with decode(encode(.)), and decode agrees with ml_dtypes on every code
    assert np.array_equal(quantize(x, spec, overflow="nonsaturating"), decode(got, spec), equal_nan=True)
    codes = all_codes(spec)
    assert np.array_equal(decode(codes, spec), codes.view(ML_DTYPES_TWINS[name]).astype(np.float32), equal_nan=True)


def test_float64_inputs_take_the_general_path_and_agree():
    spec = get_format("float8_e4m3b11fnuz")
    x = edge_inputs(spec)[:200_000]
    assert np.array_equal(encode(x.astype(np.float64), spec, overflow="nonsaturating"),
                          encode(x, spec, overflow="nonsaturating"))


# ---- the exact oracle ----------------------------------------------------------------------------------

def oracle_inputs(spec, n_random: int, rng) -> list[Fraction]:
    """Every value, every midpoint, the midpoints' neighbours (+/- a tiny step) and random values."""
    values = sorted({decode_exact(c, spec) for c in range(1 << spec.bits)} - {"nan", "+inf", "-inf"})
    positives = [v for v in values if v > 0]
    out: list[Fraction] = list(positives)
    for a, b in zip(positives, positives[1:]):
        mid = (a + b) / 2
        step = (b - a) / 1024
        out += [mid, mid - step, mid + step]
    top = positives[-1]
    out += [top * 2, top + (top - positives[-2]) / 2, positives[0] / 2, positives[0] * 5 / 16, positives[0] * 3 / 4]
    lo, hi = float(positives[0]) / 4, float(top) * 4
    out += [Fraction(float(v)) for v in np.exp(rng.uniform(math.log(lo), math.log(hi), n_random))]
    return out + [-v for v in out]


@pytest.mark.parametrize("name", ["dlfloat16", "float8_e3m4", "e2m5fn", "e5m2b12fnuz", "e4m3b9"])
@pytest.mark.parametrize("rounding", [ROUND_NEAREST_EVEN, ROUND_TOWARD_ZERO, ROUND_NEAREST_AWAY])
@pytest.mark.parametrize("overflow", [OVERFLOW_SATURATE, OVERFLOW_NONSATURATING])
def test_agrees_with_exact_oracle(name, rounding, overflow):
    spec = get_format(name)
    if name == "e4m3b9":  # a custom spec with no subnormals, IEEE specials but no infinities
        spec = FormatSpec("e4m3b9_flush", 4, 3, 9, subnormals=False, infinities=False)
    rng = np.random.default_rng(7)
    inputs = oracle_inputs(spec, 2000, rng)
    if spec.bits > 8:  # 16-bit: a strided subset of the (many) midpoints keeps this quick
        inputs = inputs[::7]
    x = np.array([float(v) for v in inputs])
    assert all(Fraction(v) == q for v, q in zip(x, inputs))  # every input is exact in float64
    got = encode(x, spec, rounding=list(("nearest_even", "toward_zero", "stochastic", "nearest_away"))[rounding],
                 overflow=("saturate", "nonsaturating")[overflow])
    expected = [round_exact(v, spec, rounding, overflow) for v in inputs]
    mismatches = [(inputs[i], int(got[i]), expected[i]) for i in range(len(inputs)) if int(got[i]) != expected[i]]
    assert not mismatches, mismatches[:5]


def test_stochastic_rounding_agrees_with_oracle_given_the_same_draws():
    spec = get_format("float8_e4m3b11fnuz")
    rng = np.random.default_rng(3)
    x = rng.standard_normal(3000) * 4
    seed = 99
    got = encode(x, spec, rounding="stochastic", seed=seed)
    for i in range(x.size):
        u = Fraction(int(random_bits(np.uint64(seed), i)) >> 11, 1 << 53)
        assert int(got[i]) == round_exact(float(x[i]), spec, ROUND_STOCHASTIC, OVERFLOW_SATURATE, u=u)


# ---- stochastic rounding -------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["float8_e4m3b11fnuz", "float8_e5m2", "dlfloat16"])
def test_stochastic_rounding_is_unbiased_and_reproducible(name):
    spec = get_format(name)
    rng = np.random.default_rng(11)
    n = 1_000_000
    x = rng.uniform(0.3, 7.0, n).astype(np.float32)  # inside the normal range of all three formats
    q = quantize(x, spec, rounding="stochastic", seed=2024).astype(np.float64)
    err = q - x.astype(np.float64)
    standard_error = err.std(ddof=1) / math.sqrt(n)
    assert abs(err.mean()) < 3 * standard_error
    nearest_err = quantize(x, spec).astype(np.float64) - x
    assert err.std() > nearest_err.std()  # it really is randomised, not nearest rounding
    assert np.array_equal(encode(x, spec, rounding="stochastic", seed=2024),
                          encode(x, spec, rounding="stochastic", seed=2024))
    assert not np.array_equal(encode(x[:1000], spec, rounding="stochastic", seed=1),
                              encode(x[:1000], spec, rounding="stochastic", seed=2))


def test_stochastic_result_does_not_depend_on_array_shape():
    x = np.random.default_rng(5).standard_normal(4096).astype(np.float32)
    flat = encode(x, "float8_e5m2", rounding="stochastic", seed=7)
    shaped = encode(x.reshape(64, 64), "float8_e5m2", rounding="stochastic", seed=7)
    assert np.array_equal(flat, shaped.ravel())


# ---- saturation and specials ---------------------------------------------------------------------------

@pytest.mark.parametrize("name", SMALL_FORMATS)
def test_saturation_clamps_exactly_to_max_finite(name):
    spec = get_format(name)
    top = float(spec.max_value)
    x = np.array([top, top * 1.001, top * 4, np.inf, -top, -top * 1.5, -top * 1e9, -np.inf], np.float64)
    q = quantize(x, spec, overflow="saturate")
    assert np.array_equal(np.abs(q), np.full(x.size, top))
    assert np.array_equal(np.sign(q), np.sign(x))
    with np.errstate(over="ignore"):
        x32 = x.astype(np.float32)
    codes = encode(x32, spec, overflow="saturate")
    assert set(codes.tolist()) == {spec.max_code, spec.max_code | spec.sign_bit}


def test_non_saturating_overflow_goes_to_inf_or_nan_and_toward_zero_keeps_max():
    assert encode(np.float32(1e6), "float8_e5m2", overflow="nonsaturating") == 0x7C
    assert encode(np.float32(-1e6), "float8_e5m2", overflow="nonsaturating") == 0xFC
    assert encode(np.float32(500.0), "float8_e4m3fn", overflow="nonsaturating") == 0x7F
    assert encode(np.float32(31.0), "float8_e4m3b11fnuz", overflow="nonsaturating") == 0x80
    assert encode(np.float32(1e6), "float8_e5m2", overflow="nonsaturating", rounding="toward_zero") == 0x7B
    assert encode(np.float32(np.inf), "float8_e5m2", overflow="nonsaturating", rounding="toward_zero") == 0x7C
    assert encode(np.float32(1e10), "dlfloat16", overflow="nonsaturating") == 0x7FFF


def test_rounding_modes_on_a_tie():
    # 1.0625 is halfway between 1.0 and 1.125 in every E4M3 variant; -1.1875 halfway between -1.125 and -1.25
    x = np.array([1.0625, -1.1875], np.float32)
    assert quantize(x, "float8_e4m3fn").tolist() == [1.0, -1.25]  # ties to even
    assert quantize(x, "float8_e4m3fn", rounding="nearest_away").tolist() == [1.125, -1.25]
    assert quantize(x, "float8_e4m3fn", rounding="toward_zero").tolist() == [1.0, -1.125]


def test_dlfloat16_flushes_below_min_normal():
    dl = get_format("dlfloat16")
    tiny = float(dl.min_normal)
    # Rounded to 9 bits with an unbounded exponent first: 0.9996 * tiny rounds up to tiny (it is above the
    # midpoint 0.99951 of 0.99902 and 1), while 0.999 * tiny rounds to 0.99902 * tiny, which then flushes.
    x = np.array([tiny, tiny * 0.9996, tiny * 0.999, -tiny / 3], np.float64)
    q = quantize(x, dl)
    assert q[0] == tiny and q[1] == tiny
    assert q[2] == 0.0 and q[3] == 0.0 and math.copysign(1, q[3]) < 0  # flushed, keeping the sign


# ---- bad input -----------------------------------------------------------------------------------------

def test_bad_arguments_give_one_clear_error():
    with pytest.raises(FormatError, match="unknown rounding 'nearest'; allowed: nearest_even"):
        encode([1.0], "float16", rounding="nearest")
    with pytest.raises(FormatError, match="unknown overflow 'clip'; allowed: saturate, nonsaturating"):
        quantize([1.0], "float16", overflow="clip")
    with pytest.raises(FormatError, match="stochastic rounding needs a seed"):
        encode([1.0], "float16", rounding="stochastic")
    with pytest.raises(FormatError, match="code 256 is not a 8-bit code of float8_e5m2"):
        decode(np.array([1, 256]), "float8_e5m2")
    with pytest.raises(FormatError, match="decode takes integer codes"):
        decode(np.array([1.5]), "float8_e5m2")
    with pytest.raises(FormatError, match="cannot convert values of dtype <U"):
        encode(np.array(["a"]), "float16")
