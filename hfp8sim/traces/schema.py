"""The trace file's schema (``"format": "hfp8sim-trace/2"``), checked in one place.

A :class:`Trace` is what ``hfp8sim trace`` writes and what ``hfp8sim run`` reads: typed fields for everything
another part of the program acts on (the workload, the scheme and arch it was made with, and per layer its
name, op, pass, producers, GEMM dimensions and operand roles, measured zero-operand fraction, or for a
non-GEMM layer its shape and element/op counts), plus ``document``, the JSON object as written, whose other
entries are per-layer statistics for people and reports (errors against float32, saturation, underflow,
dynamic range, output hashes).  :meth:`Trace.from_document` validates; text goes out through
:meth:`Trace.dumps`: sorted keys, floats to 6 significant digits, one layer per line, so the same inputs and
seed give the same bytes.

A new version of the schema gets a new ``format`` string; readers refuse formats they do not know.

Trust: every layer entry carries a ``digest`` of its own contents (SHA-256 of its canonical JSON), so a value
edited by hand is found and the layer named; fields that depend on each other (MACs and GEMM dimensions, a
fraction in [0, 1], elements and shape) are checked key by key.  Version 2 added the digests and each
non-GEMM layer's ``vector_work``; version 1 files are refused (re-trace them).  Which arch and scheme a trace
belongs to is checked where it is run (``timing_view.check_trace_arch``).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import TraceError

TRACE_FORMAT = "hfp8sim-trace/2"
REQUIRED_KEYS = ("format", "workload", "tensors", "seed", "scheme", "arch", "hfp8sim_version", "layers")
FLOAT_DIGITS = 6
GEMM_DIMS = ("M", "N", "K", "batch")


@dataclasses.dataclass(frozen=True)
class TraceLayer:
    """One layer of a trace as the timing model reads it (``gemm`` None for a non-GEMM layer)."""

    name: str
    op: str
    pass_: str = "forward"
    inputs: tuple[str, ...] = ()
    gemm: dict[str, int] | None = None  # {M, N, K, batch} as the datapath lowered the layer
    a_role: str = "activation"
    b_role: str = "weight"
    zero_mac_fraction: float = 0.0
    conv: dict[str, Any] | None = None  # a forward conv: stride, padding, dilation, groups, input and weight shapes
    shape: tuple[int, ...] | None = None  # non-GEMM layers: output shape, element and lane-op counts
    tensor_elements: tuple[int, int, int] | None = None  # GEMM layers: elements of A, B and the output
    elements: int = 0
    ops: int = 0
    # the lane operations and tensor elements the workload layer asked of the vector unit, as recorded (traces
    # written before this key existed rebuild it from op, shape and counts)
    vector_work: dict[str, float] | None = None
    folded: bool = False  # a batch norm folded into its conv's weights and bias by the trace's datapath


@dataclasses.dataclass(frozen=True)
class Trace:
    workload: str
    tensors: str  # "real" or "synthetic (seed N)"
    scheme_name: str
    arch_name: str
    layers: tuple[TraceLayer, ...]
    document: dict[str, Any]  # the JSON object as written (statistics included)

    @classmethod
    def from_document(cls, doc: Any, source: str = "<trace>") -> Trace:
        """Check a trace document and build its typed view; a TraceError names ``source`` and the problem."""
        if not isinstance(doc, dict) or doc.get("format") != TRACE_FORMAT:
            found = doc.get("format") if isinstance(doc, dict) else type(doc).__name__
            raise TraceError(f"{source}: format is {found!r}, expected {TRACE_FORMAT!r}; write one with "
                             "`hfp8sim trace`")
        missing = [key for key in REQUIRED_KEYS if key not in doc]
        if missing:
            raise TraceError(f"{source}: missing key(s) {', '.join(missing)}")
        if not isinstance(doc["layers"], list) or not doc["layers"]:
            raise TraceError(f"{source}: layers must be a non-empty list")
        layers = tuple(_layer(entry, f"{source}: layers[{i}]") for i, entry in enumerate(doc["layers"]))
        scheme = doc["scheme"]
        scheme_name = scheme.get("name") if isinstance(scheme, dict) else scheme
        arch = doc["arch"]
        return cls(str(doc["workload"]), str(doc["tensors"]), str(scheme_name),
                   str(arch.get("name")) if isinstance(arch, dict) else str(arch), layers, doc)

    @classmethod
    def load(cls, path: str | Path) -> Trace:
        """Read and check a trace file."""
        p = Path(path)
        if not p.is_file():
            raise TraceError(f"{path}: trace file not found" if not p.exists() else f"{path}: not a file")
        try:
            doc = json.loads(p.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise TraceError(f"{path}: not a JSON trace ({exc}); write one with `hfp8sim trace`") from None
        return cls.from_document(doc, str(path))

    def dumps(self) -> str:
        """The file text: sorted keys, the header indented, then ``layers`` last, one layer per line."""
        clean = _stable(self.document)
        layers = clean.pop("layers", [])
        head = json.dumps(clean, sort_keys=True, indent=1, allow_nan=False)
        rows = ",\n".join("  " + json.dumps(layer, sort_keys=True, allow_nan=False) for layer in layers)
        return f'{head[:-2]},\n "layers": [\n{rows}\n ]\n}}\n'

    def write(self, path: str | Path) -> Path:
        path = Path(path)
        if path.parent and not path.parent.exists():
            path.parent.mkdir(parents=True)
        path.write_text(self.dumps(), encoding="utf-8")
        return path


def layer_digest(entry: dict[str, Any]) -> str:
    """The digest of a layer entry: SHA-256 of its canonical JSON (without the digest itself), 16 hex digits."""
    body = _stable({key: value for key, value in entry.items() if key != "digest"})
    return hashlib.sha256(json.dumps(body, sort_keys=True, allow_nan=False).encode()).hexdigest()[:16]


def with_digest(entry: dict[str, Any]) -> dict[str, Any]:
    """``entry`` in its written form with its digest."""
    stable = _stable(entry)
    return stable | {"digest": layer_digest(stable)}


def _check_digest(entry: dict[str, Any], where: str) -> None:
    digest = entry.get("digest")
    if not isinstance(digest, str):
        raise TraceError(f"{where}: no digest; a trace is written by `hfp8sim trace`")
    if digest != layer_digest(entry):
        raise TraceError(f"{where}: the layer was changed after it was traced (its digest does not match its "
                         "contents); trace the workload again rather than editing the file")


def _check_gemm_counts(entry: dict[str, Any], gemm: dict[str, int], where: str) -> None:
    """Fields that follow from the GEMM's dimensions, key by key."""
    macs = gemm["M"] * gemm["N"] * gemm["K"] * gemm["batch"]
    if "macs" in entry and entry["macs"] != macs:
        raise TraceError(f"{where}: macs is {entry['macs']!r} but gemm M*N*K*batch is {macs}")
    rows = entry.get("sampled_rows", gemm["M"])
    if not (isinstance(rows, int) and 1 <= rows <= gemm["M"]):
        raise TraceError(f"{where}: sampled_rows must be an integer in 1..M={gemm['M']}, got {rows!r}")
    fraction = entry.get("zero_mac_fraction") or 0.0
    if not (isinstance(fraction, (int, float)) and 0.0 <= fraction <= 1.0):
        raise TraceError(f"{where}: zero_mac_fraction must be a fraction in [0, 1], got {fraction!r}")


def _layer(entry: Any, where: str) -> TraceLayer:
    if not (isinstance(entry, dict) and isinstance(entry.get("name"), str) and isinstance(entry.get("op"), str)):
        raise TraceError(f"{where}: each layer needs a name and an op")
    where = f"{where} ({entry['name']})"
    _check_digest(entry, where)
    inputs = tuple(i for i in entry.get("inputs", []) if i)
    gemm = entry.get("gemm", "absent")
    if gemm is None:
        if not isinstance(entry.get("elements"), int):
            raise TraceError(f"{where}: a non-GEMM layer needs an integer elements count")
        shape = tuple(int(d) for d in entry.get("shape") or (entry["elements"],))
        if math.prod(shape) != entry["elements"]:
            raise TraceError(f"{where}: elements is {entry['elements']} but the shape {list(shape)} holds "
                             f"{math.prod(shape)}")
        folded = entry.get("folded", False)
        if not isinstance(folded, bool):
            raise TraceError(f"{where}: folded must be true or false, got {folded!r}")
        if folded and (entry["op"] != "batchnorm" or entry.get("pass", "forward") != "forward"):
            raise TraceError(f"{where}: only a forward batchnorm can be folded, not a {entry['op']} layer")
        work = _vector_work(entry.get("vector_work"), where)
        if work is not None and work["folded"] != folded:
            raise TraceError(f"{where}: folded is {folded} but vector_work.folded is {work['folded']}")
        return TraceLayer(entry["name"], entry["op"], entry.get("pass", "forward"), inputs, shape=shape,
                          elements=entry["elements"], ops=int(entry.get("ops", entry["elements"])),
                          vector_work=work, folded=folded)
    if not (isinstance(gemm, dict) and all(isinstance(gemm.get(k), int) and gemm[k] > 0 for k in GEMM_DIMS)):
        raise TraceError(f"{where}: gemm must be null or {{M, N, K, batch}} of positive integers")
    _check_gemm_counts(entry, gemm, where)
    return TraceLayer(entry["name"], entry["op"], entry.get("pass", "forward"), inputs,
                      gemm={k: gemm[k] for k in GEMM_DIMS}, a_role=entry.get("a_role", "activation"),
                      b_role=entry.get("b_role", "weight"),
                      zero_mac_fraction=float(entry.get("zero_mac_fraction") or 0.0), conv=_conv_fields(entry),
                      tensor_elements=_tensor_elements(entry))


def _conv_fields(entry: dict) -> dict[str, Any] | None:
    """A forward conv's window and tensor shapes (what the timing model needs to read its input as a tensor),
    or None when the entry does not carry them all (older traces, other layers)."""
    conv = entry.get("conv")
    shapes = entry.get("a_shape"), entry.get("b_shape")
    if not isinstance(conv, dict) or entry.get("pass", "forward") != "forward" or \
            not all(isinstance(x, list) and len(x) == 4 and all(isinstance(d, int) for d in x) for x in shapes):
        return None
    return dict(conv, input_shape=tuple(shapes[0]), weight_shape=tuple(shapes[1]))


VECTOR_WORK_COUNTS = ("elementwise", "special", "reduction", "in_elements", "out_elements")


def _vector_work(work: Any, where: str) -> dict[str, float] | None:
    """A non-GEMM layer's recorded vector work: counts >= 0 and a ``fusable`` flag, nothing else."""
    if work is None:
        return None
    if not isinstance(work, dict):
        raise TraceError(f"{where}: vector_work must be a mapping of {', '.join(VECTOR_WORK_COUNTS)}, "
                         "fusable, folded")
    unknown = sorted(set(work) - set(VECTOR_WORK_COUNTS) - {"fusable", "folded"})
    if unknown:
        raise TraceError(f"{where}: vector_work.{unknown[0]} is not a vector-work key; allowed: "
                         f"{', '.join(VECTOR_WORK_COUNTS)}, fusable, folded")
    counts = {}
    for key in VECTOR_WORK_COUNTS:
        value = work.get(key, 0)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < math.inf:
            raise TraceError(f"{where}: vector_work.{key} must be a finite number >= 0, got {value!r}")
        counts[key] = float(value)
    for flag in ("fusable", "folded"):
        if not isinstance(work.get(flag, False), bool):
            raise TraceError(f"{where}: vector_work.{flag} must be true or false, got {work[flag]!r}")
    return counts | {"fusable": work.get("fusable", False), "folded": work.get("folded", False)}


def _tensor_elements(entry: dict) -> tuple[int, int, int] | None:
    """Elements of the operand and output tensors as traced (a conv's input tensor, not its im2col
    matrix), when the entry records their shapes."""
    shapes = [entry.get(key) for key in ("a_shape", "b_shape", "out_shape")]
    if not all(isinstance(shape, list) and all(isinstance(d, int) for d in shape) for shape in shapes):
        return None
    return tuple(math.prod(shape) for shape in shapes)  # type: ignore[return-value]


def _stable(value):
    """JSON-ready copy: numpy scalars to Python, floats to FLOAT_DIGITS significant digits, non-finite to None."""
    if isinstance(value, dict):
        return {str(k): _stable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_stable(v) for v in value]
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        value = float(value)
        return float(f"{value:.{FLOAT_DIGITS}g}") if math.isfinite(value) else None
    return value
