"""Properties of the mapping: a valid row goes parse -> map -> store -> read back losslessly,
on every store, and timestamps normalise to UTC whatever their offset."""

from __future__ import annotations

import csv
import io
import re
import tempfile
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shared.adapters.local_files import LocalFileSource
from shared.adapters.memory import MemoryLedger, MemoryStore
from shared.adapters.sqlite.ledger import SqliteLedger
from shared.adapters.sqlite.store import SqliteDatabase, SqliteStore
from shared.bootstrap import load_config
from shared.core.ingest.service import Ports, ingest_file
from shared.core.mapping import activity_id, derived_customer_id, to_utc

CONFIG = load_config(None)
PLACEHOLDERS = CONFIG.activities[0].relationship.placeholders()
PROMO = "Email promotion"
COLUMNS = (
    "Signal.Export.Id", "Signal.Timestamp", "Signal.Name", "Signal.Action.Name",
    "Signal.View.Uri", "Signal.User.Id", "Signal.User.AuthId",
)  # fmt: skip
UTC_FORM = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")
# Any text a row can hold and that counts as a value: no NUL, no lone surrogate, not blank.
TEXT = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), min_size=1,
               max_size=40).filter(lambda t: not t.isspace())  # fmt: skip
KEYS = TEXT.filter(lambda t: t.strip() == t)
OFFSETS = st.integers(-14 * 60, 14 * 60).map(lambda m: timezone(timedelta(minutes=m)))
MOMENTS = st.datetimes(min_value=datetime(1900, 1, 2), max_value=datetime(9998, 12, 30))


def _utc(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


@st.composite
def events(draw: st.DrawFn) -> list[dict[str, str]]:
    keys = draw(st.lists(KEYS, min_size=1, max_size=8, unique=True))
    rows = []
    for key in keys:
        moment = draw(MOMENTS).replace(tzinfo=draw(OFFSETS))
        rows.append({
            "Signal.Export.Id": key, "Signal.Timestamp": moment.isoformat(),
            "Signal.Name": draw(TEXT), "Signal.Action.Name": PROMO, "Signal.View.Uri": draw(TEXT),
            "Signal.User.Id": draw(TEXT), "Signal.User.AuthId": draw(st.sampled_from(["", "R-1"]) | TEXT),
            "expected time": _utc(moment),
        })  # fmt: skip
    return rows


def _csv(rows: list[dict[str, str]]) -> bytes:
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(COLUMNS)
    writer.writerows([[r[c] for c in COLUMNS] for r in rows])
    return buffer.getvalue().encode()


def _jsonl(rows: list[dict[str, str]]) -> bytes:
    return b"".join(orjson.dumps({c: r[c] for c in COLUMNS}) + b"\n" for r in rows)


def _stores():  # type: ignore[no-untyped-def]
    yield MemoryStore(), MemoryLedger()
    db = SqliteDatabase(":memory:")
    yield SqliteStore(db), SqliteLedger(db)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=events(), kind=st.sampled_from(["csv", "jsonl"]))
def test_valid_rows_are_stored_and_read_back_losslessly(rows: list[dict[str, str]], kind: str) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = f"EmailPromotion/part.{kind}"
        (Path(folder) / "EmailPromotion").mkdir()
        (Path(folder) / path).write_bytes(_csv(rows) if kind == "csv" else _jsonl(rows))
        for store, ledger in _stores():
            report = ingest_file(Ports(LocalFileSource(folder), store, ledger), CONFIG, path)
            assert (report.status, report.counts.rejected, report.counts.activities) == ("done", 0, len(rows))
            stored = {a.source_activity_id: a for a in store.list_activities(None, False, None)}
            assert sorted(stored) == sorted(r["Signal.Export.Id"] for r in rows)
            for number, row in enumerate(rows, 1):
                a = stored[row["Signal.Export.Id"]]
                assert a.activity_id == activity_id("EmailPromotionClicks", "EmailPromotion", row["Signal.Export.Id"])
                assert a.activity_time == row["expected time"]
                assert a.activity_name == row["Signal.Name"]
                assert a.title == PROMO
                assert a.external_url == row["Signal.View.Uri"]
                # With visitors stitched (the default), a placeholder such as "0" names nobody.
                named = [v for v in (row["Signal.User.AuthId"], row["Signal.User.Id"])
                         if v and not v.isspace() and v.strip().casefold() not in PLACEHOLDERS]  # fmt: skip
                assert a.activity_foreign_key == (named[0] if named else None)
                assert (a.source_file, a.source_row, a.customer_id) == (path, number, None)
            store.close()


@given(moment=MOMENTS, offset=OFFSETS | st.none())
def test_any_iso_timestamp_becomes_its_utc_instant_with_milliseconds(moment: datetime, offset) -> None:  # type: ignore[no-untyped-def]
    aware = moment.replace(tzinfo=offset or UTC)
    text = moment.replace(tzinfo=offset).isoformat()  # naive when no offset: read as UTC
    assert to_utc(text) == _utc(aware)
    assert to_utc(_utc(aware)) == _utc(aware)
    assert to_utc(text.replace("+00:00", "Z")) == _utc(aware)


@given(text=st.text(max_size=70))
def test_any_text_is_a_utc_timestamp_or_refused(text: str) -> None:
    moment = to_utc(text)
    assert moment is None or (UTC_FORM.fullmatch(moment) and to_utc(moment) == moment)


@given(entity=TEXT, key=TEXT, name=TEXT)
def test_ids_depend_only_on_what_names_the_record(entity: str, key: str, name: str) -> None:
    assert activity_id(name, entity, key) == activity_id(name, entity, key)
    assert len(activity_id(name, entity, key)) == 32
    assert activity_id(name, entity, key) != activity_id(name, entity, key + "x")
    assert derived_customer_id(entity, key) != derived_customer_id(entity + "\x1f", key)
