"""Writing workloads as YAML: a :class:`Network` back to the file format, one layer per line.

``save_workload(import_onnx("model.onnx"), "model.yaml")`` turns an imported graph into a file a user can
read, edit and load again; ``load_workload`` of the written file gives an equal network.
"""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import yaml

from .layers import Layer
from .load import inferred_fields
from .network import Network


class Comment(str):
    """A comment line among the layers of a workload file (written as ``# text``)."""


def layer_to_data(layer: Layer, previous: str | None, shapes: dict[str, tuple[int, ...]]) -> dict[str, Any]:
    """One layer as a YAML mapping, leaving out what the loader would infer or default to."""
    op = layer.op_name
    data: dict[str, Any] = {"name": layer.name, "op": op}
    if layer.inputs != layer.default_inputs(previous):
        if len(layer.inputs) == 1:
            data["input"] = layer.inputs[0]
        else:
            data["inputs"] = list(layer.inputs)
    if layer.pass_ != "forward":
        data["pass"] = layer.pass_
    if layer.precision:
        data["precision"] = layer.precision
    producer_shapes = [shapes[p] for p in layer.inputs if p is not None and p in shapes]
    inferred = inferred_fields(op, producer_shapes, getattr(layer, "axis", 1))
    for key, value, default, inferable in layer.yaml_fields():
        if value == default or (inferable and inferred.get(key) == value):
            continue
        data[key] = value
    return data


def network_to_data(network: Network) -> dict[str, Any]:
    """A network as workload-file data (``load.parse_workload`` of it gives an equal network)."""
    shapes: dict[str, tuple[int, ...]] = {}
    layers = []
    previous = None
    for layer in network.layers:
        layers.append(layer_to_data(layer, previous, shapes))
        shapes[layer.name] = layer.output_shape
        previous = layer.name
    data: dict[str, Any] = {"name": network.name}
    if network.source:
        data["source"] = network.source
    if network.notes:
        data["notes"] = network.notes
    if not network.fold_batch_norms:
        data["fold_batch_norms"] = False
    data["layers"] = layers
    return data


def _scalar(value: Any) -> str:
    return yaml.safe_dump(value, default_flow_style=True, sort_keys=False, width=1 << 30).strip().removesuffix(
        "\n..."
    ).removesuffix("...").strip()


def _text_field(key: str, text: str, width: int = 110) -> str:
    """A text field: one line if short; folded (``>-``, loads back as the same single line) if long; a
    literal block (``|``) if it has line breaks of its own."""
    text = text.strip()
    if "\n" in text:
        body = "".join(f"  {line}\n" if line else "\n" for line in text.splitlines())
        return f"{key}: |\n{body}"
    folded = textwrap.wrap(text, width, break_long_words=False, break_on_hyphens=False)
    if len(text) <= width or " ".join(folded) != text or text.startswith(("#", " ")):
        return f"{key}: {_scalar(text)}\n"
    return f"{key}: >-\n" + "".join(f"  {line}\n" for line in folded)


def _layers_text(items: list[Any], indent: int) -> str:
    pad = " " * indent
    out = []
    for item in items:
        if isinstance(item, Comment):
            out.append(f"{pad}# {item}\n" if item else "\n")
        elif isinstance(item, dict) and "repeat" in item:
            out.append(f"{pad}- repeat: {item['repeat']}\n")
            if "index" in item:
                out.append(f"{pad}  index: {item['index']}\n")
            out.append(f"{pad}  layers:\n")
            out.append(_layers_text(item["layers"], indent + 4))
        else:
            out.append(f"{pad}- {_scalar(item)}\n")
    return "".join(out)


def format_workload(data: dict[str, Any], header: str = "") -> str:
    """Workload data as YAML text: one flow mapping per layer, repeat blocks and comments kept.

    ``header`` becomes comment lines at the top of the file.
    """
    out = [f"# {line}\n" if line else "#\n" for line in header.strip().splitlines()]
    if out:
        out.append("\n")
    out.append(f"name: {_scalar(data['name'])}\n")
    for key in ("source", "notes"):
        if data.get(key):
            out.append(_text_field(key, data[key]))
    if "fold_batch_norms" in data:
        out.append(f"fold_batch_norms: {_scalar(data['fold_batch_norms'])}\n")
    if data.get("defaults"):
        out.append("defaults:\n")
        for op, fields in data["defaults"].items():
            out.append(f"  {op}: {_scalar(fields)}\n")
    out.append("layers:\n")
    out.append(_layers_text(data["layers"], 2))
    return "".join(out)


def save_workload(network: Network, path: str | Path, header: str = "") -> Path:
    """Write ``network`` as a YAML workload file (see :func:`format_workload`); returns the path."""
    p = Path(path)
    p.write_text(format_workload(network_to_data(network), header), encoding="utf-8")
    return p
