"""Shared fixtures.  Tests run from a clean checkout: paths are resolved from this file."""

from __future__ import annotations

from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[1]
SHARED = PROJECT_ROOT.parent / "shared"


@pytest.fixture
def project_root() -> Path:
    return PROJECT_ROOT
