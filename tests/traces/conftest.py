"""The default arch, loaded once per test session (the real models are in tests/conftest.py)."""

from __future__ import annotations

import dataclasses

import pytest

from hfp8sim.config.arch import load_arch
from hfp8sim.io import default_arch_path
from hfp8sim.traces import arithmetic_for_arch


@pytest.fixture(scope="session")
def default_arch():
    return load_arch(default_arch_path())


@pytest.fixture(scope="session")
def single_product_arith(default_arch):
    """The default core's array and accumulators, one FP8 product per PE step (the datapath's fast kernel)."""
    return dataclasses.replace(arithmetic_for_arch(default_arch, 8), pair=False)

