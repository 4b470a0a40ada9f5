"""The YAML workload format: a network as an ordered list of layers.

::

    name: tiny_cnn
    source: hand-written test network          # optional: where the shapes come from
    notes: ...                                  # optional: modelling choices
    fold_batch_norms: true                      # optional: inference batch norms fold into their conv
    defaults:                                   # optional: fields given to every layer of an op
      conv2d: {N: 1}
    layers:
      - {name: conv1, op: conv2d, C: 3, H: 32, W: 32, K: 16, R: 3, S: 3, padding: 1}
      - {name: relu1, op: relu}                 # input: the previous layer; shape inferred from it
      - {name: dw, op: conv2d, K: 16, R: 3, S: 3, stride: 2, padding: 1, groups: 16}
      - {name: add, op: add, inputs: [dw, relu1]}
      - repeat: 2                               # a block written once, expanded twice
        index: i                                # "{i}" in names and inputs -> 0, 1
        layers:
          - {name: "blk{i}.fc", op: matmul, M: 1, N: 16, K: 16}
          - {name: "blk{i}.add", op: add, inputs: ["blk{i}.fc", "{block_input}"]}

Connections: ``input: name`` (or ``inputs: [a, b]``) names earlier layers; ``null`` means the operand comes
from outside the network (the image, token ids, a KV cache).  Without either, a layer reads the previous
layer (the first layer reads the network input); binary element-wise ops, ``concat`` and matmuls with two
activation operands must name their inputs.  Inside a ``repeat`` block, ``{block_input}`` is the layer
just before the current iteration (a residual's other branch).

Sizes a layer can take from its input may be left out and are inferred (a conv's N, C, H, W; the shape of
an element-wise op or a norm; a softmax's rows and cols); sizes that are written are checked against the
input, so ``C: 128`` fed by a 512-channel layer is an error naming both layers.

Ops: ``conv2d``, ``matmul``, element-wise (``add sub mul div relu relu6 clip gelu silu sigmoid tanh convert
scale``), ``softmax``, ``layernorm``, ``batchnorm``, ``lrn``, ``maxpool``, ``avgpool``, ``global_avgpool``,
``embedding``, ``concat``, ``reshape``.  Every layer may set ``pass: forward | backward_data |
backward_weight``.  Unknown keys, wrong types and non-positive sizes are errors, all reported at once.
"""

from __future__ import annotations

import difflib
import re
from pathlib import Path
from typing import Annotated, Any, Literal

import pydantic
from pydantic import ConfigDict, Field

from .. import limits
from ..io import parse_yaml, read_yaml
from ..errors import ConfigError, WorkloadError
from .layers import (
    BINARY_OPS,
    ELEMENTWISE_OPS,
    Concat,
    Conv2d,
    Elementwise,
    Embedding,
    GlobalAvgPool,
    Layer,
    MatMul,
    Norm,
    Pool,
    Reshape,
    Shape,
    Softmax,
    shape_elements,
)
from .network import Network

PosInt = Annotated[int, Field(strict=True, gt=0)]
_STRICT = ConfigDict(extra="forbid", strict=True, populate_by_name=False)

# ------------------------------------------------------------------------------------ per-op schemas


class _LayerModel(pydantic.BaseModel):
    model_config = _STRICT
    name: Annotated[str, Field(min_length=1)]
    op: str
    input: str | None = None
    inputs: list[str | None] | None = None
    pass_: Literal["forward", "backward_data", "backward_weight"] = Field("forward", alias="pass")
    precision: str = ""  # a scheme for a GEMM layer's operands in place of the run's (checked by the layer)


class _Conv2dModel(_LayerModel):
    N: PosInt | None = None
    C: PosInt | None = None
    H: PosInt | None = None
    W: PosInt | None = None
    K: PosInt
    R: PosInt
    S: PosInt
    # int, [h, w], [top, bottom, left, right] or "same": checked by the layer itself, with a clear message
    stride: Any = 1
    padding: Any = 0
    dilation: Any = 1
    groups: PosInt = 1
    convention: Literal["native", "scalesim"] = "native"


class _MatMulModel(_LayerModel):
    M: PosInt
    N: PosInt
    K: PosInt
    batch: PosInt = 1
    a_role: Literal["activation", "weight", "gradient"] = "activation"
    b_role: Literal["activation", "weight", "gradient"] = "weight"
    convention: Literal["native", "scalesim"] = "native"


class _ShapeModel(_LayerModel):
    shape: list[PosInt] | None = None


class _LrnModel(_ShapeModel):
    size: PosInt = 5


class _SoftmaxModel(_LayerModel):
    rows: PosInt | None = None
    cols: PosInt | None = None


class _PoolModel(_LayerModel):
    N: PosInt | None = None
    C: PosInt | None = None
    H: PosInt | None = None
    W: PosInt | None = None
    R: PosInt
    S: PosInt
    stride: Any
    padding: Any = 0
    ceil_mode: bool = False


class _GlobalPoolModel(_LayerModel):
    N: PosInt | None = None
    C: PosInt | None = None
    H: PosInt | None = None
    W: PosInt | None = None


class _EmbeddingModel(_LayerModel):
    lookups: PosInt
    dim: PosInt
    vocab: PosInt


class _ConcatModel(_ShapeModel):
    axis: Annotated[int, Field(strict=True)] = 1


class _ReshapeModel(_LayerModel):
    shape: list[PosInt]


OP_SCHEMAS: dict[str, type[_LayerModel]] = {
    "conv2d": _Conv2dModel,
    "matmul": _MatMulModel,
    **{kind: _ShapeModel for kind in ELEMENTWISE_OPS},
    "softmax": _SoftmaxModel,
    "layernorm": _ShapeModel,
    "batchnorm": _ShapeModel,
    "lrn": _LrnModel,
    "maxpool": _PoolModel,
    "avgpool": _PoolModel,
    "global_avgpool": _GlobalPoolModel,
    "embedding": _EmbeddingModel,
    "concat": _ConcatModel,
    "reshape": _ReshapeModel,
}
OPS = tuple(sorted(OP_SCHEMAS))
"""Every ``op`` a workload file may use."""

_CONNECTION_KEYS = {"name", "op", "input", "inputs", "pass", "precision"}


class _TopModel(pydantic.BaseModel):
    model_config = _STRICT
    name: Annotated[str, Field(min_length=1)]
    source: str = ""
    notes: str = ""
    fold_batch_norms: bool = True
    defaults: dict[str, dict[str, Any]] = {}
    layers: Annotated[list[Any], Field(min_length=1)]


class _RepeatModel(pydantic.BaseModel):
    model_config = _STRICT
    repeat: PosInt
    index: Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")] = "i"
    layers: Annotated[list[Any], Field(min_length=1)]


# ---------------------------------------------------------------------------------------- messages


def _describe(error: Any, model: type[pydantic.BaseModel] | None) -> str:
    kind = error["type"]
    value = error.get("input")
    if kind == "extra_forbidden":
        key = str(error["loc"][-1])
        known = [f.alias or n for n, f in model.model_fields.items()] if model is not None else []
        close = difflib.get_close_matches(key, known, n=1)
        return "unknown key" + (f" (did you mean {close[0]!r}?)" if close else "")
    if kind == "missing":
        return "required key is missing"
    if kind == "greater_than":
        return f"must be a positive integer, got {value!r}"
    if kind in ("int_type", "int_parsing", "int_from_float"):
        return f"must be an integer, got {value!r}"
    if kind == "string_type":
        return f"must be a string, got {value!r}"
    if kind == "bool_type":
        return f"must be true or false, got {value!r}"
    if kind == "list_type":
        return f"must be a list, got {value!r}"
    msg = error["msg"]
    return (msg[0].lower() + msg[1:]) if msg else kind


def _problems(exc: pydantic.ValidationError, where: str, model: type[pydantic.BaseModel]) -> list[str]:
    out = []
    for error in exc.errors():
        path = ".".join(str(part) for part in (where, *error["loc"]) if part != "")
        out.append(f"{path or '(top level)'}: {_describe(error, model)}")
    return out


def _raise_all(problems: list[str], source: str) -> None:
    if problems:
        message = problems[0] if len(problems) == 1 else f"{len(problems)} problems: " + "; ".join(problems)
        raise WorkloadError(message, file=source)


# ------------------------------------------------------------------------------------ entry points


def load_workload(path: str | Path) -> Network:
    """Read and validate a YAML workload file; every mistake is a WorkloadError naming the file and layer.

    ``path`` is a file path; use :func:`~hfp8sim.workloads.resolve_workload` to accept shipped names too.
    """
    try:
        data = read_yaml(path, "workload file")  # missing or unreadable file, YAML syntax errors, located
    except ConfigError as exc:
        raise WorkloadError(exc.detail, file=exc.file) from None
    return parse_workload(data, str(path))


def parse_workload_text(text: str, source: str = "<string>") -> Network:
    """Parse YAML text holding a workload (see :func:`parse_workload`)."""
    try:
        data = parse_yaml(text, source)
    except ConfigError as exc:
        raise WorkloadError(exc.detail, file=exc.file) from None
    return parse_workload(data, source)


def parse_workload(data: Any, source: str = "<data>") -> Network:
    """Build a :class:`Network` from already-parsed YAML data; ``source`` names it in errors."""
    if not isinstance(data, dict):
        raise WorkloadError(
            "a workload file is a mapping with 'name' and 'layers' (got "
            f"{'an empty file' if data is None else type(data).__name__})",
            file=source,
        )
    try:
        top = _TopModel.model_validate(data)
    except pydantic.ValidationError as exc:
        _raise_all(_problems(exc, "", _TopModel), source)
        raise AssertionError("unreachable") from None
    problems: list[str] = []
    defaults = _check_defaults(top.defaults, problems)
    entries = _expand(top.layers, "layers", problems, block_input=None)
    _raise_all(problems, source)

    models: list[tuple[str, _LayerModel]] = []
    for where, entry in entries:
        model = _validate_layer(where, entry, defaults, problems)
        if model is not None:
            models.append((f"{where} ({model.name})", model))
    _raise_all(problems, source)

    layers: list[Layer] = []
    built: dict[str, Layer] = {}
    all_names = {model.name for _, model in models}
    for where, model in models:
        try:
            layer = _build_layer(model, layers[-1].name if layers else None, built, all_names)
        except WorkloadError as exc:
            raise WorkloadError(exc.detail, file=source, key_path=where) from None
        if layer.name in built:
            raise WorkloadError("duplicate layer name", file=source, key_path=where)
        layers.append(layer)
        built[layer.name] = layer
    # the network re-checks every connection and locates its errors as layers[i] (name): relocate those to
    # the path in the file (which differs inside repeat blocks)
    try:
        return Network(top.name, tuple(layers), source=top.source, notes=top.notes, file=source,
                       fold_batch_norms=top.fold_batch_norms)
    except WorkloadError as exc:
        raise _relocate(exc, models, source) from None


def _relocate(exc: WorkloadError, models: list[tuple[str, _LayerModel]], source: str) -> WorkloadError:
    match = re.match(r"layers\[(\d+)\]", exc.key_path or "")
    if match and int(match.group(1)) < len(models):
        return WorkloadError(exc.detail, file=source, key_path=models[int(match.group(1))][0])
    return WorkloadError(exc.detail, file=source, key_path=exc.key_path)


# -------------------------------------------------------------------------------- repeat and defaults


def _check_defaults(defaults: dict[str, dict[str, Any]], problems: list[str]) -> dict[str, dict[str, Any]]:
    for op, fields in defaults.items():
        if op not in OP_SCHEMAS:
            problems.append(f"defaults.{op}: unknown op; known ops: {', '.join(OPS)}")
            continue
        schema = OP_SCHEMAS[op]
        known = {f.alias or n for n, f in schema.model_fields.items()} - _CONNECTION_KEYS
        for key in fields:
            if key not in known:
                close = difflib.get_close_matches(str(key), sorted(known), n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                problems.append(f"defaults.{op}.{key}: not a field a default can set for {op}{hint}")
    return defaults


def _substitute(value: Any, replacements: dict[str, str | None]) -> Any:
    if isinstance(value, str):
        for placeholder, text in replacements.items():
            if placeholder in value:
                if text is None:
                    return None  # {block_input} of a block that starts the network: the network input
                value = value.replace(placeholder, text)
        return value
    if isinstance(value, list):
        return [_substitute(v, replacements) for v in value]
    return value


def _expand(
    items: list[Any], path: str, problems: list[str], block_input: str | None
) -> list[tuple[str, dict[str, Any]]]:
    """Flatten repeat blocks into (path in file, layer mapping) pairs, in order."""
    out: list[tuple[str, dict[str, Any]]] = []
    for k, item in enumerate(items):
        where = f"{path}[{k}]"
        if not isinstance(item, dict):
            problems.append(f"{where}: a layer is a mapping with 'name' and 'op', got {item!r}")
            continue
        if "repeat" not in item:
            out.append((where, item))
            continue
        try:
            block = _RepeatModel.model_validate(item)
        except pydantic.ValidationError as exc:
            problems.extend(_problems(exc, where, _RepeatModel))
            continue
        if len(out) + block.repeat * len(block.layers) > limits.MAX_LAYERS:
            # checked before expanding: repeat: 100000000 must not build a hundred million layer mappings
            problems.append(f"{where}.repeat: {block.repeat:,} x {len(block.layers)} layers would make the network "
                            f"longer than the limit of {limits.MAX_LAYERS:,} layers (hfp8sim.limits.MAX_LAYERS)")
            continue
        for it in range(block.repeat):
            previous = out[-1][1].get("name") if out else block_input
            replacements = {"{" + block.index + "}": str(it), "{block_input}": previous}
            body = [_substitute_entry(entry, replacements) for entry in block.layers]
            out.extend(_expand(body, f"{where} (iteration {it}).layers", problems, previous))
            if len(out) > limits.MAX_LAYERS:  # nested blocks multiply: stop as soon as the total is too long
                problems.append(f"{where}: expands to more than the limit of {limits.MAX_LAYERS:,} layers "
                                "(hfp8sim.limits.MAX_LAYERS)")
                return out
    return out


def _substitute_entry(entry: Any, replacements: dict[str, str | None]) -> Any:
    """Fill placeholders in a layer's name and inputs; in a nested block, only the outer index (its own
    ``{block_input}`` belongs to the nested block)."""
    if not isinstance(entry, dict):
        return entry
    if "repeat" in entry:
        outer = {k: v for k, v in replacements.items() if k != "{block_input}"}
        layers = entry.get("layers")
        if isinstance(layers, list):
            return {**entry, "layers": [_substitute_entry(e, outer) for e in layers]}
        return entry
    return {key: _substitute(v, replacements) if key in ("name", "input", "inputs") else v for key, v in entry.items()}


def _validate_layer(
    where: str, entry: dict[str, Any], defaults: dict[str, dict[str, Any]], problems: list[str]
) -> _LayerModel | None:
    name = entry.get("name")
    label = f"{where} ({name})" if isinstance(name, str) and name else where
    op = entry.get("op")
    if op is None:
        problems.append(f"{label}: required key 'op' is missing; known ops: {', '.join(OPS)}")
        return None
    if op not in OP_SCHEMAS:
        close = difflib.get_close_matches(str(op), OPS, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        problems.append(f"{label}: unknown op {op!r}{hint}; known ops: {', '.join(OPS)}")
        return None
    if "input" in entry and "inputs" in entry:
        problems.append(f"{label}: give either 'input' or 'inputs', not both")
        return None
    merged = {**defaults.get(op, {}), **entry}
    schema = OP_SCHEMAS[op]
    try:
        return schema.model_validate(merged)
    except pydantic.ValidationError as exc:
        problems.extend(_problems(exc, label, schema))
        return None


# ------------------------------------------------------------------------------ building the layers


def inferred_fields(op: str, producer_shapes: list[Shape], axis: int = 1) -> dict[str, Any]:
    """The fields of an ``op`` layer that its inputs determine (empty when they cannot).

    Used by the loader to fill sizes left out, and by the writer to leave out sizes that would be
    inferred anyway.
    """
    if not producer_shapes:
        return {}
    shape = producer_shapes[0]
    if op in ("conv2d", "maxpool", "avgpool", "global_avgpool"):
        return dict(zip("NCHW", shape)) if len(shape) == 4 else {}
    if op in ELEMENTWISE_OPS or op in ("layernorm", "batchnorm", "lrn"):
        return {"shape": list(shape)}
    if op == "softmax":
        return {"rows": shape_elements(shape) // shape[-1], "cols": shape[-1]}
    if op == "concat":
        rank = len(shape)
        if not -rank <= axis < rank or any(len(s) != rank for s in producer_shapes):
            return {}
        out = list(shape)
        out[axis % rank] = sum(s[axis % rank] for s in producer_shapes)
        return {"shape": out}
    return {}


def _resolve_inputs(model: _LayerModel, previous: str | None) -> tuple[str | None, ...]:
    op = model.op
    if model.inputs is not None:
        return tuple(model.inputs)
    if "input" in model.model_fields_set:
        return (model.input,)
    # no input written: the previous layer, except where that would be a silent guess
    if op == "embedding":
        return ()
    if op in BINARY_OPS or op == "concat":
        raise WorkloadError(f"{op} needs 'inputs:' naming its operands (e.g. both branches of a residual add)")
    if op == "matmul" and model.a_role != "weight" and model.b_role != "weight":  # type: ignore[attr-defined]
        raise WorkloadError(
            "a matmul with two activation operands needs 'inputs: [a_producer, b_producer]' "
            "(null for an operand from outside the network)"
        )
    return (previous,)


def _fill(model: _LayerModel, fields: tuple[str, ...], inferred: dict[str, Any], inputs: tuple) -> dict:
    values = {}
    missing = []
    for key in fields:
        value = getattr(model, key)
        if value is None:
            value = inferred.get(key)
        if value is None and key == "N":
            value = 1
        if value is None:
            missing.append(key)
        values[key] = value
    if missing:
        why = (
            "it reads the network input"
            if not any(inputs)
            else f"they cannot be taken from its input {next(i for i in inputs if i)}"
        )
        raise WorkloadError(f"{', '.join(missing)} must be given: {why}")
    return values


def _build_layer(model: _LayerModel, previous: str | None, built: dict[str, Layer], all_names: set[str]) -> Layer:
    inputs = _resolve_inputs(model, previous)
    for producer in inputs:
        if producer is not None and producer not in built:
            if producer in all_names:
                raise WorkloadError(f"input {producer!r} is defined later; a layer must come after its inputs")
            close = difflib.get_close_matches(producer, sorted(built), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise WorkloadError(f"input {producer!r} is not a layer of this network{hint}")
    shapes = [built[p].output_shape for p in inputs if p is not None]
    common = {"name": model.name, "inputs": inputs, "pass_": model.pass_, "precision": model.precision}
    op = model.op
    axis = getattr(model, "axis", 1)
    inferred = inferred_fields(op, shapes, axis)
    if op == "conv2d":
        m: Any = model
        dims = _fill(model, ("N", "C", "H", "W"), inferred, inputs)
        return Conv2d(**common, **dims, K=m.K, R=m.R, S=m.S, stride=_tuple(m.stride), padding=_tuple(m.padding),
                      dilation=_tuple(m.dilation), groups=m.groups, convention=m.convention)  # fmt: skip
    if op == "matmul":
        m = model
        return MatMul(**common, M=m.M, N=m.N, K=m.K, batch=m.batch, a_role=m.a_role, b_role=m.b_role,
                      convention=m.convention)  # fmt: skip
    if op in ELEMENTWISE_OPS:
        return Elementwise(**common, kind=op, shape=tuple(_fill(model, ("shape",), inferred, inputs)["shape"]))
    if op in ("layernorm", "batchnorm", "lrn"):
        shape = tuple(_fill(model, ("shape",), inferred, inputs)["shape"])
        return Norm(**common, kind=op, shape=shape, size=getattr(model, "size", 1) if op == "lrn" else 1)
    if op == "softmax":
        return Softmax(**common, **_fill(model, ("rows", "cols"), inferred, inputs))
    if op in ("maxpool", "avgpool"):
        m = model
        dims = _fill(model, ("N", "C", "H", "W"), inferred, inputs)
        return Pool(**common, kind=op, **dims, R=m.R, S=m.S, stride=_tuple(m.stride), padding=_tuple(m.padding),
                    ceil_mode=m.ceil_mode)  # fmt: skip
    if op == "global_avgpool":
        return GlobalAvgPool(**common, **_fill(model, ("N", "C", "H", "W"), inferred, inputs))
    if op == "embedding":
        m = model
        return Embedding(**common, lookups=m.lookups, dim=m.dim, vocab=m.vocab)
    if op == "concat":
        shape = tuple(_fill(model, ("shape",), inferred, inputs)["shape"])
        return Concat(**common, shape=shape, axis=axis)
    if op == "reshape":
        return Reshape(**common, shape=tuple(model.shape))  # type: ignore[attr-defined]
    raise AssertionError(f"op {op!r} has a schema but no builder")


def _tuple(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value
