"""The evaluator of SPEC §9: every aggregate, window edge, tie, null, rule and refused config."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest

from shared.core.audiences.evaluator import Audiences
from shared.core.config import parse_config
from shared.core.errors import ConfigError

T = datetime(2026, 6, 30, 12, 0, tzinfo=UTC)


def at(delta: timedelta) -> str:
    moment = T - delta
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def act(ago: timedelta, aid: str = "a", kind: str = "Clicks", url: str | None = None, **extra: Any) -> dict[str, Any]:
    return {"ActivityId": aid, "ActivityType": kind, "ActivityTime": at(ago), "ExternalUrl": url,
            "ActivityName": extra.get("name", "click"), "Title": extra.get("title"),
            "ActivityTypeDisplay": "WebLog", "SourceEntity": "E"}


def config(measures: list[dict[str, Any]], segments: list[dict[str, Any]] | None = None) -> Any:
    base = {
        "customerSources": [{"entity": "C", "key": "K"}],
        "activities": [
            {"name": n, "entity": "E", "primaryKey": "id", "timestamp": "ts", "event": "ev",
             "activityType": "WebLog"} for n in ("Clicks", "Views")
        ],
        "measures": measures,
        "segments": segments or [],
    }
    return parse_config(orjson.dumps(base))


def evaluate(measures: list[dict[str, Any]], activities: list[dict[str, Any]],
             segments: list[dict[str, Any]] | None = None, attributes: dict[str, Any] | None = None,
             when: datetime = T):
    cfg = config(measures, segments)
    return Audiences(cfg.measures, cfg.segments).evaluate(activities, attributes or {}, when)


DAY = timedelta(days=1)


def test_count_counts_inside_the_window_only_and_nothing_is_zero() -> None:
    m = [{"name": "C30", "activities": ["Clicks"], "aggregate": "count", "window": "P30D"}]
    acts = [act(DAY, "1"), act(29 * DAY, "2"), act(31 * DAY, "3"), act(DAY, "4", kind="Views")]
    assert evaluate(m, acts).measures == {"C30": 2}
    assert evaluate(m, []).measures == {"C30": 0}


def test_a_window_excludes_exactly_t_minus_window_and_includes_exactly_t() -> None:
    m = [{"name": "C", "aggregate": "count", "window": "PT12H"}]
    edge = [act(timedelta(hours=12), "edge")]
    now = [act(timedelta(0), "now")]
    later = [act(-timedelta(milliseconds=1), "later")]
    assert evaluate(m, edge).measures["C"] == 0
    assert evaluate(m, edge, when=T - timedelta(milliseconds=1)).measures["C"] == 1
    assert evaluate(m, now).measures["C"] == 1
    assert evaluate(m, later).measures["C"] == 0


def test_activities_after_t_never_count_even_without_a_window() -> None:
    m = [{"name": "All", "aggregate": "count"}, {"name": "Last", "aggregate": "last", "of": "ActivityTime"}]
    result = evaluate(m, [act(DAY, "1"), act(-DAY, "future")])
    assert result.measures == {"All": 1, "Last": at(DAY)}


def test_count_distinct_and_where_filters_on_text_fields() -> None:
    m = [{"name": "Pages", "aggregate": "countDistinct", "of": "ExternalUrl",
          "where": {"ExternalUrl": {"startsWith": "https://x/p/"}}}]
    acts = [act(DAY, "1", url="https://x/p/1"), act(DAY, "2", url="https://x/p/1"),
            act(DAY, "3", url="https://x/p/2"), act(DAY, "4", url="https://x/home"), act(DAY, "5")]
    assert evaluate(m, acts).measures == {"Pages": 2}
    assert evaluate(m, []).measures == {"Pages": 0}


@pytest.mark.parametrize(("test", "expected"), [
    ({"equals": "buy"}, 1), ({"in": ["buy", "view"]}, 2), ({"contains": "uy"}, 1), ({"startsWith": "vi"}, 1),
])
def test_each_where_test_is_case_sensitive(test: dict[str, Any], expected: int) -> None:
    m = [{"name": "N", "aggregate": "count", "where": {"ActivityName": test}}]
    acts = [act(DAY, "1", name="buy"), act(DAY, "2", name="view"), act(DAY, "3", name="BUY")]
    assert evaluate(m, acts).measures["N"] == expected


@pytest.mark.parametrize("test", [{"startsWith": "1"}, {"contains": "2"}])
def test_a_text_test_of_a_value_not_text_is_false_not_an_error(test: dict[str, Any]) -> None:
    # A store's records may hold a number or a null where text is tested: neither counts,
    # whether the other values are text (each tested alone) or not.
    m = [{"name": "N", "aggregate": "count", "where": {"Title": test}}]
    acts = [act(DAY, "1", title="123"), act(DAY, "2", title=123), act(DAY, "3"), act(DAY, "4", title="132")]
    assert evaluate(m, acts).measures["N"] == 2
    assert evaluate(m, acts[1:3]).measures["N"] == 0
    assert evaluate(m, acts[::3]).measures["N"] == 2


def test_most_frequent_ties_go_to_the_smallest_value_and_nothing_is_null() -> None:
    m = [{"name": "Top", "aggregate": "mostFrequent", "of": "ExternalUrl"}]
    acts = [act(DAY, "1", url="b"), act(DAY, "2", url="a"), act(DAY, "3", url="b"), act(DAY, "4", url="a"),
            act(DAY, "5", url="c")]
    assert evaluate(m, acts).measures == {"Top": "a"}
    assert evaluate(m, [act(DAY, "1")]).measures == {"Top": None}


def test_first_and_last_of_a_field_take_its_value_ties_to_the_greatest_id() -> None:
    m = [{"name": "F", "aggregate": "first", "of": "ExternalUrl"},
         {"name": "L", "aggregate": "last", "of": "ExternalUrl"},
         {"name": "FT", "aggregate": "first", "of": "ActivityTime"},
         {"name": "LT", "aggregate": "last"}]
    acts = [act(3 * DAY, "a", url="old-a"), act(3 * DAY, "b", url="old-b"),
            act(DAY, "c", url="new-c"), act(DAY, "d", url="new-d")]
    assert evaluate(m, acts).measures == {"F": "old-b", "L": "new-d", "FT": at(3 * DAY), "LT": at(DAY)}
    assert evaluate(m, []).measures == {"F": None, "L": None, "FT": None, "LT": None}


def test_nested_rules_over_measures_attributes_and_segments() -> None:
    m = [{"name": "C30", "aggregate": "count", "window": "P30D"},
         {"name": "Last", "aggregate": "last", "of": "ActivityTime"}]
    s = [{"name": "Engaged", "rule": {"all": [{"measure": "C30", "op": ">=", "value": 3},
                                             {"attribute": "City", "op": "in", "value": ["Oslo", "Utrecht"]}]}},
         {"name": "Lapsed", "rule": {"all": [{"measure": "Last", "op": "before", "value": "P60D"},
                                            {"not": {"segment": "Engaged"}}]}},
         {"name": "Either", "rule": {"any": [{"segment": "Engaged"}, {"segment": "Lapsed"}]}}]
    three = [act(DAY, str(i)) for i in range(3)]
    assert evaluate(m, three, s, {"City": "Oslo"}).segments == ("Either", "Engaged")
    assert evaluate(m, three, s, {"City": "Paris"}).segments == ()
    assert evaluate(m, [act(61 * DAY)], s, {"City": "Oslo"}).segments == ("Either", "Lapsed")
    assert evaluate(m, [], s, {}).segments == ()  # Last is null: before is false


def test_a_condition_on_null_is_false_except_not_exists() -> None:
    m = [{"name": "Top", "aggregate": "mostFrequent", "of": "Title"}]
    s = [{"name": "Ne", "rule": {"measure": "Top", "op": "!=", "value": "x"}},
         {"name": "Missing", "rule": {"measure": "Top", "op": "notExists"}},
         {"name": "Present", "rule": {"measure": "Top", "op": "exists"}},
         {"name": "NoCity", "rule": {"attribute": "City", "op": "!=", "value": "Oslo"}}]
    assert evaluate(m, [], s).segments == ("Missing",)
    assert evaluate(m, [act(DAY, title="y")], s, {"City": "Bergen"}).segments == ("Ne", "NoCity", "Present")


def test_within_and_before_turn_exactly_at_their_bounds() -> None:
    m = [{"name": "Last", "aggregate": "last"}]
    s = [{"name": "Recent", "rule": {"measure": "Last", "op": "within", "value": "P7D"}},
         {"name": "Old", "rule": {"measure": "Last", "op": "before", "value": "P7D"}}]
    edge = evaluate(m, [act(7 * DAY)], s)
    assert edge.segments == ("Recent",)  # at exactly T - 7 days: within, not before
    assert edge.next_change == at(-timedelta(milliseconds=1))  # one millisecond on, it is Old
    assert evaluate(m, [act(7 * DAY)], s, when=T + timedelta(milliseconds=1)).segments == ("Old",)
    assert evaluate(m, [act(7 * DAY + timedelta(milliseconds=1))], s).segments == ("Old",)


def test_the_next_change_is_when_the_oldest_windowed_activity_leaves() -> None:
    m = [{"name": "C", "aggregate": "count", "window": "P30D"}, {"name": "All", "aggregate": "count"}]
    result = evaluate(m, [act(10 * DAY, "1"), act(20 * DAY, "2")])
    assert result.next_change == at(-10 * DAY)  # the 20-day-old one leaves 10 days from now
    later = evaluate(m, [act(10 * DAY, "1"), act(20 * DAY, "2")], when=T + 10 * DAY)
    assert later.measures == {"C": 1, "All": 2}
    assert evaluate([{"name": "All", "aggregate": "count"}], [act(DAY)]).next_change is None
    assert evaluate(m, [act(-DAY, "f")]).next_change == at(-DAY)  # a future one starts counting


@pytest.mark.parametrize(("measures", "segments", "message"), [
    ([{"name": "bad name", "aggregate": "count"}], [], "measures[0].name"),
    ([{"name": "M", "aggregate": "count", "window": "P1M"}], [], "measures[0].window"),
    ([{"name": "M", "aggregate": "count", "window": "P0D"}], [], "duration of zero"),
    ([{"name": "M", "aggregate": "countDistinct"}], [], "needs the field"),
    ([{"name": "M", "aggregate": "sum"}], [], "measures[0].aggregate"),
    ([{"name": "M", "aggregate": "count", "activities": ["Nope"]}], [], "measures[0].activities[0]"),
    ([{"name": "M", "aggregate": "count"}, {"name": "M", "aggregate": "count"}], [], "duplicate"),
    ([{"name": "M", "aggregate": "count", "where": {"Colour": {"equals": "x"}}}], [], "measures[0].where"),
    ([], [{"name": "S", "rule": {"measure": "Nope", "op": ">", "value": 1}}], "'Nope' is not a configured measure"),
    ([{"name": "M", "aggregate": "count"}], [{"name": "S", "rule": {"measure": "M", "op": "within", "value": "P1D"}}], "needs a time-valued measure"),
    ([{"name": "M", "aggregate": "count"}], [{"name": "S", "rule": {"measure": "M", "op": ">", "value": "3"}}], "compare it with a number"),
    ([{"name": "L", "aggregate": "last"}], [{"name": "S", "rule": {"measure": "L", "op": "before", "value": "60 days"}}], "not a duration"),
    ([], [{"name": "S", "rule": {"segment": "T"}}, {"name": "T", "rule": {"not": {"segment": "S"}}}], "cannot contain itself"),
    ([], [{"name": "S", "rule": {"segment": "S"}}], "cannot contain itself"),
    ([], [{"name": "S", "rule": {"segment": "Gone"}}], "not a configured segment"),
    ([], [{"name": "S", "rule": {"all": []}}], "non-empty list"),
    ([], [{"name": "S", "rule": {"attribute": "City", "op": "like", "value": "x"}}], "op"),
    ([], [{"name": "S", "rule": {"attribute": "City", "op": "exists", "value": "x"}}], "takes no value"),
])
def test_a_wrong_definition_is_refused_naming_the_field(measures, segments, message) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ConfigError, match=None) as info:
        config(measures, segments)
    assert message in str(info.value), str(info.value)


def test_the_fingerprint_follows_the_definitions_only() -> None:
    a = config([{"name": "M", "aggregate": "count", "window": "P30D"}])
    b = config([{"name": "M", "aggregate": "count", "window": "P31D"}])
    again = config([{"name": "M", "aggregate": "count", "window": "P30D"}])
    fp = [Audiences(c.measures, c.segments).fingerprint for c in (a, b, again)]
    assert fp[0] != fp[1] and fp[0] == fp[2]
