"""One tenant's hostile receiver or slow DNS name costs only its own deliveries, against the real
`brandhooks serve`: receivers that declare 1 GiB answers, host names that resolve in seconds
(through a DNS server on loopback written here, which the service is pointed at with
--dns-servers)."""

from __future__ import annotations

import os
import socket
import struct
import subprocess
import threading
import time
import uuid
from pathlib import Path
from typing import Dict, List, Tuple

from conftest import Server, brandhooks_cmd
from receivers import Receiver, wait_until


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


class HugeAnswers:
    """Answers every request with `Content-Length: 1073741824` and the first body bytes in the
    same packet, then keeps sending until the client goes away (or `stop()`)."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.stopping = threading.Event()
        self.requests = 0
        self.threads: List[threading.Thread] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def _accept(self) -> None:
        while not self.stopping.is_set():
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            thread = threading.Thread(target=self._answer, args=(conn,), daemon=True)
            thread.start()
            self.threads.append(thread)

    def _answer(self, conn: socket.socket) -> None:
        with conn:
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            data = b""
            while b"\r\n\r\n" not in data:
                chunk = conn.recv(65536)
                if not chunk:
                    return
                data += chunk
            self.requests += 1
            chunk = b"x" * 65536
            try:
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 1073741824\r\n\r\n" + chunk)
                while not self.stopping.is_set():
                    conn.sendall(chunk)
            except OSError:
                return

    def stop(self) -> None:
        self.stopping.set()
        self.listener.close()
        for thread in self.threads:
            thread.join(timeout=5)


def test_receivers_declaring_1_gib_answers_cost_no_memory(tmp_path):
    server = Server(tmp_path / "huge.db", "--allow-private", "--retry-schedule", "0" + ",0.3" * 30,
                    "--retry-jitter", "0").start()
    hostile = [HugeAnswers() for _ in range(6)]
    brand = str(uuid.uuid4())
    try:
        with server.client() as api:
            # Warm up the delivery path before the baseline.
            with Receiver() as healthy:
                api.post(f"/brands/{brand}/webhooks", json={"topic": "Contacts", "url": healthy.url()})
                api.post(f"/brands/{brand}/events", json={"topic": "Contacts", "event": "Created", "payload": {}})
                healthy.wait_for(1)
            baseline = rss_bytes(server.proc.pid)

            hooks = [api.post(f"/brands/{brand}/webhooks", json={"topic": "Deals", "url": h.url()}).json()["data"]
                     for h in hostile]
            for _ in range(3):
                api.post(f"/brands/{brand}/events", json={"topic": "Deals", "event": "Created", "payload": {}})
            peak, deadline = baseline, time.monotonic() + 8
            while time.monotonic() < deadline and peak - baseline < 50 << 20:
                peak = max(peak, rss_bytes(server.proc.pid))
                time.sleep(0.05)
            assert sum(h.requests for h in hostile) >= 2 * len(hostile), "the receivers were not kept busy"
            assert peak - baseline < 50 << 20, f"RSS grew by {(peak - baseline) >> 20} MB"

            attempt = api.get(f"/brands/{brand}/webhooks/{hooks[0]['id']}/deliveries").json()["data"][0]["attempts"][0]
            assert attempt["error"] == "protocol" and attempt["status"] is None
            assert "declares 1073741824 bytes, over the 1 MiB limit" in attempt["detail"]
            print(f"RSS {baseline >> 20} MB -> peak {peak >> 20} MB, {sum(h.requests for h in hostile)} answers")
    finally:
        for h in hostile:
            h.stop()
        server.stop()


class SlowDns:
    """A DNS server on UDP 127.0.0.1: A records (127.0.0.1) for the names it knows, each after
    its delay; AAAA questions get an empty answer after the same delay; other names NXDOMAIN."""

    def __init__(self, delays: Dict[str, float]) -> None:
        self.delays = delays
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.queries: List[Tuple[str, float]] = []
        self.timers: List[threading.Timer] = []
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                query, peer = self.sock.recvfrom(512)
            except OSError:
                return
            labels, at = [], 12
            while query[at]:
                labels.append(query[at + 1:at + 1 + query[at]].decode())
                at += 1 + query[at]
            name = ".".join(labels)
            qtype = struct.unpack("!H", query[at + 1:at + 3])[0]
            self.queries.append((name, time.monotonic()))
            question = query[12:at + 5]
            known = name in self.delays
            answers = b""
            if known and qtype == 1:
                answers = struct.pack("!HHHIH", 0xC00C, 1, 1, 60, 4) + socket.inet_aton("127.0.0.1")
            flags = 0x8180 if known else 0x8183  # a response; NOERROR or NXDOMAIN
            reply = struct.pack("!HHHHHH", struct.unpack("!H", query[:2])[0], flags, 1,
                                1 if answers else 0, 0, 0) + question + answers
            timer = threading.Timer(self.delays.get(name, 0), self._send, args=(reply, peer))
            timer.daemon = True
            timer.start()
            self.timers.append(timer)

    def _send(self, reply: bytes, peer) -> None:
        try:
            self.sock.sendto(reply, peer)
        except OSError:
            pass

    def close(self) -> None:
        for timer in self.timers:
            timer.cancel()
        self.sock.close()


def test_slow_names_do_not_delay_a_healthy_webhook(tmp_path):
    slow_names = [f"slow{i}.test" for i in range(6)]
    dns = SlowDns({**{name: 3.0 for name in slow_names}, "fast.test": 0.0})
    server = Server(tmp_path / "dns.db", "--allow-private", "--retry-schedule", "0", "--dns-servers",
                    f"127.0.0.1:{dns.port}").start()
    slow_brand, healthy_brand = str(uuid.uuid4()), str(uuid.uuid4())
    try:
        with Receiver() as slow_receiver, Receiver() as healthy, server.client() as api:
            for name in slow_names:
                api.post(f"/brands/{slow_brand}/webhooks",
                         json={"topic": "Deals", "url": slow_receiver.url(host=name)})
            api.post(f"/brands/{healthy_brand}/webhooks", json={"topic": "Deals", "url": healthy.url(host="fast.test")})

            for _ in range(2):  # 12 deliveries waiting for slow names
                api.post(f"/brands/{slow_brand}/events", json={"topic": "Deals", "event": "Created", "payload": {}})
            wait_until(lambda: sum(name.startswith("slow") for name, _ in dns.queries) >= len(slow_names), timeout=5)
            slow_started = time.monotonic()

            latencies = []
            for i in range(3):
                sent = time.monotonic()
                api.post(f"/brands/{healthy_brand}/events", json={"topic": "Deals", "event": "Created", "payload": {}})
                latencies.append(healthy.wait_for(i + 1, timeout=10)[-1].at - sent)
            assert max(latencies) < 1.5, f"healthy deliveries took {latencies} s"
            assert not slow_receiver.requests, "the slow names answered too soon: the test proves nothing"

            slow_receiver.wait_for(2 * len(slow_names), timeout=20)
            assert min(r.at for r in slow_receiver.requests) - slow_started >= 2.0
            print(f"healthy latencies {[round(x, 3) for x in latencies]} s while slow names took 3 s")
    finally:
        server.stop()
        dns.close()



def test_a_malformed_dns_server_list_is_a_clear_error(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("BRANDHOOKS_")}
    env["BRANDHOOKS_DNS_SERVERS"] = "no such server"
    out = subprocess.run(brandhooks_cmd("serve", "--db", str(tmp_path / "x.db")), env=env,
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 2
    assert "dns_servers: cannot use 'no such server'" in out.stderr
