"""Reader for the safetensors format, with numpy alone.

Layout: an 8-byte little-endian header length ``n``, ``n`` bytes of JSON (``{name: {"dtype", "shape",
"data_offsets": [begin, end]}, "__metadata__": {...}}``), then the raw little-endian tensor bytes, with offsets
relative to the end of the header.  Every field is checked, so a truncated or foreign file fails with a
:class:`~hfp8sim.errors.WeightFileError` naming the problem rather than with a numpy traceback.
"""

from __future__ import annotations

import json
import math
import struct
from pathlib import Path

import numpy as np

from ..errors import WeightFileError

# dtypes numpy holds natively (safetensors data is always little-endian)
_NUMPY_DTYPES = {
    "F64": "<f8", "F32": "<f4", "F16": "<f2",
    "I64": "<i8", "I32": "<i4", "I16": "<i2", "I8": "i1",
    "U64": "<u8", "U32": "<u4", "U16": "<u2", "U8": "u1",
    "BOOL": "?",
}
# dtypes numpy lacks: stored as codes, decoded to float32 through the project's own format tables
_DECODED_DTYPES = {"BF16": ("bfloat16", "<u2"), "F8_E4M3": ("float8_e4m3fn", "u1"), "F8_E5M2": ("float8_e5m2", "u1")}

_LENGTH_BYTES = 8
# The format caps the header at 100 MB; anything larger is not a safetensors file.
_MAX_HEADER_BYTES = 100_000_000


def read_safetensors_header(path: str | Path) -> tuple[dict[str, dict], dict[str, str], int]:
    """The tensor entries, the ``__metadata__`` and the byte offset where tensor data starts."""
    path = Path(path)
    file_size = _file_size(path)
    with path.open("rb") as stream:
        prefix = stream.read(_LENGTH_BYTES)
        if len(prefix) < _LENGTH_BYTES:
            raise WeightFileError(path, f"only {file_size} bytes long, too short for a safetensors file")
        (header_len,) = struct.unpack("<Q", prefix)
        if header_len > min(_MAX_HEADER_BYTES, file_size - _LENGTH_BYTES):
            raise WeightFileError(path, f"header length {header_len} does not fit a {file_size}-byte file; "
                                        "it is truncated or not a safetensors file")
        raw_header = stream.read(header_len)
    try:
        header = json.loads(raw_header.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise WeightFileError(path, f"header is not valid JSON ({exc}); not a safetensors file") from None
    if not isinstance(header, dict):
        raise WeightFileError(path, "header is not a JSON object; not a safetensors file")
    metadata = header.pop("__metadata__", None) or {}
    if not isinstance(metadata, dict):
        raise WeightFileError(path, "__metadata__ is not a JSON object")
    return header, metadata, _LENGTH_BYTES + header_len


def read_safetensors(path: str | Path, names: list[str] | None = None) -> dict[str, np.ndarray]:
    """All tensors of a safetensors file (or only ``names``) as numpy arrays, in header order.

    BF16 and FP8 tensors (``F8_E4M3`` = float8_e4m3fn, ``F8_E5M2``) are decoded to float32 exactly.
    """
    path = Path(path)
    header, _, data_start = read_safetensors_header(path)
    data_bytes = _file_size(path) - data_start
    wanted = list(header) if names is None else names
    missing = [name for name in wanted if name not in header]
    if missing:
        raise WeightFileError(path, f"has no tensor {missing[0]!r} (it has {len(header)} tensors)",
                              fix="check the tensor name")
    entries = {name: _parse_entry(path, name, header[name], data_bytes) for name in wanted}
    # One read of the whole data region; every tensor is a view into it (writable, owned by this call).
    with path.open("rb") as stream:
        stream.seek(data_start)
        data = np.fromfile(stream, dtype=np.uint8, count=data_bytes)
    if data.size != data_bytes:
        raise WeightFileError(path, f"data region ends after {data.size} of {data_bytes} bytes")
    tensors: dict[str, np.ndarray] = {}
    for name, (kind, shape, begin, end) in entries.items():
        if kind in _DECODED_DTYPES:
            format_name, code_dtype = _DECODED_DTYPES[kind]
            from ..formats import decode_table  # deferred: only exotic files need the format tables

            codes = np.frombuffer(data, dtype=code_dtype, count=math.prod(shape), offset=begin)
            tensors[name] = decode_table(format_name, np.float32)[codes].reshape(shape)
        else:
            dtype = np.dtype(_NUMPY_DTYPES[kind])
            tensors[name] = np.frombuffer(data, dtype=dtype, count=math.prod(shape), offset=begin).reshape(shape)
    return tensors


def _file_size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        raise WeightFileError(path, "no such file") from None


def _parse_entry(path: Path, name: str, entry: object, data_bytes: int) -> tuple[str, tuple[int, ...], int, int]:
    where = f"tensor {name!r}"
    if not isinstance(entry, dict) or not {"dtype", "shape", "data_offsets"} <= entry.keys():
        raise WeightFileError(path, f"{where}: header entry lacks dtype/shape/data_offsets")
    kind, shape, offsets = entry["dtype"], entry["shape"], entry["data_offsets"]
    if kind in _NUMPY_DTYPES:
        itemsize = np.dtype(_NUMPY_DTYPES[kind]).itemsize
    elif kind in _DECODED_DTYPES:
        itemsize = np.dtype(_DECODED_DTYPES[kind][1]).itemsize
    else:
        known = ", ".join([*_NUMPY_DTYPES, *_DECODED_DTYPES])
        raise WeightFileError(path, f"{where}: unsupported dtype {kind!r} (supported: {known})", fix="")
    if not (isinstance(shape, list) and all(isinstance(d, int) and d >= 0 for d in shape)):
        raise WeightFileError(path, f"{where}: bad shape {shape!r}")
    if not (isinstance(offsets, list) and len(offsets) == 2 and all(isinstance(o, int) for o in offsets)):
        raise WeightFileError(path, f"{where}: bad data_offsets {offsets!r}")
    begin, end = offsets
    if not 0 <= begin <= end <= data_bytes:
        raise WeightFileError(path, f"{where}: data_offsets [{begin}, {end}] fall outside the "
                                    f"{data_bytes}-byte data region; the file is truncated")
    if end - begin != math.prod(shape) * itemsize:
        raise WeightFileError(path, f"{where}: {end - begin} bytes do not hold shape {shape} of {kind}")
    return kind, tuple(shape), begin, end
