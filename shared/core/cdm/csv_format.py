"""The CsvFormat a CDM folder declares: manifest CSV traits and model.json fileFormatSettings."""

from __future__ import annotations

from typing import Any

from shared.core.cdm.json_files import text_or_none
from shared.core.errors import PermanentError
from shared.core.reading.records import CsvFormat

CSV_TRAIT = "is.partition.format.csv"


def trait_csv(traits: dict, where: str) -> CsvFormat | None:
    """The CsvFormat of a manifest entry's traits; None when it declares none."""
    args = traits.get(CSV_TRAIT)
    if args is None:
        return None
    default = CsvFormat()
    return CsvFormat(
        header=_flag(args.get("columnHeaders"), default.header, where),
        delimiter=text_or_none(args.get("delimiter")) or default.delimiter,
        quote=text_or_none(args.get("quote")) or default.quote,
        escape=text_or_none(args.get("escape")),
        encoding=text_or_none(args.get("encoding")) or default.encoding,
        skip_lines=_count(args.get("skipLines"), where),
    )


def model_csv(settings: Any, where: str) -> CsvFormat:
    """model.json CSV settings: unlike a CDM trait, columnHeaders defaults to false here.

    quoteStyle and csvStyle only say when the writer quoted: '"' reads both styles.
    """
    if not isinstance(settings, dict):
        return CsvFormat(header=False)
    return CsvFormat(
        header=_flag(settings.get("columnHeaders"), False, where),
        delimiter=text_or_none(settings.get("delimiter")) or ",",
        encoding=text_or_none(settings.get("encoding")) or "utf-8",
    )


def _flag(value: Any, default: bool, where: str) -> bool:
    if value is None:
        return default
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    raise PermanentError(f"{where}: columnHeaders {value!r} is not true or false")


def _count(value: Any, where: str) -> int:
    if value is None:
        return 0
    try:
        number = int(value)
    except (TypeError, ValueError):
        number = -1
    if number < 0 or isinstance(value, bool):
        raise PermanentError(f"{where}: skipLines {value!r} is not a count of lines")
    return number
