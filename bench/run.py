"""brandhooks benchmarks: one run, one machine, ratios side by side.

    python bench/run.py            # full counts (BENCH_QUICK=1: small counts, same keys)

Prints a table, then one JSON line (the last line) with deliveries_per_s, ceiling_per_s,
python_per_s, ratio_vs_ceiling, ratio_vs_python, p50_ms, p99_ms, publish_many_per_s,
rss_mb_1m_pending, over REST (`brandhooks serve` in a child process) rest_publish_per_s,
rest_publish_p99_ms, rest_e2e_per_s, rest_read_p99_ms, rest_latency_p99_ms, rest_batch_per_s,
with tracing on (every event with a traceparent, a span per attempt exported over OTLP/HTTP)
traced_deliveries_per_s, traced_ratio (÷ untraced runs in turns) and traced_spans_exported,
on PostgreSQL (a throwaway server, tests/pg/pgserver.py, with PostgreSQL's default durability)
pg_deliveries_per_s, pg_publish_per_s and pg_scale_3 (3 nodes ÷ 1 node against a receiver
answering after 20 ms), and load_1m (the machine's load average before the run: the figures are
only comparable between runs on a similarly loaded machine). Every figure is the median of RUNS
runs. A run that loses a delivery or gets a signature refused raises: it is a failure, not a
number.
"""

from __future__ import annotations

import http.client
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from pathlib import Path
from typing import Callable, Dict, List

import brandhooks

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT.parent / "tests" / "pg"))
from pgserver import PgServer  # noqa: E402  (the throwaway PostgreSQL server of the tests)

RECEIVER = Path(os.environ.get("BENCH_RECEIVER", ROOT.parent / "build" / "cpp" / "bench" / "bench_receiver"))
QUICK = os.environ.get("BENCH_QUICK") == "1"
RUNS = 3
DELIVERIES = 20_000 if QUICK else 200_000        # per durable run
PYTHON_DELIVERIES = 5_000 if QUICK else 40_000
LATENCY_RATE, LATENCY_SECONDS = 2000, (3 if QUICK else 10)
PUBLISH_DELIVERIES = 50_000 if QUICK else 500_000
PENDING = 100_000 if QUICK else 1_000_000
WRK_SECONDS = 2 if QUICK else 5
WEBHOOK_COUNTS = (1, 10, 100)
HEADLINE_WEBHOOKS = 10
SCALE_DELAY_MS = 20                                # the receiver's answer time for pg_scale_3
SCALE_DELIVERIES = 16_000 if QUICK else 60_000     # per run, whatever the number of nodes
SCALE_NODES = 3


class Receiver:
    """The verifying Beast receiver in a child process."""

    def __init__(self, *flags: str) -> None:
        self.proc = subprocess.Popen([str(RECEIVER), "--port", "0", *flags], stdout=subprocess.PIPE, text=True)
        self.port = int(self.proc.stdout.readline())

    def call(self, method: str, path: str, body: bytes = b"", timeout: float = 30) -> bytes:
        request = urllib.request.Request(f"http://127.0.0.1:{self.port}{path}", data=body or None, method=method)
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.read()

    def stats(self) -> Dict[str, int]:
        return json.loads(self.call("GET", "/stats"))

    def arrivals(self) -> Dict[str, int]:
        """event id -> first arrival (unix microseconds), over all paths."""
        out: Dict[str, int] = {}
        for line in self.call("GET", "/ids").decode().splitlines():
            _, event_id, at = line.split()
            out[event_id] = min(int(at), out.get(event_id, int(at)))
        return out

    def prepare(self, keys: List[tuple]) -> None:
        self.call("POST", "/reset")
        self.call("POST", "/keys", "".join(f"{path} {key}\n" for path, key in keys).encode())

    def wait_for(self, unique: int, timeout: float = 600) -> float:
        """Waits until `unique` (path, event) pairs arrived; returns the time it saw them.

        One request the receiver answers when they are there (within a millisecond): polling
        from here would take CPU from the run being measured. A wrong signature, a missing
        delivery or a duplicate fails the run."""
        stats = json.loads(self.call("GET", f"/wait?unique={unique}&timeout_ms={int(timeout * 1000)}",
                                     timeout=timeout + 30))
        seen = time.perf_counter()
        if stats["invalid"]:
            raise RuntimeError(f"{stats['invalid']} requests with a wrong signature")
        if stats["unique"] < unique:
            raise RuntimeError(f"only {stats['unique']} of {unique} deliveries arrived")
        if stats["requests"] > stats["unique"]:  # the receiver always answers 200: no retries
            raise RuntimeError(f"{stats['requests'] - stats['unique']} deliveries arrived twice")
        return seen

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait()


def median(run: Callable[[], float]) -> float:
    return statistics.median(run() for _ in range(RUNS))


def new_db(tmp: Path) -> str:
    return str(tmp / f"{uuid.uuid4()}.db")


def hub_with_webhooks(db: str, receiver: Receiver, count: int, **config) -> tuple:
    hub = brandhooks.Hub(db, allow_private=True, **config)
    brand = str(uuid.uuid4())
    keys = []
    for i in range(count):
        hook = hub.create_webhook(brand, "Deals", f"http://127.0.0.1:{receiver.port}/w/{i}")
        keys.append((f"/w/{i}", hook.key))
    receiver.prepare(keys)
    return hub, brand, keys


def ceiling(receiver: Receiver, tmp: Path) -> float:
    """wrk keep-alive POSTs of one signed body to the same receiver."""
    import hashlib
    import hmac

    key = os.urandom(32).hex()
    receiver.prepare([("/w/0", key)])
    body = json.dumps({"topic": "Deals", "event": "Created", "timestamp": 1, "payload": {"i": 1},
                       "id": str(uuid.uuid4()), "brand": str(uuid.uuid4())}, separators=(",", ":"))
    signature = hmac.new(bytes.fromhex(key), body.encode(), hashlib.sha256).hexdigest()
    script = tmp / "post.lua"
    script.write_text(f'wrk.method = "POST"\nwrk.body = [[{body}]]\n'
                      f'wrk.headers["Content-Type"] = "application/json"\n'
                      f'wrk.headers["X-Webhook-Signature"] = "{signature}"\n')
    out = subprocess.run(["wrk", "-t2", "-c16", f"-d{WRK_SECONDS}s", "-s", str(script),
                          f"http://127.0.0.1:{receiver.port}/w/0"], capture_output=True, text=True, check=True).stdout
    if receiver.stats()["invalid"]:
        raise RuntimeError("the receiver refused wrk's signature")
    return float(next(line.split()[1] for line in out.splitlines() if line.startswith("Requests/sec")))


def durable(receiver: Receiver, tmp: Path, webhooks: int, db: Callable[[], str] = lambda: "") -> float:
    """Deliveries/s from the first publish to the last delivery received, store on a file
    (or on the database `db` makes)."""
    events = DELIVERIES // webhooks
    hub, brand, _ = hub_with_webhooks(db() or new_db(tmp), receiver, webhooks, deliver=True)
    try:
        start = time.perf_counter()
        for first in range(0, events, 1000):
            hub.publish_many([(brand, "Deals", "Created", {"i": i}) for i in range(first, min(events, first + 1000))])
        end = receiver.wait_for(events * webhooks)
    finally:
        hub.close()
    return events * webhooks / (end - start)


def tracing_cost(receiver: Receiver, tmp: Path) -> Dict[str, float]:
    """The cost of tracing on, side by side: durable() runs, in turns with the same runs where
    every event carries a W3C traceparent and spans are on (brandhooks.tracing, as `serve` starts
    it when OTEL_EXPORTER_OTLP_ENDPOINT is set): each attempt is a span, exported over OTLP/HTTP
    to a local collector (otlp_sink.py, a process of its own). Gives traced_deliveries_per_s, its
    ratio to the plain runs, and the share of attempt spans the collector received (the core
    drops spans, never deliveries, when the exporter falls behind)."""
    from brandhooks.tracing import Tracing

    sink = subprocess.Popen([sys.executable, str(ROOT / "otlp_sink.py")], stdout=subprocess.PIPE, text=True)
    port = int(sink.stdout.readline())
    saved = {k: v for k, v in os.environ.items() if k.startswith("OTEL_")}
    os.environ["OTEL_EXPORTER_OTLP_ENDPOINT"] = f"http://127.0.0.1:{port}"
    plain, traced, exported = [], [], []
    try:
        for _ in range(RUNS):
            plain.append(durable(receiver, tmp, HEADLINE_WEBHOOKS))
            events = DELIVERIES // HEADLINE_WEBHOOKS
            hub, brand, _ = hub_with_webhooks(new_db(tmp), receiver, HEADLINE_WEBHOOKS, deliver=True)
            tracing = Tracing(hub)
            before = int(urllib.request.urlopen(f"http://127.0.0.1:{port}/count").read())
            try:
                start = time.perf_counter()
                for first in range(0, events, 1000):
                    hub.publish_many([{"brand": brand, "topic": "Deals", "event": "Created", "payload": {"i": i},
                                       "traceparent": f"00-{os.urandom(16).hex()}-{os.urandom(8).hex()}-01"}
                                      for i in range(first, min(events, first + 1000))])
                end = receiver.wait_for(events * HEADLINE_WEBHOOKS)
            finally:
                hub.close()
                tracing.shutdown()  # what is left is exported before the count
            traced.append(events * HEADLINE_WEBHOOKS / (end - start))
            received = int(urllib.request.urlopen(f"http://127.0.0.1:{port}/count").read()) - before
            exported.append(received / (events * HEADLINE_WEBHOOKS))
    finally:
        for name in [k for k in os.environ if k.startswith("OTEL_")]:
            del os.environ[name]
        os.environ.update(saved)
        sink.terminate()
        sink.communicate()
    return {"traced_deliveries_per_s": statistics.median(traced),
            "traced_ratio": statistics.median(t / p for t, p in zip(traced, plain)),
            "traced_spans_exported": statistics.median(exported)}


def python_sender(receiver: Receiver, tmp: Path) -> float:
    keys = [(f"/w/{i}", os.urandom(32).hex()) for i in range(HEADLINE_WEBHOOKS)]
    receiver.prepare(keys)
    keyfile = tmp / "keys.txt"
    keyfile.write_text("".join(f"{p} {k}\n" for p, k in keys))
    events = PYTHON_DELIVERIES // HEADLINE_WEBHOOKS
    out = subprocess.run([sys.executable, str(ROOT / "baseline" / "sender.py"), "--port", str(receiver.port),
                          "--keys", str(keyfile), "--events", str(events)], capture_output=True, text=True, check=True)
    receiver.wait_for(events * HEADLINE_WEBHOOKS, timeout=10)  # everything it counted really arrived
    result = json.loads(out.stdout.strip().splitlines()[-1])
    return result["deliveries"] / result["seconds"]


def latency(receiver: Receiver, tmp: Path) -> Dict[str, float]:
    """At a fixed offered load: publish returning -> the receiver reading the request."""
    hub, brand, _ = hub_with_webhooks(new_db(tmp), receiver, 1, deliver=True)
    published: Dict[str, int] = {}
    total = LATENCY_RATE * LATENCY_SECONDS
    try:
        start = time.perf_counter()
        for n in range(total):
            target = start + n / LATENCY_RATE
            while time.perf_counter() < target:
                pass
            event_id = hub.publish(brand, "Deals", "Created", {"n": n}).event_id
            published[event_id] = time.time_ns() // 1000
        receiver.wait_for(total)
    finally:
        hub.close()
    arrivals = receiver.arrivals()
    delays = sorted((arrivals[e] - at) / 1000 for e, at in published.items())
    return {"p50_ms": statistics.median(delays), "p99_ms": delays[int(len(delays) * 0.99) - 1], "max_ms": delays[-1]}


def publish_rate(tmp: Path, receiver: Receiver, db: Callable[[], str] = lambda: "") -> float:
    """Deliveries/s accepted by publish_many into a file-backed store (or the database `db`
    makes): 10 webhooks, no dispatcher."""
    hub, brand, _ = hub_with_webhooks(db() or new_db(tmp), receiver, HEADLINE_WEBHOOKS)
    events = PUBLISH_DELIVERIES // HEADLINE_WEBHOOKS
    start = time.perf_counter()
    for first in range(0, events, 1000):
        hub.publish_many([(brand, "Deals", "Created", {"i": i}) for i in range(first, min(events, first + 1000))])
    return events * HEADLINE_WEBHOOKS / (time.perf_counter() - start)


class Node:
    """`brandhooks serve` delivering from a shared database: a node as operators run it."""

    def __init__(self, db: str, name: str, log: Path) -> None:
        port = free_port()
        with open(log, "ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "brandhooks", "serve", "--db", db, "--port", str(port), "--node-id", name,
                 "--allow-private", "--log-level", "warning", "--admin-token", uuid.uuid4().hex],
                stdout=out, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1):
                    return
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"node {name} did not start: see {log}")
                time.sleep(0.1)

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=60)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def nodes_rate(slow: Receiver, db: str, tmp: Path, count: int) -> float:
    """Deliveries/s of `count` nodes sharing one PostgreSQL database, from the first publish
    (by this process, which does not deliver) to the last delivery received."""
    hub, brand, _ = hub_with_webhooks(db, slow, HEADLINE_WEBHOOKS)
    nodes = [Node(db, f"bench-{i}", tmp / f"node-{i}.log") for i in range(count)]
    try:
        events = SCALE_DELIVERIES // HEADLINE_WEBHOOKS
        start = time.perf_counter()
        for first in range(0, events, 1000):
            hub.publish_many([(brand, "Deals", "Created", {"i": i}) for i in range(first, min(events, first + 1000))])
        end = slow.wait_for(events * HEADLINE_WEBHOOKS)
    finally:
        for node in nodes:
            node.close()
        hub.close()
    return events * HEADLINE_WEBHOOKS / (end - start)


def postgresql(results: Dict[str, float], table: List[tuple], receiver: Receiver, tmp: Path) -> None:
    """The PostgreSQL figures, on a throwaway server with PostgreSQL's default durability (an
    fsync per commit, as the embedded file's "normal" does not)."""
    server = PgServer(tempfile.mkdtemp(prefix="brandhooks-bench-pg-"), durable=True)
    server.start()
    try:
        db = server.create_database
        results["pg_deliveries_per_s"] = median(lambda: durable(receiver, tmp, HEADLINE_WEBHOOKS, db))
        table.append((f"PostgreSQL, 1 node, {HEADLINE_WEBHOOKS} webhooks",
                      f"{results['pg_deliveries_per_s']:,.0f} deliveries/s"))
        results["pg_publish_per_s"] = median(lambda: publish_rate(tmp, receiver, db))
        table.append(("publish_many into PostgreSQL", f"{results['pg_publish_per_s']:,.0f} deliveries/s"))
        slow = Receiver("--delay-ms", str(SCALE_DELAY_MS), "--threads", "2")
        try:
            # 1 node and 3 nodes in turns, so that a drift in the machine's speed weighs on both.
            one, many = [], []
            for _ in range(RUNS):
                one.append(nodes_rate(slow, db(), tmp, 1))
                many.append(nodes_rate(slow, db(), tmp, SCALE_NODES))
        finally:
            slow.close()
        results["pg_1_node_slow_per_s"] = statistics.median(one)
        results[f"pg_{SCALE_NODES}_nodes_slow_per_s"] = statistics.median(many)
        results["pg_scale_3"] = statistics.median(m / o for m, o in zip(many, one))
        table.append((f"PostgreSQL, receiver answering after {SCALE_DELAY_MS} ms: 1 node / {SCALE_NODES} nodes",
                      f"{results['pg_1_node_slow_per_s']:,.0f} / "
                      f"{results[f'pg_{SCALE_NODES}_nodes_slow_per_s']:,.0f} deliveries/s"))
        table.append((f"{SCALE_NODES} nodes / 1 node", f"{results['pg_scale_3']:.2f}"))
    finally:
        server.stop()


def pending_rss(tmp: Path) -> float:
    """Peak RSS (MB) of a delivering service holding PENDING deliveries for a receiver that is down."""
    out = subprocess.run([sys.executable, str(ROOT / "pending.py"), new_db(tmp), str(PENDING)],
                         capture_output=True, text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1])



# --- over REST: `brandhooks serve` in a child process, as users run it ---------------------

REST_TOKEN = "bench-admin-token-0123456789abcdef"
REST_LATENCY_RATE = 200
REST_BATCH_EVENTS = 20_000 if QUICK else 200_000


class Service:
    """`brandhooks serve` on a fresh database (delivery on, loopback receivers allowed)."""

    def __init__(self, tmp: Path) -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        env = {k: v for k, v in os.environ.items() if not k.startswith("BRANDHOOKS_")}
        self.log = open(tmp / f"serve-{self.port}.log", "w")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "brandhooks", "serve", "--port", str(self.port), "--db", new_db(tmp),
             "--admin-token", REST_TOKEN, "--allow-private", "--log-level", "warning"],
            stdout=self.log, stderr=subprocess.STDOUT, env=env)
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(self.url + "/healthz", timeout=1).read()
                break
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"brandhooks serve did not start: {(tmp / self.log.name).read_text()}")
                time.sleep(0.05)

    def call(self, method: str, path: str, body: object = None) -> dict:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.url + path, data=data, method=method, headers={
            "Authorization": f"Bearer {REST_TOKEN}", "Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=60) as response:
            return json.loads(response.read() or b"null")

    def webhooks(self, receiver: Receiver, count: int) -> tuple:
        brand = str(uuid.uuid4())
        keys = []
        for i in range(count):
            hook = self.call("POST", f"/brands/{brand}/webhooks",
                             {"topic": "Deals", "url": f"http://127.0.0.1:{receiver.port}/w/{i}"})["data"]
            keys.append((f"/w/{i}", hook["key"]))
        receiver.prepare(keys)
        return brand, [hook for hook in self.call("GET", f"/brands/{brand}/webhooks")["data"]]

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait()
        self.log.close()


def wrk_ms(text: str) -> float:
    """wrk's latency figure ("812.00us", "2.51ms", "1.02s") in milliseconds."""
    for unit, scale in (("us", 1e-3), ("ms", 1.0), ("s", 1e3)):
        if text.endswith(unit):
            return float(text[: -len(unit)]) * scale
    raise ValueError(text)


def read_latencies(service: Service, brand: str, webhook_id: str, stop: threading.Event, out: List[float]) -> None:
    """Lists webhooks and deliveries (one keep-alive connection, 20 reads/s) until `stop`."""
    conn = http.client.HTTPConnection("127.0.0.1", service.port, timeout=30)
    headers = {"Authorization": f"Bearer {REST_TOKEN}"}
    paths = [f"/brands/{brand}/webhooks", f"/brands/{brand}/webhooks/{webhook_id}/deliveries?limit=100"]
    n = 0
    while not stop.wait(0.05):
        start = time.perf_counter()
        conn.request("GET", paths[n % 2], headers=headers)
        response = conn.getresponse()
        response.read()
        if response.status != 200:
            raise RuntimeError(f"a read under load answered {response.status}")
        out.append((time.perf_counter() - start) * 1000)
        n += 1
    conn.close()


def rest_publish(receiver: Receiver, tmp: Path) -> Dict[str, float]:
    """wrk: 32 keep-alive connections publish single events (10 webhooks, delivery on) while a
    reader lists webhooks and deliveries; then waits for every delivery."""
    service = Service(tmp)
    try:
        brand, hooks = service.webhooks(receiver, HEADLINE_WEBHOOKS)
        body = json.dumps({"topic": "Deals", "event": "Created", "payload": {"deal": 1, "price": 250000}})
        script = tmp / "publish.lua"
        script.write_text(f'wrk.method = "POST"\nwrk.body = [[{body}]]\n'
                          f'wrk.headers["Content-Type"] = "application/json"\n'
                          f'wrk.headers["Authorization"] = "Bearer {REST_TOKEN}"\n')
        reads: List[float] = []
        stop = threading.Event()
        reader = threading.Thread(target=read_latencies, args=(service, brand, hooks[0]["id"], stop, reads))
        start = time.perf_counter()
        reader.start()
        try:
            out = subprocess.run(["wrk", "-t2", "-c32", f"-d{WRK_SECONDS}s", "--latency", "-s", str(script),
                                  f"{service.url}/brands/{brand}/events"], capture_output=True, text=True,
                                 check=True).stdout
        finally:
            stop.set()
            reader.join()
        if "Non-2xx" in out:
            raise RuntimeError(f"publish calls failed:\n{out}")
        lines = out.splitlines()
        # wrk stops counting at its deadline; calls still open then were accepted all the same.
        events = service.call("GET", "/stats")["data"]["events"]
        end = receiver.wait_for(events * HEADLINE_WEBHOOKS)
        reads.sort()
        return {
            "rest_publish_per_s": float(next(line.split()[1] for line in lines if line.startswith("Requests/sec"))),
            "rest_publish_p99_ms": wrk_ms(next(line.split()[1] for line in lines if line.strip().startswith("99%"))),
            "rest_e2e_per_s": events * HEADLINE_WEBHOOKS / (end - start),
            "rest_read_p99_ms": reads[max(0, int(len(reads) * 0.99) - 1)],
        }
    finally:
        service.close()


def rest_latency(receiver: Receiver, tmp: Path) -> float:
    """p99 ms from the start of a publish call to the receiver reading the delivery, at a
    steady REST_LATENCY_RATE events/s to 1 webhook (one keep-alive connection)."""
    service = Service(tmp)
    try:
        brand, _ = service.webhooks(receiver, 1)
        conn = http.client.HTTPConnection("127.0.0.1", service.port, timeout=30)
        headers = {"Authorization": f"Bearer {REST_TOKEN}", "Content-Type": "application/json"}
        started: Dict[str, int] = {}
        total = REST_LATENCY_RATE * LATENCY_SECONDS
        begin = time.perf_counter()
        for n in range(total):
            target = begin + n / REST_LATENCY_RATE
            while time.perf_counter() < target:
                time.sleep(min(0.0005, max(0.0, target - time.perf_counter())))
            at = time.time_ns() // 1000
            conn.request("POST", f"/brands/{brand}/events", headers=headers,
                         body=json.dumps({"topic": "Deals", "event": "Created", "payload": {"n": n}}))
            response = conn.getresponse()
            answer = json.loads(response.read())
            if response.status != 202:
                raise RuntimeError(f"publish answered {response.status}: {answer}")
            started[answer["data"]["id"]] = at
        conn.close()
        receiver.wait_for(total)
    finally:
        service.close()
    arrivals = receiver.arrivals()
    delays = sorted((arrivals[e] - at) / 1000 for e, at in started.items())
    return delays[int(len(delays) * 0.99) - 1]


def rest_batch(receiver: Receiver, tmp: Path) -> float:
    """Events/s through the batch route: 1 000 events per call, 1 webhook, delivery on."""
    service = Service(tmp)
    try:
        brand, _ = service.webhooks(receiver, 1)
        conn = http.client.HTTPConnection("127.0.0.1", service.port, timeout=60)
        headers = {"Authorization": f"Bearer {REST_TOKEN}", "Content-Type": "application/json"}
        bodies = [json.dumps([{"topic": "Deals", "event": "Created", "payload": {"i": i}}
                              for i in range(first, first + 1000)]).encode()
                  for first in range(0, REST_BATCH_EVENTS, 1000)]
        start = time.perf_counter()
        for body in bodies:
            conn.request("POST", f"/brands/{brand}/events", headers=headers, body=body)
            response = conn.getresponse()
            answer = response.read()
            if response.status != 202:
                raise RuntimeError(f"batch publish answered {response.status}: {answer[:200]!r}")
        seconds = time.perf_counter() - start
        conn.close()
        receiver.wait_for(REST_BATCH_EVENTS)
    finally:
        service.close()
    return REST_BATCH_EVENTS / seconds


def main() -> None:
    if not RECEIVER.exists():
        sys.exit(f"{RECEIVER} is missing: run `make bench`, which builds it")
    results: Dict[str, float] = {"load_1m": os.getloadavg()[0]}
    table: List[tuple] = []
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        receiver = Receiver()
        try:
            # The ceiling and the headline run in turns, so that a drift in the machine's speed
            # (a shared VM drifts by minutes) weighs on both sides of their ratio alike.
            ceilings, headline = [], []
            for _ in range(RUNS):
                ceilings.append(ceiling(receiver, tmp))
                headline.append(durable(receiver, tmp, HEADLINE_WEBHOOKS))
            results["ceiling_per_s"] = statistics.median(ceilings)
            table.append(("wrk ceiling (same receiver)", f"{results['ceiling_per_s']:,.0f} req/s"))
            per_webhooks = {HEADLINE_WEBHOOKS: statistics.median(headline)}
            for count in WEBHOOK_COUNTS:
                if count not in per_webhooks:
                    per_webhooks[count] = median(lambda: durable(receiver, tmp, count))
                table.append((f"brandhooks durable, {count} webhooks", f"{per_webhooks[count]:,.0f} deliveries/s"))
            results["deliveries_per_s"] = per_webhooks[HEADLINE_WEBHOOKS]
            results.update(tracing_cost(receiver, tmp))
            table.append((f"traced, spans exported over OTLP, {HEADLINE_WEBHOOKS} webhooks",
                          f"{results['traced_deliveries_per_s']:,.0f} deliveries/s ({results['traced_ratio']:.2f} "
                          f"of untraced side by side; {results['traced_spans_exported']:.0%} of spans exported)"))
            results["python_per_s"] = median(lambda: python_sender(receiver, tmp))
            table.append((f"plain Python sender, {HEADLINE_WEBHOOKS} webhooks", f"{results['python_per_s']:,.0f} deliveries/s"))
            runs = [latency(receiver, tmp) for _ in range(RUNS)]
            for key in ("p50_ms", "p99_ms", "max_ms"):
                results[key] = statistics.median(r[key] for r in runs)
            table.append((f"latency at {LATENCY_RATE}/s, p50 / p99 / max",
                          f"{results['p50_ms']:.2f} / {results['p99_ms']:.2f} / {results['max_ms']:.2f} ms"))
            results["publish_many_per_s"] = median(lambda: publish_rate(tmp, receiver))
            table.append(("publish_many into a file", f"{results['publish_many_per_s']:,.0f} deliveries/s"))
            rest = [rest_publish(receiver, tmp) for _ in range(RUNS)]
            for key in rest[0]:
                results[key] = statistics.median(r[key] for r in rest)
            table.append((f"REST publish, 32 connections, {HEADLINE_WEBHOOKS} webhooks",
                          f"{results['rest_publish_per_s']:,.0f} calls/s (p99 {results['rest_publish_p99_ms']:.1f} ms)"))
            table.append(("REST publish, end to end", f"{results['rest_e2e_per_s']:,.0f} deliveries/s"))
            table.append(("REST reads under that load, p99", f"{results['rest_read_p99_ms']:.1f} ms"))
            results["rest_latency_p99_ms"] = median(lambda: rest_latency(receiver, tmp))
            table.append((f"REST publish call start to receipt at {REST_LATENCY_RATE}/s, p99",
                          f"{results['rest_latency_p99_ms']:.2f} ms"))
            results["rest_batch_per_s"] = median(lambda: rest_batch(receiver, tmp))
            table.append(("REST batch route, 1 000 events per call", f"{results['rest_batch_per_s']:,.0f} events/s"))
            postgresql(results, table, receiver, tmp)
        finally:
            receiver.close()
        results["rss_mb_1m_pending"] = median(lambda: pending_rss(tmp))
        table.append((f"peak RSS, {PENDING:,} pending", f"{results['rss_mb_1m_pending']:.0f} MB"))

    results["ratio_vs_ceiling"] = results["deliveries_per_s"] / results["ceiling_per_s"]
    results["ratio_vs_python"] = results["deliveries_per_s"] / results["python_per_s"]
    table.append((f"brandhooks / ceiling ({HEADLINE_WEBHOOKS} webhooks)", f"{results['ratio_vs_ceiling']:.2f}"))
    table.append(("brandhooks / plain Python", f"{results['ratio_vs_python']:.1f}x"))

    width = max(len(name) for name, _ in table)
    mode = "quick" if QUICK else "full"
    print(f"brandhooks benchmark ({mode}: {RUNS} runs each, median; {os.cpu_count()} cores, "
          f"load average {results['load_1m']:.2f} before the run)")
    for name, value in table:
        print(f"  {name:<{width}}  {value}")
    results["quick"] = QUICK
    print(json.dumps({k: (round(v, 3) if isinstance(v, float) else v) for k, v in results.items()}))


if __name__ == "__main__":
    main()
