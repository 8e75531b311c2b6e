"""Many nodes on one database: several `brandhooks serve` processes share the work; a publish on
one is delivered by another; a node killed with SIGKILL loses nothing (its leases are taken
over); a PostgreSQL outage answers 503 Unavailable and then everything accepted is delivered; an
unreachable database at start is a clear error. docs/scaling.md describes what is tested here."""

from __future__ import annotations

import json
import re
import subprocess
import threading
import time
import uuid
from pathlib import Path
from typing import Dict, Iterator, List

import httpx
import pytest

from brandhooks import Config, Hub

from conftest import ADMIN_TOKEN, NewDatabase, PgServer, Server, brandhooks_cmd, free_port
from receivers import CountingReceiver, Receiver, wait_until

FAST_RETRIES = ["--allow-private", "--retry-schedule", "0,0.2,0.5,1", "--retry-jitter", "0"]


def node(db: str, name: str, log_dir: Path, *flags: str) -> Server:
    return Server(db, "--node-id", name, *flags, log_path=log_dir / f"{name}.log")


class Nodes:
    """Started nodes, all stopped at the end (also when the test fails)."""

    def __init__(self) -> None:
        self.started: List[Server] = []

    def start(self, server: Server) -> Server:
        self.started.append(server.start())
        return server

    def stop(self) -> None:
        for server in self.started:
            server.stop()


@pytest.fixture()
def nodes() -> Iterator[Nodes]:
    started = Nodes()
    yield started
    started.stop()


def counters(server: Server) -> Dict[str, float]:
    """The node's own counters from its /metrics (the samples without labels, node_info, and the
    leases taken over by the node that held them)."""
    from prometheus_client.parser import text_string_to_metric_families

    with server.client() as api:
        response = api.get("/metrics")
    assert response.status_code == 200, response.text
    out: Dict[str, float] = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            if sample.name == "brandhooks_node_info":
                out["node=" + sample.labels["node"]] = sample.value
            elif sample.name == "brandhooks_leases_taken_over_total":
                out["taken_from=" + sample.labels["from_node"]] = sample.value
            elif not sample.labels:
                out[sample.name] = sample.value
    return out


def test_a_publish_on_one_node_is_delivered_by_another(new_database: NewDatabase, nodes: Nodes,
                                                       tmp_path: Path) -> None:
    """Node a only serves the API (--no-deliver), node b delivers: what a accepts, b sends.
    /stats and /metrics say which node answered. (On SQLite too: two nodes on one file.)"""
    shared_db = new_database("shared")
    a = nodes.start(node(shared_db, "node-a", tmp_path, "--no-deliver"))
    b = nodes.start(node(shared_db, "node-b", tmp_path, *FAST_RETRIES))
    brand = str(uuid.uuid4())
    with Receiver() as receiver, a.client() as api_a, b.client() as api_b:
        hook = api_a.post(f"/brands/{brand}/webhooks", json={"topic": "Deals", "url": receiver.url()})
        assert hook.status_code == 200, hook.text
        # The webhook made on a is there on b at once: one database.
        assert [w["id"] for w in api_b.get(f"/brands/{brand}/webhooks").json()["data"]] == [hook.json()["data"]["id"]]
        events = [api_a.post(f"/brands/{brand}/events", json={"topic": "Deals", "event": "Created",
                                                             "payload": {"i": i}}) for i in range(20)]
        assert all(e.status_code == 202 for e in events), events[0].text
        received = receiver.wait_for(20)
        assert {json.loads(r.body)["id"] for r in received} == {e.json()["data"]["id"] for e in events}

        assert api_a.get("/stats").json()["data"]["node"] == "node-a"
        wait_until(lambda: api_b.get("/stats").json()["data"]["delivered"] == 20)
        stats_b = api_b.get("/stats").json()["data"]
        assert (stats_b["node"], stats_b["pending"], stats_b["delivered"]) == ("node-b", 0, 20)
    metrics_a, metrics_b = counters(a), counters(b)
    assert metrics_a["node=node-a"] == 1 and "node=node-b" not in metrics_a
    assert metrics_b["node=node-b"] == 1
    assert metrics_a["brandhooks_events_published_total"] == 20  # a accepted them ...
    assert metrics_a["brandhooks_attempts_total"] == 0
    assert metrics_b["brandhooks_attempts_total"] == 20  # ... b sent them, once each
    assert len(receiver.requests) == 20


# --- failover ---------------------------------------------------------------------------------

FAILOVER_EVENTS = 10_000  # to each of FAILOVER_WEBHOOKS webhooks
FAILOVER_WEBHOOKS = 10
FAILOVER_MAX_IN_FLIGHT = 64


def test_a_killed_node_loses_nothing_and_only_its_in_flight_deliveries_are_sent_twice(
        pg_url: str, nodes: Nodes, tmp_path: Path) -> None:
    """3 nodes, 10 000 events to 10 webhooks (100 000 deliveries), one node SIGKILLed mid-run:
    every delivery arrives, and the ones sent twice are among those the killed node held."""
    total = FAILOVER_EVENTS * FAILOVER_WEBHOOKS
    brand = str(uuid.uuid4())
    flags = [*FAST_RETRIES, "--lease-timeout", "2", "--max-in-flight", str(FAILOVER_MAX_IN_FLIGHT),
             "--log-level", "warning"]
    publisher = Hub(Config(db=pg_url, allow_private=True))  # publishes and reads, never delivers
    try:
        with CountingReceiver() as receiver:
            receiver.add_keys({f"/w/{i}": publisher.create_webhook(brand, "Deals", receiver.url(f"/w/{i}")).key
                               for i in range(FAILOVER_WEBHOOKS)})
            for first in range(0, FAILOVER_EVENTS, 1000):
                publisher.publish_many([(brand, "Deals", "Created", {"i": i}) for i in range(first, first + 1000)])
            # Started after publishing: the three claim the queue together.
            a, b, c = (nodes.start(node(pg_url, f"node-{n}", tmp_path, *flags)) for n in "abc")
            receiver.wait_for(total // 4, timeout=120)
            assert c.proc is not None
            c.proc.kill()  # SIGKILL: no release, no last commit
            c.proc.wait()
            at_kill = receiver.stats()
            assert at_kill["unique"] < total * 0.9, "the run was nearly over at the kill: it proves little"

            done = receiver.wait_for(total, timeout=180)
            wait_until(lambda: publisher.stats().pending == 0, timeout=60, interval=0.2)
            time.sleep(1)  # a late second send, if any, would arrive now
            final = receiver.stats()
        survivors = [counters(a), counters(b)]
        taken_over = sum(m.get("taken_from=node-c", 0) for m in survivors)
        assert all(not key.startswith("taken_from=") or key == "taken_from=node-c" for m in survivors for key in m)
        duplicates = final["requests"] - final["unique"]
        print(f"failover: {total} deliveries, {at_kill['unique']} arrived before the kill, "
              f"{taken_over:.0f} leases taken over from the killed node, {duplicates} sent twice")
        assert done["unique"] == total and final["invalid"] == 0, "every delivery arrives, signed"
        stats = publisher.stats()
        assert (stats.pending, stats.delivered, stats.failed) == (0, total, 0)
        assert taken_over > 0, "the killed node held leases: the others took them over"
        # Only what the killed node had leased and not recorded can be sent again: at most its
        # attempts in flight plus the outcomes it had not committed yet.
        assert duplicates <= taken_over
        assert all(m["brandhooks_leases_lost_total"] == 0 for m in survivors)
    finally:
        publisher.close()


# --- a database outage ----------------------------------------------------------------------

def test_a_database_outage_answers_503_then_everything_accepted_is_delivered(
        own_pg_server: PgServer, nodes: Nodes, tmp_path: Path) -> None:
    db = own_pg_server.create_database()
    server = nodes.start(node(db, "node-a", tmp_path, *FAST_RETRIES))
    brand = str(uuid.uuid4())
    accepted: List[str] = []
    # Each delivery takes 20 ms: a backlog is still being delivered when the database goes.
    with Receiver(lambda n: time.sleep(0.02) or 200) as receiver, server.client() as api:
        assert api.post(f"/brands/{brand}/webhooks", json={"topic": "Deals", "url": receiver.url()}).status_code == 200

        def publish(count: int) -> None:
            for i in range(count):
                r = api.post(f"/brands/{brand}/events", json={"topic": "Deals", "event": "Created", "payload": {"i": i}})
                assert r.status_code == 202, r.text
                accepted.append(r.json()["data"]["id"])

        publish(300)
        receiver.wait_for(20)
        own_pg_server.stop(remove=False)  # the database goes away mid-run
        try:
            answers = []
            for method, path, body in [
                ("GET", "/healthz", None),
                ("GET", f"/brands/{brand}/webhooks", None),
                ("POST", f"/brands/{brand}/events", {"topic": "Deals", "event": "Created", "payload": {}}),
                ("GET", "/stats", None),
            ]:
                started = time.monotonic()
                r = api.request(method, path, json=body, timeout=30)
                answers.append((path, r.status_code, time.monotonic() - started))
                assert r.status_code == 503, (path, r.status_code, r.text)
                assert r.json()["code"] == "Unavailable" and r.json()["http"] == 503, r.text
                assert int(r.headers["Retry-After"]) > 0
            assert max(seconds for _, _, seconds in answers) < 20, f"an answer took too long: {answers}"
            time.sleep(1)  # the dispatcher keeps running into the outage meanwhile
        finally:
            own_pg_server.start()
        wait_until(lambda: api.get("/healthz").status_code == 200, timeout=60, interval=0.2)
        publish(50)  # the node works again without a restart

        def all_arrived() -> bool:
            with receiver.lock:
                seen = {json.loads(r.body)["id"] for r in receiver.requests}
            return set(accepted) <= seen

        wait_until(all_arrived, timeout=120, interval=0.2)
        wait_until(lambda: api.get("/stats").json()["data"]["pending"] == 0, timeout=60, interval=0.2)
        stats = api.get("/stats").json()["data"]
    assert (stats["delivered"], stats["failed"]) == (len(accepted), 0)
    assert "Traceback" not in server.output


# --- an unreachable database ----------------------------------------------------------------

def test_an_unreachable_database_at_start_is_a_clear_error_without_the_password(tmp_path: Path) -> None:
    port = free_port()  # nothing listens there
    url = f"postgresql://brandhooks:s3cret-pw@127.0.0.1:{port}/hooks"
    for command in [["serve", "--port", str(free_port()), "--db", url, "--admin-token", ADMIN_TOKEN],
                    ["stats", "--db", url]]:
        started = time.monotonic()
        out = subprocess.run(brandhooks_cmd(*command), capture_output=True, text=True, timeout=60)
        seconds = time.monotonic() - started
        assert out.returncode != 0, out.stdout + out.stderr
        assert seconds < 30, f"{command[0]} took {seconds:.1f} s to give up"
        assert re.search(r"error: .*(connect|reach|unavailable)", out.stderr, re.IGNORECASE), out.stderr
        assert f"127.0.0.1:{port}" in out.stderr or "127.0.0.1" in out.stderr, out.stderr
        assert "s3cret-pw" not in out.stdout + out.stderr
        assert "Traceback" not in out.stderr


def test_the_banner_names_the_database_without_its_password(pg_server: PgServer, pg_url: str, tmp_path: Path) -> None:
    # Trust authentication: the server ignores the password, but it must not be shown.
    with_password = pg_url.replace("postgresql://postgres@", "postgresql://postgres:s3cret-pw@")
    assert with_password != pg_url
    server = Server(with_password, "--no-deliver", "--log-level", "info", log_path=tmp_path / "serve.log").start()
    try:
        with server.client() as api:
            assert api.get("/stats").status_code == 200
    finally:
        server.stop()
    assert re.search(r"database\s+PostgreSQL postgresql://postgres:\*\*\*@127\.0\.0\.1:", server.output), server.output
    assert "s3cret-pw" not in server.output


def test_database_passwords_are_redacted_wherever_they_appear() -> None:
    from brandhooks.database import describe, redact

    assert redact("cannot connect to postgresql://u:pw@db:5432/x: refused") == \
        "cannot connect to postgresql://u:***@db:5432/x: refused"
    assert redact("postgres://u:p%40ss@db/x?sslmode=require&password=pw2") == \
        "postgres://u:***@db/x?sslmode=require&password=***"
    assert redact("host=db password=pw user=u") == "host=db password=*** user=u"
    assert redact("postgresql://u@db/x") == "postgresql://u@db/x"  # nothing to hide
    assert describe("postgresql://u:pw@db/x") == "PostgreSQL postgresql://u:***@db/x"
    assert describe("brandhooks.db").endswith("/brandhooks.db") and describe(":memory:") == ":memory:"
