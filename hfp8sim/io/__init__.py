"""The ground floor: reading YAML files with located errors, and finding shipped files by name.

Everything that reads a user's file (arch configs, workloads, tech tables, format libraries) goes through
here, so a missing file, a YAML typo or an unknown shipped name reads the same everywhere.  It imports only
:mod:`hfp8sim.errors`.
"""

from .shipped import (
    ARCH_CONFIGS, FORMAT_LIBRARIES, TECH_TABLES, WORKLOADS, ShippedKind, default_arch_path, resolve_shipped,
    shipped_arch_configs, shipped_dir,
)
from .yaml_files import parse_yaml, read_yaml, validation_error

__all__ = [
    "ARCH_CONFIGS", "FORMAT_LIBRARIES", "TECH_TABLES", "WORKLOADS", "ShippedKind", "default_arch_path",
    "parse_yaml", "read_yaml", "resolve_shipped", "shipped_arch_configs", "shipped_dir", "validation_error",
]
