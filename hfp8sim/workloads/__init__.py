"""Workloads: layer types, networks, and the ways to get one (YAML files, ONNX graphs, SCALE-Sim CSVs).

>>> from hfp8sim.workloads import load_workload, resolve_workload
>>> net = load_workload(resolve_workload("resnet50"))
>>> net.macs
4089184256
"""

from .dump import save_workload
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
    same_padding,
)
from .load import OPS, load_workload, parse_workload, parse_workload_text
from .network import Network
from .registry import resolve_workload, shipped_workloads

__all__ = [
    "CONVENTIONS",
    "ELEMENTWISE_OPS",
    "OPS",
    "PASSES",
    "ROLES",
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
    "load_workload",
    "parse_workload",
    "parse_workload_text",
    "resolve_workload",
    "same_padding",
    "save_workload",
    "shipped_workloads",
]
