"""The configuration file: customer sources and activities, validated once at start-up."""

from __future__ import annotations

import hashlib
from typing import Annotated, Any, Literal

import orjson
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, model_validator

from shared.core.audiences.definitions import MeasureConfig
from shared.core.audiences.rules import SegmentConfig, check_audiences
from shared.core.errors import ConfigError


def _as_column_list(value: Any) -> Any:
    # A field given as one column name means the same as a list of one.
    return [value] if isinstance(value, str) else value


Name = Annotated[str, Field(min_length=1, max_length=256)]
Columns = Annotated[list[Name], BeforeValidator(_as_column_list), Field(min_length=1)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CustomerSource(_Model):
    entity: Name
    key: Name
    customerId: Name | None = None
    attributes: list[Name] = []


# Visitor ids an SDK writes for "nobody in particular": never a link (SPEC §8).
DEFAULT_IGNORE_VALUES = ("anonymous", "guest", "null", "undefined", "unknown", "0", "-1")
OnConflict = Literal["latest", "first", "none"]


class Relationship(_Model):
    name: Name
    foreignKey: Columns
    customerEntity: Name
    customerKey: Name
    # The column(s) of the visitor's own id (a cookie): a row with both it and a different
    # foreign key links the visitor to that key.
    visitorKey: Columns | None = None
    onConflict: OnConflict = "latest"
    ignoreValues: list[Annotated[str, Field(max_length=256)]] = list(DEFAULT_IGNORE_VALUES)

    def placeholders(self) -> frozenset[str]:
        """ignoreValues as compared: trimmed, case-folded."""
        return frozenset(v.strip().casefold() for v in self.ignoreValues)


class ActivityConfig(_Model):
    name: Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.\-]+$")]
    entity: Name
    primaryKey: Columns
    timestamp: Columns
    event: Columns
    webAddress: Columns | None = None
    details: Columns | None = None
    activityType: Name
    showInTimeline: bool = True
    filter: dict[Name, Annotated[list[str], Field(min_length=1)]] = {}
    relationship: Relationship | None = None


class Config(_Model):
    customerSources: list[CustomerSource] = []
    activities: list[ActivityConfig] = []
    measures: list[MeasureConfig] = []
    segments: list[SegmentConfig] = []

    @model_validator(mode="after")
    def _check_references(self) -> Config:
        if not self.activities and not self.customerSources:
            # Such a config would skip every file as unmapped: surely not what was meant.
            raise ValueError(
                "the config has no activities and no customerSources: nothing would be read"
            )
        names = [a.name for a in self.activities]
        check_audiences(self.measures, self.segments, names)
        for i, name in enumerate(names):
            if name in names[:i]:
                raise ValueError(f"activities[{i}].name: duplicate activity name {name!r}")
        sources = {s.entity: s for s in self.customerSources}
        for i, activity in enumerate(self.activities):
            rel = activity.relationship
            if rel is None:
                continue
            source = sources.get(rel.customerEntity)
            where = f"activities[{i}].relationship"
            if source is None:
                raise ValueError(
                    f"{where}.customerEntity: {rel.customerEntity!r} is not a customerSources entity"
                )
            if rel.customerKey != source.key:
                raise ValueError(
                    f"{where}.customerKey: {rel.customerKey!r} is not the key of "
                    f"{rel.customerEntity!r} ({source.key!r})"
                )
        self._check_conflict_rules()
        return self

    def _check_conflict_rules(self) -> None:
        """One visitor has one winner per customer entity, so relationships that link visitors
        to the same entity must agree on how a conflict is settled."""
        seen: dict[str, str] = {}
        for i, activity in enumerate(self.activities):
            rel = activity.relationship
            if rel is None or rel.visitorKey is None:
                continue
            known = seen.setdefault(rel.customerEntity, rel.onConflict)
            if known != rel.onConflict:
                raise ValueError(
                    f"activities[{i}].relationship.onConflict: {rel.onConflict!r} differs from "
                    f"{known!r}, set by another relationship to {rel.customerEntity!r}"
                )

    def conflict_rules(self) -> dict[str, str]:
        """onConflict of each customer entity that visitors are linked to."""
        return {
            a.relationship.customerEntity: a.relationship.onConflict
            for a in self.activities
            if a.relationship is not None and a.relationship.visitorKey is not None
        }


def mapping_fingerprint(config: Config, entity: str) -> str:
    """A digest of everything in `config` that reads `entity`: its activities and customer
    sources, in canonical JSON (sorted keys, in no particular order of the lists). A file read
    under one fingerprint is due again under another; nothing else in the config matters."""
    parts = [a.model_dump(mode="json") for a in config.activities if a.entity == entity]
    parts += [s.model_dump(mode="json") for s in config.customerSources if s.entity == entity]
    canonical = sorted(orjson.dumps(p, option=orjson.OPT_SORT_KEYS) for p in parts)
    return hashlib.blake2b(b"\n".join(canonical), digest_size=16).hexdigest()


def parse_config(data: bytes | str, origin: str = "config") -> Config:
    """Validate a configuration document; ConfigError names the offending field."""
    try:
        raw = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise ConfigError(f"{origin}: not valid JSON: {exc}") from None
    try:
        return Config.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(_describe(exc, origin)) from None


MAX_ERRORS_SHOWN = 10


def _describe(exc: ValidationError, origin: str) -> str:
    """Every error, one line each (the useful one is often not the first), at most ten."""
    errors = exc.errors()
    lines = [f"{origin}: {_line(e)}" for e in errors[:MAX_ERRORS_SHOWN]]
    if len(errors) > MAX_ERRORS_SHOWN:
        lines.append(f"{origin}: and {len(errors) - MAX_ERRORS_SHOWN} more errors")
    return "\n".join(lines)


def _line(error: Any) -> str:
    where = "".join(_step(p) for p in error["loc"]).lstrip(".")
    message = error["msg"].removeprefix("Value error, ").replace("\n", " ")
    return f"{where}: {message}" if where else message


def _step(part: int | str) -> str:
    """One step of a field path; a key that is not plain text is quoted, so the message stays
    on one line whatever the file holds."""
    if isinstance(part, int):
        return f"[{part}]"
    return f".{part}" if part and part.isprintable() and part.strip() == part else f"[{part!r}]"
