"""Real HTTP(S) receivers on loopback for delivery tests.

A Receiver records every request (headers and raw body) and answers through `behaviour`, a
function of the request number (1-based) returning what to do: an int status, a
(status, headers) or (status, headers, body) tuple, "hang" (never answer) or "reset" (drop
the connection).
"""

from __future__ import annotations

import http.server
import socket
import ssl
import struct
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, List, Optional, Union

Action = Union[int, tuple, str]


@dataclass
class Received:
    path: str
    headers: Dict[str, str]
    body: bytes
    at: float = field(default_factory=time.monotonic)


class Receiver:
    def __init__(self, behaviour: Callable[[int], Action] = lambda n: 200,
                 tls: Optional[tuple] = None) -> None:
        self.behaviour = behaviour
        self.requests: List[Received] = []
        self.lock = threading.Lock()
        self.changed = threading.Condition(self.lock)
        self.release = threading.Event()  # ends "hang"s when the test is over
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True

            def do_POST(self) -> None:  # noqa: N802 (http.server naming)
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                with receiver.lock:
                    receiver.requests.append(Received(self.path, dict(self.headers.items()), body))
                    number = len(receiver.requests)
                    receiver.changed.notify_all()
                action = receiver.behaviour(number)
                if action == "hang":
                    receiver.release.wait(30)
                    self.close_connection = True
                    return
                if action == "reset":
                    # SO_LINGER 0: close() sends a RST instead of a FIN.
                    self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    self.close_connection = True
                    return
                status, headers, payload = (action + (None,))[:3] if isinstance(action, tuple) else (action, {}, None)
                payload = payload if payload is not None else f"status {status}".encode()
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.scheme = "http"
        if tls:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(*tls)
            self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
            self.scheme = "https"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def port(self) -> int:
        return self.server.server_address[1]

    def url(self, path: str = "/hook", host: str = "127.0.0.1") -> str:
        return f"{self.scheme}://{host}:{self.port}{path}"

    def __enter__(self) -> "Receiver":
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()

    def wait_for(self, count: int, timeout: float = 15) -> List[Received]:
        """Waits until `count` requests arrived; returns them all (fails the test on timeout)."""
        deadline = time.monotonic() + timeout
        with self.changed:
            while len(self.requests) < count:
                left = deadline - time.monotonic()
                assert left > 0, f"got {len(self.requests)} of {count} requests in {timeout} s"
                self.changed.wait(left)
            return list(self.requests)


def self_signed_certificate(directory: Path, names: str = "DNS:localhost,IP:127.0.0.1") -> tuple:
    """A self-signed certificate for `names` (subjectAltName syntax), made with openssl."""
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert),
         "-days", "2", "-subj", "/CN=brandhooks test", "-addext", f"subjectAltName={names}"],
        check=True, capture_output=True,
    )
    return str(cert), str(key)


def wait_until(predicate: Callable[[], bool], timeout: float = 15, interval: float = 0.02) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(interval)
