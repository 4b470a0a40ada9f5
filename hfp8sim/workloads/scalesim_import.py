"""SCALE-Sim topology CSVs: import them as networks, and export networks as them.

SCALE-Sim's conventions, kept exactly (see ``shared/reference/scalesim_semantics.md``):

* The first non-blank line is a header; blank lines are skipped.  Each row is split on commas and **the
  last field is dropped**, so every row must end with a trailing comma (anything after the last comma is
  ignored, e.g. ``...,4,1`` reads as stride 4).  Fields are stripped of spaces.
* Conv form: ``Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, Channels, Num Filter,
  Strides,``.  Convolutions are *valid* (no padding) with one stride for both axes and output size
  ``ceil((H - R + s) / s)``, which counts a phantom last row/column when ``s`` does not divide ``H - R``.
  Batch is 1.  The filter must fit the IFMAP.
* A conv row whose name contains ``DP`` is depthwise: SCALE-Sim splits it into ``Channels`` layers of one
  channel each, every one with ``Num Filter`` filters.  Here it is one grouped conv with ``groups = C`` and
  ``K = C * Num Filter`` (same MACs, same per-channel GEMMs as ``gemm()`` batches).
* GEMM form: ``Layer, M, N, K,``; SCALE-Sim runs a row as the conv ``H=M, W=K, R=1, S=K, C=1, filters=N,
  stride 1``, i.e. exactly the GEMM ``[M, K] @ [K, N]``.

Imported layers carry ``convention="scalesim"`` (so P and Q, and the timing model's fold counts, reproduce
SCALE-Sim's) and no connections: a topology lists independent layers.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from ..errors import WorkloadError
from .layers import Conv2d, Layer, MatMul
from .network import Network

CONV_HEADER = ("Layer name", "IFMAP Height", "IFMAP Width", "Filter Height", "Filter Width", "Channels",
               "Num Filter", "Strides")  # fmt: skip
GEMM_HEADER = ("Layer", "M", "N", "K")

Form = Literal["auto", "conv", "gemm"]


def _fields(line: str) -> list[str]:
    """SCALE-Sim's split: on commas, dropping the field after the last comma."""
    return [f.strip() for f in line.strip().split(",")[:-1]]


def _detect(header: list[str], file: str) -> str:
    names = [h.lower() for h in header]
    if len(names) >= 2 and "ifmap" in names[1]:
        return "conv"
    if names[1:4] == ["m", "n", "k"]:
        return "gemm"
    raise WorkloadError(
        f"cannot tell the topology form from the header {', '.join(header)!r}: expected "
        f"'{', '.join(CONV_HEADER)},' or '{', '.join(GEMM_HEADER)},' (note the trailing comma)",
        file=file,
        key_path="line 1",
    )


def _int(value: str, what: str, file: str, where: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise WorkloadError(f"{what} must be a positive integer, got {value!r}", file=file, key_path=where) from None
    if number < 1:
        raise WorkloadError(f"{what} must be a positive integer, got {number}", file=file, key_path=where)
    return number


def import_scalesim_csv(path: str | Path, *, form: Form = "auto", name: str | None = None) -> Network:
    """Read a SCALE-Sim topology CSV (conv or GEMM form; ``auto`` tells them apart by the header).

    Each row becomes a :class:`Conv2d` or a :class:`MatMul` with ``convention="scalesim"``.  Duplicate layer
    names get a ``#2``, ``#3`` ... suffix (SCALE-Sim does not need unique names; a Network does).
    """
    file = str(path)
    p = Path(path)
    rows = _nonblank_lines(p, file)
    header = _fields(rows[0][1])
    kind = _detect(header, file) if form == "auto" else form
    if kind not in ("conv", "gemm"):
        raise WorkloadError(f"form must be auto, conv or gemm; got {form!r}", file=file)
    layers: list[Layer] = []
    seen: dict[str, int] = {}
    for number, line in rows[1:]:
        fields = _row_fields(line, kind, file, f"line {number}")
        label = fields[0] or f"layer{len(layers)}"
        seen[label] = seen.get(label, 0) + 1
        layer_name = label if seen[label] == 1 else f"{label}#{seen[label]}"
        layers.append(_row_layer(kind, fields, label, layer_name, file, f"line {number} ({layer_name})"))
    if not layers:
        raise WorkloadError("the topology has a header but no layers", file=file)
    return Network(
        name or p.stem,
        tuple(layers),
        source=f"SCALE-Sim {kind} topology {p.name}",
        notes="SCALE-Sim conventions: valid convolutions, ceil output size, batch 1, independent layers.",
        file=file,
    )


def _nonblank_lines(p: Path, file: str) -> list[tuple[int, str]]:
    """(line number, text) of the file's non-blank lines; at least one (the header)."""
    if not p.is_file():
        raise WorkloadError("SCALE-Sim topology not found" if not p.exists() else "not a file", file=file)
    try:
        lines = p.read_text(encoding="utf-8-sig").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise WorkloadError(f"cannot read: {exc}", file=file) from None
    rows = [(number, line) for number, line in enumerate(lines, 1) if line.strip()]
    if not rows:
        raise WorkloadError("empty topology file", file=file)
    return rows


def _row_fields(line: str, kind: str, file: str, where: str) -> list[str]:
    """A row's fields, exactly as many as its form has (8 for conv, 4 for GEMM)."""
    needed = 8 if kind == "conv" else 4
    fields = _fields(line)
    if len(fields) < needed:
        raise WorkloadError(
            f"{len(fields)} fields once the last is dropped, {kind} rows need {needed}: SCALE-Sim ignores "
            "whatever follows the last comma, so every row must end with a trailing comma",
            file=file,
            key_path=where,
        )
    if len(fields) > needed:
        extra = fields[needed]
        what = "an N:M sparsity column" if ":" in extra else f"an extra field {extra!r}"
        raise WorkloadError(f"{what} is not supported (hfp8sim models dense layers only)", file=file,
                            key_path=where)  # fmt: skip
    return fields


def _row_layer(kind: str, fields: list[str], label: str, layer_name: str, file: str, where: str) -> Layer:
    """The layer of one row: a MatMul (GEMM form) or a Conv2d, grouped when the name says depthwise (DP)."""
    try:
        if kind == "gemm":
            M, N, K = (_int(v, h, file, where) for v, h in zip(fields[1:4], "MNK"))
            return MatMul(name=layer_name, M=M, N=N, K=K, convention="scalesim")
        H, W, R, S, C, F, s = (_int(v, h, file, where) for v, h in zip(fields[1:8], CONV_HEADER[1:]))
        depthwise = "DP" in label
        return Conv2d(name=layer_name, C=C, H=H, W=W, K=C * F if depthwise else F, R=R, S=S,
                      stride=s, groups=C if depthwise else 1, convention="scalesim")  # fmt: skip
    except WorkloadError as exc:
        if exc.file is not None:
            raise
        raise WorkloadError(exc.detail, file=file, key_path=where) from None


# ---------------------------------------------------------------------------------------------- export


def _conv_rows(layer: Conv2d) -> list[list[str | int]]:
    if layer.N != 1:
        raise WorkloadError(f"layer {layer.name!r} has batch N={layer.N}; SCALE-Sim convs have batch 1 "
                            "(export with form='gemm', where the batch joins M)")  # fmt: skip
    if layer.stride[0] != layer.stride[1]:
        raise WorkloadError(f"layer {layer.name!r} has stride {layer.stride}; SCALE-Sim has one stride for "
                            "both axes (export with form='gemm')")  # fmt: skip
    if layer.dilation != (1, 1):
        raise WorkloadError(f"layer {layer.name!r} is dilated; SCALE-Sim has no dilation (export with form='gemm')")
    s = layer.stride[0]
    if layer.convention == "scalesim":
        H, W = layer.H, layer.W
    else:
        # the extent of input (padding included) the outputs actually read: SCALE-Sim's ceil of it is
        # exactly P, so neither padding nor PyTorch's floor changes the output count
        H, W = (layer.P - 1) * s + layer.R, (layer.Q - 1) * s + layer.S
    g, cg, kg = layer.groups, layer.C // layer.groups, layer.K // layer.groups
    if "DP" in layer.name and not (g > 1 and cg == 1):
        raise WorkloadError(f"layer {layer.name!r} is not depthwise but its name contains 'DP', which makes "
                            "SCALE-Sim split it per channel; rename it")  # fmt: skip
    if g == 1:
        return [[layer.name, H, W, layer.R, layer.S, layer.C, layer.K, s]]
    if cg == 1:  # depthwise (with a channel multiplier kg): SCALE-Sim's DP rows
        name = layer.name if "DP" in layer.name else f"{layer.name}_DP"
        return [[name, H, W, layer.R, layer.S, layer.C, kg, s]]
    return [[f"{layer.name}_g{j}", H, W, layer.R, layer.S, cg, kg, s] for j in range(g)]


def _gemm_rows(layer: Conv2d | MatMul) -> list[list[str | int]]:
    shape = layer.gemm()
    if shape.batch == 1:
        return [[layer.name, shape.M, shape.N, shape.K]]
    return [[f"{layer.name}_b{j}", shape.M, shape.N, shape.K] for j in range(shape.batch)]


def export_scalesim_csv(network: Network, path: str | Path, *, form: Form = "auto") -> int:
    """Write the network's GEMM layers as a SCALE-Sim topology CSV; returns the number of rows written.

    ``conv`` form writes convs as conv rows (padding folded into the IFMAP size so SCALE-Sim's output count
    equals ours; depthwise as ``DP`` rows; other grouped convs as one row per group) and matmuls as
    SCALE-Sim's own GEMM-as-conv rows (``H=M, W=K, R=1, S=K, C=1``), one per batch entry.  ``gemm`` form
    writes every GEMM layer as ``M, N, K`` rows, one per batch entry (per group for convs).  ``auto`` picks
    ``conv`` when the network has a conv.  Vector layers are left out: SCALE-Sim models only the array.
    Importing the written file gives back the same layers (names of split rows aside).
    """
    gemm_layers = network.gemm_layers()
    if form == "auto":
        form = "conv" if any(layer.is_conv for layer in gemm_layers) else "gemm"
    if form not in ("conv", "gemm"):
        raise WorkloadError(f"form must be auto, conv or gemm; got {form!r}")
    rows: list[list[str | int]] = []
    for layer in gemm_layers:
        if "," in layer.name:
            raise WorkloadError(f"layer name {layer.name!r} has a comma, which a CSV row cannot hold")
        if form == "gemm":
            rows += _gemm_rows(layer)
        elif layer.is_conv:
            try:
                rows += _conv_rows(layer)
            except WorkloadError as exc:
                raise WorkloadError(exc.detail, file=network.file or None) from None
        else:
            rows += [[name, M, K, 1, K, 1, N, 1] for name, M, N, K in _gemm_rows(layer)]  # type: ignore[misc]
    header = CONV_HEADER if form == "conv" else GEMM_HEADER
    text = ", ".join(header) + ",\n" + "".join(", ".join(str(v) for v in row) + ",\n" for row in rows)
    Path(path).write_text(text, encoding="utf-8")
    return len(rows)
