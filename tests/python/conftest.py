"""Shared fixtures: a real `brandhooks serve` process on loopback with a real database (a
SQLite file, or a PostgreSQL database on a throwaway server)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Iterator, List, Optional, Union

import httpx
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "pg"))
from pgserver import PgServer  # noqa: E402  (tests/pg: the throwaway PostgreSQL server)

ADMIN_TOKEN = "test-admin-token-0123456789abcdef"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def brandhooks_cmd(*args: str) -> List[str]:
    return [sys.executable, "-m", "brandhooks", *args]


class Server:
    """`brandhooks serve` in a subprocess; start() waits until /healthz answers.

    `db` is a SQLite file or a postgresql:// URL; for a URL, `log_path` says where the output
    goes (for a file it defaults to the file's name + ".log")."""

    def __init__(self, db: Union[Path, str], *extra: str, admin_token: Optional[str] = ADMIN_TOKEN,
                 log_path: Optional[Path] = None) -> None:
        self.db = db
        self.extra = extra
        self.admin_token = admin_token
        self.proc: Optional[subprocess.Popen] = None
        self.port = 0
        # stdout and stderr go to a file: a pipe nobody reads would fill up and block the
        # server's log writes.
        if log_path is None:
            assert isinstance(db, Path), "a server on a database URL needs a log_path"
            log_path = db.with_name(db.name + ".log")
        self.log_path = log_path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> "Server":
        self.port = free_port()
        args = ["serve", "--port", str(self.port), "--db", str(self.db), "--log-level", "warning", *self.extra]
        if self.admin_token:
            args += ["--admin-token", self.admin_token]
        env = {k: v for k, v in os.environ.items() if not k.startswith("BRANDHOOKS_")}
        with open(self.log_path, "a") as log:  # a restart adds to what came before
            self.proc = subprocess.Popen(brandhooks_cmd(*args), stdout=log, stderr=subprocess.STDOUT, env=env)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited early:\n{self.output}")
            try:
                if httpx.get(self.url + "/healthz", timeout=1).status_code == 200:
                    return self
            except httpx.TransportError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError("server did not become healthy in 30 s")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    @property
    def output(self) -> str:
        """What the server printed so far (stdout and stderr)."""
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def client(self, token: Optional[str] = ADMIN_TOKEN) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=10)


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    srv = Server(tmp_path_factory.mktemp("serve") / "brandhooks.db").start()
    yield srv
    srv.stop()


@pytest.fixture()
def api(server: Server) -> Iterator[httpx.Client]:
    with server.client() as client:
        yield client


@pytest.fixture()
def brand() -> str:
    """A brand id of its own for each test, so tests never see each other's webhooks."""
    return str(uuid.uuid4())


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    """One throwaway PostgreSQL server on loopback for the whole run (started on first use)."""
    # Not under pytest's own temporary directory: that one is private to this user, and the
    # server runs as the postgres user when the tests run as root.
    srv = PgServer(tempfile.mkdtemp(prefix="brandhooks-pg-"))
    srv.start()
    yield srv
    srv.stop()


@pytest.fixture()
def pg_url(pg_server: PgServer) -> str:
    """The URL of a fresh, empty database of its own for each test."""
    return pg_server.create_database()
