"""``run --out D`` killed with SIGKILL at random moments leaves in D either the previous complete run or the new
complete run, never a mix (issue 12): results are written into a staging folder beside D and swapped in
whole.  The moments are drawn by a seeded RNG over the measured duration of an uninterrupted run, so the same
moments are tried on every machine relative to its speed."""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from hfp8sim.cli import main
from hfp8sim.results import run_ids_by_file

ROOT = Path(__file__).resolve().parents[2]
SINGLE = ["run", "default", "tiny_mlp", "--layers", "0"]
COMPARE = ["run", "default", "tiny_cnn", "--compare", "hfp8,fp16", "--layers", "0"]
KILLS_PER_DIRECTION = 4


def _start(argv: list[str], out: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "hfp8sim.cli", *argv, "--out", str(out)], cwd=out.parent,
                            env=dict(os.environ, PYTHONPATH=str(ROOT)), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)


def _tree(folder: Path) -> dict[str, bytes]:
    """Every file below ``folder`` with its bytes (runs are deterministic: the same run gives the same bytes)."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def references(tmp_path_factory) -> dict[str, tuple[Path, float]]:
    """Each run done once, uninterrupted, with its wall time."""
    folder = tmp_path_factory.mktemp("kill_references")
    done = {}
    for name, argv in (("single", SINGLE), ("compare", COMPARE)):
        start = time.monotonic()
        proc = _start(argv, folder / name)
        assert proc.wait(timeout=120) == 0
        done[name] = (folder / name, time.monotonic() - start)
    single, compare = _tree(done["single"][0]), _tree(done["compare"][0])
    assert set(single) == {"layers.csv", "summary.json"}
    assert set(compare) == {"hfp8/layers.csv", "hfp8/summary.json", "fp16/layers.csv", "fp16/summary.json"}
    return done


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="SIGKILL and renameat2: Linux")
@pytest.mark.parametrize("old, new", [("compare", "single"), ("single", "compare")])
def test_a_killed_run_leaves_the_previous_or_the_new_complete_result(tmp_path, references, old, new):
    old_folder, _ = references[old]
    new_folder, duration = references[new]
    old_tree, new_tree = _tree(old_folder), _tree(new_folder)
    rng = random.Random(f"{old}->{new}")
    out = tmp_path / "D"
    outcomes = []
    for _ in range(KILLS_PER_DIRECTION):
        shutil.rmtree(out, ignore_errors=True)
        shutil.copytree(old_folder, out)  # the previous complete result
        proc = _start(SINGLE if new == "single" else COMPARE, out)
        time.sleep(rng.uniform(0, duration))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        tree = _tree(out)
        assert tree in (old_tree, new_tree), f"D mixes runs or holds part of one: {sorted(tree)}"
        ids = run_ids_by_file(out)
        assert len(set(ids.values())) == 1 and None not in ids.values(), ids  # one run id in every file
        outcomes.append("new" if tree == new_tree else "old")
        # nothing but D and hidden staging folders of killed runs beside it
        assert {p.name for p in tmp_path.iterdir() if not p.name.startswith(".D.partial-")} == {"D"}
    print(f"{old} -> {new}: killed at random moments, D held {outcomes}")  # shown with -s
    # a run left to finish replaces D whole, and clears the staging folders killed runs left behind
    assert _start(SINGLE if new == "single" else COMPARE, out).wait(timeout=120) == 0
    assert _tree(out) == new_tree
    assert [p.name for p in tmp_path.iterdir()] == ["D"], outcomes


def test_a_failure_while_writing_leaves_the_previous_result_and_no_staging(tmp_path, monkeypatch):
    """The deterministic form of a kill between two schemes' files: the second scheme's write fails."""
    from hfp8sim.results import NetworkResult

    out = tmp_path / "D"
    assert main([*SINGLE, "--out", str(out)]) == 0
    before = _tree(out)
    real_write, written = NetworkResult.write, []

    def write(self, folder, **kwargs):
        if written:
            raise OSError("disk full")  # after the first scheme's files are complete
        written.append(folder)
        return real_write(self, folder, **kwargs)

    monkeypatch.setattr(NetworkResult, "write", write)
    with pytest.raises(OSError, match="disk full"):
        main([*COMPARE, "--out", str(out)])
    assert written and _tree(out) == before
    assert [p.name for p in tmp_path.iterdir()] == ["D"]


def test_a_single_run_after_a_comparison_leaves_no_stale_scheme_folders(tmp_path, capsys):
    out = tmp_path / "D"
    assert main([*COMPARE, "--out", str(out)]) == 0
    assert main([*SINGLE, "--out", str(out)]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["layers.csv", "summary.json"]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["summary"]["workload"] == "tiny_mlp" and set(run_ids_by_file(out).values()) == {summary["run_id"]}
