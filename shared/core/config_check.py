"""A dry run of a configuration against an export: which configured columns its files lack."""

from __future__ import annotations

import contextlib
from typing import Any

from shared.core.cdm.catalog import Catalog, FileSchema, is_metadata
from shared.core.config import ActivityConfig, Config, CustomerSource
from shared.core.errors import FootprintError
from shared.core.ports import FileSource
from shared.core.reading.rows import file_kind, iter_rows

# Rows read into a file with no schema for one whose values name its columns (a bad first
# row of a CSV header file, say): never the whole file.
_ROWS_FOR_COLUMNS = 10
_EXAMPLES = 3


def activity_fields(a: ActivityConfig) -> list[tuple[str, list[str]]]:
    """(field, columns any one of which supplies it) of one activity, as configured."""
    fields = [("primaryKey", a.primaryKey), ("timestamp", a.timestamp), ("event", a.event)]
    fields += [(name, cols) for name, cols in (("webAddress", a.webAddress),
               ("details", a.details)) if cols]  # fmt: skip
    fields += [(f"filter.{column}", [column]) for column in a.filter]
    if a.relationship is not None:
        fields.append(("relationship.foreignKey", a.relationship.foreignKey))
    return fields


def source_fields(s: CustomerSource) -> list[tuple[str, list[str]]]:
    fields = [("key", [s.key])] + ([("customerId", [s.customerId])] if s.customerId else [])
    return fields + [(f"attributes.{name}", [name]) for name in s.attributes]


def check_config(
    config: Config, source: FileSource | None, files_per_entity: int | None = None
) -> dict[str, Any]:
    """The `footprint config check` document: each activity and customer source, the files of
    its entity in `source` (the first `files_per_entity` of them in path order, if given), and
    each configured field none of whose columns a file has."""
    targets = [("activity", a.name, a.entity, activity_fields(a)) for a in config.activities]
    targets += [("customerSource", s.entity, s.entity, source_fields(s))
                for s in config.customerSources]  # fmt: skip
    if source is None:
        return {"ok": True, "checked": False, "files_per_entity": None, "unreadable": [], "checks": [
            {"kind": kind, "name": name, "entity": entity} for kind, name, entity, _ in targets
        ]}  # fmt: skip
    columns, unreadable = _columns_by_entity(source, {t[2] for t in targets}, files_per_entity)
    checks = [_check(kind, name, entity, fields, columns.get(entity, {}))
              for kind, name, entity, fields in targets]  # fmt: skip
    ok = not unreadable and all(c["files"] and not c["missing"] for c in checks)
    return {"ok": ok, "checked": True, "files_per_entity": files_per_entity,
            "unreadable": unreadable, "checks": checks}  # fmt: skip


def _check(
    kind: str, name: str, entity: str, fields: list[tuple[str, list[str]]],
    files: dict[str, frozenset[str]],
) -> dict[str, Any]:  # fmt: skip
    missing = []
    for field, wanted in fields:
        lacking = [path for path, have in files.items() if have.isdisjoint(wanted)]
        if lacking:
            missing.append({"field": field, "columns": list(wanted), "files": len(lacking),
                            "examples": lacking[:_EXAMPLES]})  # fmt: skip
    return {"kind": kind, "name": name, "entity": entity, "files": len(files), "missing": missing}


def _columns_by_entity(
    source: FileSource, entities: set[str], cap: int | None
) -> tuple[dict[str, dict[str, frozenset[str]]], list[dict[str, str]]]:
    """The columns of each data file of `entities`, and the files that could not be read."""
    catalog = Catalog(source, cache=True)
    found: dict[str, dict[str, frozenset[str]]] = {}
    unreadable: list[dict[str, str]] = []
    for file in source.list():
        if is_metadata(file.path) or file_kind(file.path) is None:
            continue
        try:
            schema = catalog.describe(file.path)
            if schema.entity not in entities or len(found.get(schema.entity, ())) == cap:
                continue
            columns = schema.columns or _first_columns(source, file.path, schema)
        except FootprintError as exc:
            unreadable.append({"file": file.path, "error": str(exc)})
            continue
        if columns is not None:  # an empty file says nothing of its columns
            found.setdefault(schema.entity, {})[file.path] = frozenset(columns)
    return found, unreadable


def _first_columns(source: FileSource, path: str, schema: FileSchema) -> tuple[str, ...] | None:
    """Columns of a file without a schema: its CSV header, or the keys of its first JSON
    object; read from the start of the file only. None when no row says."""
    _, stream = source.open(path)
    with contextlib.closing(stream):
        rows = iter_rows(stream, path, schema.csv, None)
        for _, parsed in zip(range(_ROWS_FOR_COLUMNS), rows, strict=False):
            if parsed.values is not None:
                return tuple(parsed.values)
    return None
