"""model.json: the older CDM format, its entities, attributes and partition URLs."""

from __future__ import annotations

from shared.core.cdm import patterns
from shared.core.cdm.csv_format import model_csv
from shared.core.cdm.json_files import Reader, objects, read_json
from shared.core.cdm.model import Attribute, Entity, Manifest, Partition, folder_of
from shared.core.errors import PermanentError
from shared.core.ports import FileSource


def load_model_json(source: FileSource, path: str, reader: Reader | None = None) -> Manifest:
    data = reader(path) if reader else read_json(source, path)
    folder = folder_of(path)
    entities = tuple(_model_entity(item, path, folder) for item in objects(data, "entities", path))
    return Manifest(path, folder, "model.json", entities)


def _model_entity(item: dict, where: str, folder: str) -> Entity:
    name = item.get("name")
    if not isinstance(name, str) or not name:
        raise PermanentError(f"{where}: an entity has no name")
    attributes = tuple(
        Attribute(a["name"], a.get("dataType") if isinstance(a.get("dataType"), str) else None)
        for a in objects(item, "attributes", where)
        if isinstance(a.get("name"), str)
    )
    partitions = tuple(
        _model_partition(p, where, folder) for p in objects(item, "partitions", where)
    )
    return Entity(name, attributes, partitions, ())


def _model_partition(item: dict, where: str, folder: str) -> Partition:
    location = item.get("location")
    if not isinstance(location, str) or not location.strip():
        raise PermanentError(f"{where}: a partition has no location")
    csv = model_csv(item.get("fileFormatSettings"), where)
    namespace, rest = patterns.split_namespace(location.strip())
    if namespace in (None, "local"):
        try:
            return Partition(patterns.resolve_path(rest, folder, folder), False, csv)
        except ValueError as e:
            raise PermanentError(f"{where}: partition location: {e}") from None
    guess = patterns.url_location(location, folder) if "//" in location else None
    if guess is None:
        raise PermanentError(f"{where}: partition location {location!r} is not a file URL")
    return Partition(guess, False, csv, url=location)
