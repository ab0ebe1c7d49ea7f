"""BlobFileSource against a real Azurite: listing, ETags, streaming, and storage failures."""

from __future__ import annotations

import hashlib
import tracemalloc
from collections import Counter

import pytest
from azure.storage.blob import ContainerClient

from shared.adapters.azure.blob import BlobFileSource
from shared.bootstrap import open_source
from shared.core.errors import ConfigError, NotFound, TransientError
from shared.settings import Settings
from tests.azurite import ACCOUNT_KEY, Azurite

pytestmark = pytest.mark.azurite

MB = 1024 * 1024


@pytest.fixture
def container(azurite, azurite_names) -> ContainerClient:  # type: ignore[no-untyped-def]
    client = ContainerClient.from_connection_string(
        azurite.connection_string, azurite_names.container
    )
    client.create_container()
    return client


def _put(container: ContainerClient, name: str, data: bytes = b"x", **kwargs) -> None:  # type: ignore[no-untyped-def]
    container.upload_blob(name, data, overwrite=True, **kwargs)


def _paths(files) -> list[str]:  # type: ignore[no-untyped-def]
    return [f.path for f in files]


def test_listing_is_recursive_or_one_folder_deep_and_relative_to_the_prefix(azurite, container):  # type: ignore[no-untyped-def]
    for name in ("root/a.csv", "root/x/b.csv", "root/x/y/c.csv", "rooted/no.csv", "other/d.csv"):
        _put(container, name, b"abc")
    # A Data Lake Gen2 directory, as the blob API lists it.
    _put(container, "root/x/dir", b"", metadata={"hdi_isfolder": "true"})
    source = BlobFileSource.from_connection_string(
        azurite.connection_string, container.container_name, "root/"
    )
    assert _paths(source.list()) == ["a.csv", "x/b.csv", "x/y/c.csv"]
    assert _paths(source.list("", recursive=False)) == ["a.csv"]
    assert _paths(source.list("x")) == ["x/b.csv", "x/y/c.csv"]
    assert _paths(source.list("/x/", recursive=False)) == ["x/b.csv"]
    assert list(source.list("missing")) == []
    assert {f.size for f in source.list()} == {3}


def test_stat_and_open_report_the_version_actually_read(azurite, container):  # type: ignore[no-untyped-def]
    _put(container, "exp/Events/part.csv", b"first")
    source = BlobFileSource.from_connection_string(
        azurite.connection_string, container.container_name, "exp"
    )
    stat = source.stat("Events/part.csv")
    expected = container.get_blob_client("exp/Events/part.csv").get_blob_properties().etag
    assert stat.etag == expected.strip('"') and '"' not in stat.etag and stat.size == 5
    file, stream = source.open("Events/part.csv")
    assert (file.etag, stream.read()) == (stat.etag, b"first")
    _put(container, "exp/Events/part.csv", b"second version")
    file, stream = source.open("Events/part.csv")
    assert file.etag != stat.etag and file.size == 14 and stream.read() == b"second version"
    assert [f.etag for f in source.list()] == [file.etag]


def test_an_empty_blob_opens_as_an_empty_stream(azurite, container):  # type: ignore[no-untyped-def]
    _put(container, "empty.csv", b"")
    source = BlobFileSource(container)
    file, stream = source.open("empty.csv")
    assert (file.size, stream.read()) == (0, b"")


def test_a_missing_blob_is_not_found(azurite, container):  # type: ignore[no-untyped-def]
    source = BlobFileSource.from_connection_string(
        azurite.connection_string, container.container_name
    )
    with pytest.raises(NotFound):
        source.stat("nope.csv")
    with pytest.raises(NotFound):
        source.open("nope.csv")


def test_a_30_mb_blob_streams_in_bounded_memory(azurite, container):  # type: ignore[no-untyped-def]
    block = hashlib.sha256(b"seed").digest() * (MB // 32)
    blob = container.get_blob_client("big.csv")
    blob.stage_block("00", block)
    blob.commit_block_list(["00"] * 30)
    expected = hashlib.sha256(block * 30).hexdigest()
    source = BlobFileSource.from_connection_string(
        azurite.connection_string, container.container_name
    )
    digest, size = hashlib.sha256(), 0
    tracemalloc.start()
    try:
        file, stream = source.open("big.csv")
        while piece := stream.read(256 * 1024):
            digest.update(piece)
            size += len(piece)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert (size, file.size, digest.hexdigest()) == (30 * MB, 30 * MB, expected)
    assert peak < 16 * MB, f"peak {peak / MB:.1f} MB while streaming 30 MB"


def test_a_stopped_emulator_fails_after_a_few_tries_with_a_transient_error_and_no_secrets(tmp_path):  # type: ignore[no-untyped-def]
    emulator = Azurite()
    tries: list[object] = []  # every HTTP attempt, retries included
    try:
        container = ContainerClient.from_connection_string(emulator.connection_string, "exports")
        container.create_container()
        _put(container, "big.csv", b"y" * (10 * MB))
        source = BlobFileSource.from_connection_string(
            emulator.connection_string, "exports", on_request=lambda r: tries.append(r.http_request)
        )
        _, stream = source.open("big.csv")
        stream.read(10)
        emulator.stop()
        for attempt in (lambda: source.stat("big.csv"), lambda: list(source.list()), stream.read):
            tries.clear()
            with pytest.raises(TransientError) as caught:
                attempt()
            # A few quick retries, not the SDK's default back-off: the ledger retries later.
            assert 1 <= _most_tries_of_one_request(tries) <= 3, len(tries)
            assert "AccountKey" not in str(caught.value) and ACCOUNT_KEY not in str(caught.value)
    finally:
        emulator.close()


def _most_tries_of_one_request(tries: list[object]) -> int:
    """The SDK sends the same request object again on each retry."""
    return max(Counter(map(id, tries)).values(), default=0)


def test_a_blob_source_is_named_by_container_and_prefix(azurite, container):  # type: ignore[no-untyped-def]
    _put(container, "exp/Events/part.csv", b"abc")
    settings = Settings.from_env({"FOOTPRINT_STORAGE": azurite.connection_string})
    source = open_source(f"blob:{container.container_name}/exp", settings)
    assert _paths(source.list()) == ["Events/part.csv"]
    with pytest.raises(ConfigError, match="FOOTPRINT_STORAGE"):
        open_source(f"blob:{container.container_name}", Settings.from_env({}))
