"""The evaluator against a plain reading of SPEC §9, on random activities, measures and times:
the sorted, bisected, shared-selection evaluation must give what the words say."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.core.audiences.definitions import format_instant, parse_duration
from shared.core.audiences.evaluator import Audiences
from shared.core.audiences.measures import Columns
from shared.core.config import parse_config

BASE = datetime(2026, 1, 1, tzinfo=UTC)
URLS = ["https://x/p/1", "https://x/p/2", "https://x/home", None]

activity = st.builds(
    lambda minute, aid, kind, url, name: {
        "ActivityId": aid, "ActivityType": kind, "ActivityTime": format_instant(BASE + timedelta(minutes=minute)),
        "ExternalUrl": url, "ActivityName": name, "Title": None, "ActivityTypeDisplay": "WebLog", "SourceEntity": "E",
    },
    st.integers(0, 600), st.sampled_from([f"a{i}" for i in range(40)]), st.sampled_from(["Clicks", "Views"]),
    st.sampled_from(URLS), st.sampled_from(["buy", "view"]),
)  # fmt: skip
measure = st.fixed_dictionaries(
    {"aggregate": st.sampled_from(["count", "countDistinct", "mostFrequent", "first", "last"])},
    optional={"activities": st.sampled_from([["Clicks"], ["Views"], ["Clicks", "Views"]]),
              "window": st.sampled_from(["PT1H", "PT3H", "P1D"]),
              "where": st.sampled_from([
                  {"ExternalUrl": {"startsWith": "https://x/p/"}}, {"ActivityName": {"equals": "buy"}},
                  {"ExternalUrl": {"contains": "/p/"}}, {"ActivityName": {"in": ["buy", "sell"]}},
                  {"ExternalUrl": {"contains": "home"}, "ActivityName": {"equals": "view"}}])},
)  # fmt: skip


def _config(measures: list[dict[str, Any]]) -> Audiences:
    for i, m in enumerate(measures):
        m["name"] = f"M{i}"
        if m["aggregate"] != "count":
            m["of"] = "ExternalUrl" if m["aggregate"] in ("countDistinct", "mostFrequent") or i % 2 else "ActivityTime"
    config = parse_config(orjson.dumps({
        "customerSources": [{"entity": "C", "key": "K"}],
        "activities": [{"name": n, "entity": "E", "primaryKey": "i", "timestamp": "t", "event": "e",
                        "activityType": "WebLog"} for n in ("Clicks", "Views")],
        "measures": measures,
    }))  # fmt: skip
    return Audiences(config.measures, config.segments)


def _plain(m: dict[str, Any], activities: list[dict[str, Any]], at: datetime) -> Any:
    """SPEC §9 read word by word."""
    now = format_instant(at)
    lower = format_instant(at - parse_duration(m["window"])) if "window" in m else None
    chosen = [
        a for a in activities
        if ("activities" not in m or a["ActivityType"] in m["activities"])
        and all(_where(a[f], t) for f, t in m.get("where", {}).items())
        and a["ActivityTime"] <= now and (lower is None or a["ActivityTime"] > lower)
    ]  # fmt: skip
    field = m.get("of", "ActivityTime")
    if m["aggregate"] == "count":
        return len(chosen)
    if m["aggregate"] == "countDistinct":
        return len({a[field] for a in chosen if a[field] is not None})
    if m["aggregate"] == "mostFrequent":
        counts = Counter(a[field] for a in chosen if a[field] is not None)
        return min((v for v, n in counts.items() if n == max(counts.values())), default=None)
    if not chosen:
        return None
    if m["aggregate"] == "last":
        return max(chosen, key=lambda a: (a["ActivityTime"], a["ActivityId"]))[field]
    earliest = min(a["ActivityTime"] for a in chosen)
    return max((a for a in chosen if a["ActivityTime"] == earliest), key=lambda a: a["ActivityId"])[field]


def _where(value: Any, test: dict[str, Any]) -> bool:
    if "equals" in test:
        return value == test["equals"]
    if "in" in test:
        return value in test["in"]
    if "contains" in test:
        return isinstance(value, str) and test["contains"] in value
    return isinstance(value, str) and value.startswith(test["startsWith"])


@settings(max_examples=300, deadline=None)
@given(st.lists(activity, max_size=25, unique_by=lambda a: a["ActivityId"]),
       st.lists(measure, min_size=1, max_size=6), st.integers(0, 700))
def test_every_measure_is_what_the_spec_says(activities, measures, minute) -> None:  # type: ignore[no-untyped-def]
    at = BASE + timedelta(minutes=minute, seconds=30)
    audiences = _config(measures)
    found = audiences.evaluate(activities, {}, at)
    assert found.measures == {m["name"]: _plain(m, activities, at) for m in measures}
    # The fields the measures read are enough: a store's full pass reads only those.
    only = [{f: a[f] for f in audiences.fields} for a in activities]
    assert audiences.evaluate(only, {}, at) == found
    # And read as a store's full pass reads them: rows of those fields, in any order.
    rows = [(*(a[f] for f in audiences.fields), "the customer") for a in reversed(activities)]
    assert audiences.evaluate(Columns.of_rows(audiences.fields, rows), {}, at) == found
    # Nothing changes before the next change the evaluation names (the timer reads the
    # customer again then, and only then); with none named, nothing changes at all.
    later = [at + timedelta(minutes=m) for m in (1, 30, 61, 180, 1500)]
    moment = datetime.fromisoformat(found.next_change.replace("Z", "+00:00")) if found.next_change else None
    assert moment is None or moment > at
    for when in [*later, *([moment - timedelta(milliseconds=1)] if moment else [])]:
        if moment is None or when < moment:
            assert audiences.evaluate(activities, {}, when).measures == found.measures, when
