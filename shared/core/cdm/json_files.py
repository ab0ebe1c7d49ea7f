"""CDM metadata as JSON: documents read within a size bound, and their lists checked."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, BinaryIO

import orjson

from shared.core.errors import PermanentError
from shared.core.ports import FileSource

# What reads a metadata file for a loader: its path -> the document.
Reader = Callable[[str], dict]

# Manifests and entity documents are small; anything bigger is not metadata we can trust.
MAX_METADATA_BYTES = 32 * 1024 * 1024


def read_json(source: FileSource, path: str) -> dict:
    _, stream = source.open(path)
    return parse_json(path, stream)


def parse_json(path: str, stream: BinaryIO) -> dict:
    with stream:
        data = stream.read(MAX_METADATA_BYTES + 1)
    if len(data) > MAX_METADATA_BYTES:
        raise PermanentError(f"{path}: larger than {MAX_METADATA_BYTES >> 20} MiB")
    try:
        doc = orjson.loads(data.removeprefix(b"\xef\xbb\xbf"))
    except orjson.JSONDecodeError as e:
        raise PermanentError(f"{path}: broken JSON: {e}") from None
    if not isinstance(doc, dict):
        raise PermanentError(f"{path}: not a JSON object")
    return doc


def objects(data: dict, key: str, where: str) -> list[dict]:
    """data[key] as a list of objects; PermanentError when it is something else."""
    value = data.get(key)
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise PermanentError(f"{where}: {key} is not a list of objects")
    return value


def objects_lenient(data: dict | None, key: str) -> list[dict]:
    value = (data or {}).get(key)
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


def text_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None
