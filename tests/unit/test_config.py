"""Configuration validation: errors name the offending field."""

from __future__ import annotations

import orjson
import pytest

from shared.bootstrap import load_config
from shared.core.config import parse_config
from shared.core.errors import ConfigError


def _with(change) -> bytes:  # type: ignore[no-untyped-def]
    raw = orjson.loads(orjson.dumps(load_config(None).model_dump()))
    change(raw)
    return orjson.dumps(raw)


def test_the_shipped_defaults_are_the_documented_example() -> None:
    config = load_config(None)
    [activity] = config.activities
    assert activity.name == "EmailPromotionClicks"
    assert activity.webAddress == ["Signal.View.Uri", "Signal.Action.View.Uri"]
    assert activity.primaryKey == ["Signal.Export.Id"]
    assert activity.relationship.foreignKey == ["Signal.User.AuthId", "Signal.User.Id"]
    assert config.customerSources[0].key == "CustomerRetailId"


def _two_relationships_disagreeing_on_conflicts(config: dict) -> None:
    second = orjson.loads(orjson.dumps(config["activities"][0]))
    second["name"] = "Second"
    second["relationship"]["onConflict"] = "first"
    config["activities"].append(second)


def test_the_shipped_defaults_stitch_visitors_by_their_sdk_id() -> None:
    rel = load_config(None).activities[0].relationship
    assert rel.visitorKey == ["Signal.User.Id"]
    assert rel.onConflict == "latest"
    assert {"anonymous", "guest", "0", "-1"} <= rel.placeholders()


def test_a_relationship_without_a_visitor_key_links_no_visitors() -> None:
    config = parse_config(_with(lambda c: c["activities"][0]["relationship"].pop("visitorKey")))
    assert config.activities[0].relationship.visitorKey is None
    assert config.conflict_rules() == {}


def test_placeholders_are_compared_trimmed_and_case_folded() -> None:
    change = lambda c: c["activities"][0]["relationship"].update(ignoreValues=[" Guest "])  # noqa: E731
    rel = parse_config(_with(change)).activities[0].relationship
    assert rel.placeholders() == frozenset({"guest"})


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (lambda c: c["activities"][0].pop("timestamp"), "activities[0].timestamp"),
        (
            lambda c: c["activities"][0].update(showInTimeline="maybe"),
            "activities[0].showInTimeline",
        ),
        (lambda c: c["activities"][0].update(primaryKey=[]), "activities[0].primaryKey"),
        (lambda c: c["activities"][0].update(filter={"x": []}), "activities[0].filter.x"),
        (lambda c: c["activities"][0].update(colour="red"), "activities[0].colour"),
        (lambda c: c["activities"].append(dict(c["activities"][0])), "activities[1].name"),
        (
            lambda c: c["activities"][0]["relationship"].update(customerEntity="Nope"),
            "activities[0].relationship.customerEntity",
        ),
        (
            lambda c: c["activities"][0]["relationship"].update(customerKey="Email"),
            "activities[0].relationship.customerKey",
        ),
        (lambda c: c["customerSources"][0].pop("key"), "customerSources[0].key"),
        (
            lambda c: c["activities"][0]["relationship"].update(onConflict="newest"),
            "activities[0].relationship.onConflict",
        ),
        (
            lambda c: c["activities"][0]["relationship"].update(visitorKey=[]),
            "activities[0].relationship.visitorKey",
        ),
        (
            lambda c: c["activities"][0]["relationship"].update(ignoreValues="guest"),
            "activities[0].relationship.ignoreValues",
        ),
        (_two_relationships_disagreeing_on_conflicts, "activities[1].relationship.onConflict"),
    ],
)
def test_a_bad_config_names_the_offending_field(change, field) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ConfigError) as caught:
        parse_config(_with(change), "footprint.json")
    assert str(caught.value).startswith(f"footprint.json: {field}:")


def test_a_config_that_is_not_json_is_refused_with_its_origin() -> None:
    with pytest.raises(ConfigError, match=r"^cfg\.json: not valid JSON"):
        parse_config(b"{nope", "cfg.json")


def test_a_missing_config_file_is_a_config_error(tmp_path) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ConfigError, match="cannot read config file"):
        load_config(str(tmp_path / "absent.json"))


def test_every_config_error_is_shown_one_per_line() -> None:
    def misspell(c):  # type: ignore[no-untyped-def]
        c["activities"][0]["timestmap"] = c["activities"][0].pop("timestamp")

    with pytest.raises(ConfigError) as caught:
        parse_config(_with(misspell), "footprint.json")
    assert str(caught.value).splitlines() == [
        "footprint.json: activities[0].timestamp: Field required",
        "footprint.json: activities[0].timestmap: Extra inputs are not permitted",
    ]


def test_config_errors_are_capped_at_ten_lines_and_say_how_many_more() -> None:
    document = {"activities": [{"name": f"a{i}"} for i in range(3)]}
    with pytest.raises(ConfigError) as caught:
        parse_config(orjson.dumps(document), "cfg.json")
    lines = str(caught.value).splitlines()
    assert len(lines) == 11 and all(line.startswith("cfg.json: ") for line in lines)
    assert lines[-1].startswith("cfg.json: and ") and lines[-1].endswith(" more errors")


@pytest.mark.parametrize("document", [b"{}", b'{"activities": [], "customerSources": []}'])
def test_a_config_with_no_activity_and_no_customer_source_is_refused(document) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ConfigError, match="no activities and no customerSources"):
        parse_config(document, "cfg.json")
