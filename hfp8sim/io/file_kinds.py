"""What kind of input file a path holds, decided by its content (the extension only breaks ties).

The CLI takes several kinds of file where it takes a workload or an arch config: hfp8sim's YAML, an ONNX
model (binary protobuf), a SCALE-Sim topology CSV (conv or GEMM form), a SCALE-Sim INI config and a layer
trace (JSON).  Users rename files and tools write them without the usual extension, so the kind is read from
the first bytes:

* a protobuf ``ModelProto`` (``onnx``): its first byte is the tag of one of its fields (``onnx.save`` writes
  ``ir_version``, tag 0x08, first), and either the bytes are not text (a NUL byte, or not UTF-8) or that tag is
  a control character no text file starts with;
* a line ``[architecture_presets]`` (SCALE-Sim's INI section; YAML would read ``[...]`` as a list):
  ``scalesim_cfg``;
* a first line that is a SCALE-Sim topology header (``Layer ...`` with at least three commas): ``scalesim_csv``;
* a JSON object with ``"format": "hfp8sim-trace/...``: ``trace``;
* anything else: by extension (``.onnx``, ``.cfg``, ``.csv``, ``.json``), else ``yaml`` (whose reader gives
  the located syntax error).

Only :mod:`hfp8sim.errors` is imported, like the rest of :mod:`hfp8sim.io`.
"""

from __future__ import annotations

import re
from enum import StrEnum
from pathlib import Path

_SNIFF_BYTES = 65536  # enough for any header; a trace's "format" key sorts early in its first lines


class FileKind(StrEnum):
    YAML = "yaml"
    ONNX = "onnx"
    SCALESIM_CSV = "scalesim_csv"
    SCALESIM_CFG = "scalesim_cfg"
    TRACE = "trace"


_BY_EXTENSION = {".onnx": FileKind.ONNX, ".cfg": FileKind.SCALESIM_CFG, ".ini": FileKind.SCALESIM_CFG,
                 ".csv": FileKind.SCALESIM_CSV, ".json": FileKind.TRACE}  # fmt: skip
# the tag byte of ModelProto fields 1-8 and 14 (wire types varint / length-delimited)
_MODEL_PROTO_TAGS = frozenset({0x08, 0x12, 0x1A, 0x22, 0x28, 0x32, 0x3A, 0x42, 0x72})
_CONTROL_TAGS = frozenset({0x08, 0x12, 0x1A})
_INI_SECTION = re.compile(r"^\s*\[\s*architecture_presets\s*\]\s*$", re.MULTILINE | re.IGNORECASE)
_TRACE_FORMAT = re.compile(r'"format"\s*:\s*"hfp8sim-trace/')


def _is_topology_header(line: str) -> bool:
    return line.lstrip().lower().startswith("layer") and line.count(",") >= 3


def _as_text(head: bytes) -> str | None:
    """The sniffed bytes as text, or None when they are binary (a NUL byte, or not UTF-8)."""
    if b"\x00" in head:
        return None
    try:
        # a multi-byte character cut at the end of a full sniffed block is still text
        return head.decode("utf-8-sig", errors="strict" if len(head) < _SNIFF_BYTES else "ignore")
    except UnicodeDecodeError:
        return None


def detect_file_kind(path: str | Path) -> FileKind:
    """The kind of file at ``path`` (see the module docstring); a path that cannot be read is judged by its
    extension alone, leaving the not-found or unreadable message to the reader of that kind."""
    p = Path(path)
    by_extension = _BY_EXTENSION.get(p.suffix.lower(), FileKind.YAML)
    try:
        with p.open("rb") as f:
            head = f.read(_SNIFF_BYTES)
    except OSError:
        return by_extension
    protobuf_start = bool(head) and head[0] in _MODEL_PROTO_TAGS
    if head[:1] and head[0] in _CONTROL_TAGS:
        return FileKind.ONNX
    text = _as_text(head)
    if text is None:
        return FileKind.ONNX if protobuf_start else by_extension
    if _INI_SECTION.search(text):
        return FileKind.SCALESIM_CFG
    first = next((line for line in text.splitlines() if line.strip()), "")
    if _is_topology_header(first):
        return FileKind.SCALESIM_CSV
    if first.lstrip().startswith("{") and _TRACE_FORMAT.search(text):
        return FileKind.TRACE
    return by_extension
