"""Reading YAML with located errors, and turning pydantic validation errors into one ConfigError.

Every problem in a file is reported at once, each as ``key.path: what is wrong``, so a user fixes a
config in one pass instead of one error per run.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pydantic
import yaml

from .. import limits
from ..errors import ConfigError


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate keys (a silent overwrite hides typos), documents nested deeper than
    ``limits.MAX_YAML_DEPTH`` (PyYAML composes recursively: a few thousand nested lists end in RecursionError)
    and documents that expand, aliases followed, to more than ``limits.MAX_YAML_NODES`` nodes (an alias bomb
    is small on disk and in the node graph, but any code that walks it, a JSON dump or a deep copy, expands
    it exponentially)."""

    _depth = 0

    def compose_node(self, parent, index):  # type: ignore[override]
        self._depth += 1
        try:
            if self._depth > limits.MAX_YAML_DEPTH:
                raise yaml.composer.ComposerError(
                    None, None, f"nested deeper than {limits.MAX_YAML_DEPTH} levels (the limit of "
                    "hfp8sim.limits.MAX_YAML_DEPTH)", self.peek_event().start_mark)
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def get_single_node(self):  # type: ignore[override]
        node = super().get_single_node()
        if node is not None:
            _check_expanded_size(node)
        return node


def _check_expanded_size(root: yaml.Node) -> None:
    """Count the nodes of ``root`` with aliases expanded, without expanding them: a node shared by several
    aliases is counted once per use from its memoised size.  Depth is already bounded by the composer, so
    plain recursion is safe."""
    sizes: dict[int, int] = {}

    def size(node: yaml.Node) -> int:
        known = sizes.get(id(node))
        if known is not None:
            return known
        total = 1
        if isinstance(node, yaml.SequenceNode):
            total += sum(size(child) for child in node.value)
        elif isinstance(node, yaml.MappingNode):
            total += sum(size(key) + size(value) for key, value in node.value)
        sizes[id(node)] = total
        return total

    if size(root) > limits.MAX_YAML_NODES:
        raise yaml.composer.ComposerError(
            None, None, f"expands (aliases followed) to {size(root):,} nodes, more than the limit of "
            f"{limits.MAX_YAML_NODES:,} (hfp8sim.limits.MAX_YAML_NODES); an alias bomb?", root.start_mark)


def _construct_mapping(loader: _StrictLoader, node: yaml.MappingNode, deep: bool = False) -> dict:
    mapping: dict = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in mapping:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}", key_node.start_mark
            )
        mapping[key] = loader.construct_object(value_node, deep=deep)
    return mapping


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def read_yaml(path: str | Path, what: str = "file") -> Any:
    """Parse a YAML file; a missing file or a syntax error becomes a ConfigError naming the file.

    ``what`` names the kind of file in the not-found message (e.g. "workload file")."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"{what} not found" if not p.exists() else "not a file", file=str(path))
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read: {exc}", file=str(path)) from None
    return parse_yaml(text, str(path))


def parse_yaml(text: str, source: str = "<string>") -> Any:
    try:
        return yaml.load(text, Loader=_StrictLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(f"{where}invalid YAML: {problem}", file=source) from None


def _describe(error: dict) -> str:
    kind = error["type"]
    if kind == "extra_forbidden":
        return "unknown key"
    if kind == "missing":
        return "required key is missing"
    msg = error["msg"]
    return msg[0].lower() + msg[1:] if msg else kind


def validation_error(exc: pydantic.ValidationError, file: str | None, prefix: str = "") -> ConfigError:
    """One ConfigError listing every problem of a pydantic validation, each with its key path."""
    problems = []
    for error in exc.errors():
        path = ".".join(str(part) for part in (prefix, *error["loc"]) if part != "")
        problems.append(f"{path or '(top level)'}: {_describe(error)}")
    message = problems[0] if len(problems) == 1 else f"{len(problems)} problems: " + "; ".join(problems)
    return ConfigError(message, file=file)
