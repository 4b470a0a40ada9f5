"""Real models are loaded once per test session: reading and validating the weights takes about a second each."""

from __future__ import annotations

import pytest

from hfp8sim.networks import load_efficientnet_lite0, load_minilm, real_photos


@pytest.fixture(scope="session")
def minilm():
    return load_minilm()


@pytest.fixture(scope="session")
def efficientnet():
    return load_efficientnet_lite0()


@pytest.fixture(scope="session")
def photos():
    return real_photos()
