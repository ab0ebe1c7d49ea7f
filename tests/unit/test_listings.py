"""Continuation tokens of the listings, and the config check on plain CSV and JSON lines."""

from __future__ import annotations

import base64
import gzip
from pathlib import Path

import orjson
import pytest

from shared.adapters.local_files import LocalFileSource
from shared.adapters.memory import MemoryLedger, MemoryStore
from shared.core import listings, queries
from shared.core.config import parse_config
from shared.core.config_check import check_config
from shared.core.errors import BadRequest
from shared.core.model import Reject
from shared.core.paging import decode_position, encode_position, scope_of


def _raw(value: object) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(value)).decode().rstrip("=")


def test_a_position_token_round_trips_and_continues_only_its_own_query() -> None:
    scope = scope_of("WebLog", False)
    token = encode_position("activities", scope, ("2021-09-28T14:00:00.000Z", "a" * 32))
    assert decode_position(token, "activities", scope, (str, str)) == ("2021-09-28T14:00:00.000Z", "a" * 32)
    with pytest.raises(BadRequest, match="another query"):
        decode_position(token, "activities", scope_of("WebLog", True), (str, str))
    shape = (str, str)
    for bad in (
        encode_position("files", scope, ("x", "y")),  # another listing's token
        _raw(["activities", scope, "t"]), _raw(["activities", scope, "t", 5]),
        _raw(["activities", scope, "t", True]), "%%%", "x" * 5000, _raw({"a": 1}),
    ):  # fmt: skip
        with pytest.raises(BadRequest, match="not valid"):
            decode_position(bad, "activities", scope, shape)
    with pytest.raises(BadRequest, match="not valid"):  # True is no row number
        decode_position(_raw(["rejects", scope, "a.csv", True]), "rejects", scope, (str, int))


def test_rejects_and_files_pages_end_with_no_token() -> None:
    store = MemoryStore()
    store.write([], [], [Reject("a.csv", "e", row, None, "bad", "x") for row in range(1, 6)])
    first = listings.rejects(store, limit=3)
    rest = listings.rejects(store, limit=3, continuation=first["continuation"])
    assert [r["Row"] for r in first["rejects"] + rest["rejects"]] == [1, 2, 3, 4, 5]
    assert rest["continuation"] is None
    assert listings.rejects(store, limit=5)["continuation"] is None
    with pytest.raises(BadRequest, match="another query"):
        listings.rejects(store, file="a.csv", continuation=first["continuation"])
    assert listings.files(MemoryLedger()) == {"files": [], "continuation": None}
    with pytest.raises(BadRequest, match="one of done, skipped"):
        listings.files(MemoryLedger(), status="DONE")


def test_a_preview_without_a_limit_is_every_activity_and_no_token() -> None:
    assert queries.preview(MemoryStore()) == ([], None)


CONFIG = parse_config(orjson.dumps({
    "customerSources": [{"entity": "People", "key": "Id", "attributes": ["Name", "Phone"]}],
    "activities": [{
        "name": "Views", "entity": "Views", "primaryKey": "ViewId", "timestamp": ["At", "When"],
        "event": "Kind", "webAddress": ["Url", "Link"], "activityType": "WebLog",
        "filter": {"Site": ["shop"]},
    }],
}))  # fmt: skip


def test_config_check_reads_headers_and_first_objects_and_names_what_is_missing(tmp_path: Path) -> None:
    (tmp_path / "People").mkdir()
    (tmp_path / "People" / "a.csv").write_text("Id,Name\n1,Ada\n")
    (tmp_path / "People" / "b.csv.gz").write_bytes(gzip.compress(b"Id,Name,Phone\n"))  # no rows
    (tmp_path / "Views" / "2021").mkdir(parents=True)
    (tmp_path / "Views" / "2021" / "v.jsonl").write_text(
        '{"ViewId": "1", "When": "2021-01-01", "Kind": "view", "Link": "https://x", "Site": "shop"}\n'
    )
    (tmp_path / "Views" / "2021" / "w.csv").write_text("ViewId,At,Kind,Site\n1,2021-01-01,view,shop\n")
    result = check_config(CONFIG, LocalFileSource(tmp_path))
    views, people = result["checks"]
    assert (views["files"], people["files"]) == (2, 1)  # the empty file says nothing
    assert [(m["field"], m["examples"]) for m in views["missing"]] == [("webAddress", ["Views/2021/w.csv"])]
    assert [(m["field"], m["columns"]) for m in people["missing"]] == [("attributes.Phone", ["Phone"])]
    assert result["ok"] is False and result["unreadable"] == []
    assert check_config(CONFIG, LocalFileSource(tmp_path), files_per_entity=1)["checks"][0]["files"] == 1
    assert check_config(CONFIG, None)["ok"] is True
