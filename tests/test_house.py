"""Rules of the house that a tool checks: no function of the package over 60 lines without a reason."""

from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _tool(name: str):
    """A script of ``tools/`` as a module (tools/ is not a package)."""
    spec = importlib.util.spec_from_file_location(name, ROOT / "tools" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_no_function_over_60_lines_without_a_stated_reason():
    found = _tool("long_functions").long_functions(60)
    listing = "; ".join(f"{file}:{line} {name} ({length} lines)" for file, line, name, length in found)
    assert found == [], f"split these, or say 'Long because ...' in their docstrings: {listing}"


def test_the_tool_finds_a_long_function_without_a_reason(tmp_path, monkeypatch):
    # the check above passes vacuously if the tool looks in the wrong place or never measures: show it can fail
    tool = _tool("long_functions")
    body = "\n".join(f"    x{i} = {i}" for i in range(61))
    package = tmp_path / "hfp8sim"
    package.mkdir()
    (package / "m.py").write_text(f'def long():\n    """No reason."""\n{body}\n\n\n'
                                  f'def justified():\n    """Long because it must be."""\n{body}\n')
    monkeypatch.setattr(tool, "ROOT", tmp_path)
    assert tool.long_functions(60) == [("hfp8sim/m.py", 1, "long", 63)]
