"""Fixtures shared by every test folder."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, settings

from tests.azurite import Azurite, AzuriteNames

# No property may fail for being slow: a loaded machine runs an example many times slower.
settings.register_profile("footprint", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("footprint")


@pytest.fixture(scope="session")
def azurite() -> Iterator[Azurite]:
    """One emulator for the whole session, started only if some test asks for it."""
    emulator = Azurite()
    yield emulator
    emulator.close()


@pytest.fixture
def azurite_names() -> AzuriteNames:
    """A container name and table prefix of this test alone, so tests never share data."""
    return AzuriteNames.fresh()
