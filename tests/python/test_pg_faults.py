"""Faults between the nodes and PostgreSQL, made to happen: connections cut (also right after a
COMMIT reached the server and before its answer came back), refused, slowed down, backends
terminated, the server crash-restarted. Through tests/pg/faultproxy.py, a TCP proxy the tests
control. What docs/scaling.md promises under these faults is what is counted here: nothing
accepted is lost, duplicates stay within the stated bound, nodes need no restart and do not
spin afterwards, and the dispatcher's own work never waits behind API calls."""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
import threading
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Tuple

import httpx
import pytest

from brandhooks import Config, Hub, UnavailableError

from conftest import PgServer, Server
from faultproxy import FaultProxy
from receivers import Receiver, wait_until

FAST_RETRIES = dict(retry_schedule="0,0.2,0.5,1", retry_jitter=0.0)


@pytest.fixture()
def proxy(pg_server: PgServer) -> Iterator[FaultProxy]:
    """A fault proxy in front of the session's PostgreSQL server."""
    started = FaultProxy(pg_server.port).start()
    yield started
    started.stop()


def hub_on(db: str, **settings: object) -> Hub:
    return Hub(Config(db=db, allow_private=True, **{"log_level": "off", **FAST_RETRIES, **settings}))


def sql(pg_server: PgServer, db: str, query: str) -> str:
    return pg_server.psql(query, url=db)


def webhook_ids(receiver: Receiver) -> List[str]:
    with receiver.lock:
        return [r.headers["webhook-id"] for r in receiver.requests]


class Holder:
    """A session that runs `statements` in a transaction it keeps open (locks held) until
    release() ends it (pg_terminate_backend: a sleeping backend would not notice its client
    going away)."""

    def __init__(self, pg_server: PgServer, db: str, statements: str) -> None:
        self.pg_server, self.db = pg_server, db
        self.tag = f"holder-{uuid.uuid4().hex[:8]}"
        self.proc = subprocess.Popen([str(pg_server.bin / "psql"), "-X", "-q", "-d", db], stdin=subprocess.PIPE,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, text=True,
                                     env={**os.environ, "PGAPPNAME": self.tag})
        assert self.proc.stdin is not None
        self.proc.stdin.write(f"BEGIN; {statements}; SELECT pg_sleep(120);\n")
        self.proc.stdin.flush()
        wait_until(lambda: sql(pg_server, db, "SELECT count(*) FROM pg_stat_activity WHERE application_name = "
                                              f"'{self.tag}' AND query LIKE '%pg_sleep%'") == "1", timeout=10)

    def release(self) -> None:
        if self.proc.poll() is None:
            sql(self.pg_server, self.db, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                                         f"WHERE application_name = '{self.tag}'")
            self.proc.communicate(timeout=10)  # also closes its stdin


# --- a COMMIT whose answer was lost -------------------------------------------------------------

def test_a_publish_whose_commit_answer_was_lost_is_delivered_once(pg_server: PgServer, proxy: FaultProxy) -> None:
    """The publish committed (its deliveries handed to this node, leased) but the answer never
    came: the client sees 503 and retries with its key. The node takes back the leases it holds
    in the database but not in memory, so the delivery goes out, once."""
    db = pg_server.create_database()
    brand = str(uuid.uuid4())
    with Receiver() as receiver:
        hub = hub_on(proxy.url(db), deliver=True, node_id="node-a", lease_timeout_s=2)
        try:
            hub.create_webhook(brand, "Deals", receiver.url())
            trap = proxy.lose_commit_answers("INSERT INTO events")
            with pytest.raises(UnavailableError):
                hub.publish(brand, "Deals", "Created", {"n": 1}, idempotency_key="k-1")
            assert trap.fired == 1 and proxy.commit_answers_lost == 1
            again = hub.publish(brand, "Deals", "Created", {"n": 1}, idempotency_key="k-1")  # replayed
            assert sql(pg_server, db, "SELECT count(*) FROM events") == "1", "it had committed"
            received = receiver.wait_for(1, timeout=10)
            assert json.loads(received[0].body)["id"] == again.event_id
            time.sleep(2.5)  # a lease timeout: a second send, if any, would come now
            assert len(webhook_ids(receiver)) == 1
            wait_until(lambda: hub.stats().pending == 0, timeout=10)
            assert hub.metrics()["leases_taken_back"] >= 1
        finally:
            hub.close()


def test_a_claim_whose_commit_answer_was_lost_is_delivered_once(pg_server: PgServer, proxy: FaultProxy) -> None:
    """A claim leased deliveries and committed, but its answer was lost: the dispatcher never
    got them. The node takes them back and delivers each once."""
    db = pg_server.create_database()
    brand = str(uuid.uuid4())
    publisher = hub_on(db)  # no dispatcher: its deliveries wait for a claim
    with Receiver() as receiver:
        publisher.create_webhook(brand, "Deals", receiver.url())
        trap = proxy.lose_commit_answers("SET lease_owner = $1, next_at = $2")  # a claim that took rows
        hub = hub_on(proxy.url(db), deliver=True, node_id="node-a", lease_timeout_s=2)
        try:
            published = {publisher.publish(brand, "Deals", "Created", {"n": n}).event_id for n in range(5)}
            wait_until(lambda: trap.fired == 1, timeout=10)
            received = receiver.wait_for(5, timeout=10)
            assert {json.loads(r.body)["id"] for r in received} == published
            time.sleep(2.5)  # a lease timeout
            assert len(webhook_ids(receiver)) == 5, "each once"
            wait_until(lambda: hub.stats().pending == 0, timeout=10)
        finally:
            hub.close()
            publisher.close()


def test_outcomes_whose_commit_answer_was_lost_are_not_counted_as_taken_over(
        pg_server: PgServer, proxy: FaultProxy, capfd: pytest.CaptureFixture[str]) -> None:
    """A batch of outcomes committed, its answer lost: the dispatcher writes it again and finds
    it recorded. That is neither a lease taken over by another node nor a lost outcome."""
    db = pg_server.create_database()
    brand = str(uuid.uuid4())
    with Receiver() as receiver:
        hub = hub_on(proxy.url(db), deliver=True, node_id="node-a", lease_timeout_s=3, log_level="info")
        try:
            hub.create_webhook(brand, "Deals", receiver.url())
            trap = proxy.lose_commit_answers("INSERT INTO attempts")
            hub.publish(brand, "Deals", "Created", {"n": 1})
            receiver.wait_for(1)
            wait_until(lambda: trap.fired == 1, timeout=10)
            wait_until(lambda: hub.stats().delivered == 1, timeout=10)
            # The batch is written again (its first COMMIT's outcome was unknown to the node).
            wait_until(lambda: sum(hub.metrics().get(name, 0) for name in ("outcomes_already_recorded",
                                                                           "leases_lost")) >= 1, timeout=10)
            metrics = hub.metrics()
        finally:
            hub.close()
    assert metrics["leases_lost"] == 0, "counted as taken over by another node"
    assert metrics["outcomes_already_recorded"] == 1
    assert sql(pg_server, db, "SELECT count(*), max(number) FROM attempts") == "1|1"
    log = capfd.readouterr().err
    assert "another node took" not in log
    assert "already recorded" in log, log


# --- Retry-After --------------------------------------------------------------------------------

def test_a_503s_retry_after_follows_the_outage(pg_server: PgServer, proxy: FaultProxy, tmp_path: Path) -> None:
    """While the node reconnects (a restart, a failover: well under a second), Retry-After is
    1 s; the longer the database stays away, the longer the node asks clients to wait."""
    db = pg_server.create_database()
    node = Server(proxy.url(db), "--no-deliver", "--busy-timeout-ms", "2000", log_path=tmp_path / "node.log").start()
    brand = str(uuid.uuid4())
    try:
        with node.client() as api:
            assert api.get(f"/brands/{brand}/webhooks").status_code == 200
            proxy.refuse(8)
            first = api.get(f"/brands/{brand}/webhooks")
            assert first.status_code == 503, first.text
            assert first.headers["Retry-After"] == "1"
            time.sleep(5)
            later = api.get(f"/brands/{brand}/webhooks")
            assert later.status_code == 503, later.text
            assert 2 <= int(later.headers["Retry-After"]) <= 10, later.headers
            wait_until(lambda: api.get(f"/brands/{brand}/webhooks").status_code == 200, timeout=30, interval=0.2)
    finally:
        node.stop()


# --- the dispatcher's own connections -----------------------------------------------------------

def test_api_calls_holding_every_api_connection_do_not_delay_claims_or_renewals(pg_server: PgServer) -> None:
    """Every API connection of node a waits on a lock (slow reads would do the same); a's
    dispatcher still claims at once and renews its lease while the receiver takes longer than
    the lease timeout, so node b never takes that delivery over."""
    db = pg_server.create_database()
    brand = str(uuid.uuid4())
    publisher = hub_on(db)
    a = hub_on(db, deliver=True, node_id="node-a", lease_timeout_s=2, busy_timeout_ms=20000)
    b: Optional[Hub] = None
    holder: Optional[Holder] = None
    readers: List[threading.Thread] = []
    try:
        with Receiver(lambda n: time.sleep(4.5) or 200) as receiver:
            publisher.create_webhook(brand, "Deals", receiver.url())
            holder = Holder(pg_server, db, "LOCK TABLE api_tokens IN ACCESS EXCLUSIVE MODE")

            def read_tokens() -> None:
                try:
                    a.list_tokens()
                except Exception:  # noqa: BLE001 (an error once the lock goes is fine: it was waiting)
                    pass

            readers = [threading.Thread(target=read_tokens) for _ in range(16)]
            for reader in readers:
                reader.start()
            waiting = ("SELECT count(*) FROM pg_stat_activity WHERE application_name = 'brandhooks node-a' "
                       "AND wait_event_type = 'Lock'")
            wait_until(lambda: int(sql(pg_server, db, waiting)) >= 8, timeout=10)

            publisher.publish(brand, "Deals", "Created", {"n": 1})
            receiver.wait_for(1, timeout=5)  # claimed at once, although no API connection is free
            b = hub_on(db, deliver=True, node_id="node-b", lease_timeout_s=2)  # ready to take it over
            time.sleep(5)  # the receiver answers after 4.5 s, more than twice the lease timeout
            assert len(webhook_ids(receiver)) == 1
            wait_until(lambda: publisher.stats().delivered == 1, timeout=10)
            assert sum(b.metrics()["leases_taken_over"].values()) == 0
            assert a.metrics()["leases_lost"] == 0
    finally:
        if holder is not None:
            holder.release()
        for reader in readers:
            reader.join(timeout=30)
        for hub in (b, a, publisher):
            if hub is not None:
                hub.close()


# --- a node that cannot claim what is due does not spin -------------------------------------------

def test_a_due_delivery_that_cannot_be_claimed_does_not_make_the_node_spin(pg_server: PgServer,
                                                                         proxy: FaultProxy) -> None:
    """Another session holds a due delivery's row: claims skip it (SKIP LOCKED) while it is
    still due. The node backs off instead of claiming in a loop; it sends it once it is free."""
    db = pg_server.create_database()
    brand = str(uuid.uuid4())
    publisher = hub_on(db)
    holder: Optional[Holder] = None
    hub: Optional[Hub] = None
    try:
        with Receiver() as receiver:
            publisher.create_webhook(brand, "Deals", receiver.url())
            publisher.publish(brand, "Deals", "Created", {"n": 1})
            holder = Holder(pg_server, db, "SELECT seq FROM deliveries FOR UPDATE")
            hub = hub_on(proxy.url(db), deliver=True, node_id="node-a")
            time.sleep(1)
            before = proxy.statements
            time.sleep(3)
            statements = proxy.statements - before
            print(f"statements in 3 s while the due delivery was locked: {statements}")
            assert statements < 150, f"{statements} statements in 3 s: the node claims in a loop"
            holder.release()
            receiver.wait_for(1, timeout=10)
    finally:
        if holder is not None:
            holder.release()
        if hub is not None:
            hub.close()
        publisher.close()


# --- the fault run: two nodes, 10 000 events, repeated faults --------------------------------------

# Scale knob (CI runs the suite twice): events published during the faults, each to FAULT_WEBHOOKS.
FAULT_EVENTS = int(os.environ.get("BRANDHOOKS_FAULT_EVENTS", "10000"))
FAULT_WEBHOOKS = 2
FAULT_CLIENTS = 8
FAULT_LEASE_TIMEOUT_S = 3
FAULT_GAP_S = 1.5  # between two faults
FAULT_CYCLES = (1, 3)  # at least one cycle of every fault; at most three (a slow machine publishes the rest in peace)
IDLE_CPU_LIMIT = 0.05  # of one core


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(") ", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def idle_cpu(pid: int, seconds: float = 3.0) -> float:
    """The share of one core the process used over `seconds`."""
    before, started = cpu_seconds(pid), time.monotonic()
    time.sleep(seconds)
    return (cpu_seconds(pid) - before) / (time.monotonic() - started)


def node_counters(node: Server) -> Dict[str, float]:
    """Each sample name's total over its labels (leases taken over count per node they came from)."""
    from prometheus_client.parser import text_string_to_metric_families

    with node.client() as api:
        text = api.get("/metrics").text
    totals: Dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            totals[sample.name] = totals.get(sample.name, 0.0) + sample.value
    return totals


class Publisher:
    """Clients publishing one event per request, as a client behind a load balancer would:
    a 503 or a connection error is retried (after Retry-After, on the other node) with the
    same Idempotency-Key, until the event is accepted."""

    def __init__(self, nodes: List[Server], brand: str, count: int, run: str) -> None:
        self.nodes, self.brand, self.run = nodes, brand, run
        self.next = iter(range(count))
        self.lock = threading.Lock()
        self.accepted: Dict[int, str] = {}
        self.retries = Counter[str]()
        self.retry_after: List[int] = []
        self.unexpected: List[str] = []
        self.last_accept_at = 0.0
        self.threads = [threading.Thread(target=self.work, args=(k,)) for k in range(FAULT_CLIENTS)]

    def start(self) -> "Publisher":
        for thread in self.threads:
            thread.start()
        return self

    def join(self) -> None:
        for thread in self.threads:
            thread.join()

    @property
    def done(self) -> bool:
        return not any(thread.is_alive() for thread in self.threads)

    def publish(self, clients: List[httpx.Client], i: int, first_node: int) -> Tuple[str, int]:
        """Publishes event i; returns its id and how many tries it took."""
        node = first_node
        for tries in range(1, 10_000):
            try:
                r = clients[node].post(f"/brands/{self.brand}/events", headers={"Idempotency-Key": f"{self.run}-{i}"},
                                       json={"topic": "Deals", "event": "Created", "payload": {"i": i}})
            except httpx.TransportError as e:
                with self.lock:
                    self.retries[type(e).__name__] += 1
                time.sleep(0.1)
            else:
                if r.status_code == 202:
                    return r.json()["data"]["id"], tries
                if r.status_code != 503:  # never under these faults: noted (the test fails), and retried
                    with self.lock:
                        self.unexpected.append(f"{r.status_code} {r.text[:200]}")
                    assert r.status_code >= 500, f"event {i}: {r.status_code} {r.text}"
                    time.sleep(0.2)
                    node = 1 - node
                    continue
                wait = int(r.headers["Retry-After"])
                with self.lock:
                    self.retries["503"] += 1
                    self.retry_after.append(wait)
                time.sleep(min(wait, 2))  # honoured, within the test's patience
            node = 1 - node  # the load balancer sends the retry elsewhere
        raise AssertionError(f"event {i} was never accepted")

    def work(self, k: int) -> None:
        clients = [node.client() for node in self.nodes]
        try:
            while True:
                with self.lock:
                    i = next(self.next, None)
                if i is None:
                    return
                event_id, _ = self.publish(clients, i, (i + k) % 2)
                with self.lock:
                    self.accepted[i] = event_id
                    self.last_accept_at = time.monotonic()
        finally:
            for client in clients:
                client.close()


def test_two_nodes_publishing_under_repeated_faults_lose_nothing(tmp_path: Path) -> None:
    server = PgServer(tempfile.mkdtemp(prefix="brandhooks-faults-"))
    server.start()
    proxy = FaultProxy(server.port).start()
    nodes: List[Server] = []
    started = time.monotonic()
    try:
        db = server.create_database()
        flags = ["--allow-private", "--retry-schedule", "0,0.2,0.5,1,1,1,1,1,1,1,1,1,1,1,1", "--retry-jitter", "0",
                 "--lease-timeout", str(FAULT_LEASE_TIMEOUT_S), "--max-in-flight", "16", "--busy-timeout-ms", "3000",
                 # Pruning runs during the run (and so meets concurrent publishes); the keys the
                 # clients retry with live longer than any retry takes.
                 "--retention-s", "30", "--prune-interval-s", "2"]
        for name in ("node-a", "node-b"):
            nodes.append(Server(proxy.url(db), "--node-id", name, *flags, log_path=tmp_path / f"{name}.log").start())
        pids = [node.proc.pid for node in nodes if node.proc is not None]
        brand = str(uuid.uuid4())
        with Receiver() as receiver:
            with nodes[0].client() as api:
                for w in range(FAULT_WEBHOOKS):
                    r = api.post(f"/brands/{brand}/webhooks", json={"topic": "Deals", "url": receiver.url(f"/w/{w}")})
                    assert r.status_code == 200, r.text
            publisher = Publisher(nodes, brand, FAULT_EVENTS, uuid.uuid4().hex[:8]).start()

            # The faults, in a cycle, repeated while the clients publish; the last is a crash.
            traps: Dict[str, object] = {}
            faults = Counter[str]()

            def lose(kind: str, match: str) -> None:
                traps.setdefault(kind, [])
                traps[kind].append(proxy.lose_commit_answers(match))  # type: ignore[attr-defined]

            cycle = [
                ("cut every connection", proxy.cut_all),
                ("lose a publish's COMMIT answer", lambda: lose("publish", "INSERT INTO events")),
                ("cut every connection", proxy.cut_all),
                ("lose a claim's COMMIT answer", lambda: lose("claim", "SET lease_owner = $1, next_at = $2")),
                ("cut every connection", proxy.cut_all),
                ("lose an outcome batch's COMMIT answer", lambda: lose("outcomes", "INSERT INTO attempts")),
                ("refuse connections for 4 s", lambda: (proxy.refuse(4), time.sleep(4))),
                ("50 ms latency for 3 s", lambda: (proxy.set_latency(0.05), time.sleep(3), proxy.set_latency(0))),
                ("pg_terminate_backend of the nodes' sessions", server.terminate_sessions),
                ("cut every connection", proxy.cut_all),
                ("pg_ctl restart -m immediate", server.crash_restart),
            ]
            cycles = 0
            while cycles < FAULT_CYCLES[0] or (not publisher.done and cycles < FAULT_CYCLES[1]):
                for name, fault in cycle:
                    time.sleep(FAULT_GAP_S)
                    fault()
                    faults[name] += 1
                cycles += 1
            proxy.disarm()
            faults_ended = time.monotonic()
            publisher.join()

            # Recovery: a probe published after the last fault (the crash restart).
            probe = Publisher(nodes, brand, 1, "probe")
            with nodes[0].client() as c0, nodes[1].client() as c1:
                probe_id, _ = probe.publish([c0, c1], 0, 0)
            accepted_after = time.monotonic() - faults_ended
            expected = {(f"/w/{w}", event_id) for event_id in [*publisher.accepted.values(), probe_id]
                        for w in range(FAULT_WEBHOOKS)}

            def arrived() -> set:
                with receiver.lock:
                    return {(r.path, json.loads(r.body)["id"]) for r in receiver.requests}

            wait_until(lambda: {(f"/w/{w}", probe_id) for w in range(FAULT_WEBHOOKS)} <= arrived(),
                       timeout=60, interval=0.1)
            probe_delivered_after = time.monotonic() - faults_ended
            try:
                wait_until(lambda: expected <= arrived(), timeout=90, interval=0.2)
            except AssertionError:
                pass  # counted below
            all_delivered_after = time.monotonic() - faults_ended
            pending_sql = "SELECT count(*) FROM deliveries WHERE state = 'pending'"
            try:
                wait_until(lambda: server.psql(pending_sql, url=db) == "0", timeout=10, interval=0.2)
            except AssertionError:
                pass  # counted below
            pending = int(server.psql(pending_sql, url=db))
            time.sleep(1)  # a late second send, if any, arrives now
            with receiver.lock:
                ids = [r.headers["webhook-id"] for r in receiver.requests]
            got = arrived()
            cpu = [idle_cpu(pid) for pid in pids]
        counters = [node_counters(node) for node in nodes]
        orphans = int(server.psql("SELECT count(*) FROM deliveries d WHERE NOT EXISTS "
                                  "(SELECT 1 FROM events e WHERE e.seq = d.event_seq)", url=db))
        taken_over = sum(c.get("brandhooks_leases_taken_over_total", 0) for c in counters)
        lost_leases = sum(c["brandhooks_leases_lost_total"] for c in counters)
        already = sum(c.get("brandhooks_outcomes_already_recorded_total", 0) for c in counters)
        taken_back = sum(c.get("brandhooks_leases_taken_back_total", 0) for c in counters)
        lost = len(expected - got)
        unknown = len(got - expected)
        duplicates = len(ids) - len(set(ids))
        fired = {kind: sum(t.fired for t in armed) for kind, armed in traps.items()}  # type: ignore[attr-defined]
        print(f"\nfault run: {len(publisher.accepted)} of {FAULT_EVENTS} events accepted (+1 probe), "
              f"{len(expected)} deliveries expected; lost {lost}, unknown {unknown}, duplicates {duplicates} "
              f"(bound: leases taken over {taken_over:.0f} + taken back {taken_back:.0f}); outcomes dropped "
              f"{lost_leases:.0f}, already recorded {already:.0f}\n"
              f"  faults: {cycles} cycle(s) {dict(faults)}; COMMIT answers lost {fired}; "
              f"connections cut {proxy.connections_cut}; client retries {dict(publisher.retries)}, "
              f"Retry-After seen {dict(Counter(publisher.retry_after))}, other answers {len(publisher.unexpected)}\n"
              f"  recovery after the last fault (pg_ctl restart -m immediate): publish accepted {accepted_after:.2f} s, "
              f"delivered {probe_delivered_after:.2f} s; every delivery arrived {all_delivered_after:.1f} s after it\n"
              f"  idle CPU after the faults: {', '.join(f'{c:.1%}' for c in cpu)}; "
              f"still pending: {pending}; deliveries without their event: {orphans}; run took {time.monotonic() - started:.0f} s")
        assert not publisher.unexpected + probe.unexpected, (publisher.unexpected + probe.unexpected)[:5]
        assert len(publisher.accepted) == FAULT_EVENTS
        assert lost == 0, f"{lost} accepted deliveries never arrived: {sorted(expected - got)[:5]}"
        assert unknown == 0, "a delivery of an event no client was told about (published twice?)"
        assert len(set(ids)) == len(got), "each delivery arrives under one webhook-id"
        # docs/scaling.md, "Duplicates": a delivery is sent again only after its lease was taken
        # over, by a claim that knew it (leases_taken_over) or by one whose COMMIT lost its
        # answer, whose leases were then taken back (leases_taken_back); so is an outcome dropped.
        assert duplicates <= taken_over + taken_back
        assert lost_leases <= taken_over + taken_back, "outcomes dropped although no lease changed hands"
        assert orphans == 0 and pending == 0
        assert all(fired.get(kind, 0) >= 1 for kind in ("publish", "outcomes")), fired
        for node, pid in zip(nodes, pids):
            assert node.proc is not None and node.proc.poll() is None and node.proc.pid == pid, "a node restarted"
            assert "Traceback" not in node.output, node.output[-3000:]
        assert max(cpu) < IDLE_CPU_LIMIT, f"idle nodes use {cpu} of a core"
    finally:
        for node in nodes:
            node.stop()
        proxy.stop()
        server.stop()
