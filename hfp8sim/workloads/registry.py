"""The workloads shipped with hfp8sim (``workloads/*.yaml`` at the project root), found by name."""

from __future__ import annotations

from pathlib import Path

from ..errors import WorkloadError
from ..shipped import shipped_dir

SHIPPED_DIR = shipped_dir("workloads")
"""Where the shipped workload files live: ``workloads/`` at the root of a source checkout (or the copy an
installed wheel carries)."""


def shipped_workloads() -> dict[str, Path]:
    """Shipped workload files by name (the file stem, e.g. ``resnet50``), sorted by name."""
    if not SHIPPED_DIR.is_dir():
        return {}
    return {p.stem: p for p in sorted(SHIPPED_DIR.glob("*.yaml"))}


def resolve_workload(name_or_path: str | Path) -> Path:
    """The file of a shipped workload name (``resnet50``) or an existing file path.

    Anything else raises a WorkloadError listing the shipped names.
    """
    text = str(name_or_path)
    shipped = shipped_workloads()
    if text in shipped:
        return shipped[text]
    path = Path(text)
    if path.is_file():
        return path
    looks_like_path = path.suffix != "" or "/" in text or "\\" in text
    what = "workload file not found" if looks_like_path else "unknown workload"
    names = ", ".join(shipped) or "(none found in " + str(SHIPPED_DIR) + ")"
    raise WorkloadError(f"{what}; shipped workloads: {names}", file=text)
