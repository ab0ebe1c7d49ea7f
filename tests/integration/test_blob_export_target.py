"""BlobExportTarget against a real Azurite: large files staged in blocks appear whole on
commit; a write that fails leaves no blob behind."""

from __future__ import annotations

import os

import pytest
from azure.storage.blob import BlobServiceClient

from shared.adapters.azure.blob import BLOCK_BYTES, BlobExportTarget

pytestmark = pytest.mark.azurite


@pytest.fixture
def target(azurite, azurite_names) -> BlobExportTarget:  # type: ignore[no-untyped-def]
    return BlobExportTarget.from_connection_string(azurite.connection_string, azurite_names.container, "out")


def _names(target: BlobExportTarget) -> list[str]:
    return [b.name for b in target.container.list_blobs()]


def test_a_file_larger_than_a_block_is_staged_and_committed_whole(target: BlobExportTarget) -> None:
    data = os.urandom(BLOCK_BYTES * 2 + 12345)
    with target.create("Entity/part-00001.csv") as out:
        for i in range(0, len(data), 100_000):
            out.write(data[i : i + 100_000])
        assert _names(target) == []  # nothing is visible before the commit
    blob = target.container.get_blob_client("out/Entity/part-00001.csv")
    assert blob.download_blob().readall() == data
    blocks = [b.size for b in blob.get_block_list("committed")[0]]
    assert len(blocks) >= 2 and min(blocks[:-1]) >= BLOCK_BYTES  # staged, not held whole


def test_small_and_empty_files_are_one_put_each(target: BlobExportTarget) -> None:
    with target.create("a.json") as out:
        out.write(b"{}")
    with target.create("empty.csv"):
        pass
    assert sorted(_names(target)) == ["out/a.json", "out/empty.csv"]
    assert target.container.get_blob_client("out/empty.csv").download_blob().readall() == b""


def test_a_write_that_fails_leaves_no_blob(target: BlobExportTarget) -> None:
    with pytest.raises(RuntimeError), target.create("Entity/part-00001.csv") as out:
        out.write(os.urandom(BLOCK_BYTES + 1))
        raise RuntimeError("the store went away mid-export")
    assert _names(target) == []


def test_the_container_is_created_when_missing(azurite, azurite_names) -> None:  # type: ignore[no-untyped-def]
    name = f"{azurite_names.container}-new"
    BlobExportTarget.from_connection_string(azurite.connection_string, name)
    assert BlobServiceClient.from_connection_string(azurite.connection_string).get_container_client(name).exists()
