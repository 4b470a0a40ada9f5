"""Number formats: specs, registry, schemes, encode/decode/quantize, scaling and finfo."""

from .codec import (
    OVERFLOW_MODES, OVERFLOW_NONSATURATING, OVERFLOW_SATURATE, ROUND_NEAREST_AWAY, ROUND_NEAREST_EVEN,
    ROUND_STOCHASTIC, ROUND_TOWARD_ZERO, ROUNDING_MODES, canonical_code, decode, decode_scalar, decode_table,
    encode, quantize, random_bits, round_to_format,
)
from .spec import (
    FormatSpec, Scheme, format_names, get_format, get_scheme, parse_format_name, register_format,
    register_scheme, scheme_names,
)

__all__ = [
    "FormatSpec", "Scheme", "format_names", "get_format", "get_scheme", "parse_format_name", "register_format",
    "register_scheme", "scheme_names", "encode", "decode", "quantize", "decode_table", "decode_scalar",
    "round_to_format", "random_bits", "canonical_code", "ROUNDING_MODES", "OVERFLOW_MODES", "ROUND_NEAREST_EVEN",
    "ROUND_TOWARD_ZERO", "ROUND_STOCHASTIC", "ROUND_NEAREST_AWAY", "OVERFLOW_SATURATE", "OVERFLOW_NONSATURATING",
]
