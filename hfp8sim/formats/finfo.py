"""Readable facts about formats: ``finfo(name)`` and the table printed by ``hfp8sim formats``."""

from __future__ import annotations

import dataclasses

from .spec import FormatSpec, format_names, get_format


@dataclasses.dataclass(frozen=True)
class FormatInfo:
    name: str
    bits: int
    exp_bits: int
    man_bits: int
    bias: int
    max: float
    min_normal: float
    min_subnormal: float | None  # None when the format has no subnormals
    epsilon: float
    subnormals: bool
    infinities: bool
    nan: str
    negative_zero: bool
    max_code: int
    nan_codes: tuple[int, ...]  # canonical NaN codes (both signs where the sign is kept)
    inf_codes: tuple[int, ...]
    description: str

    @property
    def special_codes(self) -> str:
        def hexes(codes):
            width = (self.bits + 3) // 4
            return "/".join(f"0x{c:0{width}X}" for c in codes)

        parts = [f"NaN {hexes(self.nan_codes)}"]
        if self.inf_codes:
            parts.append(f"inf {hexes(self.inf_codes)}")
        if not self.negative_zero:
            parts.append("no -0")
        return ", ".join(parts)


def finfo(fmt: str | FormatSpec) -> FormatInfo:
    spec = get_format(fmt)
    signed_codes = (lambda c: (c, c | spec.sign_bit)) if spec.signed else (lambda c: (c,))
    nan_codes = (spec.nan_code,) if spec.nan == "fnuz" else signed_codes(spec.nan_code)
    inf_codes = signed_codes(spec.inf_code) if spec.inf_code >= 0 else ()
    return FormatInfo(
        name=spec.name, bits=spec.bits, exp_bits=spec.exp_bits, man_bits=spec.man_bits, bias=spec.bias,
        max=float(spec.max_value), min_normal=float(spec.min_normal),
        min_subnormal=float(spec.min_subnormal) if spec.subnormals else None, epsilon=float(spec.epsilon),
        subnormals=spec.subnormals, infinities=bool(spec.infinities), nan=spec.nan,
        negative_zero=bool(spec.negative_zero), max_code=spec.max_code, nan_codes=nan_codes, inf_codes=inf_codes,
        description=spec.description,
    )


def format_table(names: list[str] | None = None) -> str:
    """A fixed-width table of every registered format (or of ``names``)."""
    header = ("format", "bits", "e", "m", "bias", "max", "min normal", "min subnormal", "epsilon", "specials")
    rows = [header]
    for name in names or format_names():
        info = finfo(name)
        rows.append((
            info.name, str(info.bits), str(info.exp_bits), str(info.man_bits), str(info.bias), f"{info.max:.6g}",
            f"{info.min_normal:.6g}", "none (flush)" if info.min_subnormal is None else f"{info.min_subnormal:.6g}",
            f"{info.epsilon:.6g}", info.special_codes,
        ))
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)
