"""Custom formats and schemes from YAML.

A format library file may hold two sections, both optional::

    formats:
      e3m4_hw:                 # name used everywhere else
        exp_bits: 3
        man_bits: 4
        bias: 3
        subnormals: true       # optional, default true
        infinities: false      # optional, default: true only for nan: ieee
        nan: fn                # ieee | fn | fnuz (default ieee)
        negative_zero: true    # optional, default: false for fnuz
        signed: true           # optional
    schemes:
      my_scheme:
        forward: e3m4_hw
        backward: float8_e5m2
        accumulate: dlfloat16

A scheme without ``backward`` is inference-only: it runs forward passes, and training refuses it (gradients
need a format).

Formats are registered before schemes, so schemes can use the formats of the same file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import pydantic

from ..errors import ConfigError, FormatError
from ..formats.spec import FormatSpec, Scheme, register_format, register_scheme
from ..io import FORMAT_LIBRARIES, read_yaml, resolve_shipped, validation_error

_STRICT = pydantic.ConfigDict(extra="forbid", strict=True, frozen=True)


class FormatModel(pydantic.BaseModel):
    model_config = _STRICT
    exp_bits: int
    man_bits: int
    bias: int
    signed: bool = True
    subnormals: bool = True
    infinities: bool | None = None
    nan: Literal["ieee", "fn", "fnuz"] = "ieee"
    negative_zero: bool | None = None
    description: str = ""

    def to_spec(self, name: str) -> FormatSpec:
        return FormatSpec(name, **self.model_dump())


class SchemeModel(pydantic.BaseModel):
    model_config = _STRICT
    forward: str
    backward: str | None = None  # None: an inference-only scheme
    accumulate: str
    description: str = ""


class FormatLibraryModel(pydantic.BaseModel):
    model_config = _STRICT
    formats: dict[str, FormatModel] = {}
    schemes: dict[str, SchemeModel] = {}


def load_format_library(path: str | Path) -> tuple[list[FormatSpec], list[Scheme]]:
    """Validate a format library (a file, or a shipped name such as ``example_formats``) and register its
    formats and schemes (all or nothing per entry)."""
    path = resolve_shipped(path, FORMAT_LIBRARIES)  # as given when it is a path (messages name it so)
    return register_format_library(read_yaml(path), str(path))


def read_format_library(path: str | Path) -> tuple[str, dict]:
    """(file, parsed YAML) of a format library, validated but not registered: what a sweep hands its workers
    so that a remote worker needs no file."""
    path = resolve_shipped(path, FORMAT_LIBRARIES)
    data = read_yaml(path)
    register_format_library(data, str(path))  # validates (registering the same definitions again is a no-op)
    return str(path), data


def register_format_library(data: object, source: str) -> tuple[list[FormatSpec], list[Scheme]]:
    """Validate the parsed YAML of a format library (``source`` names it in messages) and register it.
    Registering identical definitions again is allowed, so a worker may load a library more than once."""
    if data is None:
        data = {}
    try:
        library = FormatLibraryModel.model_validate(data)
    except pydantic.ValidationError as exc:
        raise validation_error(exc, source) from None
    formats, schemes = [], []
    for name, model in library.formats.items():
        try:
            formats.append(register_format(model.to_spec(name)))
        except FormatError as exc:
            raise ConfigError(str(exc), file=source, key_path=f"formats.{name}") from None
    for name, model in library.schemes.items():
        try:
            schemes.append(register_scheme(name, forward=model.forward, backward=model.backward,
                                           accumulate=model.accumulate, description=model.description))
        except FormatError as exc:
            raise ConfigError(str(exc), file=source, key_path=f"schemes.{name}") from None
    return formats, schemes
