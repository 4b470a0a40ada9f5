"""Regenerate the shipped workload files: ``python workloads/generate.py [--check]``.

The files are written by :mod:`hfp8sim.workloads.builders` (see its docstring); this script is a shortcut
that lives beside them.
"""

import sys

from hfp8sim.workloads.builders import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
