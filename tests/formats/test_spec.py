"""Format specs, the registry, the name grammar and schemes: pinned facts and refused specs."""

from fractions import Fraction

import pytest

from hfp8sim.errors import FormatError
from hfp8sim.formats import FormatSpec, get_format, get_scheme, register_format, scheme_names
from hfp8sim.formats.finfo import finfo, format_table

F = Fraction
TWO = Fraction(2)

# max finite, min normal, min subnormal (None: flush to zero), from shared/reference/hfp8_facts.md
# (ml_dtypes table 4.2, OCP table 4.1, DLFloat16 section 6) and IEEE 754 for float16/bfloat16/float32.
REFERENCE_LIMITS = {
    "float8_e4m3b11fnuz": (F(30), TWO**-10, TWO**-13),
    "float8_e5m2": (F(57344), TWO**-14, TWO**-16),
    "float8_e4m3fn": (F(448), TWO**-6, TWO**-9),
    "float8_e4m3": (F(240), TWO**-6, TWO**-9),
    "float8_e4m3fnuz": (F(240), TWO**-7, TWO**-10),
    "float8_e5m2fnuz": (F(57344), TWO**-15, TWO**-17),
    "float16": (F(65504), TWO**-14, TWO**-24),
    "dlfloat16": (TWO**32 * (2 - TWO**-8), TWO**-30, None),
    "bfloat16": ((2 - TWO**-7) * TWO**127, TWO**-126, TWO**-133),
    "float32": ((2 - TWO**-23) * TWO**127, TWO**-126, TWO**-149),
}


@pytest.mark.parametrize("name", sorted(REFERENCE_LIMITS))
def test_limits_match_reference_table(name):
    spec = get_format(name)
    max_value, min_normal, min_subnormal = REFERENCE_LIMITS[name]
    assert spec.max_value == max_value
    assert spec.min_normal == min_normal
    if min_subnormal is None:
        assert not spec.subnormals and finfo(name).min_subnormal is None
    else:
        assert spec.min_subnormal == min_subnormal
        assert finfo(name).min_subnormal == float(min_subnormal)


def test_special_codes_of_the_fp8_formats():
    assert (finfo("float8_e4m3b11fnuz").nan_codes, finfo("float8_e4m3b11fnuz").max_code) == ((0x80,), 0x7F)
    assert finfo("float8_e4m3fn").nan_codes == (0x7F, 0xFF) and finfo("float8_e4m3fn").max_code == 0x7E
    assert finfo("float8_e5m2").inf_codes == (0x7C, 0xFC) and finfo("float8_e5m2").nan_codes == (0x7E, 0xFE)
    assert finfo("float8_e4m3").inf_codes == (0x78, 0xF8) and finfo("float8_e4m3").max_code == 0x77
    assert finfo("dlfloat16").nan_codes == (0x7FFF, 0xFFFF) and finfo("dlfloat16").max_code == 0x7FFE


def test_schemes_bind_formats_to_roles():
    hfp8 = get_scheme("hfp8")
    assert (hfp8.forward.name, hfp8.backward.name, hfp8.accumulate.name) == (
        "float8_e4m3b11fnuz", "float8_e5m2", "dlfloat16")
    assert get_scheme("ocp_fp8").accumulate.name == "float16"
    assert get_scheme("fp8_e5m2").forward.name == "float8_e5m2"
    assert get_scheme("fp16").forward.name == "float16"
    assert get_scheme("fp32").accumulate.name == "float32"
    assert set(scheme_names()) >= {"hfp8", "fp8_e5m2", "ocp_fp8", "fp16", "fp32"}


def test_name_grammar_builds_custom_formats():
    e3m4 = get_format("float8_e3m4")
    assert (e3m4.exp_bits, e3m4.man_bits, e3m4.bias, e3m4.nan, e3m4.infinities) == (3, 4, 3, "ieee", True)
    assert e3m4.max_value == F(31, 2)
    b11 = get_format("e4m3b11fnuz")
    assert b11.params == get_format("float8_e4m3b11fnuz").params
    assert get_format("e5m2fnuz").bias == 16
    assert get_format("float8_e4m3b11") is get_format("float8_e4m3b11fnuz")  # ml_dtypes' alias, not the grammar


def test_unknown_names_list_the_known_ones():
    with pytest.raises(FormatError, match=r"unknown format 'float8_e4m3bfn'.*known: float8_e4m3b11fnuz.*dlfloat16"):
        get_format("float8_e4m3bfn")
    with pytest.raises(FormatError, match=r"unknown scheme 'hfp9' \(did you mean 'hfp8'\?\); known: hfp8"):
        get_scheme("hfp9")
    with pytest.raises(FormatError, match="float9 does not equal 1 \\+ 4 \\+ 3"):
        get_format("float9_e4m3")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (dict(exp_bits=0, man_bits=3, bias=1), "exp_bits must be 1..8"),
        (dict(exp_bits=4, man_bits=3, bias=7.5), "bias must be an integer, got 7.5"),
        (dict(exp_bits=4, man_bits=3, bias="7"), "bias must be an integer"),
        (dict(exp_bits=8, man_bits=10, bias=127), "19 bits in all; formats have at most 16 bits"),
        (dict(exp_bits=4, man_bits=3, bias=7, nan="fnu"), "nan must be one of ieee, fn, fnuz"),
        (dict(exp_bits=4, man_bits=3, bias=7, nan="fn", infinities=True), "infinities need nan: ieee"),
        (dict(exp_bits=4, man_bits=3, bias=8, nan="fnuz", negative_zero=True), "negative_zero must be false"),
        (dict(exp_bits=4, man_bits=0, bias=7), "needs man_bits >= 1"),
        (dict(exp_bits=5, man_bits=2, bias=-200), "does not fit float32"),
        (dict(exp_bits=4, man_bits=3, bias=7, subnormals="yes"), "subnormals must be true or false"),
    ],
)
def test_impossible_specs_are_refused(kwargs, message):
    with pytest.raises(FormatError, match=message):
        FormatSpec("bad", **kwargs)


def test_register_custom_format_and_refuse_redefinition():
    spec = register_format(FormatSpec("test_e3m4_fn", 3, 4, 3, nan="fn"))
    assert get_format("test_e3m4_fn") is spec
    assert spec.max_value == F(30)  # 0.111.1110 = 1.875 * 2**(7-3); 0.111.1111 is the NaN
    with pytest.raises(FormatError, match="already registered with a different definition"):
        register_format(FormatSpec("test_e3m4_fn", 3, 4, 4, nan="fn"))
    with pytest.raises(FormatError, match="built in and cannot be redefined"):
        register_format(FormatSpec("float16", 5, 10, 14))


def test_format_table_lists_every_registered_format():
    table = format_table()
    for name in REFERENCE_LIMITS:
        assert name in table
    assert "none (flush)" in table.splitlines()[[n.split()[0] for n in table.splitlines()].index("dlfloat16")]
