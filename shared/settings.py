"""Settings: the one reader of the environment, validated once into a frozen object."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping

from shared.core.errors import ConfigError

DEFAULTS: dict[str, str] = {
    "FOOTPRINT_STORE": "sqlite:///footprint.db",
    "FOOTPRINT_CONFIG": "",
    "FOOTPRINT_STORAGE": "",
    "FOOTPRINT_CONTAINER": "exports",
    "FOOTPRINT_PREFIX": "",
    "FOOTPRINT_TABLE_PREFIX": "footprint",
    "FOOTPRINT_MAX_ATTEMPTS": "5",
    "FOOTPRINT_RETRY_BASE_SECONDS": "30",
    "FOOTPRINT_LEASE_SECONDS": "60",
    "FOOTPRINT_RECONCILE_SCHEDULE": "0 */5 * * * *",
    "FOOTPRINT_RECONCILE_BUDGET_SECONDS": "240",
    "FOOTPRINT_MAX_ROW_BYTES": str(16 * 1024 * 1024),
    "FOOTPRINT_MAX_FILE_BYTES": str(2 * 1024**3),
    "FOOTPRINT_BATCH_SIZE": "5000",
    "FOOTPRINT_MAX_REJECTS_PER_FILE": "10000",
    "FOOTPRINT_READ_IN_CHILD_BYTES": str(4 * 1024 * 1024),
    "FOOTPRINT_EXPORT_SCHEDULE": "0 0 3 * * *",
    "FOOTPRINT_EXPORT_TARGET": "",
    "FOOTPRINT_SEGMENT_QUEUE": "",
    # The key `footprint serve` and `footprint dev` want on the API routes; unset: none.
    "FOOTPRINT_HTTP_KEY": "",
    # The salt of erasure suppressions; unset: one generated on first use, kept in the store.
    "FOOTPRINT_ERASURE_SALT": "",
}


@dataclasses.dataclass(frozen=True)
class Settings:
    store: str
    config_path: str
    storage_connection: str
    container: str
    prefix: str
    table_prefix: str
    max_attempts: int
    retry_base_seconds: float
    lease_seconds: float  # how long a claim holds unless its worker renews it
    reconcile_schedule: str
    reconcile_budget_seconds: float
    max_row_bytes: int
    max_file_bytes: int
    batch_size: int
    max_rejects_per_file: int
    read_in_child_bytes: int  # 0: never (see shared/core/forked.py)
    export_target: str = ""  # where the export timer writes; none when empty
    segment_queue: str = ""  # the Storage queue membership changes are put on; none when empty
    http_key: str = ""
    erasure_salt: str = ""  # empty: the store's own (generated on first use)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        raw = {name: env.get(name, default).strip() for name, default in DEFAULTS.items()}
        # The Functions host's own storage is the default place for exports and tables.
        storage = raw["FOOTPRINT_STORAGE"] or env.get("AzureWebJobsStorage", "").strip()
        return cls(
            store=raw["FOOTPRINT_STORE"] or DEFAULTS["FOOTPRINT_STORE"],
            config_path=raw["FOOTPRINT_CONFIG"],
            storage_connection=storage,
            container=raw["FOOTPRINT_CONTAINER"],
            prefix=raw["FOOTPRINT_PREFIX"].strip("/"),
            table_prefix=_table_prefix(raw["FOOTPRINT_TABLE_PREFIX"]),
            max_attempts=_number(raw, "FOOTPRINT_MAX_ATTEMPTS", int, 1, 100),
            retry_base_seconds=_number(raw, "FOOTPRINT_RETRY_BASE_SECONDS", float, 0, 3600),
            lease_seconds=_number(raw, "FOOTPRINT_LEASE_SECONDS", float, 3, 3600),
            reconcile_schedule=raw["FOOTPRINT_RECONCILE_SCHEDULE"],
            reconcile_budget_seconds=_number(
                raw, "FOOTPRINT_RECONCILE_BUDGET_SECONDS", float, 1, 3600
            ),
            max_row_bytes=_number(raw, "FOOTPRINT_MAX_ROW_BYTES", int, 1024, 1024**3),
            max_file_bytes=_number(raw, "FOOTPRINT_MAX_FILE_BYTES", int, 1, 1024**4),
            batch_size=_number(raw, "FOOTPRINT_BATCH_SIZE", int, 1, 100_000),
            max_rejects_per_file=_number(raw, "FOOTPRINT_MAX_REJECTS_PER_FILE", int, 1, 10**9),
            read_in_child_bytes=_number(raw, "FOOTPRINT_READ_IN_CHILD_BYTES", int, 0, 1024**4),
            export_target=raw["FOOTPRINT_EXPORT_TARGET"],
            segment_queue=_queue_name(raw["FOOTPRINT_SEGMENT_QUEUE"]),
            http_key=raw["FOOTPRINT_HTTP_KEY"],
            erasure_salt=_salt(raw["FOOTPRINT_ERASURE_SALT"]),
        )


def _number(raw: Mapping[str, str], name: str, kind: type, low: float, high: float):  # type: ignore[no-untyped-def]
    try:
        value = kind(raw[name])
    except ValueError:
        raise ConfigError(f"setting {name}: {raw[name]!r} is not a number") from None
    if not low <= value <= high:
        raise ConfigError(f"setting {name}: {value} is outside {low}..{high}")
    return value


def _salt(value: str) -> str:
    # A short salt makes the hashes of ids easy to guess back: as long as a generated one.
    if value and len(value) < 32:
        raise ConfigError(f"setting FOOTPRINT_ERASURE_SALT: {len(value)} characters, want at least 32")
    return value


def _table_prefix(value: str) -> str:
    if not (value.isalnum() and value[:1].isalpha() and len(value) <= 40):
        raise ConfigError(f"setting FOOTPRINT_TABLE_PREFIX: {value!r} must be letters and digits")
    return value


def _queue_name(value: str) -> str:
    # Storage's rule for queue names: 3-63 lowercase letters, digits and single hyphens.
    if value and not (3 <= len(value) <= 63 and value.replace("-", "").isalnum() and value.islower()
                      and value[0] != "-" and value[-1] != "-" and "--" not in value):
        raise ConfigError(f"setting FOOTPRINT_SEGMENT_QUEUE: {value!r} is not a queue name "
                          "(3-63 lowercase letters, digits and hyphens)")
    return value
