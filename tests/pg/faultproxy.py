"""A TCP proxy between brandhooks nodes and PostgreSQL that a test controls: the faults a
network and a database server inflict on their clients, made to happen on demand.

    proxy = FaultProxy(server.port).start()
    url = proxy.url(database_url)       # the same database, reached through the proxy
    proxy.cut_all()                     # every connection cut at once (both ends see a reset)
    proxy.refuse(4.0)                   # cut everything, refuse new connections for 4 s
    proxy.set_latency(0.05)             # 50 ms added to every chunk, both directions
    proxy.lose_commit_answers("INSERT INTO events", count=1)
                                        # the next COMMIT of a transaction that ran a statement
                                        # containing this text reaches the server, which
                                        # commits; its answer is thrown away and the
                                        # connection cut: the client cannot know it committed
    proxy.stop()

To see which statements a transaction ran, the proxy reads the client's side of the protocol
(PostgreSQL's frontend messages: simple queries, and the Parse and Bind of prepared
statements); it forwards every byte unchanged. It also counts the statements and commits that
pass (`statements`, `commits`), which tells a test how busy an idle node is.

Runs an asyncio loop in a daemon thread; every method may be called from any thread.
"""

from __future__ import annotations

import asyncio
import socket
import struct
import threading
import time
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Set
from urllib.parse import urlsplit

# Untyped messages a client sends before its startup message (their 4-byte codes).
_SSL_REQUEST = 80877103
_GSSENC_REQUEST = 80877104
_CANCEL_REQUEST = 80877102


@dataclass
class _Trap:
    """Lose the answer of the next `count` COMMITs of transactions that ran `match`."""
    match: Optional[str]
    count: int
    fired: int = 0


@dataclass(eq=False)
class _Link:
    """One client connection and its connection to the server."""
    client: asyncio.StreamWriter
    server: asyncio.StreamWriter
    statements: Dict[bytes, str] = field(default_factory=dict)  # prepared name -> SQL
    transaction: List[str] = field(default_factory=list)        # SQL run since BEGIN
    swallow: bool = False  # a trapped COMMIT went to the server: drop its answer, then cut
    closed: bool = False

    def cut(self) -> None:
        if self.closed:
            return
        self.closed = True
        for writer in (self.client, self.server):
            sock = writer.get_extra_info("socket")
            try:  # a reset (RST), as when a network path or a server process dies
                if sock is not None:
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            except OSError:
                pass
            writer.transport.abort()


class FaultProxy:
    def __init__(self, upstream_port: int, upstream_host: str = "127.0.0.1") -> None:
        self.upstream = (upstream_host, upstream_port)
        self.port = 0
        self.latency = 0.0
        self.statements = 0  # simple queries and executions of prepared statements forwarded
        self.commits = 0     # COMMITs forwarded
        self.commit_answers_lost = 0
        self.connections_cut = 0
        self._links: Set[_Link] = set()
        self._traps: List[_Trap] = []
        self._lock = threading.Lock()  # the counters and traps, read from the test's thread
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="fault-proxy", daemon=True)
        self._server: Optional[asyncio.AbstractServer] = None
        self._refusing_until = 0.0

    # --- control (any thread) -----------------------------------------------------------------

    def start(self) -> "FaultProxy":
        self._thread.start()
        self._call(self._listen())
        return self

    def stop(self) -> None:
        if not self._thread.is_alive():
            return
        self._call(self._shutdown())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()

    def url(self, database_url: str) -> str:
        """`database_url` (a postgresql:// URL of the upstream server) through the proxy."""
        parts = urlsplit(database_url)
        netloc = parts.netloc.rsplit("@", 1)
        host = f"127.0.0.1:{self.port}"
        return parts._replace(netloc=f"{netloc[0]}@{host}" if len(netloc) == 2 else host).geturl()

    def cut_all(self) -> int:
        """Cuts every open connection at once; returns how many."""
        return self._call(self._cut_all())

    def refuse(self, seconds: float) -> None:
        """Cuts every connection and refuses new ones (the port is closed) for `seconds`;
        returns at once, the port opens again by itself."""
        self._call(self._refuse(seconds))

    @property
    def refusing(self) -> bool:
        return time.monotonic() < self._refusing_until

    def set_latency(self, seconds: float) -> None:
        """Delays every chunk forwarded, in both directions, by `seconds` (0: none)."""
        self.latency = seconds

    def lose_commit_answers(self, match: Optional[str] = None, count: int = 1) -> _Trap:
        """The next `count` COMMITs of transactions that ran a statement containing `match`
        (any transaction with a statement when None) reach the server and commit, but their
        answers are dropped and their connections cut. Returns the trap: `fired` counts them."""
        trap = _Trap(match, count)
        with self._lock:
            self._traps.append(trap)
        return trap

    def disarm(self) -> None:
        with self._lock:
            self._traps.clear()

    @property
    def open_connections(self) -> int:
        return len(self._links)

    # --- the loop ---------------------------------------------------------------------------

    def _call(self, coroutine):  # type: ignore[no-untyped-def]
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(timeout=30)

    async def _listen(self) -> None:
        # The same port every time: clients keep the URL they were given.
        for _ in range(100):
            try:
                self._server = await asyncio.start_server(self._accept, "127.0.0.1", self.port, reuse_address=True)
                break
            except OSError:  # another program took the port meanwhile (rare): try again shortly
                await asyncio.sleep(0.05)
        else:
            raise RuntimeError(f"fault proxy cannot listen on port {self.port} again")
        self.port = self._server.sockets[0].getsockname()[1]

    async def _close(self, cut: bool) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        if cut:
            await self._cut_all()

    async def _shutdown(self) -> None:
        await self._close(cut=True)
        # The cut links' pumps end by themselves; whatever is left (a reopen timer) is cancelled.
        tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        if tasks:
            await asyncio.wait(tasks, timeout=5)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await asyncio.sleep(0)  # the aborted transports' last callbacks

    async def _cut_all(self) -> int:
        links = list(self._links)
        for link in links:
            link.cut()
        self._links.clear()
        with self._lock:
            self.connections_cut += len(links)
        return len(links)

    async def _refuse(self, seconds: float) -> None:
        self._refusing_until = time.monotonic() + seconds
        await self._close(cut=True)

        async def reopen() -> None:
            await asyncio.sleep(seconds)
            await self._listen()

        self._loop.create_task(reopen())

    async def _accept(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        try:
            server_reader, server_writer = await asyncio.open_connection(*self.upstream)
        except OSError:
            client_writer.transport.abort()  # the server is down: so is the path to it
            return
        link = _Link(client_writer, server_writer)
        self._links.add(link)
        try:
            await asyncio.gather(self._client_to_server(link, client_reader),
                                 self._server_to_client(link, server_reader))
        except asyncio.CancelledError:
            pass  # the proxy stops
        finally:
            link.cut()
            self._links.discard(link)

    async def _server_to_client(self, link: _Link, reader: asyncio.StreamReader) -> None:
        try:
            while not link.closed:
                data = await reader.read(65536)
                if not data:
                    break
                if link.swallow:  # the answer to a trapped COMMIT: it never arrives
                    with self._lock:
                        self.commit_answers_lost += 1
                    break
                if self.latency:
                    await asyncio.sleep(self.latency)
                link.client.write(data)
                await link.client.drain()
        except (OSError, asyncio.IncompleteReadError):
            pass
        link.cut()

    async def _client_to_server(self, link: _Link, reader: asyncio.StreamReader) -> None:
        buffer = bytearray()
        started = False  # past the startup message: every message has a type byte
        try:
            while not link.closed:
                data = await reader.read(65536)
                if not data:
                    break
                if self.latency:
                    await asyncio.sleep(self.latency)
                buffer += data
                forward = bytearray()
                while True:
                    if not started:
                        if len(buffer) < 8:
                            break
                        length = int.from_bytes(buffer[0:4], "big")
                        if len(buffer) < length:
                            break
                        code = int.from_bytes(buffer[4:8], "big")
                        started = code not in (_SSL_REQUEST, _GSSENC_REQUEST, _CANCEL_REQUEST)
                        forward += buffer[:length]
                        del buffer[:length]
                        continue
                    if len(buffer) < 5:
                        break
                    length = 1 + int.from_bytes(buffer[1:5], "big")
                    if len(buffer) < length:
                        break
                    message = bytes(buffer[:length])
                    del buffer[:length]
                    forward += message
                    if self._trapped(link, message[0:1], message[5:]):
                        link.swallow = True  # before the COMMIT can reach the server
                        link.server.write(bytes(forward))
                        await link.server.drain()
                        return  # the server's answer ends the link (_server_to_client)
                if forward:
                    link.server.write(bytes(forward))
                    await link.server.drain()
        except (OSError, asyncio.IncompleteReadError):
            pass
        if not link.swallow:
            link.cut()

    def _trapped(self, link: _Link, kind: bytes, body: bytes) -> bool:
        """Follows the transaction's statements; True for a COMMIT a trap takes."""
        if kind == b"P":  # Parse: statement name, SQL
            name, _, rest = body.partition(b"\0")
            link.statements[name] = rest.partition(b"\0")[0].decode(errors="replace")
            return False
        if kind == b"B":  # Bind: portal name, statement name, ...
            statement = body.partition(b"\0")[2].partition(b"\0")[0]
            with self._lock:
                self.statements += 1
            link.transaction.append(link.statements.get(statement, ""))
            return False
        if kind != b"Q":
            return False
        sql = body.rstrip(b"\0").decode(errors="replace").strip()
        word = sql.split(None, 1)[0].upper().rstrip(";") if sql else ""
        with self._lock:
            self.statements += 1
            if word in ("BEGIN", "START", "ROLLBACK", "ABORT"):
                link.transaction = []
                return False
            if word not in ("COMMIT", "END"):
                link.transaction.append(sql)
                return False
            self.commits += 1
            ran, link.transaction = link.transaction, []
            for trap in self._traps:
                if trap.fired >= trap.count or not ran:
                    continue
                if trap.match is None or any(trap.match in statement for statement in ran):
                    trap.fired += 1
                    return True
        return False
