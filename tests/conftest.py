"""Shared fixtures.  Tests run from a clean checkout with nothing beside it: every path is resolved from this
file and stays inside the repository (reference data the tests need is copied under ``tests/``, each folder
with a README saying where it came from)."""

from __future__ import annotations

from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[1]
# SCALE-Sim's example topologies and the independent layer-shape tables (see the READMEs there)
WORKLOAD_DATA = PROJECT_ROOT / "tests" / "workloads" / "data"


@pytest.fixture
def project_root() -> Path:
    return PROJECT_ROOT


# Real models are loaded once per test session (reading and checking the weights takes about a second each),
# shared by tests/networks and tests/traces.
@pytest.fixture(scope="session")
def minilm():
    from hfp8sim.networks import load_minilm

    return load_minilm()


@pytest.fixture(scope="session")
def efficientnet():
    from hfp8sim.networks import load_efficientnet_lite0

    return load_efficientnet_lite0()


@pytest.fixture(scope="session")
def photos():
    from hfp8sim.networks import real_photos

    return real_photos()


@pytest.fixture(autouse=True)
def _format_registry_restored():
    """Each test sees the registry of formats and schemes as it was before it: loading a format library
    registers names globally, and a test that does so must not change what later tests print or resolve."""
    from hfp8sim.formats import spec

    formats, schemes = dict(spec._formats), dict(spec._schemes)
    yield
    spec._formats.clear()
    spec._formats.update(formats)
    spec._schemes.clear()
    spec._schemes.update(schemes)
