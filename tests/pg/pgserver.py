#!/usr/bin/env python3
"""A throwaway PostgreSQL server on loopback for the tests and the benchmarks.

Nothing is assumed to be running: `start` runs Debian's `initdb` into a fresh directory and
`postgres` on a free 127.0.0.1 port (as the `postgres` user when run as root, since both refuse
root), with its socket in that directory; `stop` shuts it down and removes the directory.

    python3 tests/pg/pgserver.py start DIR [--durable]   # prints the admin URL, also in DIR/url
    python3 tests/pg/pgserver.py createdb ADMIN_URL      # prints the URL of a fresh database
    python3 tests/pg/pgserver.py stop DIR

From Python: `PgServer(dir).start()` returns the admin URL; `create_database()`, `stop()`,
`restart()` (an outage: the server stops and comes back on the same port), `kill()`,
`crash_restart()` (`pg_ctl restart -m immediate`: every backend dies at once, crash recovery),
`terminate_sessions()` (`pg_terminate_backend` of the sessions of some applications).
By default the server runs with fsync off (tests need no durability across a machine crash);
`durable=True` (`--durable`) keeps PostgreSQL's defaults, for benchmarks.
"""

from __future__ import annotations

import argparse
import glob
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import List, Optional
from urllib.parse import urlsplit

USER = "postgres"


def bin_dir() -> Path:
    """Where Debian keeps the server's programs (not on PATH): the newest version installed."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/postgres"), key=lambda p: int(Path(p).parts[-3]))
    if found:
        return Path(found[-1]).parent
    pg_config = shutil.which("pg_config")
    if pg_config:
        path = Path(subprocess.run([pg_config, "--bindir"], check=True, capture_output=True, text=True).stdout.strip())
        if (path / "postgres").exists():
            return path
    raise RuntimeError("PostgreSQL is not installed (Debian: apt-get install postgresql; `make test` does it)")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def as_server_user(cmd: List[str]) -> List[str]:
    """initdb and postgres refuse to run as root: run them as the `postgres` user then."""
    return ["runuser", "-u", USER, "--", *cmd] if os.geteuid() == 0 else cmd


class PgServer:
    def __init__(self, directory: os.PathLike | str, durable: bool = False) -> None:
        self.dir = Path(directory).absolute()
        self.durable = durable
        self.data = self.dir / "data"
        self.log = self.dir / "server.log"
        self.proc: Optional[subprocess.Popen] = None
        self.bin = bin_dir()
        # A server started earlier (e.g. by the command line) keeps its port.
        url_file = self.dir / "url"
        self.port = urlsplit(url_file.read_text().strip()).port or 0 if url_file.exists() else 0

    @property
    def admin_url(self) -> str:
        return f"postgresql://{USER}@127.0.0.1:{self.port}/postgres"

    def start(self) -> str:
        if not self.data.exists():
            self._initdb()
        if not self.port:
            self.port = free_port()
        options = ["-c", "listen_addresses=127.0.0.1", "-c", f"unix_socket_directories={self.dir}",
                   "-c", "max_connections=300", "-c", "shared_buffers=128MB"]
        if not self.durable:
            options += ["-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off"]
        with open(self.log, "ab") as log:
            # Its own session: a Ctrl-C in the test run does not reach it before stop() does.
            self.proc = subprocess.Popen(
                as_server_user([str(self.bin / "postgres"), "-D", str(self.data), "-p", str(self.port), *options]),
                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        self._wait_ready()
        (self.dir / "url").write_text(self.admin_url + "\n")
        return self.admin_url

    def _initdb(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            shutil.chown(self.dir, USER)
        done = subprocess.run(as_server_user([str(self.bin / "initdb"), "-D", str(self.data), "-U", USER,
                                              "--auth=trust", "--encoding=UTF8", "--no-sync"]),
                              capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"initdb failed in {self.dir} (the {USER} user must be able to reach it):\n"
                               f"{done.stdout}{done.stderr}")

    def _wait_ready(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"postgres exited early:\n{self.log.read_text(errors='replace')[-3000:]}")
            ready = subprocess.run([str(self.bin / "pg_isready"), "-q", "-h", "127.0.0.1", "-p", str(self.port)])
            if ready.returncode == 0:
                return
            time.sleep(0.1)
        raise RuntimeError(f"postgres not ready after {timeout} s")

    def psql(self, sql: str, url: Optional[str] = None) -> str:
        out = subprocess.run([str(self.bin / "psql"), "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1",
                              "-d", url or self.admin_url, "-c", sql],
                             check=True, capture_output=True, text=True)
        return out.stdout.strip()

    def create_database(self, name: Optional[str] = None) -> str:
        return create_database(self.admin_url, name)

    def stop(self, remove: bool = True) -> None:
        """A fast shutdown (SIGINT); the data directory goes too unless `remove` is false."""
        self._signal(signal.SIGINT)
        if remove:
            shutil.rmtree(self.dir, ignore_errors=True)

    def kill(self) -> None:
        """The server dies at once (SIGKILL of the postmaster; its backends follow)."""
        self._signal(signal.SIGKILL)

    def restart(self, down_for: float = 0.0) -> None:
        """An outage: stop, stay down `down_for` seconds, start again on the same port."""
        self.stop(remove=False)
        time.sleep(down_for)
        self.start()

    def crash_restart(self) -> None:
        """`pg_ctl restart -m immediate`: the server stops without a shutdown checkpoint (every
        session is cut, as in a crash), recovers from its WAL and starts again on the same port."""
        with open(self.log, "ab") as log:  # the new server writes to our log file's descriptor
            subprocess.run(as_server_user([str(self.bin / "pg_ctl"), "restart", "-D", str(self.data),
                                           "-m", "immediate", "-w", "-t", "60"]),
                           stdout=log, stderr=subprocess.STDOUT, check=True, start_new_session=True)
        if self.proc is not None:  # the postmaster we started is gone: reap it
            self.proc.wait(timeout=30)
            self.proc = None
        self._wait_ready()

    def terminate_sessions(self, application_like: str = "brandhooks%") -> int:
        """pg_terminate_backend of every session whose application_name is LIKE the pattern
        (brandhooks names its sessions "brandhooks <node id>"); returns how many."""
        pattern = application_like.replace("'", "''")
        return int(self.psql("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                             f"WHERE application_name LIKE '{pattern}' AND pid <> pg_backend_pid()"))

    def _signal(self, sig: int) -> None:
        pid = self._pid()
        if pid is None:
            return
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and _alive(pid):
            time.sleep(0.05)
        if self.proc is not None:  # our child (runuser, or postgres itself): reap it
            self.proc.wait(timeout=10)
            self.proc = None

    def _pid(self) -> Optional[int]:
        pidfile = self.data / "postmaster.pid"
        try:
            return int(pidfile.read_text().split("\n", 1)[0])
        except (OSError, ValueError):
            return self.proc.pid if self.proc is not None and self.proc.poll() is None else None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie child counts as gone
        return Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1][0] != "Z"
    except (OSError, IndexError):
        return False


def create_database(admin_url: str, name: Optional[str] = None) -> str:
    """A fresh, empty database on the server of `admin_url`; returns its URL."""
    name = name or "bh_" + uuid.uuid4().hex[:16]
    psql = str(bin_dir() / "psql")
    subprocess.run([psql, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", admin_url, "-c", f'CREATE DATABASE "{name}"'],
                   check=True, capture_output=True)
    parts = urlsplit(admin_url)
    return parts._replace(path="/" + name).geturl()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    start = sub.add_parser("start")
    start.add_argument("dir")
    start.add_argument("--durable", action="store_true")
    stop = sub.add_parser("stop")
    stop.add_argument("dir")
    createdb = sub.add_parser("createdb")
    createdb.add_argument("admin_url")
    args = parser.parse_args()
    if args.command == "start":
        server = PgServer(args.dir, durable=args.durable)
        if server.dir.exists():  # what a crashed run left behind
            PgServer(args.dir).stop()
        print(server.start())
    elif args.command == "stop":
        PgServer(args.dir).stop()
    else:
        print(create_database(args.admin_url))
    return 0


if __name__ == "__main__":
    sys.exit(main())
