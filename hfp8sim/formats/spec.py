"""Number-format specs, the format registry and the named precision schemes.

A :class:`FormatSpec` says everything needed to turn a real number into a code and back:

* ``exp_bits``, ``man_bits``, ``bias`` and whether there is a sign bit;
* ``subnormals``: without them, results below the smallest normal flush to zero (and subnormal codes read
  as zero: "denormals are zero");
* ``nan``: how specials are encoded, in ml_dtypes/LLVM terms:
  ``"ieee"`` (the all-ones exponent is reserved: infinities if ``infinities`` is on, NaN otherwise),
  ``"fn"`` (finite, one NaN code: all bits but the sign set), ``"fnuz"`` (finite, NaN is the code that would
  be -0, so there is no -0);
* ``negative_zero``: whether -0 has its own code (always off for ``fnuz``).

Names follow ml_dtypes (``float8_e4m3b11fnuz``); a name the registry does not hold is parsed with the same
grammar, ``[floatN_]eXmY[bZ][fn|fnuz]`` (default bias ``2**(X-1)-1``, or ``2**(X-1)`` for ``fnuz``), so any
custom format can be named without registering it.  The HFP8 *scheme* binds formats to roles; it is never
the name of a single format.
"""

from __future__ import annotations

import dataclasses
import difflib
import re
from fractions import Fraction
from typing import Literal

import numpy as np

from ..errors import FormatError

NanStyle = Literal["ieee", "fn", "fnuz"]
NAN_STYLES: tuple[str, ...] = ("ieee", "fn", "fnuz")

# Positions of the numbers in FormatSpec.params, the tuple that Numba kernels receive.  Numba cannot take a
# Python dataclass, so every derived constant a kernel needs is precomputed here once.
P_EXP_BITS, P_MAN_BITS, P_BIAS, P_SIGNED, P_SUBNORMALS, P_INFINITIES, P_NAN_STYLE, P_NEG_ZERO = range(8)
P_EMIN, P_EMAX, P_MAX_EXP_FIELD, P_MAX_MANT, P_NAN_CODE, P_INF_CODE, P_SIGN_BIT, P_MAX_CODE, P_BITS = range(8, 17)
NAN_STYLE_IDS = {"ieee": 0, "fn": 1, "fnuz": 2}


def _is_int(value: object) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


@dataclasses.dataclass(frozen=True)
class FormatSpec:
    """An exact binary floating-point format (at most 16 bits; float32 is the one built-in exception)."""

    name: str
    exp_bits: int
    man_bits: int
    bias: int
    signed: bool = True
    subnormals: bool = True
    infinities: bool | None = None  # None: on for nan="ieee", off for the finite encodings
    nan: NanStyle = "ieee"
    negative_zero: bool | None = None  # None: off for fnuz and unsigned formats, on otherwise
    description: str = ""

    def __post_init__(self) -> None:
        where = f"format {self.name!r}"
        if self.infinities is None:
            object.__setattr__(self, "infinities", self.nan == "ieee")
        if self.negative_zero is None:
            object.__setattr__(self, "negative_zero", self.signed is True and self.nan != "fnuz")
        for key in ("exp_bits", "man_bits", "bias"):
            if not _is_int(getattr(self, key)):
                raise FormatError(f"{where}: {key} must be an integer, got {getattr(self, key)!r}")
        for key in ("signed", "subnormals", "infinities", "negative_zero"):  # after the None defaults
            if not isinstance(getattr(self, key), (bool, np.bool_)):
                raise FormatError(f"{where}: {key} must be true or false, got {getattr(self, key)!r}")
        object.__setattr__(self, "exp_bits", int(self.exp_bits))
        object.__setattr__(self, "man_bits", int(self.man_bits))
        object.__setattr__(self, "bias", int(self.bias))
        if self.nan not in NAN_STYLES:
            raise FormatError(f"{where}: nan must be one of {', '.join(NAN_STYLES)}, got {self.nan!r}")
        if not 1 <= self.exp_bits <= 8:
            raise FormatError(f"{where}: exp_bits must be 1..8 (values are decoded to float32), got {self.exp_bits}")
        if not 0 <= self.man_bits <= 23:
            raise FormatError(f"{where}: man_bits must be 0..23, got {self.man_bits}")
        is_float32 = (self.exp_bits, self.man_bits, self.bias, self.nan) == (8, 23, 127, "ieee")
        if self.bits > 16 and not is_float32:
            raise FormatError(
                f"{where}: {self.bits} bits in all; formats have at most 16 bits (float32 is the only wider one)"
            )
        if self.nan != "ieee" and self.infinities:
            raise FormatError(f"{where}: infinities need nan: ieee (the '{self.nan}' encodings are finite)")
        if self.nan == "ieee" and self.exp_bits < 2:
            raise FormatError(f"{where}: nan: ieee reserves the all-ones exponent, so it needs exp_bits >= 2")
        if self.nan == "ieee" and self.man_bits < 1:
            raise FormatError(f"{where}: nan: ieee needs man_bits >= 1 to tell NaN from infinity")
        if self.nan == "fnuz":
            if not self.signed:
                raise FormatError(f"{where}: nan: fnuz puts NaN on the sign bit, so the format must be signed")
            if self.negative_zero:
                raise FormatError(f"{where}: nan: fnuz uses the -0 code for NaN, so negative_zero must be false")
        if not self.signed and self.negative_zero:
            raise FormatError(f"{where}: an unsigned format has no negative zero")
        if self.emax > 127 or self.smallest_positive_exponent < -149:
            raise FormatError(
                f"{where}: range 2^{self.smallest_positive_exponent}..2^{self.emax + 1} does not fit float32, "
                "which decode returns; choose a bias closer to 2**(exp_bits-1)-1"
            )
        if self.max_code <= 0:
            raise FormatError(f"{where}: has no positive finite value")

    # ---- layout ------------------------------------------------------------------------------------
    @property
    def bits(self) -> int:
        return int(self.signed) + self.exp_bits + self.man_bits

    @property
    def code_dtype(self) -> type:
        """numpy dtype of code arrays: uint8 for 8 bits or fewer, uint16 up to 16, uint32 for float32."""
        return np.uint8 if self.bits <= 8 else np.uint16 if self.bits <= 16 else np.uint32

    @property
    def sign_bit(self) -> int:
        return (1 << (self.exp_bits + self.man_bits)) if self.signed else 0

    @property
    def emin(self) -> int:
        """Unbiased exponent of the smallest normal (exponent field 1)."""
        return 1 - self.bias

    @property
    def max_exp_field(self) -> int:
        ones = (1 << self.exp_bits) - 1
        if self.nan == "ieee" or (self.nan == "fn" and self.man_bits == 0):
            return ones - 1
        return ones

    @property
    def max_mant(self) -> int:
        """Largest mantissa field allowed at max_exp_field."""
        full = (1 << self.man_bits) - 1
        if self.nan == "fn" and self.max_exp_field == (1 << self.exp_bits) - 1:
            return full - 1
        return full

    @property
    def emax(self) -> int:
        return self.max_exp_field - self.bias

    @property
    def smallest_positive_exponent(self) -> int:
        return self.emin - self.man_bits if self.subnormals else self.emin

    @property
    def max_code(self) -> int:
        """Code of the largest positive finite value."""
        return (self.max_exp_field << self.man_bits) | self.max_mant

    @property
    def nan_code(self) -> int:
        """Canonical NaN code (positive where the sign is kept): quiet bit for ieee, as ml_dtypes writes it."""
        ones = (1 << self.exp_bits) - 1
        if self.nan == "ieee":
            return (ones << self.man_bits) | (1 << (self.man_bits - 1))
        if self.nan == "fn":
            return (1 << (self.exp_bits + self.man_bits)) - 1
        return self.sign_bit  # fnuz

    @property
    def inf_code(self) -> int:
        """Code of +inf, or -1 when the format has none."""
        if self.nan == "ieee" and self.infinities:
            return ((1 << self.exp_bits) - 1) << self.man_bits
        return -1

    # ---- values (exact, as Fractions) ----------------------------------------------------------------
    @property
    def max_value(self) -> Fraction:
        return Fraction(2) ** self.emax * (1 + Fraction(self.max_mant, 1 << self.man_bits))

    @property
    def min_normal(self) -> Fraction:
        return Fraction(2) ** self.emin

    @property
    def min_subnormal(self) -> Fraction:
        """Smallest positive value (the smallest normal when there are no subnormals)."""
        return Fraction(2) ** self.smallest_positive_exponent

    @property
    def epsilon(self) -> Fraction:
        return Fraction(1, 1 << self.man_bits)

    # ---- for Numba ----------------------------------------------------------------------------------
    @property
    def params(self) -> tuple[int, ...]:
        """All constants the Numba kernels need, as a homogeneous int tuple (indexed by the P_* names)."""
        return (
            self.exp_bits, self.man_bits, self.bias, int(self.signed), int(self.subnormals),
            int(self.infinities), NAN_STYLE_IDS[self.nan], int(self.negative_zero),
            self.emin, self.emax, self.max_exp_field, self.max_mant, self.nan_code, self.inf_code,
            self.sign_bit, self.max_code, self.bits,
        )

    def with_name(self, name: str) -> FormatSpec:
        return dataclasses.replace(self, name=name)


@dataclasses.dataclass(frozen=True)
class Scheme:
    """Formats bound to the roles of a training/inference step.

    ``forward``: weights and activations in the forward pass; ``backward``: errors/gradients, or None for an
    inference-only scheme (a format library may leave it out: inference runs, training refuses it);
    ``accumulate``: the adder of the MAC array.
    """

    name: str
    forward: FormatSpec
    backward: FormatSpec | None
    accumulate: FormatSpec
    description: str = ""

    ROLES = ("forward", "backward", "accumulate")

    @property
    def operand_formats(self) -> tuple[FormatSpec, ...]:
        """The operand formats the scheme defines (forward, and backward when it has one)."""
        return (self.forward,) if self.backward is None else (self.forward, self.backward)

    @property
    def widest_operand_bits(self) -> int:
        return max(spec.bits for spec in self.operand_formats)

    @property
    def backward_name(self) -> str | None:
        """The backward format's name, None for an inference-only scheme."""
        return None if self.backward is None else self.backward.name


# ---- registry ----------------------------------------------------------------------------------------

_BUILTIN_FORMATS: tuple[FormatSpec, ...] = (
    FormatSpec("float8_e4m3b11fnuz", 4, 3, 11, nan="fnuz",
               description="HFP8 forward (1,4,3), bias 11, max 30 (default forward)"),
    FormatSpec("float8_e5m2", 5, 2, 15, description="HFP8 backward (1,5,2), IEEE-like, OCP E5M2"),
    FormatSpec("float8_e4m3fn", 4, 3, 7, nan="fn", description="OCP E4M3, max 448"),
    FormatSpec("float8_e4m3", 4, 3, 7, description="IEEE-like E4M3 with infinities, max 240"),
    FormatSpec("float8_e4m3fnuz", 4, 3, 8, nan="fnuz",
               description="E4M3 bias 8, NaN 0x80, max 240"),
    FormatSpec("float8_e5m2fnuz", 5, 2, 16, nan="fnuz",
               description="E5M2 bias 16, NaN 0x80"),
    FormatSpec("float16", 5, 10, 15, description="IEEE binary16"),
    FormatSpec("dlfloat16", 6, 9, 31, subnormals=False, nan="fn",
               description="IBM DLFloat16 (1,6,9), bias 31, no subnormals, all-ones NaN"),
    FormatSpec("bfloat16", 8, 7, 127, description="bfloat16 (1,8,7)"),
    FormatSpec("float32", 8, 23, 127, description="IEEE binary32 (reference)"),
)

_formats: dict[str, FormatSpec] = {f.name: f for f in _BUILTIN_FORMATS}
# ml_dtypes' deprecated alias; without it the name grammar would read it as an IEEE-style E4M3 with bias 11.
_ALIASES = {"float8_e4m3b11": "float8_e4m3b11fnuz"}
_schemes: dict[str, Scheme] = {}

_NAME_GRAMMAR = re.compile(r"^(?:float(?P<total>\d+)_)?e(?P<e>\d+)m(?P<m>\d+)(?:b(?P<b>\d+))?(?P<sfx>fnuz|fn)?$")


def format_names() -> list[str]:
    return list(_formats)


def scheme_names() -> list[str]:
    return list(_schemes)


def _unknown(kind: str, name: str, known: list[str], extra: str = "") -> FormatError:
    close = difflib.get_close_matches(name, known, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return FormatError(f"unknown {kind} {name!r}{hint}; known: {', '.join(known)}{extra}")


def parse_format_name(name: str) -> FormatSpec | None:
    """Build a spec from an ml_dtypes-style name such as ``float8_e3m4`` or ``e4m3b11fnuz``; None if no match."""
    match = _NAME_GRAMMAR.match(name)
    if not match:
        return None
    e, m = int(match["e"]), int(match["m"])
    suffix = match["sfx"] or "ieee"
    if match["b"] is not None:
        bias = int(match["b"])
    elif 1 <= e <= 8:
        bias = (1 << (e - 1)) - (0 if suffix == "fnuz" else 1)
    else:  # no default bias outside 1..8 exponent bits (e0 would shift by -1, e10**9 would build a huge int):
        bias = 0  # the spec's own check refuses exp_bits, naming the range
    if match["total"] is not None and int(match["total"]) != 1 + e + m:
        raise FormatError(f"format name {name!r}: float{match['total']} does not equal 1 + {e} + {m} bits")
    return FormatSpec(name, e, m, bias, nan=suffix, description="parsed from its name")  # type: ignore[arg-type]


def get_format(name: str | FormatSpec) -> FormatSpec:
    """Look a format up by name (registry first, then the ``eXmY`` grammar); specs pass through."""
    if isinstance(name, FormatSpec):
        return name
    if not isinstance(name, str):
        raise FormatError(f"a format is named by a string, got {name!r}")
    name = _ALIASES.get(name, name)
    if name in _formats:
        return _formats[name]
    parsed = parse_format_name(name)
    if parsed is None:
        raise _unknown("format", name, format_names(), ", or a name of the form [floatN_]eXmY[bZ][fn|fnuz]")
    return parsed


def register_format(spec: FormatSpec, *, replace: bool = False) -> FormatSpec:
    """Add a custom format to the registry so it can be named like a built-in one."""
    if not isinstance(spec, FormatSpec):
        raise FormatError(f"register_format takes a FormatSpec, got {type(spec).__name__}")
    if spec.name in {f.name for f in _BUILTIN_FORMATS}:
        raise FormatError(f"format {spec.name!r} is built in and cannot be redefined; pick another name")
    if spec.name in _formats and not replace and _formats[spec.name] != spec:
        raise FormatError(f"format {spec.name!r} is already registered with a different definition")
    _formats[spec.name] = spec
    return spec


def get_scheme(name: str | Scheme) -> Scheme:
    if isinstance(name, Scheme):
        return name
    if not isinstance(name, str) or name not in _schemes:
        raise _unknown("scheme", str(name), scheme_names())
    return _schemes[name]


def register_scheme(name: str, *, forward: str | FormatSpec, backward: str | FormatSpec | None,
                    accumulate: str | FormatSpec, description: str = "", replace: bool = False) -> Scheme:
    """Register a scheme; ``backward`` None makes it inference-only (no format for gradients)."""
    scheme = Scheme(name, get_format(forward), None if backward is None else get_format(backward),
                    get_format(accumulate), description)
    if name in _schemes and not replace and _schemes[name] != scheme:
        raise FormatError(f"scheme {name!r} is already registered with a different definition")
    _schemes[name] = scheme
    return scheme


register_scheme("hfp8", forward="float8_e4m3b11fnuz", backward="float8_e5m2", accumulate="dlfloat16",
                description="IBM Hybrid-FP8 (Sun et al. 2019): E4M3 bias 11 forward, E5M2 backward, DLFloat16 sums")
register_scheme("fp8_e5m2", forward="float8_e5m2", backward="float8_e5m2", accumulate="dlfloat16",
                description="single-format FP8 of Wang et al. 2018, DLFloat16 sums")
register_scheme("ocp_fp8", forward="float8_e4m3fn", backward="float8_e5m2", accumulate="float16",
                description="OCP OFP8: E4M3 forward, E5M2 backward, IEEE FP16 sums")
register_scheme("fp16", forward="float16", backward="float16", accumulate="float16",
                description="baseline: IEEE FP16 everywhere")
register_scheme("fp32", forward="float32", backward="float32", accumulate="float32",
                description="reference: float32 everywhere")
