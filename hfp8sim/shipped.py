"""Where the shipped data folders are: ``arch_configs/`` and ``workloads/`` at the project root in a source
checkout, or inside the installed package (``hfp8sim/_data/...``, put there by the wheel build)."""

from __future__ import annotations

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent


def shipped_dir(kind: str) -> Path:
    """``kind`` is ``arch_configs`` or ``workloads``; the folder that holds the shipped files of that kind."""
    source_checkout = _PACKAGE.parent / kind
    if source_checkout.is_dir():
        return source_checkout
    return _PACKAGE / "_data" / kind


def default_arch_path() -> Path:
    return shipped_dir("arch_configs") / "default.yaml"


def shipped_arch_configs() -> dict[str, Path]:
    """Shipped arch configs by name (file stem); format libraries and technology (energy) files excluded."""
    root = shipped_dir("arch_configs")
    return {p.stem: p for p in sorted(root.rglob("*.yaml")) if not {"formats", "tech"} & set(p.relative_to(root).parts)}
