"""Which data files a manifest's partitions and partition patterns cover."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Iterator

from shared.core.cdm import patterns
from shared.core.cdm.model import Entity, Manifest, Partition, PartitionPattern
from shared.core.errors import PermanentError
from shared.core.ports import FileSource
from shared.core.reading.records import CsvFormat


def match_file(manifest: Manifest, path: str) -> tuple[Entity, CsvFormat | None] | None:
    """The entity whose partitions, then patterns, cover the data file at `path`."""
    path = path.strip("/")
    for entity in manifest.entities:
        for partition in entity.partitions:
            if _partition_covers(partition, manifest.folder, path):
                return entity, partition.csv
    for entity in manifest.entities:
        for pattern in entity.patterns:
            if patterns.pattern_matches(_regex(pattern), pattern.root_location, path):
                return entity, pattern.csv
    return None


def resolve_partitions(source: FileSource, manifest: Manifest) -> dict[str, list[Partition]]:
    """Entity name -> its partitions, patterns resolved against the files that exist.

    Like the object model: explicit partitions are kept whether or not their file exists, and
    a pattern adds each file below its root that it matches, once per location and kind.
    """
    listings: dict[str, list[str]] = {}

    def files(folder: str) -> list[str]:
        if folder not in listings:
            listings[folder] = [f.path for f in source.list(folder, recursive=True)]
        return listings[folder]

    resolved: dict[str, list[Partition]] = {}
    for entity in manifest.entities:
        found = resolved.setdefault(entity.name, [])
        found.extend(_pinned(p, manifest.folder, files) for p in entity.partitions)
        found.extend(_pattern_partitions(entity, files))
    return {name: _unique_sorted(found) for name, found in resolved.items()}


def _partition_covers(partition: Partition, folder: str, path: str) -> bool:
    if partition.url is None:
        return partition.location == path
    return patterns.url_covers(partition.url, folder, path)


def _pinned(partition: Partition, folder: str, files: Callable[[str], list[str]]) -> Partition:
    """A model.json partition located at the existing file its URL ends with, if any."""
    if partition.url is None:
        return partition
    matches = [p for p in files(folder) if _partition_covers(partition, folder, p)]
    if not matches:
        return partition
    return dataclasses.replace(partition, location=max(matches, key=lambda p: p.count("/")))


def _regex(pattern: PartitionPattern) -> re.Pattern[str]:
    try:
        return patterns.compile_pattern(pattern.glob_pattern, pattern.regular_expression)
    except ValueError as e:
        raise PermanentError(str(e)) from None


def _pattern_partitions(entity: Entity, files: Callable[[str], list[str]]) -> Iterator[Partition]:
    for pattern in entity.patterns:
        regex = _regex(pattern)
        for path in files(pattern.root_location):
            if patterns.pattern_matches(regex, pattern.root_location, path):
                yield Partition(path, pattern.incremental, pattern.csv)


def _unique_sorted(partitions: list[Partition]) -> list[Partition]:
    """One partition per location and kind, the first declared winning, as the object model."""
    unique: dict[tuple[bool, str], Partition] = {}
    for partition in partitions:
        unique.setdefault((partition.incremental, partition.location), partition)
    return [unique[key] for key in sorted(unique)]
