"""Properties of the configuration validator: any document is accepted or refused with a
ConfigError naming a field, never anything else; valid configurations round-trip."""

from __future__ import annotations

import contextlib
from typing import Any

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.core.config import parse_config
from shared.core.errors import ConfigError

NAMES = st.text(st.characters(min_codepoint=33, max_codepoint=0x2FFF), min_size=1, max_size=20)
ACTIVITY_NAMES = st.from_regex(r"[A-Za-z0-9_.\-]{1,30}", fullmatch=True)
COLUMNS = st.lists(NAMES, min_size=1, max_size=3)
JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.floats(allow_nan=False)
    | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=30,
)  # fmt: skip


@st.composite
def configs(draw: st.DrawFn) -> dict[str, Any]:
    """A valid configuration document: unique activity names, relationships to real sources,
    at least one activity or customer source."""
    sources = draw(st.lists(
        st.fixed_dictionaries({"entity": NAMES, "key": NAMES},
                              optional={"customerId": NAMES | st.none(), "attributes": st.lists(NAMES, max_size=3)}),
        max_size=3, unique_by=lambda s: s["entity"],
    ))  # fmt: skip
    activities = []
    for name in draw(st.lists(ACTIVITY_NAMES, min_size=0 if sources else 1, max_size=3, unique=True)):
        activity = {
            "name": name, "entity": draw(NAMES), "primaryKey": draw(COLUMNS | NAMES),
            "timestamp": draw(COLUMNS), "event": draw(COLUMNS), "activityType": draw(NAMES),
            "showInTimeline": draw(st.booleans()),
            "filter": draw(st.dictionaries(NAMES, st.lists(st.text(max_size=10), min_size=1, max_size=3), max_size=2)),
        }  # fmt: skip
        if draw(st.booleans()):
            activity["webAddress"] = draw(COLUMNS)
        if sources and draw(st.booleans()):
            source = draw(st.sampled_from(sources))
            activity["relationship"] = {"name": draw(NAMES), "foreignKey": draw(COLUMNS),
                                        "customerEntity": source["entity"], "customerKey": source["key"]}  # fmt: skip
        activities.append(activity)
    return {"customerSources": sources, "activities": activities}


@settings(max_examples=300)
@given(document=JSON)
def test_any_json_document_is_a_config_or_a_config_error(document: object) -> None:
    try:
        parse_config(orjson.dumps(document))
    except ConfigError as exc:
        lines = str(exc).splitlines()
        assert 1 <= len(lines) <= 11 and all(line.startswith("config: ") for line in lines)


@given(data=st.binary(max_size=200))
def test_any_bytes_are_a_config_or_a_config_error(data: bytes) -> None:
    with contextlib.suppress(ConfigError):
        parse_config(data)


@given(document=configs())
def test_a_valid_configuration_round_trips(document: dict[str, Any]) -> None:
    config = parse_config(orjson.dumps(document))
    again = parse_config(orjson.dumps(config.model_dump()))
    assert again == config
    assert [a.name for a in config.activities] == [a["name"] for a in document["activities"]]


REQUIRED = ("name", "entity", "primaryKey", "timestamp", "event", "activityType")


@given(document=configs().filter(lambda d: d["activities"]), data=st.data())
def test_a_missing_or_mistyped_field_is_named_in_the_error(document: dict[str, Any], data: st.DataObject) -> None:
    index = data.draw(st.integers(0, len(document["activities"]) - 1))
    field = data.draw(st.sampled_from(REQUIRED))
    broken = orjson.loads(orjson.dumps(document))
    if data.draw(st.booleans()):
        del broken["activities"][index][field]
    else:
        broken["activities"][index][field] = data.draw(st.sampled_from([None, 7, {"x": 1}, [], ""]))
    try:
        parse_config(orjson.dumps(broken))
    except ConfigError as exc:
        assert f"activities[{index}].{field}" in str(exc)
    else:
        raise AssertionError(f"accepted a config without a valid {field}")


def test_the_validator_refuses_an_unknown_relationship_source() -> None:
    document = {"customerSources": [], "activities": [{
        "name": "a", "entity": "E", "primaryKey": "id", "timestamp": "t", "event": "e",
        "activityType": "WebLog", "relationship": {"name": "r", "foreignKey": "u", "customerEntity": "C", "customerKey": "k"},
    }]}  # fmt: skip
    try:
        parse_config(orjson.dumps(document))
    except ConfigError as exc:
        assert "activities[0].relationship.customerEntity" in str(exc)
    else:
        raise AssertionError("accepted")
