"""A small sweep run once per session: tiny_cnn on the default core, 5 arrays x 3 dataflows x 2 schemes."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from hfp8sim.cli import main

SIZES = (8, 16, 32, 64, 128)
DATAFLOWS = ("os", "ws", "is")
SCHEMES = ("hfp8", "fp16")
WORKLOAD = "tiny_cnn"
GRID_ARGS = ["--array", ",".join(f"{n}x{n}" for n in SIZES), "--dataflow", ",".join(DATAFLOWS),
             "--scheme", ",".join(SCHEMES)]
N_POINTS = len(SIZES) * len(DATAFLOWS) * len(SCHEMES)


def read_rows(folder: Path) -> list[dict[str, str]]:
    with (Path(folder) / "points.csv").open(newline="") as handle:
        return list(csv.DictReader(handle))


def read_point(folder: Path, point_id: str) -> dict:
    return json.loads((Path(folder) / "points" / f"{point_id}.json").read_text())


@pytest.fixture(scope="session")
def local_sweep(tmp_path_factory) -> Path:
    """The grid run through the CLI in two local worker processes."""
    out = tmp_path_factory.mktemp("sweep") / "local"
    assert main(["sweep", "default", WORKLOAD, *GRID_ARGS, "--jobs", "2", "--out", str(out), "--no-progress"]) == 0
    return out
