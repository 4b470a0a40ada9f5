"""Any workload file, whatever its kind: hfp8sim YAML, an ONNX model or a SCALE-Sim topology CSV.

The kind is read from the file's content (:func:`hfp8sim.io.file_kinds.detect_file_kind`), so the command
line takes ``model.onnx``, ``Resnet18.csv`` and ``resnet50`` alike, and each kind's own reader gives its
located errors (the ONNX node, the CSV line, the YAML key).  A layer trace is not a workload: the caller
(which sits above the trace layer) handles :attr:`FileKind.TRACE` itself.
"""

from __future__ import annotations

from pathlib import Path

from ..errors import WorkloadError
from ..io.file_kinds import FileKind, detect_file_kind
from .load import load_workload
from .network import Network
from .onnx_import import import_onnx
from .registry import resolve_workload
from .scalesim_import import import_scalesim_csv


def workload_file_kind(name_or_path: str | Path) -> tuple[Path, FileKind]:
    """(file, kind) of a shipped workload name or a file path; an unknown name or missing file raises a
    WorkloadError listing the shipped names."""
    path = resolve_workload(name_or_path)
    return path, detect_file_kind(path)


def load_workload_file(name_or_path: str | Path) -> Network:
    """The network of a shipped workload name, a YAML workload, an ONNX model or a SCALE-Sim topology CSV
    (conv or GEMM form).  A trace or a SCALE-Sim config given here is refused with a line saying what it is."""
    path, kind = workload_file_kind(name_or_path)
    if kind == FileKind.ONNX:
        return import_onnx(path)
    if kind == FileKind.SCALESIM_CSV:
        return import_scalesim_csv(path)
    if kind == FileKind.TRACE:
        raise WorkloadError("this is a layer trace, not a workload; `hfp8sim run ARCH TRACE.json` executes it",
                            file=str(name_or_path))
    if kind == FileKind.SCALESIM_CFG:
        raise WorkloadError("this is a SCALE-Sim config (an arch), not a workload; give it as the ARCH argument: "
                            "`hfp8sim run scale.cfg topology.csv`", file=str(name_or_path))
    return load_workload(path)
