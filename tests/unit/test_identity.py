"""Identity in the core: links a batch makes, placeholders, winners under each onConflict."""

from __future__ import annotations

import orjson
import pytest

from shared.bootstrap import load_config
from shared.core.config import parse_config
from shared.core.identity.links import Link, links_of_spans
from shared.core.identity.winners import candidates, winner
from shared.core.mapping import EntityMapping
from shared.core.model import SourceFile
from shared.core.reading.records import ParsedRow
from tests.builders import link

FILE = SourceFile("EmailPromotion/2021/part-0001.csv", "0x1", 100)
T1, T2, T3 = "2021-09-28T10:00:00.000Z", "2021-09-28T11:00:00.000Z", "2021-09-28T12:00:00.000Z"


def _event(number: int, visitor: str, auth: str = "", time: str = T1) -> ParsedRow:
    values = {
        "Signal.Export.Id": f"evt-{number}", "Signal.Timestamp": time, "Signal.Name": "PageAction",
        "Signal.Action.Name": "Email promotion", "Signal.User.Id": visitor,
        "Signal.User.AuthId": auth,
    }  # fmt: skip
    return ParsedRow(number, values, None, "")


def _mapped(*rows: ParsedRow, config=None):  # type: ignore[no-untyped-def]
    return EntityMapping(config or load_config(None), "EmailPromotion").map_rows(rows, FILE)


def test_a_signed_in_row_links_its_visitor_to_its_key() -> None:
    batch = _mapped(_event(1, "v-1"), _event(2, "v-1", "R-1", T2), _event(3, "v-1", "R-1", T3))
    assert [a.visitor_id for a in batch.activities] == ["v-1", "v-1", "v-1"]
    assert links_of_spans(batch.links, FILE.path, FILE.etag) == [
        Link("RetailCustomers", "v-1", "R-1", FILE.path, FILE.etag, T2, 2, T3, 3)
    ]


@pytest.mark.parametrize("visitor", ["anonymous", " Guest ", "UNDEFINED", "0", "-1"])
def test_a_placeholder_visitor_is_no_visitor_and_links_nothing(visitor: str) -> None:
    batch = _mapped(_event(1, visitor, "R-1"))
    assert batch.activities[0].visitor_id is None
    assert batch.links == {}


def test_a_placeholder_key_links_nothing() -> None:
    batch = _mapped(_event(1, "v-1", "unknown"))
    assert batch.activities[0].visitor_id == "v-1"
    assert batch.links == {}


def test_an_anonymous_row_links_nothing() -> None:
    assert _mapped(_event(1, "v-1")).links == {}


def test_without_a_visitor_key_rows_map_as_before() -> None:
    raw = orjson.loads(orjson.dumps(load_config(None).model_dump()))
    raw["activities"][0]["relationship"].pop("visitorKey")
    batch = _mapped(_event(1, "v-1", "R-1"), config=parse_config(orjson.dumps(raw)))
    assert batch.activities[0].visitor_id is None
    assert batch.links == {}


SHARED = [link("tv", "R-1", T1), link("tv", "R-2", T2, "b.csv"), link("tv", "R-1", T1, "c.csv")]


@pytest.mark.parametrize(("rule", "key"), [("latest", "R-2"), ("first", "R-1"), ("none", None)])
def test_a_shared_device_resolves_as_on_conflict_says(rule: str, key: str | None) -> None:
    won = winner(SHARED, rule)
    assert (won.key if won else None) == key


def test_the_first_link_wins_by_file_and_row_on_a_tie_in_time() -> None:
    won = winner(SHARED, "first")
    assert (won.file, won.row, won.linked_at) == ("c.csv", 1, T1)


def test_none_still_links_a_visitor_seen_with_one_key() -> None:
    assert winner([link("v", "R-1"), link("v", "R-1", file="b.csv")], "none").key == "R-1"


def test_candidates_span_each_keys_first_and_last_link() -> None:
    found = [c.to_record() for c in candidates([*SHARED, link("tv", "R-1", T3, "d.csv")])]
    assert found == [
        {"Key": "R-1", "FirstLinkedAt": T1, "LastLinkedAt": T3},
        {"Key": "R-2", "FirstLinkedAt": T2, "LastLinkedAt": T2},
    ]
