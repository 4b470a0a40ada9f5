"""List the functions of the package longer than a limit whose docstring does not say why.

    python tools/long_functions.py [--limit 60]

A function over the limit passes when its docstring contains "Long because" (the reason).  Exit status 1
when any function fails; ``tests/test_house.py`` runs it.
"""

from __future__ import annotations

import argparse
import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
REASON = "Long because"


def long_functions(limit: int = 60) -> list[tuple[str, int, str, int]]:
    """(file, line, name, length) of every function over ``limit`` lines without a stated reason."""
    found = []
    for path in sorted((ROOT / "hfp8sim").rglob("*.py")):
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = node.end_lineno - node.lineno + 1
                if length > limit and REASON not in (ast.get_docstring(node) or ""):
                    found.append((str(path.relative_to(ROOT)), node.lineno, node.name, length))
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=60)
    args = parser.parse_args()
    found = long_functions(args.limit)
    for file, line, name, length in found:
        print(f"{file}:{line}: {name} is {length} lines")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
