"""Fixtures: the ONNX graphs that ship inside the onnx wheel, and SCALE-Sim's example topologies."""

from __future__ import annotations

from pathlib import Path

import onnx
import pytest

DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="session")
def light_models() -> Path:
    """``onnx/backend/test/data/light``: real model-zoo topologies with dummy weights (shapes are exact)."""
    return Path(onnx.__file__).parent / "backend" / "test" / "data" / "light"


@pytest.fixture(scope="session")
def scalesim_topologies() -> Path:
    return DATA / "scalesim"
