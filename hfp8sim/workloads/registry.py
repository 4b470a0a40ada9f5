"""The workloads shipped with hfp8sim (``workloads/*.yaml`` at the project root), found by name."""

from __future__ import annotations

from pathlib import Path

from ..io import WORKLOADS, resolve_shipped

SHIPPED_DIR = WORKLOADS.folder
"""Where the shipped workload files live: ``workloads/`` at the root of a source checkout (or the copy an
installed wheel carries)."""


def shipped_workloads() -> dict[str, Path]:
    """Shipped workload files by name (the file stem, e.g. ``resnet50``), sorted by name."""
    return WORKLOADS.files()


def resolve_workload(name_or_path: str | Path) -> Path:
    """The file of a shipped workload name (``resnet50``) or an existing file path.

    Anything else raises a WorkloadError listing the shipped names.
    """
    return Path(resolve_shipped(name_or_path, WORKLOADS))
