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
from typing import Any, Callable, Dict, Iterator, List, Optional, Union

import httpx
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "pg"))
from pgserver import PgServer  # noqa: E402  (tests/pg: the throwaway PostgreSQL server)

ADMIN_TOKEN = "test-admin-token-0123456789abcdef"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def listens_on(pid: int, port: int) -> bool:
    """Whether process `pid` holds the listening TCP socket of 127.0.0.1:`port`."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if int(fields[1].rsplit(":", 1)[1], 16) == port and fields[3] == "0A":  # 0A: LISTEN
                inodes.add(fields[9])
    try:
        fds = list(Path(f"/proc/{pid}/fd").iterdir())
    except OSError:
        return False
    for fd in fds:
        try:
            link = os.readlink(fd)
        except OSError:
            continue
        if link.startswith("socket:[") and link[8:-1] in inodes:
            return True
    return False


def brandhooks_cmd(*args: str) -> List[str]:
    return [sys.executable, "-m", "brandhooks", *args]


class Server:
    """`brandhooks serve` in a subprocess; start() waits until /healthz answers.

    `db` is a SQLite file or a postgresql:// URL; for a URL, `log_path` says where the output
    goes (for a file it defaults to the file's name + ".log")."""

    def __init__(self, db: Union[Path, str], *extra: str, admin_token: Optional[str] = ADMIN_TOKEN,
                 log_path: Optional[Path] = None, env: Optional[Dict[str, str]] = None) -> None:
        self.db = db
        self.extra = extra
        self.env = env or {}  # added to the environment (e.g. OpenTelemetry's OTEL_* variables)
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
        # free_port() only finds a port that is free now: on a shared machine another program
        # may take it before the server binds it. Then the server exits, and we try another.
        for _ in range(3):
            if self._start_on(free_port()):
                return self
        raise RuntimeError(f"server could not bind a port:\n{self.output}")

    def _start_on(self, port: int) -> bool:
        self.port = port
        args = ["serve", "--port", str(self.port), "--db", str(self.db), "--log-level", "warning", *self.extra]
        if self.admin_token:
            args += ["--admin-token", self.admin_token]
        env = {k: v for k, v in os.environ.items() if not k.startswith(("BRANDHOOKS_", "OTEL_"))}
        env.update(self.env)
        with open(self.log_path, "a") as log:  # a restart adds to what came before
            self.proc = subprocess.Popen(brandhooks_cmd(*args), stdout=log, stderr=subprocess.STDOUT, env=env)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                if "address already in use" in self.output.lower():
                    return False
                raise RuntimeError(f"server exited early:\n{self.output}")
            # Only an answer from our own process counts (not from whoever else holds the port).
            if listens_on(self.proc.pid, self.port):
                try:
                    if httpx.get(self.url + "/healthz", timeout=1).status_code == 200:
                        return True
                except httpx.TransportError:
                    pass
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


# --- both storage backends ---------------------------------------------------------------
# The suites that touch storage run once per backend: a fixture that makes a database asks for
# `new_database`, whose `backend` parameter is "sqlite" (a file in a temporary directory) or
# "postgresql" (a fresh database on the session's throwaway server).
BACKENDS = ["sqlite", "postgresql"]


@pytest.fixture(scope="session", params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return request.param


NewDatabase = Callable[[str], str]


@pytest.fixture(scope="session")
def new_database(backend: str, tmp_path_factory: pytest.TempPathFactory,
                 request: pytest.FixtureRequest) -> NewDatabase:
    """new_database(name) -> the `db` value of a new, empty database of the backend."""
    if backend == "sqlite":
        directory = tmp_path_factory.mktemp("db")
        return lambda name: str(directory / f"{name}-{uuid.uuid4().hex[:8]}.db")
    pg: PgServer = request.getfixturevalue("pg_server")
    return lambda name: pg.create_database()


def sql_rows(db: str, query: str) -> List[tuple]:
    """The rows `query` (plain SQL, no parameters) answers on either backend (PostgreSQL's
    values come as text, psql's unaligned output)."""
    if db.startswith("postgresql://"):
        from pgserver import bin_dir

        out = subprocess.run([str(bin_dir() / "psql"), "-X", "-q", "-A", "-t", "-F", "\t", "-v", "ON_ERROR_STOP=1",
                              "-d", db, "-c", query], check=True, capture_output=True, text=True)
        return [tuple(line.split("\t")) for line in out.stdout.splitlines()]
    import contextlib
    import sqlite3

    with contextlib.closing(sqlite3.connect(db)) as connection:
        return connection.execute(query).fetchall()


def sql_count(db: str, query: str) -> int:
    return int(sql_rows(db, query)[0][0])


def backend_server(new_database: NewDatabase, log_dir: Path, name: str, *extra: str, **kwargs: Any) -> Server:
    """A Server (not started) on a new database of the backend; its output in log_dir."""
    return Server(new_database(name), *extra, log_path=log_dir / f"{name}.log", **kwargs)


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory, new_database: NewDatabase) -> Iterator[Server]:
    srv = backend_server(new_database, tmp_path_factory.mktemp("serve"), "brandhooks").start()
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
def own_pg_server() -> Iterator[PgServer]:
    """A PostgreSQL server of the test's own, to stop and start (the session's stays up)."""
    srv = PgServer(tempfile.mkdtemp(prefix="brandhooks-outage-"))
    srv.start()
    yield srv
    srv.stop()


@pytest.fixture()
def pg_url(pg_server: PgServer) -> str:
    """The URL of a fresh, empty database of its own for each test."""
    return pg_server.create_database()
