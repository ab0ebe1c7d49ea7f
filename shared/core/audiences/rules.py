"""Segment rules: parsed from the config's JSON, checked against the measures, cycles refused."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Annotated, Any

from pydantic import BeforeValidator, Field

from shared.core.audiences.definitions import (
    ATTRIBUTE_OPS,
    NUMBER_OPS,
    PRESENCE_OPS,
    TIME_OPS,
    All,
    AnyOf,
    AttributeTest,
    AudienceName,
    MeasureConfig,
    MeasureTest,
    Not,
    Rule,
    SegmentTest,
    _Model,
    parse_duration,
    parse_instant,
)

MAX_DEPTH = 32


def parse_rule(raw: Any, where: str = "", depth: int = 0) -> Rule:
    """A rule tree from its JSON form; ValueError names the part that is wrong."""
    if depth > MAX_DEPTH:
        raise ValueError(f"{where or 'rule'}: nested deeper than {MAX_DEPTH}")
    if not isinstance(raw, Mapping) or not raw:
        raise ValueError(f"{where or 'rule'}: a rule is an object (all, any, not or a condition)")
    for group, kind in (("all", All), ("any", AnyOf)):
        if group in raw:
            _only(raw, {group}, where)
            items = raw[group]
            if not isinstance(items, list) or not items:
                raise ValueError(f"{_at(where, group)}: a non-empty list of rules")
            return kind(tuple(parse_rule(r, f"{_at(where, group)}[{i}]", depth + 1)
                              for i, r in enumerate(items)))
    if "not" in raw:
        _only(raw, {"not"}, where)
        return Not(parse_rule(raw["not"], _at(where, "not"), depth + 1))
    if "segment" in raw:
        _only(raw, {"segment"}, where)
        return SegmentTest(_name(raw["segment"], _at(where, "segment")))
    if "measure" in raw:
        _only(raw, {"measure", "op", "value"}, where)
        op = _op(raw, (*NUMBER_OPS, *TIME_OPS, *PRESENCE_OPS), where)
        value = _value(raw, op not in PRESENCE_OPS, where)
        if op in TIME_OPS:
            try:
                value = parse_duration(value)
            except ValueError as exc:
                raise ValueError(f"{_at(where, 'value')}: {exc}") from None
        elif op not in PRESENCE_OPS and (isinstance(value, bool) or not isinstance(value, int | float | str)):
            raise ValueError(f"{_at(where, 'value')}: a number or a string")
        return MeasureTest(_name(raw["measure"], _at(where, "measure")), op, value)
    if "attribute" in raw:
        _only(raw, {"attribute", "op", "value"}, where)
        op = _op(raw, ATTRIBUTE_OPS, where)
        value = _value(raw, op != "exists", where)
        if op == "in" and (not isinstance(value, list) or not value):
            raise ValueError(f"{_at(where, 'value')}: `in` takes a non-empty list")
        if op in ("contains", "startsWith") and not isinstance(value, str):
            raise ValueError(f"{_at(where, 'value')}: `{op}` takes a string")
        attribute = raw["attribute"]
        if not isinstance(attribute, str) or not attribute:
            raise ValueError(f"{_at(where, 'attribute')}: an attribute name")
        return AttributeTest(attribute, op, tuple(value) if isinstance(value, list) else value)
    raise ValueError(f"{where or 'rule'}: expected one of all, any, not, measure, attribute, segment")


def _at(where: str, key: str) -> str:
    return f"{where}.{key}" if where else key


def _only(raw: Mapping[str, Any], allowed: set[str], where: str) -> None:
    extra = sorted(set(raw) - allowed)
    if extra:
        raise ValueError(f"{_at(where, extra[0])}: not allowed here")


def _name(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value:
        raise ValueError(f"{where}: a name")
    return value


def _op(raw: Mapping[str, Any], allowed: Sequence[str], where: str) -> str:
    op = raw.get("op")
    if op not in allowed:
        raise ValueError(f"{_at(where, 'op')}: {op!r} is not one of {', '.join(allowed)}")
    return op


def _value(raw: Mapping[str, Any], needed: bool, where: str) -> Any:
    if needed and "value" not in raw:
        raise ValueError(f"{_at(where, 'value')}: required by op {raw['op']!r}")
    if not needed and "value" in raw:
        raise ValueError(f"{_at(where, 'value')}: op {raw['op']!r} takes no value")
    return raw.get("value")


class SegmentConfig(_Model):
    name: AudienceName
    description: Annotated[str, Field(max_length=1024)] = ""
    rule: Annotated[Any, BeforeValidator(parse_rule)]


def check_audiences(
    measures: Sequence[MeasureConfig], segments: Sequence[SegmentConfig], activities: Sequence[str]
) -> None:
    """Cross-references of the definitions: names unique and known, ops fit, no cycles."""
    _unique("measures", [m.name for m in measures])
    _unique("segments", [s.name for s in segments])
    known = set(activities)
    for i, measure in enumerate(measures):
        for j, name in enumerate(measure.activities or ()):
            if name not in known:
                raise ValueError(f"measures[{i}].activities[{j}]: {name!r} is not a configured activity")
    kinds = {m.name: m.kind for m in measures}
    names = {s.name for s in segments}
    uses: dict[str, set[str]] = {}
    for i, segment in enumerate(segments):
        uses[segment.name] = set()
        for where, test in _tests(segment.rule, f"segments[{i}].rule"):
            if isinstance(test, SegmentTest):
                if test.segment not in names:
                    raise ValueError(f"{where}.segment: {test.segment!r} is not a configured segment")
                uses[segment.name].add(test.segment)
            elif isinstance(test, MeasureTest):
                _check_measure_test(test, kinds, where)
    _refuse_cycles(uses)


def _unique(what: str, names: list[str]) -> None:
    for i, name in enumerate(names):
        if name in names[:i]:
            raise ValueError(f"{what}[{i}].name: duplicate name {name!r}")


def _tests(rule: Rule, where: str):  # type: ignore[no-untyped-def]
    if isinstance(rule, All | AnyOf):
        key = "all" if isinstance(rule, All) else "any"
        for i, item in enumerate(rule.rules):
            yield from _tests(item, f"{where}.{key}[{i}]")
    elif isinstance(rule, Not):
        yield from _tests(rule.rule, f"{where}.not")
    else:
        yield where, rule


def _check_measure_test(test: MeasureTest, kinds: dict[str, str], where: str) -> None:
    kind = kinds.get(test.measure)
    if kind is None:
        raise ValueError(f"{where}.measure: {test.measure!r} is not a configured measure")
    if test.op in PRESENCE_OPS:
        return
    if test.op in TIME_OPS:
        if kind != "time":
            raise ValueError(f"{where}.op: {test.op!r} needs a time-valued measure ({test.measure!r} is {kind})")
        return
    if kind == "number" and not isinstance(test.value, int | float):
        raise ValueError(f"{where}.value: {test.measure!r} is a number; compare it with a number")
    if kind == "time" and not (isinstance(test.value, str) and _is_instant(test.value)):
        raise ValueError(f"{where}.value: {test.measure!r} is a time; compare it with an ISO 8601 instant")
    if kind == "text" and not isinstance(test.value, str) and test.op not in ("=", "!="):
        raise ValueError(f"{where}.value: {test.measure!r} is text; order it against a string")


def _is_instant(text: str) -> bool:
    try:
        parse_instant(text)
    except ValueError:
        return False
    return True


def _refuse_cycles(uses: dict[str, set[str]]) -> None:
    done: set[str] = set()

    def visit(name: str, path: list[str]) -> None:
        if name in path:
            cycle = " -> ".join([*path[path.index(name):], name])
            raise ValueError(f"segments: a segment cannot contain itself ({cycle})")
        if name in done:
            return
        for used in sorted(uses.get(name, ())):
            visit(used, [*path, name])
        done.add(name)

    for name in sorted(uses):
        visit(name, [])


def segment_order(segments: Sequence[SegmentConfig]) -> list[SegmentConfig]:
    """Segments in an order where every segment comes after those its rule refers to."""
    by_name = {s.name: s for s in segments}
    ordered: list[SegmentConfig] = []
    seen: set[str] = set()

    def place(segment: SegmentConfig) -> None:
        if segment.name in seen:
            return
        seen.add(segment.name)
        for _, test in _tests(segment.rule, ""):
            if isinstance(test, SegmentTest):
                place(by_name[test.segment])
        ordered.append(segment)

    for segment in segments:
        place(segment)
    return ordered


__all__ = ["MeasureConfig", "SegmentConfig", "check_audiences", "parse_rule", "segment_order"]
