"""The schemas of the user's configuration files, strictly validated: arch configs (:mod:`.arch`), format
libraries (:mod:`.formats_file`).  Reading the YAML itself is :mod:`hfp8sim.io`'s job."""

from .formats_file import load_format_library, read_format_library, register_format_library

__all__ = ["load_format_library", "read_format_library", "register_format_library"]
