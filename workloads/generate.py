"""Regenerate the shipped workload files: ``python workloads/generate.py [--check]``.

The files are written by the builders in ``tools/workload_builders.py`` (see its docstring), a development
tool kept out of the installed package; this script, beside the files, is the one command that runs them.
"""

import importlib.util
import sys
from pathlib import Path

BUILDERS_FILE = Path(__file__).resolve().parents[1] / "tools" / "workload_builders.py"


def load_builders():
    """The builders module, loaded from its file (``tools/`` is not a package)."""
    spec = importlib.util.spec_from_file_location("workload_builders", BUILDERS_FILE)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the file runs
    spec.loader.exec_module(module)
    return module


if __name__ == "__main__":
    sys.exit(load_builders().main(sys.argv[1:]))
