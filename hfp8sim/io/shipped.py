"""The files hfp8sim ships, and the one rule that turns "a path, or a shipped name" into a file.

The shipped folders are ``arch_configs/`` and ``workloads/`` at the project root in a source checkout, or
inside the installed package (``hfp8sim/_data/...``, put there by the wheel build).  Arch configs, workloads,
technology (energy) tables and format libraries are all named the same way: a shipped name (the file stem,
e.g. ``resnet50`` or ``tech_7nm``) or a file path; :func:`resolve_shipped` is the only place that decides
which, and its error lists the shipped names of that kind.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..errors import ConfigError, WorkloadError

_PACKAGE = Path(__file__).resolve().parent.parent


def shipped_dir(kind: str) -> Path:
    """``kind`` is ``arch_configs`` or ``workloads``; the folder that holds the shipped files of that kind."""
    source_checkout = _PACKAGE.parent / kind
    if source_checkout.is_dir():
        return source_checkout
    return _PACKAGE / "_data" / kind


@dataclass(frozen=True)
class ShippedKind:
    """One kind of shipped file: where its files live and what a mistake in naming one raises."""

    noun: str  # in messages: "unknown {noun}", "{noun} file not found", "shipped {plural}: ..."
    plural: str
    root: str  # shipped_dir() kind
    subfolder: str = ""  # below the root
    recursive: bool = False  # also files in subfolders (arch configs: array_sizes/...)
    exclude: frozenset[str] = frozenset()  # subfolders that hold another kind (recursive only)
    error: type[ConfigError] = ConfigError

    @property
    def folder(self) -> Path:
        root = shipped_dir(self.root)
        return root / self.subfolder if self.subfolder else root

    def files(self) -> dict[str, Path]:
        """The shipped files of this kind by name (file stem), sorted by path."""
        folder = self.folder
        if not folder.is_dir():
            return {}
        found = folder.rglob("*.yaml") if self.recursive else folder.glob("*.yaml")
        return {p.stem: p for p in sorted(found) if not self.exclude & set(p.relative_to(folder).parts)}


ARCH_CONFIGS = ShippedKind("arch config", "arch configs", "arch_configs", recursive=True,
                           exclude=frozenset({"formats", "tech"}))
WORKLOADS = ShippedKind("workload", "workloads", "workloads", error=WorkloadError)
TECH_TABLES = ShippedKind("tech table", "tech tables", "arch_configs", subfolder="tech")
FORMAT_LIBRARIES = ShippedKind("format library", "format libraries", "arch_configs", subfolder="formats")


def resolve_shipped(name_or_path: str | Path, kind: ShippedKind) -> str | Path:
    """The file of a shipped name of ``kind`` (checked first), or an existing path.

    A path is returned as given (not normalised), so messages and result files name the file as the user
    wrote it.

    Anything else raises ``kind.error`` naming what was given and listing the shipped names; a text that
    looks like a path (has a suffix or a slash) is reported as a missing file, anything else as an unknown
    name.  Reading the file (and reporting a folder given as a file) is the YAML reader's job.
    """
    text = str(name_or_path)
    shipped = kind.files()
    if text in shipped:
        return shipped[text]
    path = Path(text)
    if path.exists():
        return name_or_path
    looks_like_path = path.suffix != "" or "/" in text or "\\" in text
    what = f"{kind.noun} file not found" if looks_like_path else f"unknown {kind.noun}"
    names = ", ".join(shipped) or f"(none found in {kind.folder})"
    raise kind.error(f"{what}; shipped {kind.plural}: {names}", file=text)


def default_arch_path() -> Path:
    return ARCH_CONFIGS.folder / "default.yaml"


def shipped_arch_configs() -> dict[str, Path]:
    """Shipped arch configs by name (file stem); format libraries and technology (energy) files excluded."""
    return ARCH_CONFIGS.files()
