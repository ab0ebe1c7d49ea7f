"""Mapping rows to activities and customers."""

from __future__ import annotations

import pytest

from shared.bootstrap import load_config
from shared.core.errors import PermanentError
from shared.core.mapping import EntityMapping, activity_id, derived_customer_id, to_utc
from shared.core.model import SourceFile

FILE = SourceFile("EmailPromotion/2021/part-0001.csv", "0x1", 100)
CONFIG = load_config(None)


def _event(**overrides: str) -> dict[str, str]:
    row = {
        "Signal.Export.Id": "evt-1",
        "Signal.Timestamp": "2021-09-28T16:07:11.4123+02:00",
        "Signal.Name": "PageAction",
        "Signal.Action.Name": "Email promotion",
        "Signal.View.Uri": "",
        "Signal.Action.View.Uri": "https://shop.example.com/offer",
        "Signal.User.Id": "R-1",
        "Signal.User.AuthId": "",
    }
    row.update(overrides)
    return row


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2021-09-28T14:07:11Z", "2021-09-28T14:07:11.000Z"),
        ("2021-09-28T14:07:11.4126789Z", "2021-09-28T14:07:11.412Z"),
        ("2021-09-28T16:07:11+02:00", "2021-09-28T14:07:11.000Z"),
        ("2021-09-28T00:30:00-05:30", "2021-09-28T06:00:00.000Z"),
        ("2021-09-28 14:07:11", "2021-09-28T14:07:11.000Z"),
        ("2021-09-28", "2021-09-28T00:00:00.000Z"),
        (" 2021-09-28T14:07:11Z ", "2021-09-28T14:07:11.000Z"),
        ("28/09/2021", None),
        ("yesterday", None),
        ("2021-02-30T00:00:00Z", None),
        ("9999-12-31T23:00:00-05:00", None),
    ],
)
def test_timestamps_become_utc_with_milliseconds(text: str, expected: str | None) -> None:
    assert to_utc(text) == expected


def test_an_event_becomes_an_activity_with_every_field_mapped() -> None:
    mapped = EntityMapping(CONFIG, "EmailPromotion").map_row(_event(), FILE, 7)
    [a] = mapped.activities
    assert a.activity_id == activity_id("EmailPromotionClicks", "EmailPromotion", "evt-1")
    assert (a.activity_type, a.activity_type_display) == ("EmailPromotionClicks", "WebLog")
    assert a.activity_name == "PageAction"
    assert a.activity_time == "2021-09-28T14:07:11.412Z"
    assert a.title == "Email promotion"
    assert a.external_url == "https://shop.example.com/offer"
    assert (a.source_entity, a.source_activity_id) == ("EmailPromotion", "evt-1")
    assert (a.activity_foreign_key, a.customer_entity) == ("R-1", "RetailCustomers")
    assert (a.source_file, a.source_etag, a.source_row) == (FILE.path, "0x1", 7)
    assert a.customer_id is None and a.show_in_timeline is True
    assert mapped.reject is None and not mapped.filtered


def test_the_authenticated_id_is_preferred_over_the_sdk_user_id() -> None:
    mapped = EntityMapping(CONFIG, "EmailPromotion").map_row(
        _event(**{"Signal.User.AuthId": "R-9"}), FILE, 1
    )
    assert mapped.activities[0].activity_foreign_key == "R-9"


def test_activity_ids_do_not_depend_on_the_file() -> None:
    mapping = EntityMapping(CONFIG, "EmailPromotion")
    one = mapping.map_row(_event(), FILE, 1).activities[0]
    other = mapping.map_row(_event(), SourceFile("x/other.csv", "9", 1), 99).activities[0]
    assert one.activity_id == other.activity_id
    assert (
        one.activity_id
        != mapping.map_row(_event(**{"Signal.Export.Id": "evt-2"}), FILE, 1)
        .activities[0]
        .activity_id
    )


def test_a_row_outside_the_filter_is_filtered_even_when_broken() -> None:
    row = _event(
        **{"Signal.Action.Name": "Search", "Signal.Export.Id": "", "Signal.Timestamp": "?"}
    )
    mapped = EntityMapping(CONFIG, "EmailPromotion").map_row(row, FILE, 1)
    assert mapped.filtered and mapped.reject is None and mapped.activities == []


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"Signal.Export.Id": "  "}, "missing primary key (Signal.Export.Id)"),
        (
            {"Signal.Timestamp": "not a time"},
            "unparseable timestamp 'not a time' in Signal.Timestamp",
        ),
        ({"Signal.Timestamp": ""}, "missing timestamp (Signal.Timestamp)"),
        ({"Signal.Export.Id": "x" * 2000}, "primary key longer than 1024 characters"),
    ],
)
def test_a_row_inside_the_filter_without_id_or_time_is_rejected(overrides, reason) -> None:  # type: ignore[no-untyped-def]
    mapped = EntityMapping(CONFIG, "EmailPromotion").map_row(_event(**overrides), FILE, 1)
    assert mapped.reject == reason
    assert mapped.activities == [] and not mapped.filtered


def test_a_customer_row_gets_a_stable_id_and_its_attributes() -> None:
    row = {
        "CustomerRetailId": "R-1",
        "FullName": "Ada",
        "Email": "a@x",
        "City": "Leeds",
        "Other": "no",
    }
    mapped = EntityMapping(CONFIG, "RetailCustomers").map_row(row, FILE, 2)
    [c] = mapped.customers
    assert c.customer_id == derived_customer_id("RetailCustomers", "R-1")
    assert c.attributes == {"FullName": "Ada", "Email": "a@x", "City": "Leeds"}
    assert EntityMapping(CONFIG, "RetailCustomers").map_row({"FullName": "x"}, FILE, 3).reject == (
        "missing customer key (CustomerRetailId)"
    )


def test_an_entity_no_activity_or_source_uses_maps_to_nothing() -> None:
    assert EntityMapping(CONFIG, "Products").is_empty
    assert not EntityMapping(CONFIG, "EmailPromotion").is_empty


_COLUMNS = ("Signal.Export.Id", "Signal.Timestamp", "Signal.Name", "Signal.Action.Name",
            "Signal.User.Id")  # fmt: skip


def _with_activity(**changes) -> EntityMapping:  # type: ignore[no-untyped-def]
    raw = CONFIG.model_dump()
    raw["activities"][0].update(changes)
    return EntityMapping(type(CONFIG).model_validate(raw), "EmailPromotion")


@pytest.mark.parametrize(
    ("changes", "field", "column"),
    [
        ({"timestamp": "ViewedAtt"}, "timestamp", "ViewedAtt"),
        ({"primaryKey": ["Nope", "Neither"]}, "primaryKey", "Nope, Neither"),
        ({"event": "Signal.Nam"}, "event", "Signal.Nam"),
        # Every row would be filtered out: as silent as a missing timestamp.
        ({"filter": {"Signal.Kind": ["x"]}}, "filter", "Signal.Kind"),
    ],
)
def test_a_configured_column_the_file_lacks_fails_the_file_naming_both(changes, field, column) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(PermanentError) as caught:
        _with_activity(**changes).check_columns(_COLUMNS)
    message = str(caught.value)
    assert f"EmailPromotionClicks.{field}" in message and column in message
    assert "Signal.Export.Id, Signal.Timestamp" in message  # the file's columns


def test_a_missing_relationship_key_fails_the_file() -> None:
    raw = CONFIG.model_dump()
    raw["activities"][0]["relationship"]["foreignKey"] = ["User.Auth"]
    with pytest.raises(PermanentError, match=r"relationship\.foreignKey.*User\.Auth"):
        EntityMapping(type(CONFIG).model_validate(raw), "EmailPromotion").check_columns(_COLUMNS)


def test_one_column_of_a_first_non_empty_list_is_enough_and_optional_fields_may_be_absent() -> None:
    # foreignKey lists Signal.User.AuthId first; details and webAddress columns are absent.
    _with_activity(primaryKey=["Absent", "Signal.Export.Id"]).check_columns(_COLUMNS)


def test_a_customer_source_whose_key_column_is_missing_fails_the_file() -> None:
    with pytest.raises(PermanentError, match=r"RetailCustomers\.key.*CustomerRetailId"):
        EntityMapping(CONFIG, "RetailCustomers").check_columns(("FullName", "Email"))
