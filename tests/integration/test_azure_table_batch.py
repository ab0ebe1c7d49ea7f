"""Entity group transactions written and read by shared/adapters/azure/table_batch.py, against a real Azurite:
each kind of operation lands as the SDK's own submit_transaction would land it, and each kind
of refusal raises the SDK's error with the operation's status."""

from __future__ import annotations

import pytest
from azure.core import MatchConditions
from azure.core.exceptions import HttpResponseError
from azure.data.tables import (
    EdmType,
    EntityProperty,
    TableServiceClient,
    TableTransactionError,
    UpdateMode,
)

from shared.adapters.azure import table_batch
from tests.azurite import Azurite, AzuriteNames

pytestmark = pytest.mark.azurite

ODD = ["quote's", "ünïcødé ✓ 日本", "per%cent", "a b", "x" * 200]


@pytest.fixture
def tables(azurite: Azurite):  # type: ignore[no-untyped-def]
    service = TableServiceClient.from_connection_string(azurite.connection_string)
    ours = service.create_table(AzuriteNames.fresh().table_prefix + "ours")
    theirs = service.create_table(AzuriteNames.fresh().table_prefix + "theirs")
    yield ours, theirs
    service.close()


def _rows(table) -> list[dict]:  # type: ignore[no-untyped-def]
    return sorted(({**e, "@etag": None} for e in table.list_entities()), key=lambda e: e["RowKey"])


def test_every_kind_of_operation_lands_as_the_sdk_lands_it(tables) -> None:  # type: ignore[no-untyped-def]
    ours, theirs = tables
    first = [("create", {"PartitionKey": "p", "RowKey": key, "Text": key * 3, "N": n,
                         "Big": EntityProperty(2**40 + n, EdmType.INT64), "Flag": n % 2 == 0,
                         "Ratio": n / 3, "Long": "é" * 20_000})
             for n, key in enumerate(ODD)]  # fmt: skip
    for table, send in ((ours, table_batch.submit), (theirs, type(theirs).submit_transaction)):
        send(table, first)
        etag = table.get_entity("p", ODD[1]).metadata["etag"]
        send(table, [
            ("upsert", {"PartitionKey": "p", "RowKey": ODD[0], "Merged": "yes"}),
            ("upsert", {"PartitionKey": "p", "RowKey": "new", "Text": "n"}, {"mode": UpdateMode.REPLACE}),
            ("update", {"PartitionKey": "p", "RowKey": ODD[1], "Text": "replaced"},
             {"mode": UpdateMode.REPLACE, "etag": etag, "match_condition": MatchConditions.IfNotModified}),
            ("delete", {"PartitionKey": "p", "RowKey": ODD[2]}),
        ])  # fmt: skip
    assert _rows(ours) == _rows(theirs)
    assert len(_rows(ours)) == len(ODD)  # one deleted, one added
    merged = ours.get_entity("p", ODD[0])
    assert (merged["Merged"], merged["Text"], merged["Big"].value) == ("yes", ODD[0] * 3, 2**40)


@pytest.mark.parametrize(
    ("ops", "status"),
    [
        ([("create", {"PartitionKey": "p", "RowKey": "b"}),
          ("create", {"PartitionKey": "p", "RowKey": "a"})], 409),
        ([("update", {"PartitionKey": "p", "RowKey": "a", "X": 1},
           {"etag": 'W/"datetime\'2001-01-01T00%3A00%3A00.0000000Z\'"',
            "match_condition": MatchConditions.IfNotModified})], 412),
        ([("delete", {"PartitionKey": "p", "RowKey": "missing"},
           {"etag": 'W/"datetime\'2001-01-01T00%3A00%3A00.0000000Z\'"',
            "match_condition": MatchConditions.IfNotModified})], 404),
    ],
)  # fmt: skip
def test_a_refused_operation_raises_the_sdks_error_and_writes_nothing(tables, ops, status) -> None:  # type: ignore[no-untyped-def]
    ours, _ = tables
    table_batch.submit(ours, [("create", {"PartitionKey": "p", "RowKey": "a", "X": 0})])
    with pytest.raises(TableTransactionError) as raised:
        table_batch.submit(ours, ops)
    assert raised.value.status_code == status
    assert raised.value.error_code
    assert [(e["RowKey"], e["X"]) for e in ours.list_entities()] == [("a", 0)]


def test_a_wrong_key_fails_as_it_fails_in_the_sdk(azurite: Azurite) -> None:
    wrong = azurite.connection_string.replace("AccountKey=", "AccountKey=AAAA")
    service = TableServiceClient.from_connection_string(wrong)
    table = service.get_table_client(AzuriteNames.fresh().table_prefix + "x")
    ops = [("upsert", {"PartitionKey": "p", "RowKey": "a"})]
    failures = []
    for send in (table_batch.submit, type(table).submit_transaction):
        with pytest.raises(HttpResponseError) as raised:
            send(table, ops)
        failures.append((type(raised.value), raised.value.status_code))
    assert failures[0] == failures[1] == (HttpResponseError, 403)
