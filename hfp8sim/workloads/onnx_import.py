"""Import an ONNX graph as a :class:`~hfp8sim.workloads.network.Network` (shapes only; weights are not read).

Shapes come from ``onnx.shape_inference.infer_shapes``.  Every node becomes a layer, is folded away, or is
refused:

* **layers**: Conv (groups, pads, auto_pad, strides, dilations), Gemm and MatMul (batched too), Relu, Clip
  (relu6 when it clips to [0, 6]), Sigmoid, Tanh, Gelu, Add/Sub/Mul/Div/Sum (Mul by a constant is a
  ``scale``), Cast (a ``convert``), Softmax, BatchNormalization, LayerNormalization, LRN, MaxPool,
  AveragePool, GlobalAveragePool, Concat, Gather from a constant table with the network's indices (an
  embedding lookup);
* **folded** (views or no work): Flatten, Reshape, Transpose, Squeeze, Unsqueeze, Identity, Dropout, and
  every node whose inputs are all constants (weights, ``Constant``, ``ConstantOfShape``, ``Shape`` of a
  tensor whose shape is known), so constant subgraphs cost nothing;
* anything else raises :class:`~hfp8sim.errors.WorkloadError` naming the node, its op type and the file,
  and listing the supported ops.

A tensor is a *weight* if it is an initializer or computed from constants only; an operand that is a weight
gets the ``weight`` role.  Graph inputs that are not initializers are the network's inputs.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from ..errors import WorkloadError
from .layers import (
    Concat,
    Conv2d,
    Elementwise,
    Embedding,
    GlobalAvgPool,
    Layer,
    MatMul,
    Norm,
    Pool,
    Softmax,
    same_padding,
)
from .network import Network

_ELEMENTWISE = {"Relu": "relu", "Sigmoid": "sigmoid", "Tanh": "tanh", "Gelu": "gelu", "Add": "add", "Sub": "sub",
                "Mul": "mul", "Div": "div", "Sum": "add", "Cast": "convert"}  # fmt: skip
_VIEWS = ("Flatten", "Reshape", "Transpose", "Squeeze", "Unsqueeze", "Identity", "Dropout")
_MAPPED = ("Conv", "Gemm", "MatMul", "Clip", "Softmax", "BatchNormalization", "LayerNormalization", "LRN",
           "MaxPool", "AveragePool", "GlobalAveragePool", "Concat", "Gather", *_ELEMENTWISE)  # fmt: skip
_CONSTANT_SOURCES = ("Constant", "ConstantOfShape", "Shape")
SUPPORTED_ONNX_OPS = tuple(sorted(set(_MAPPED) | set(_VIEWS) | set(_CONSTANT_SOURCES)))
"""ONNX op types the importer understands (mapped to layers, folded as views, or constants)."""


def _onnx():
    try:
        import onnx
    except ImportError:  # pragma: no cover - onnx is in the test extra
        raise WorkloadError("importing ONNX needs the onnx package: pip install 'hfp8sim[onnx]'") from None
    return onnx


class _Graph:
    """The inferred graph: shapes, constants and the producer (layer name) of every activation tensor."""

    def __init__(self, model: Any, file: str):
        onnx = _onnx()
        self.onnx = onnx
        self.file = file
        graph = model.graph
        self.graph = graph
        self.shapes: dict[str, tuple[int, ...] | None] = {}
        for value in list(graph.input) + list(graph.value_info) + list(graph.output):
            self.shapes[value.name] = self._value_shape(value)
        self.constants: set[str] = {t.name for t in graph.initializer}
        for t in graph.initializer:
            self.shapes[t.name] = tuple(t.dims)
        self.initializers = {t.name: t for t in graph.initializer}
        self.constant_nodes: dict[str, Any] = {}
        # activation tensor -> layer producing it (None: a network input)
        self.producer: dict[str, str | None] = {
            v.name: None for v in graph.input if v.name not in self.constants
        }
        self.layers: list[Layer] = []
        self.names: set[str] = set()

    @staticmethod
    def _value_shape(value: Any) -> tuple[int, ...] | None:
        tensor_type = value.type.tensor_type
        if not tensor_type.HasField("shape"):
            return None
        dims = []
        for d in tensor_type.shape.dim:
            if not d.HasField("dim_value"):
                return None
            dims.append(d.dim_value)
        return tuple(dims)

    # -------------------------------------------------------------------------------------- helpers

    def fail(self, node: Any, index: int, message: str) -> WorkloadError:
        name = node.name or (node.output[0] if node.output else "?")
        return WorkloadError(message, file=self.file, key_path=f"graph.node[{index}] ({name}, {node.op_type})")

    def shape(self, node: Any, index: int, tensor: str) -> tuple[int, ...]:
        shape = self.shapes.get(tensor)
        if shape is None:
            raise self.fail(node, index, f"the shape of tensor {tensor!r} is unknown after shape inference "
                                         "(a dynamic dimension? pass input_shapes=)")  # fmt: skip
        return shape

    def is_constant(self, tensor: str) -> bool:
        return tensor in self.constants

    def layer_name(self, node: Any) -> str:
        base = node.name or node.output[0]
        name, k = base, 1
        while name in self.names:
            k += 1
            name = f"{base}#{k}"
        self.names.add(name)
        return name

    def data_inputs(self, node: Any) -> list[str]:
        return [t for t in node.input if t and not self.is_constant(t)]

    def producers(self, node: Any, index: int, tensors: list[str]) -> tuple[str | None, ...]:
        out = []
        for t in tensors:
            if t not in self.producer:
                raise self.fail(node, index, f"input tensor {t!r} is produced by no node before this one")
            out.append(self.producer[t])
        return tuple(out)

    def constant_value(self, tensor: str) -> Any:
        """The numpy value of a constant tensor when it is known here (an initializer or a Constant)."""
        from onnx import numpy_helper

        if tensor in self.initializers:
            return numpy_helper.to_array(self.initializers[tensor])
        node = self.constant_nodes.get(tensor)
        if node is not None and node.op_type == "Constant":
            for attr in node.attribute:
                if attr.name == "value":
                    return numpy_helper.to_array(attr.t)
                if attr.name in ("value_float", "value_int"):
                    return self.onnx.helper.get_attribute_value(attr)
        return None

    def add(self, node: Any, layer: Layer) -> None:
        self.layers.append(layer)
        self.producer[node.output[0]] = layer.name
        self.shapes.setdefault(node.output[0], layer.output_shape)


def _attrs(onnx: Any, node: Any) -> dict[str, Any]:
    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


def _decode(value: Any) -> Any:
    return value.decode() if isinstance(value, bytes) else value


def _spatial_padding(
    g: _Graph, node: Any, index: int, attrs: dict[str, Any], H: int, W: int, R: int, S: int,
    stride: tuple[int, int], dilation: tuple[int, int],
) -> tuple[int, int, int, int]:  # fmt: skip
    """(top, bottom, left, right) from ONNX ``pads`` ([top, left, bottom, right]) or ``auto_pad``."""
    auto = _decode(attrs.get("auto_pad", "NOTSET"))
    if auto in ("SAME_UPPER", "SAME_LOWER"):
        (t, b), (le, r) = same_padding(H, R, stride[0], dilation[0]), same_padding(W, S, stride[1], dilation[1])
        if auto == "SAME_LOWER":  # the odd pixel goes first
            (t, b), (le, r) = (b, t), (r, le)
        return (t, b, le, r)
    if auto == "VALID":
        return (0, 0, 0, 0)
    if auto != "NOTSET":
        raise g.fail(node, index, f"auto_pad {auto!r} is not an ONNX value")
    pads = list(attrs.get("pads", [0, 0, 0, 0]))
    if len(pads) != 4:
        raise g.fail(node, index, f"only 2-D windows are supported; pads={pads}")
    return (pads[0], pads[2], pads[1], pads[3])


def _conv(g: _Graph, node: Any, index: int, attrs: dict[str, Any], name: str) -> Layer:
    x, w = node.input[0], node.input[1]
    if g.is_constant(x) or not g.is_constant(w):
        raise g.fail(node, index, "a Conv needs a data input and constant weights")
    xs, ws = g.shape(node, index, x), g.shape(node, index, w)
    if len(xs) != 4 or len(ws) != 4:
        raise g.fail(node, index, f"only 2-D convolutions are supported (input {xs}, weight {ws})")
    N, C, H, W = xs
    K, _, R, S = ws
    stride = tuple(attrs.get("strides", (1, 1)))
    dilation = tuple(attrs.get("dilations", (1, 1)))
    padding = _spatial_padding(g, node, index, attrs, H, W, R, S, stride, dilation)  # type: ignore[arg-type]
    layer = Conv2d(name=name, inputs=g.producers(node, index, [x]), N=N, C=C, H=H, W=W, K=K, R=R, S=S,
                   stride=stride, padding=padding, dilation=dilation, groups=attrs.get("group", 1))  # fmt: skip
    inferred = g.shapes.get(node.output[0])
    if inferred is not None and inferred != layer.output_shape:
        raise g.fail(node, index, f"output shape {layer.output_shape} differs from ONNX's inferred {inferred}")
    return layer


def _gemm(g: _Graph, node: Any, index: int, attrs: dict[str, Any], name: str) -> Layer:
    a, b = node.input[0], node.input[1]
    a_shape, b_shape = g.shape(node, index, a), g.shape(node, index, b)
    if len(a_shape) != 2 or len(b_shape) != 2:
        raise g.fail(node, index, f"Gemm takes 2-D operands, got {a_shape} and {b_shape}")
    M, K = a_shape[::-1] if attrs.get("transA", 0) else a_shape
    K2, N = b_shape[::-1] if attrs.get("transB", 0) else b_shape
    if K != K2:
        raise g.fail(node, index, f"reduction sizes differ: A gives K={K}, B gives {K2}")
    return _matmul_layer(g, node, index, name, a, b, M, N, K, 1)


def _matmul(g: _Graph, node: Any, index: int, attrs: dict[str, Any], name: str) -> Layer:
    a, b = node.input[0], node.input[1]
    a_shape, b_shape = list(g.shape(node, index, a)), list(g.shape(node, index, b))
    if len(a_shape) == 1:
        a_shape = [1] + a_shape
    if len(b_shape) == 1:
        b_shape = b_shape + [1]
    M, K = a_shape[-2:]
    K2, N = b_shape[-2:]
    if K != K2:
        raise g.fail(node, index, f"reduction sizes differ: A gives K={K}, B gives {K2}")
    a_batch, b_batch = a_shape[:-2], b_shape[:-2]
    if not b_batch and g.is_constant(b):
        # x[..., M, K] @ W[K, N]: one GEMM against the weight, the leading axes are more rows
        return _matmul_layer(g, node, index, name, a, b, math.prod(a_batch) * M, N, K, 1)
    width = max(len(a_batch), len(b_batch))
    a_batch = [1] * (width - len(a_batch)) + a_batch
    b_batch = [1] * (width - len(b_batch)) + b_batch
    batch = 1
    for da, db in zip(a_batch, b_batch):
        if da != db and 1 not in (da, db):
            raise g.fail(node, index, f"batch axes {a_shape[:-2]} and {b_shape[:-2]} do not broadcast")
        batch *= max(da, db)
    return _matmul_layer(g, node, index, name, a, b, M, N, K, batch)


def _matmul_layer(g: _Graph, node: Any, index: int, name: str, a: str, b: str, M: int, N: int, K: int,
                  batch: int) -> Layer:  # fmt: skip
    a_role = "weight" if g.is_constant(a) else "activation"
    b_role = "weight" if g.is_constant(b) else "activation"
    data = [t for t in (a, b) if not g.is_constant(t)]
    return MatMul(name=name, inputs=g.producers(node, index, data), M=M, N=N, K=K, batch=batch,
                  a_role=a_role, b_role=b_role)  # fmt: skip


def _clip_kind(g: _Graph, node: Any, attrs: dict[str, Any]) -> str:
    low, high = attrs.get("min"), attrs.get("max")
    if len(node.input) > 1 and node.input[1]:
        value = g.constant_value(node.input[1])
        low = None if value is None else float(value)
    if len(node.input) > 2 and node.input[2]:
        value = g.constant_value(node.input[2])
        high = None if value is None else float(value)
    if low == 0.0 and high == 6.0:
        return "relu6"
    if low == 0.0 and high is None and (len(node.input) < 3 or not node.input[2]) and "max" not in attrs:
        return "relu"
    return "clip"


def _softmax(g: _Graph, node: Any, index: int, attrs: dict[str, Any], name: str, opset: int) -> Layer:
    x = node.input[0]
    shape = g.shape(node, index, x)
    axis = attrs.get("axis", -1 if opset >= 13 else 1) % len(shape)
    if opset >= 13:
        cols = shape[axis]
    else:  # before opset 13, softmax flattens the input to 2-D at ``axis``
        cols = math.prod(shape[axis:])
    rows = math.prod(shape) // cols
    return Softmax(name=name, inputs=g.producers(node, index, [x]), rows=rows, cols=cols)


def _pool(g: _Graph, node: Any, index: int, attrs: dict[str, Any], name: str) -> Layer:
    x = node.input[0]
    shape = g.shape(node, index, x)
    if len(shape) != 4:
        raise g.fail(node, index, f"only 2-D pooling is supported (input {shape})")
    if any(d != 1 for d in attrs.get("dilations", (1, 1))):
        raise g.fail(node, index, "dilated pooling is not supported")
    if node.op_type == "MaxPool" and len(node.output) > 1 and node.output[1]:
        raise g.fail(node, index, "MaxPool's indices output is not supported")
    N, C, H, W = shape
    R, S = attrs["kernel_shape"]
    stride = tuple(attrs.get("strides", (1, 1)))
    padding = _spatial_padding(g, node, index, attrs, H, W, R, S, stride, (1, 1))  # type: ignore[arg-type]
    kind = "maxpool" if node.op_type == "MaxPool" else "avgpool"
    layer = Pool(name=name, inputs=g.producers(node, index, [x]), kind=kind, N=N, C=C, H=H, W=W, R=R, S=S,
                 stride=stride, padding=padding, ceil_mode=bool(attrs.get("ceil_mode", 0)))  # fmt: skip
    inferred = g.shapes.get(node.output[0])
    if inferred is not None and inferred != layer.output_shape:
        raise g.fail(node, index, f"output shape {layer.output_shape} differs from ONNX's inferred {inferred}")
    return layer


def _out_shape(g: _Graph, node: Any, index: int) -> tuple[int, ...]:
    return g.shape(node, index, node.output[0])


def _map_node(g: _Graph, node: Any, index: int, opset: int) -> Layer | None:
    """The layer for one node (None when the node is folded into its input)."""
    op = node.op_type
    attrs = _attrs(g.onnx, node)
    if op in _VIEWS:
        data = g.data_inputs(node)[:1]
        if not data:
            raise g.fail(node, index, f"{op} of constants only should have been folded")
        g.producer[node.output[0]] = g.producers(node, index, data)[0]
        return None
    name = g.layer_name(node)
    if op == "Conv":
        return _conv(g, node, index, attrs, name)
    if op == "Gemm":
        return _gemm(g, node, index, attrs, name)
    if op == "MatMul":
        return _matmul(g, node, index, attrs, name)
    data = g.data_inputs(node)
    inputs = g.producers(node, index, data)
    if op in _ELEMENTWISE or op == "Clip":
        kind = _clip_kind(g, node, attrs) if op == "Clip" else _ELEMENTWISE[op]
        if kind == "mul" and len(data) == 1:
            kind = "scale"  # times a constant (a scale per channel, a scalar)
        if kind not in ("add", "sub", "mul", "div", "scale"):
            data, inputs = data[:1], inputs[:1]  # Clip's min/max, Cast: one tensor operand
        return Elementwise(name=name, inputs=inputs, kind=kind, shape=_out_shape(g, node, index))
    if op == "Softmax":
        return _softmax(g, node, index, attrs, name, opset)
    if op == "BatchNormalization":
        return Norm(name=name, inputs=inputs[:1], kind="batchnorm", shape=g.shape(node, index, node.input[0]))
    if op == "LayerNormalization":
        shape = g.shape(node, index, node.input[0])
        axis = attrs.get("axis", -1) % len(shape)
        if axis != len(shape) - 1:
            # normalising over several trailing axes: view the tensor as rows of prod(shape[axis:])
            shape = (math.prod(shape[:axis]), math.prod(shape[axis:]))
        return Norm(name=name, inputs=inputs[:1], kind="layernorm", shape=shape)
    if op == "LRN":
        return Norm(name=name, inputs=inputs[:1], kind="lrn", shape=g.shape(node, index, node.input[0]),
                    size=attrs["size"])  # fmt: skip
    if op in ("MaxPool", "AveragePool"):
        return _pool(g, node, index, attrs, name)
    if op == "GlobalAveragePool":
        N, C, H, W = g.shape(node, index, node.input[0])
        return GlobalAvgPool(name=name, inputs=inputs[:1], N=N, C=C, H=H, W=W)
    if op == "Concat":
        return Concat(name=name, inputs=inputs, shape=_out_shape(g, node, index), axis=attrs["axis"])
    if op == "Gather":
        return _embedding(g, node, index, attrs, name)
    raise AssertionError(op)


def _embedding(g: _Graph, node: Any, index: int, attrs: dict[str, Any], name: str) -> Layer:
    """Gather rows of a constant table with indices from outside the network: an embedding lookup."""
    table, indices = node.input[0], node.input[1]
    table_shape = g.shape(node, index, table)
    if not g.is_constant(table) or len(table_shape) != 2 or attrs.get("axis", 0) != 0:
        raise g.fail(node, index, "only a Gather of rows (axis 0) of a constant 2-D table is supported "
                                  "(an embedding lookup)")  # fmt: skip
    if g.producer.get(indices, "") is not None:
        raise g.fail(node, index, "an embedding's indices must be a network input")
    lookups = math.prod(g.shape(node, index, indices))
    return Embedding(name=name, lookups=lookups, dim=table_shape[1], vocab=table_shape[0])


def _fix_input_shapes(model: Any, input_shapes: dict[str, tuple[int, ...]] | None, file: str) -> None:
    """Give dynamic input dimensions a size: ``input_shapes`` if given, else 1 for a leading batch axis."""
    initializers = {t.name for t in model.graph.initializer}
    for value in model.graph.input:
        if value.name in initializers:
            continue
        dims = value.type.tensor_type.shape.dim
        wanted = (input_shapes or {}).get(value.name)
        if wanted is not None:
            if len(wanted) != len(dims):
                raise WorkloadError(
                    f"input_shapes gives {value.name!r} {len(wanted)} axes; the graph has {len(dims)}", file=file
                )
            for d, size in zip(dims, wanted):
                d.Clear()
                d.dim_value = int(size)
            continue
        for axis, d in enumerate(dims):
            if not d.HasField("dim_value"):
                if axis != 0:
                    raise WorkloadError(
                        f"input {value.name!r} has a dynamic axis {axis} ({d.dim_param or '?'}); "
                        "give its size with input_shapes=",
                        file=file,
                    )
                d.Clear()
                d.dim_value = 1  # a dynamic batch axis: batch 1


def import_onnx(path: str | Path, *, name: str | None = None,
                input_shapes: dict[str, tuple[int, ...]] | None = None) -> Network:  # fmt: skip
    """Read an ONNX model file as a Network (shapes only).

    ``input_shapes`` fixes dynamic input dimensions (``{"input_ids": (1, 128)}``); a dynamic leading batch
    axis otherwise becomes 1.  ``name`` defaults to the graph's name, else the file stem.  Unsupported ops
    raise :class:`~hfp8sim.errors.WorkloadError` naming the node and the file.
    """
    onnx = _onnx()
    file = str(path)
    p = Path(path)
    if not p.is_file():
        raise WorkloadError("ONNX file not found" if not p.exists() else "not a file", file=file)
    try:
        model = onnx.load(str(p))
    except Exception as exc:  # onnx raises DecodeError and friends: all mean "not an ONNX model"
        raise WorkloadError(f"cannot read as an ONNX model: {exc}", file=file) from None
    _fix_input_shapes(model, input_shapes, file)
    try:
        model = onnx.shape_inference.infer_shapes(model, strict_mode=False)
    except Exception as exc:  # inference errors come as several onnx-internal types
        raise WorkloadError(f"ONNX shape inference failed: {exc}", file=file) from None
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 13)
    g = _Graph(model, file)
    for index, node in enumerate(model.graph.node):
        if node.op_type in ("Constant", "ConstantOfShape", "Shape") or all(
            g.is_constant(t) for t in node.input if t
        ):
            # known at compile time: a constant, the static shape of a tensor, or arithmetic on constants
            g.constants.update(t for t in node.output if t)
            for t in node.output:
                g.constant_nodes[t] = node
            continue
        if node.domain not in ("", "ai.onnx") or node.op_type not in SUPPORTED_ONNX_OPS:
            op = node.op_type if node.domain in ("", "ai.onnx") else f"{node.domain}.{node.op_type}"
            raise g.fail(node, index, f"ONNX op {op} cannot be mapped to a layer; supported ops: "
                                      f"{', '.join(SUPPORTED_ONNX_OPS)}")  # fmt: skip
        layer = _map_node(g, node, index, opset)
        if layer is not None:
            g.add(node, layer)
    if not g.layers:
        raise WorkloadError("the graph has no layers that do work", file=file)
    graph_name = name or model.graph.name or p.stem
    return Network(
        graph_name,
        tuple(g.layers),
        source=f"ONNX graph {p.name} (opset {opset})",
        notes="Imported by hfp8sim.workloads.import_onnx: view ops (Reshape, Flatten, Transpose, Dropout ...) "
        "folded into their input; constant subgraphs folded; biases not separate layers.",
        file=file,
    )
