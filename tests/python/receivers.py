"""Real HTTP(S) receivers on loopback for delivery tests.

A Receiver records every request (headers and raw body) and answers through `behaviour`, a
function of the request number (1-based) returning what to do: an int status, a
(status, headers) or (status, headers, body) tuple, "hang" (never answer) or "reset" (drop
the connection).
"""

from __future__ import annotations

import http.server
import json
import os
import socket
import ssl
import struct
import subprocess
import threading
import time
import urllib.request
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


# The benchmark's Beast receiver (bench/receiver.cpp, built by `make test` with the rest of the
# C++ tree): for runs of tens of thousands of deliveries, which a Python receiver on this
# machine's two cores would slow down to the point of measuring itself.
BENCH_RECEIVER = Path(os.environ.get(
    "BENCH_RECEIVER", Path(__file__).resolve().parents[2] / "build" / "cpp" / "bench" / "bench_receiver"))


class CountingReceiver:
    """bench_receiver in a child process: it verifies each delivery's signature and counts
    requests and distinct deliveries ((webhook path, event id): one per delivery id), so that
    requests - unique is the number of deliveries sent again."""

    def __init__(self, *flags: str) -> None:
        assert BENCH_RECEIVER.exists(), f"{BENCH_RECEIVER} is missing: `make cpp-build` builds it"
        self.proc = subprocess.Popen([str(BENCH_RECEIVER), "--port", "0", *flags], stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout is not None
        self.port = int(self.proc.stdout.readline())

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def _call(self, method: str, path: str, body: bytes = b"", timeout: float = 30) -> bytes:
        request = urllib.request.Request(self.url(path), data=body or None, method=method)
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.read()

    def add_keys(self, keys: Dict[str, str]) -> None:
        """path -> the webhook's key (hex): requests to other paths count as invalid."""
        self._call("POST", "/keys", "".join(f"{path} {key}\n" for path, key in keys.items()).encode())

    def stats(self) -> Dict[str, int]:
        """{"requests", "valid", "invalid", "unique"}"""
        return json.loads(self._call("GET", "/stats"))

    def wait_for(self, unique: int, timeout: float) -> Dict[str, int]:
        """Waits (in the receiver) until `unique` deliveries arrived or `timeout` passed."""
        return json.loads(self._call("GET", f"/wait?unique={unique}&timeout_ms={int(timeout * 1000)}",
                                     timeout=timeout + 30))

    def __enter__(self) -> "CountingReceiver":
        return self

    def __exit__(self, *exc: object) -> None:
        self.proc.terminate()
        self.proc.communicate()  # also closes its pipe
