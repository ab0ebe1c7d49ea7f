"""Reliability fixtures: a store per backend, the clean reference run, the summary table."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.reliability import summary
from tests.reliability.corpus import CORPUS
from tests.reliability.digest import Snapshot
from tests.reliability.stores import Backend, Reference, load_clean

BACKENDS = ["sqlite", pytest.param("azure-tables", marks=pytest.mark.azurite)]
_references: dict[str, Reference] = {}


@pytest.fixture(scope="session", params=BACKENDS)
def backend(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Backend:
    workdir = tmp_path_factory.mktemp(f"reliability-{request.param}")
    azurite = request.getfixturevalue("azurite") if request.param == "azure-tables" else None
    return Backend(request.param, workdir, azurite)


@pytest.fixture(scope="session")
def reference(backend: Backend, tmp_path_factory: pytest.TempPathFactory) -> Reference:
    """The corpus loaded once, in order, by one process, on this backend."""
    if backend.name not in _references:
        folder = tmp_path_factory.mktemp(f"clean-{backend.name}")
        _references[backend.name] = load_clean(backend.fresh(), CORPUS, folder / "export")
    return _references[backend.name]


@pytest.fixture(scope="session")
def clean(reference: Reference) -> Snapshot:
    return reference.snapshot


@pytest.fixture(scope="session")
def export_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The corpus as it finally is, on disk, shared read-only by the trials."""
    return CORPUS.write(tmp_path_factory.mktemp("corpus") / "export")


def pytest_terminal_summary(terminalreporter) -> None:  # type: ignore[no-untyped-def]
    """The table of every case run, on the terminal and in .reliability-summary.txt."""
    if not summary.LINES:
        return
    text = summary.table()
    terminalreporter.section("reliability summary")
    terminalreporter.write_line(text)
    summary.SUMMARY_FILE.write_text(text + "\n", encoding="utf-8")
