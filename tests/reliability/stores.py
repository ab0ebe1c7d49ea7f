"""Where a trial keeps its profile store: a fresh SQLite file, or fresh tables on Azurite."""

from __future__ import annotations

import dataclasses
import itertools
import json
import os
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from shared import bootstrap
from shared.adapters.local_files import LocalFileSource
from shared.core.config import Config, parse_config
from shared.core.ingest.reconciler import reconcile
from shared.core.ingest.service import IngestOptions
from shared.core.ports import Ledger, ProfileStore
from shared.settings import Settings
from tests.azurite import Azurite, AzuriteNames
from tests.reliability.corpus import CORPUS, Corpus
from tests.reliability.digest import Snapshot

ROOT = Path(__file__).resolve().parent.parent.parent
# The shipped config with measures and segments, so that every case also compares what the
# upkeep keeps after each file with the clean run's. No windows: evaluations at different
# times agree.
AUDIENCES = {
    "measures": [
        {"name": "Clicks", "activities": ["EmailPromotionClicks"], "aggregate": "count"},
        {"name": "LastVisit", "aggregate": "last", "of": "ActivityTime"},
        {"name": "Pages", "aggregate": "countDistinct", "of": "ExternalUrl"},
        {"name": "TopPage", "aggregate": "mostFrequent", "of": "ExternalUrl"},
    ],
    "segments": [
        {"name": "Clickers", "rule": {"measure": "Clicks", "op": ">=", "value": 9}},
        {"name": "Browsers", "rule": {"all": [{"measure": "Pages", "op": ">=", "value": 1},
                                              {"not": {"segment": "Clickers"}}]}},
    ],
}  # fmt: skip
CONFIG_TEXT = json.dumps({**json.loads((ROOT / "shared" / "default_config.json").read_text()), **AUDIENCES})
CONFIG = parse_config(CONFIG_TEXT)
_numbers = itertools.count()


@dataclasses.dataclass(frozen=True)
class Store:
    """One store location: its URL and the environment a `footprint` process needs for it."""

    backend: str
    env: dict[str, str]

    @property
    def settings(self) -> Settings:
        return Settings.from_env(self.env)

    def open(self) -> tuple[ProfileStore, Ledger]:
        return bootstrap.open_store(self.settings.store, self.settings, create=True)

    def process_env(self) -> dict[str, str]:
        """The environment of a `python -m shared` worker using this store."""
        keep = {k: v for k, v in os.environ.items() if not k.startswith("FOOTPRINT_")}
        return {**keep, **self.env, "PYTHONPATH": str(ROOT)}


@dataclasses.dataclass
class Backend:
    name: str  # "sqlite" or "azure-tables"
    workdir: Path
    azurite: Azurite | None = None

    def fresh(self, **extra: str) -> Store:
        """An empty store no other trial uses, and CONFIG for the processes using it."""
        config = self.workdir / "config.json"
        if not config.exists():
            config.write_text(CONFIG_TEXT, encoding="utf-8")
        extra = {"FOOTPRINT_CONFIG": str(config), **extra}
        if self.azurite is None:
            path = self.workdir / f"store-{next(_numbers)}.db"
            return Store(self.name, {"FOOTPRINT_STORE": f"sqlite:///{path}", **extra})
        return Store(self.name, {
            "FOOTPRINT_STORE": "azure-tables:",
            "FOOTPRINT_STORAGE": self.azurite.connection_string,
            "FOOTPRINT_TABLE_PREFIX": AzuriteNames.fresh().table_prefix,
            **extra,
        })  # fmt: skip


def python() -> str:
    return sys.executable


def later(seconds: float):  # type: ignore[no-untyped-def]
    """A clock running `seconds` ahead: a reconciler that comes after every lease expired."""
    return lambda: datetime.now(UTC) + timedelta(seconds=seconds)


@dataclasses.dataclass(frozen=True)
class Reference:
    """What a clean single run leaves: the store's picture and each file's ledger counts."""

    snapshot: Snapshot
    counts: dict[str, dict[str, int]]


def load_clean(store: Store, corpus: Corpus, folder: Path, config: Config = CONFIG) -> Reference:
    """The reference: the export as it finally is, loaded once by one process, in order."""
    root = corpus.write(folder)
    profile, ledger = store.open()
    try:
        report = reconcile(bootstrap.ports(LocalFileSource(root), profile, ledger, config), config, IngestOptions())
        assert report.failed == 0 and report.quarantined == 0, report.to_record()
        counts = {e.path: e.counts.to_record() for e in ledger.entries()}
        return Reference(Snapshot.of(profile, corpus.customer_ids), counts)
    finally:
        profile.close()


def settle(store: Store, root: Path, corpus: Corpus = CORPUS, lease_seconds: float = 901) -> Snapshot:
    """Run the reconciler once every lease has expired, then take the store's picture."""
    profile, ledger = store.open()
    try:
        options = IngestOptions(clock=later(lease_seconds), retry_base_seconds=0)
        reconcile(bootstrap.ports(LocalFileSource(root), profile, ledger, CONFIG), CONFIG, options)
        return Snapshot.of(profile, corpus.customer_ids)
    finally:
        profile.close()


def snapshot(store: Store, corpus: Corpus = CORPUS) -> Snapshot:
    profile, _ = store.open()
    try:
        return Snapshot.of(profile, corpus.customer_ids)
    finally:
        profile.close()


class Stopwatch:
    def __init__(self) -> None:
        self.started = time.monotonic()

    @property
    def seconds(self) -> float:
        return time.monotonic() - self.started
