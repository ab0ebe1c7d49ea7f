"""Builds adapters from settings: stores chosen by URL, imported lazily, one per worker."""

from __future__ import annotations

import dataclasses
import functools
import importlib
import importlib.resources
import logging
import weakref
from pathlib import Path
from typing import Any

from shared.core.audiences.evaluator import Audiences
from shared.core.audiences.touched import FileUpkeep
from shared.core.cdm.catalog import MetadataCache
from shared.core.config import Config, parse_config
from shared.core.erasure.suppressions import SettingSalt
from shared.core.errors import ConfigError
from shared.core.export.folder import ExportTarget
from shared.core.export.profiles import AudienceExport
from shared.core.ingest.service import IngestOptions, Ports
from shared.core.ports import (
    AudienceStore,
    ChangeQueue,
    ErasureStore,
    FileSource,
    Ledger,
    ProfileStore,
)
from shared.core.reading.records import Limits
from shared.settings import Settings

log = logging.getLogger(__name__)

STORE_URLS = "sqlite:///PATH.db, memory:, azure-tables:"


def load_config(path: str | None) -> Config:
    """The configuration file at `path`, or the defaults shipped with the app."""
    if not path:
        data = importlib.resources.files("shared").joinpath("default_config.json").read_bytes()
        return parse_config(data, "default config")
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from None
    return parse_config(data, path)


def open_store(
    url: str, settings: Settings, config: Config | None = None, *, create: bool = False
) -> tuple[ProfileStore, Ledger]:
    """The profile store and ledger a store URL names; with `config`, its reads settle visitor
    conflicts as the config's onConflict says. Only what loads files (ingest, reconcile, demo,
    the Functions app) may `create` one; for anything else a SQLite file that does not exist is
    refused rather than made, as a mistyped path would read as an empty store."""
    store, ledger = _open_store(url, settings, create)
    if config is not None:
        store.use_conflict_rules(config.conflict_rules())
    return store, ledger


def _open_store(url: str, settings: Settings, create: bool) -> tuple[ProfileStore, Ledger]:
    if url.startswith("sqlite:///"):
        from shared.adapters.sqlite.ledger import SqliteLedger
        from shared.adapters.sqlite.store import SqliteDatabase, SqliteStore

        path = url.removeprefix("sqlite:///")
        if not path:
            raise ConfigError("store URL sqlite:/// needs a file path, e.g. sqlite:///footprint.db")
        if not create and path != ":memory:" and not Path(path).is_file():
            raise ConfigError(
                f"no store at {path}: check --store (or FOOTPRINT_STORE); "
                "ingest, reconcile and demo create one"
            )
        db = SqliteDatabase(path)
        return SqliteStore(db), SqliteLedger(db)
    if url in ("memory:", "memory://"):
        from shared.adapters.memory import MemoryLedger, MemoryStore

        return MemoryStore(), MemoryLedger()
    if url.startswith("azure-tables:"):
        if url != "azure-tables:":
            # Secrets belong in settings, which never get printed; a URL ends up in logs.
            raise ConfigError("store URL azure-tables: takes nothing after the colon")
        from shared.adapters.azure.tables import open_tables

        conn = _storage_connection(settings, "store azure-tables:")
        return open_tables(conn, settings.table_prefix)
    # Only a scheme is echoed: a connection string pasted here by mistake holds a key.
    scheme = url.partition(":")[0]
    shown = f"{scheme}:..." if ":" in url and scheme.isalnum() and len(scheme) <= 20 else "?"
    raise ConfigError(f"unknown store URL {shown}; use one of: {STORE_URLS}")


# What is kept beside a profile store, in the same place: per kind, the class for each store.
_COMPANIONS = {
    "audiences": {
        "sqlite": "shared.adapters.sqlite.audiences:SqliteAudiences",
        "memory": "shared.adapters.memory_audiences:MemoryAudiences",
        "azure": "shared.adapters.azure.audiences:TableAudiences",
    },
    "erasures": {
        "sqlite": "shared.adapters.sqlite.erasure:SqliteErasures",
        "memory": "shared.adapters.memory_erasure:MemoryErasures",
        "azure": "shared.adapters.azure.erasure:TableErasures",
    },
}
_companions: dict[str, weakref.WeakKeyDictionary[object, Any]] = {
    kind: weakref.WeakKeyDictionary() for kind in _COMPANIONS
}


def _companion(store: ProfileStore, kind: str) -> Any:
    """The `kind` store beside `store`, one per profile store, imported only when used."""
    found = _companions[kind].get(store)
    if found is not None:
        return found
    from shared.adapters.memory import MemoryStore
    from shared.adapters.sqlite.store import SqliteStore

    if isinstance(store, SqliteStore):
        where, over = "sqlite", store.db
    elif isinstance(store, MemoryStore):
        where, over = "memory", store
    else:
        where, over = "azure", store
    module, _, name = _COMPANIONS[kind][where].partition(":")
    found = getattr(importlib.import_module(module), name)(over)
    _companions[kind][store] = found
    return found


def open_audiences(store: ProfileStore) -> AudienceStore:
    """The measures and segments kept beside a profile store, in the same place."""
    return _companion(store, "audiences")  # type: ignore[no-any-return]


def open_erasures(store: ProfileStore, salt: str = "") -> ErasureStore:
    """Suppressions and the erasure log, kept beside a profile store, in the same place;
    `salt` (FOOTPRINT_ERASURE_SALT) hashes them instead of the store's own."""
    found = _companion(store, "erasures")
    return SettingSalt(found, salt) if salt else found  # type: ignore[no-any-return]


def open_change_queue(settings: Settings) -> ChangeQueue | None:
    """The Storage queue membership changes go on, when FOOTPRINT_SEGMENT_QUEUE names one."""
    if not settings.segment_queue:
        return None
    from shared.adapters.azure.queue import StorageQueue

    conn = _storage_connection(settings, f"segment queue {settings.segment_queue}")
    return StorageQueue.from_connection_string(conn, settings.segment_queue)


def audiences_of(config: Config) -> Audiences:
    return Audiences(config.measures, config.segments)


def audience_export(store: ProfileStore, config: Config) -> AudienceExport:
    """What an export reads of the store's measures and segments."""
    return AudienceExport(open_audiences(store), {m.name: m.kind for m in config.measures})


def file_upkeep(store: ProfileStore, config: Config) -> FileUpkeep | None:
    """What keeps measures and segments current as each file lands (Ports.upkeep); None when
    the config has none, so that loading pays nothing for them."""
    audiences = audiences_of(config)
    if audiences.empty:
        return None
    from shared.core.audiences.upkeep import ByFile

    return ByFile(store, open_audiences(store), audiences)


def ports(
    source: FileSource, store: ProfileStore, ledger: Ledger, config: Config, salt: str = ""
) -> Ports:
    """What a load needs: the store's suppressions (hashed with `salt`, the setting, if any),
    and its upkeep when measures are configured."""
    return Ports(source, store, ledger, open_erasures(store, salt), file_upkeep(store, config))


def _storage_connection(settings: Settings, what: str) -> str:
    if not settings.storage_connection:
        raise ConfigError(
            f"{what} needs a storage connection string: "
            "set FOOTPRINT_STORAGE (or AzureWebJobsStorage)"
        )
    return settings.storage_connection


def open_source(location: str, settings: Settings) -> FileSource:
    """A file source for a local folder, or `blob:CONTAINER[/PREFIX]` in the storage account."""
    if location.startswith("blob:"):
        from shared.adapters.azure.blob import BlobFileSource

        container, _, prefix = location.removeprefix("blob:").strip("/").partition("/")
        if not container:
            raise ConfigError(f"source {location!r} names no container: blob:CONTAINER[/PREFIX]")
        conn = _storage_connection(settings, f"source {location}")
        return BlobFileSource.from_connection_string(conn, container, prefix)
    from shared.adapters.local_files import LocalFileSource

    if not Path(location).is_dir():
        raise ConfigError(f"source {location!r} is not a folder")
    return LocalFileSource(location)


def open_export_target(location: str, settings: Settings) -> ExportTarget:
    """Where `footprint export` and the export timer write: a local folder (created when
    missing), or `blob:CONTAINER[/PREFIX]` in the storage account."""
    if location.startswith("blob:"):
        from shared.adapters.azure.blob import BlobExportTarget

        container, _, prefix = location.removeprefix("blob:").strip("/").partition("/")
        if not container:
            raise ConfigError(f"export target {location!r} names no container: blob:CONTAINER[/PREFIX]")
        conn = _storage_connection(settings, f"export target {location}")
        return BlobExportTarget.from_connection_string(conn, container, prefix)
    from shared.adapters.local_files import LocalExportTarget

    if not location or (Path(location).exists() and not Path(location).is_dir()):
        raise ConfigError(f"export target {location!r} is not a folder")
    return LocalExportTarget(location)


@dataclasses.dataclass(frozen=True)
class Runtime:
    """What the Functions triggers share in one worker process."""

    settings: Settings
    config: Config
    ports: Ports
    options: IngestOptions


_pinned: list[tuple[Settings, str | None]] = []


def use_settings(settings: Settings | None, source: str | None = None) -> None:
    """Run the triggers with these settings instead of the environment's (footprint dev, serve,
    tests); `source` reads exports from that location instead of the settings' container, ''
    from nowhere (footprint serve without --source)."""
    _pinned[:] = [(settings, source)] if settings else []
    runtime.cache_clear()


@functools.cache
def runtime() -> Runtime:
    """Built on first use and kept for the worker's life; settings are validated here."""
    settings, location = _pinned[0] if _pinned else (Settings.from_env(), None)
    config = load_config(settings.config_path)
    store, ledger = open_store(settings.store, settings, config, create=True)
    if location is None:
        location = f"blob:{settings.container}/{settings.prefix}".rstrip("/")
    source = open_source(location, settings) if location else None
    log.info("footprint runtime: store=%s container=%s prefix=%r", settings.store.split(":")[0],
             settings.container, settings.prefix)  # fmt: skip
    made = ports(source, store, ledger, config, settings.erasure_salt)  # type: ignore[arg-type]
    return Runtime(settings, config, made, ingest_options(settings))


def ingest_options(settings: Settings, root: str = "", ports: Ports | None = None) -> IngestOptions:
    """The settings' ingest options; `ports` of a command loading local files into SQLite also
    read large files in a child process (shared/core/forked.py)."""
    return IngestOptions(
        root=root, max_attempts=settings.max_attempts,
        retry_base_seconds=settings.retry_base_seconds, lease_seconds=settings.lease_seconds,
        batch_size=settings.batch_size, max_rejects_per_file=settings.max_rejects_per_file,
        metadata=MetadataCache(),
        limits=Limits(max_row_bytes=settings.max_row_bytes, max_file_bytes=settings.max_file_bytes),
        read_in_child_from=(
            settings.read_in_child_bytes or None if ports and _local_into_sqlite(ports) else None
        ),
    )  # fmt: skip


def _local_into_sqlite(ports: Ports) -> bool:
    from shared.adapters.local_files import LocalFileSource
    from shared.adapters.sqlite.store import SqliteStore

    return isinstance(ports.source, LocalFileSource) and isinstance(ports.store, SqliteStore)
