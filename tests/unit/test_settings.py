"""Settings read from the environment: defaults, bounds, and what reaches the ingest options."""

from __future__ import annotations

import pytest

from shared import bootstrap
from shared.core.errors import ConfigError
from shared.settings import Settings


def test_the_reject_cap_and_file_limit_reach_the_ingest_options() -> None:
    assert Settings.from_env({}).max_rejects_per_file == 10_000
    env = {"FOOTPRINT_MAX_REJECTS_PER_FILE": "50", "FOOTPRINT_MAX_FILE_BYTES": "4096"}
    options = bootstrap.ingest_options(Settings.from_env(env))
    assert options.max_rejects_per_file == 50
    assert options.limits.max_file_bytes == 4096
    assert options.metadata is not None


@pytest.mark.parametrize("value", ["0", "many", "-3"])
def test_a_bad_reject_cap_names_the_setting(value: str) -> None:
    with pytest.raises(ConfigError, match="FOOTPRINT_MAX_REJECTS_PER_FILE"):
        Settings.from_env({"FOOTPRINT_MAX_REJECTS_PER_FILE": value})
