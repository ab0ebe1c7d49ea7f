"""Azurite, the Azure Storage emulator, started on free ports for the tests that need storage."""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from pathlib import Path
from typing import NamedTuple

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "node_modules" / "azurite" / "dist" / "src" / "azurite.js"
# The emulator's well-known development account: public, not a secret.
ACCOUNT = "devstoreaccount1"
ACCOUNT_KEY = (
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)
# Generous: a loaded machine may take many times as long as an idle one to start node.
START_TIMEOUT = 120.0
# Killed only after this: a persistent emulator saves its data on the way out.
STOP_TIMEOUT = 60.0
KEEP_ALIVE_SECONDS = 3600


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _accepts(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
        return True
    return False


class Azurite:
    """One Azurite process on three free ports; `restart` keeps the ports.

    In memory by default; `persistent=True` keeps the data in files under its work folder,
    so a restart (a storage outage in a test) finds it all again.
    """

    def __init__(self, persistent: bool = False) -> None:
        node = shutil.which("node")
        if not SCRIPT.is_file() or node is None:
            raise RuntimeError(f"no Azurite at {SCRIPT}: run make test, it installs Azurite")
        self.node = node
        ports: set[int] = set()
        while len(ports) < 3:
            ports.add(free_port())
        self.blob_port, self.queue_port, self.table_port = sorted(ports)
        self.workdir = Path(tempfile.mkdtemp(prefix="azurite-"))
        self.persistence = ["--location", str(self.workdir / "data")] if persistent else ["--inMemoryPersistence"]
        self.process: subprocess.Popen[bytes] | None = None
        self.start()

    @property
    def connection_string(self) -> str:
        base = f"http://127.0.0.1:{{}}/{ACCOUNT}"
        return (
            f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT};AccountKey={ACCOUNT_KEY};"
            f"BlobEndpoint={base.format(self.blob_port)};"
            f"QueueEndpoint={base.format(self.queue_port)};"
            f"TableEndpoint={base.format(self.table_port)};"
        )

    def start(self) -> None:
        log = (self.workdir / "azurite.log").open("ab")
        self.process = subprocess.Popen(
            [
                self.node, str(SCRIPT), "--silent", *self.persistence,
                "--skipApiVersionCheck", "--disableTelemetry", "--loose",
                # Node closes a connection idle for 5 s by default; a request the client sends
                # on it at that moment is reset, which a loaded machine makes common.
                *(f"--{s}KeepAliveTimeout={KEEP_ALIVE_SECONDS}" for s in ("blob", "queue", "table")),
                "--blobHost", "127.0.0.1", "--blobPort", str(self.blob_port),
                "--queueHost", "127.0.0.1", "--queuePort", str(self.queue_port),
                "--tableHost", "127.0.0.1", "--tablePort", str(self.table_port),
            ],
            cwd=self.workdir, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        log.close()
        self._wait_until_listening()

    def _wait_until_listening(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        ports = (self.blob_port, self.queue_port, self.table_port)
        while not all(_accepts(port) for port in ports):
            assert self.process is not None
            if self.process.poll() is not None:
                raise RuntimeError(f"Azurite exited at start-up: {self._log_tail()}")
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"Azurite did not listen within {START_TIMEOUT:.0f} s")
            time.sleep(0.05)

    def _log_tail(self) -> str:
        path = self.workdir / "azurite.log"
        return path.read_text(errors="replace")[-2000:] if path.exists() else ""

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def restart(self) -> None:
        """Stop and start again on the same ports; data in memory is lost, data in files kept."""
        self.stop()
        self.start()

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.workdir, ignore_errors=True)


class AzuriteNames(NamedTuple):
    """Names no other test uses: a blob container and a table prefix."""

    container: str
    table_prefix: str

    @classmethod
    def fresh(cls) -> AzuriteNames:
        token = "t" + uuid.uuid4().hex[:10]
        return cls(container=token, table_prefix=token)
