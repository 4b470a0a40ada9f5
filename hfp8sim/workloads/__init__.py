"""Workloads: layer types, networks, and the ways to get one (YAML files, ONNX graphs, SCALE-Sim CSVs).

>>> from hfp8sim.workloads import load_workload, resolve_workload
>>> net = load_workload(resolve_workload("resnet50"))
>>> net.macs
4089184256
"""

from .dump import save_workload
from .files import load_workload_file, workload_file_kind
from .layers import (
    CONVENTIONS,
    ELEMENTWISE_OPS,
    PASSES,
    ROLES,
    Concat,
    Conv2d,
    Elementwise,
    Embedding,
    GemmShape,
    GlobalAvgPool,
    Layer,
    MatMul,
    Norm,
    Pool,
    Reshape,
    Softmax,
    VectorWork,
    same_padding,
)
from .load import OPS, load_workload, parse_workload, parse_workload_text
from .network import Network, keep_first_last
from .onnx_import import SUPPORTED_ONNX_OPS, import_onnx
from .registry import resolve_workload, shipped_workloads
from .scalesim_import import export_scalesim_csv, import_scalesim_csv

__all__ = [
    "CONVENTIONS",
    "ELEMENTWISE_OPS",
    "OPS",
    "PASSES",
    "ROLES",
    "SUPPORTED_ONNX_OPS",
    "Concat",
    "Conv2d",
    "Elementwise",
    "Embedding",
    "GemmShape",
    "GlobalAvgPool",
    "Layer",
    "MatMul",
    "Network",
    "Norm",
    "Pool",
    "Reshape",
    "Softmax",
    "VectorWork",
    "export_scalesim_csv",
    "import_onnx",
    "import_scalesim_csv",
    "keep_first_last",
    "load_workload",
    "load_workload_file",
    "parse_workload",
    "parse_workload_text",
    "resolve_workload",
    "same_padding",
    "save_workload",
    "shipped_workloads",
    "workload_file_kind",
]
