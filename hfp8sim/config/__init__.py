"""YAML loading and strict validation: format libraries now, arch configs later."""

from .formats_file import load_format_library
from .yaml_io import parse_yaml, read_yaml

__all__ = ["load_format_library", "parse_yaml", "read_yaml"]
