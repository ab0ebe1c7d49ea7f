"""What a CDM folder declares: entities, their attributes, partitions and partition patterns."""

from __future__ import annotations

import dataclasses

from shared.core.reading.records import CsvFormat


@dataclasses.dataclass(frozen=True)
class Attribute:
    name: str
    data_type: str | None


@dataclasses.dataclass(frozen=True)
class Partition:
    location: str  # relative to the source root, no leading '/'
    incremental: bool
    csv: CsvFormat | None  # None: nothing declared, CsvFormat() defaults apply
    # model.json only: the partition's URL, which files are matched against by path suffix.
    url: str | None = None


@dataclasses.dataclass(frozen=True)
class PartitionPattern:
    root_location: str  # relative to the source root
    glob_pattern: str | None
    regular_expression: str | None
    incremental: bool
    csv: CsvFormat | None


@dataclasses.dataclass(frozen=True)
class Entity:
    name: str
    attributes: tuple[Attribute, ...]
    partitions: tuple[Partition, ...]
    patterns: tuple[PartitionPattern, ...]
    # The entity document its entityPath names when the export lacks it (no attributes then).
    missing_document: str | None = None


@dataclasses.dataclass(frozen=True)
class Manifest:
    path: str
    folder: str
    kind: str  # "manifest" | "model.json"
    entities: tuple[Entity, ...]  # including entities of followed subManifests


@dataclasses.dataclass(frozen=True)
class FileSchema:
    entity: str
    columns: tuple[str, ...] | None
    csv: CsvFormat | None
    manifest: str | None


def folder_of(path: str) -> str:
    """The folder holding a source path; '' at the source root."""
    return path.rpartition("/")[0]
