"""The structure refactor changed no output: the CLI jobs of ``tools/golden_outputs.py`` write files whose
fingerprints equal those recorded on the commit before it (``tests/golden/outputs.json``).

A deliberate change of results regenerates the manifest (``python tools/golden_outputs.py DIR --write``) in
the same commit, which says why the numbers moved.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _tool():
    spec = importlib.util.spec_from_file_location("golden_outputs", ROOT / "tools" / "golden_outputs.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_cli_outputs_are_byte_identical_to_the_recorded_ones(tmp_path):
    tool = _tool()
    manifest = json.loads(tool.MANIFEST.read_text())
    assert [list(j) for j in tool.JOBS] == manifest["jobs"], "the job list changed: regenerate the manifest"
    tool.run_jobs(tmp_path)
    got = tool.fingerprint(tmp_path)
    expected = manifest["files"]
    assert sorted(got) == sorted(expected), "different files were written"
    changed = [name for name in expected if got[name] != expected[name]]
    assert not changed, f"outputs differ from commit {manifest['commit'][:10]}: {changed}"
