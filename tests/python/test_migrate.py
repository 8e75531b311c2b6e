"""`brandhooks migrate`: a real SQLite file, filled through the real Hub, moved to another
database; everything must arrive as it was, keys must sign the same, and pending deliveries
must be delivered from the new database."""

from __future__ import annotations

import sqlite3
import subprocess
import uuid
from pathlib import Path
from typing import Any, Dict, List

import pytest
import standardwebhooks

from brandhooks import Config, Hub, Migration, UnauthorizedError, standard_webhooks_secret
from conftest import brandhooks_cmd
from receivers import Receiver, wait_until

SETTINGS = dict(allow_private=True, retry_schedule="0,0.2,3600", retry_jitter=0.0, request_timeout_ms=2000,
                connect_timeout_ms=1000)


def migrate(source: str, target: str, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run(brandhooks_cmd("migrate", "--from", source, "--to", target, *extra),
                          capture_output=True, text=True, timeout=120)


def snapshot(hub: Hub, brands: List[str], hooks: List[Any]) -> Dict[str, Any]:
    """Everything the API shows of these brands and webhooks (deleted ones included)."""
    return {
        "webhooks": {b: [w.to_dict() for w in hub.list_webhooks(b).items] for b in brands},
        # Each webhook's state: disabled or not, its failure streak and last success.
        "webhook_states": {b: [w.state_dict() for w in hub.list_webhooks(b).items] for b in brands},
        "deliveries": {h.id: [d.to_dict() for d in hub.list_deliveries(h.brand, h.id, limit=1000).items]
                       for h in hooks},
        "parents": {b: hub.brand_parent(b) for b in brands},
        "tokens": [t.to_dict() for t in hub.list_tokens()],
        # (Not the answering node: every Hub has a node id of its own.)
        "stats": {k: v for k, v in hub.stats().to_dict().items() if k not in ("due_now", "oldest_due_at", "node")},
        # The per-minute delivery statistics (the window's bounds move with the clock).
        "delivery_stats": {b: {k: v for k, v in hub.delivery_stats(b).to_dict().items() if k not in ("since", "until")}
                           for b in brands},
    }


def fill(path: Path, receiver: Receiver, failing_receiver: Receiver) -> Dict[str, Any]:
    """A source database with every kind of row: a brand tree, live, rotated and deleted
    webhooks, tokens (one revoked), delivered deliveries, failed attempts waiting for a
    retry, and deliveries never attempted."""
    office, brokerage = str(uuid.uuid4()), str(uuid.uuid4())
    with Hub(Config(db=str(path), deliver=True, **SETTINGS)) as hub:
        hub.set_brand_parent(office, brokerage)
        ok = hub.create_webhook(brokerage, "Deals", receiver.url("/ok"), headers={"X-Tenant": "a1"}, rate_limit=50,
                                ordered=True)
        failing = hub.create_webhook(office, "Deals", failing_receiver.url("/fail"), tags=["vip"])
        for n in range(3):
            hub.publish(office, "Deals", "Created", {"n": n}, tags=["vip"])
        # /ok delivers all three; /fail's first two attempts fail, the third waits an hour.
        wait_until(lambda: len(hub.list_deliveries(brokerage, ok.id, status="delivered").items) == 3
                   and [d.attempt_count for d in hub.list_deliveries(office, failing.id).items] == [2, 2, 2])
    with Hub(Config(db=str(path), deliver=False, **SETTINGS)) as hub:
        rotated = hub.rotate_key(brokerage, ok.id)  # the old key stays valid for a day
        gone = hub.create_webhook(office, "Showings", receiver.url("/gone"))
        noon = hub.publish(office, "Showings", "Scheduled", {"at": "noon"}, idempotency_key="noon-1")
        hub.delete_webhook(office, gone.id)
        for n in range(2):  # never attempted: pending, due now (untagged: not for `failing`)
            hub.publish(office, "Deals", "Updated", {"n": n})
        admin = hub.create_token(label="ops")
        scoped = hub.create_token(brokerage, label="crm")
        revoked = hub.create_token(office, label="old")
        hub.revoke_token(revoked.info.id)
        expiring = hub.create_token(office, label="link", expires_in=3600)  # expires_at must move
        hooks = [ok, failing, gone]
        # Both health fields hold a time to move: /ok's last success, /fail's failure streak.
        assert hub.get_webhook(brokerage, ok.id).last_success_at and hub.get_webhook(office, failing.id).failing_since
        return {
            "brands": [office, brokerage], "hooks": hooks, "ok": rotated, "old_key": ok.key,
            "secrets": {"admin": admin.secret, "scoped": scoped.secret, "revoked": revoked.secret,
                        "expiring": expiring.secret},
            "expires_at": expiring.info.expires_at,
            "snapshot": snapshot(hub, [office, brokerage], hooks), "noon": noon.event_id,
        }


@pytest.fixture(params=["postgresql", "sqlite"])
def target(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty PostgreSQL database (the point of the command), or a new SQLite file."""
    if request.param == "postgresql":
        return str(request.getfixturevalue("pg_url"))
    return str(tmp_path / "target.db")


def test_everything_arrives_and_pending_deliveries_are_delivered(tmp_path: Path, target: str) -> None:
    source = tmp_path / "source.db"
    with Receiver(lambda n: 200) as receiver, Receiver(lambda n: 500) as failing_receiver:
        before = fill(source, receiver, failing_receiver)
        sent_before = len(receiver.requests)

        # Batches of 2: a delivery's two attempts straddle batches (the cursor is their key).
        done = migrate(str(source), target, "--batch-rows", "2")
        assert done.returncode == 0, done.stderr
        lines = done.stdout.splitlines()
        assert lines[0].split() == ["TABLE", "SOURCE", "TARGET"]
        counts = {line[:14].strip(): line[14:].split() for line in lines[1:]}
        assert counts["webhooks"] == ["3", "3"] and counts["deliveries"] == ["9", "9"]
        assert counts["previous keys"] == ["1", "1"] and counts["tokens"] == ["4", "4"]
        assert counts["brand parents"] == ["1", "1"] and counts["attempts"] == ["9", "9"]
        assert counts["publish keys"] == ["1", "1"]
        # One row per webhook and minute of its 9 attempts: 2, or 3-4 across a minute's end.
        assert counts["attempt stats"][0] == counts["attempt stats"][1] and int(counts["attempt stats"][0]) >= 2
        assert sum(m["failed"] for m in before["snapshot"]["delivery_stats"][before["brands"][0]]["minutes"]) == 6
        assert "every count matches" in done.stderr

        ok, office = before["ok"], before["brands"][0]
        with Hub(Config(db=target, deliver=False, **SETTINGS)) as hub:
            assert snapshot(hub, before["brands"], before["hooks"]) == before["snapshot"]
            assert hub.authenticate(before["secrets"]["admin"]).is_admin
            assert hub.authorize(before["secrets"]["scoped"], office).brand == ok.brand  # the tree moved
            with pytest.raises(UnauthorizedError):
                hub.authenticate(before["secrets"]["revoked"])
            assert hub.authenticate(before["secrets"]["expiring"]).expires_at == before["expires_at"]
            # The idempotency key moved with its answer: a retry publishes nothing.
            again = hub.publish(office, "Showings", "Scheduled", {"at": "noon"}, idempotency_key="noon-1")
            assert again.event_id == before["noon"]

        # Delivering from the new database: the two pending, never attempted deliveries go
        # out (the failed ones wait for their retry in an hour), signed with the current key
        # and, during the rotation's grace, the old one.
        with Hub(Config(db=target, deliver=True, **SETTINGS)) as hub:
            fresh = receiver.wait_for(sent_before + 2)[sent_before:]
            wait_until(lambda: hub.stats().pending == 3 and hub.stats().delivered == 5)
        assert [r.path for r in fresh] == ["/ok", "/ok"]
        assert len(failing_receiver.requests) == 6
        for request in fresh:
            for key in (ok.key, before["old_key"]):
                standardwebhooks.Webhook(standard_webhooks_secret(key)).verify(request.body, request.headers)


def test_refuses_what_is_not_a_brandhooks_database(tmp_path: Path) -> None:
    text = tmp_path / "notes.txt"
    text.write_text("not a database\n" * 100)
    missing = tmp_path / "missing.db"
    other = tmp_path / "other.db"
    with sqlite3.connect(other) as db:
        db.execute("CREATE TABLE t (x)")
        db.execute("INSERT INTO t VALUES (1)")
    for source in (text, missing, other):
        done = migrate(str(source), str(tmp_path / "target.db"))
        assert done.returncode == 2, done.stderr
        assert "not a brandhooks SQLite database" in done.stderr or "is not a file" in done.stderr
        assert not (tmp_path / "target.db").exists()
    with sqlite3.connect(other) as db:  # left untouched
        assert [row[0] for row in db.execute("SELECT name FROM sqlite_master")] == ["t"]


def test_refuses_a_target_that_exists(tmp_path: Path) -> None:
    source, target = tmp_path / "source.db", tmp_path / "target.db"
    with Hub(Config(db=str(source))) as hub:
        hub.create_webhook(str(uuid.uuid4()), "Deals", "https://example.com/hook")
    assert migrate(str(source), str(target)).returncode == 0
    again = migrate(str(source), str(target))
    assert again.returncode == 2 and "exists already" in again.stderr


def test_refuses_a_postgresql_database_that_holds_data(tmp_path: Path, pg_url: str) -> None:
    source = tmp_path / "source.db"
    with Hub(Config(db=str(source))) as hub:
        brand = str(uuid.uuid4())
        hub.create_webhook(brand, "Deals", "https://example.com/hook")
    with Hub(Config(db=pg_url)) as hub:
        kept = hub.create_webhook(brand, "Showings", "https://example.com/other")
    done = migrate(str(source), pg_url)
    assert done.returncode == 1
    assert "the target database is not empty (1 brands, 1 webhooks)" in done.stderr
    with Hub(Config(db=pg_url)) as hub:  # nothing was added
        assert [w.id for w in hub.list_webhooks(brand).items] == [kept.id]


def test_batches_end_at_their_byte_budget(tmp_path: Path) -> None:
    """Bodies of up to 1 MiB must not make a batch of 1000 rows a gigabyte: a batch also ends
    once its rows hold batch_bytes (the first row always moves)."""
    source = tmp_path / "source.db"
    with Hub(Config(db=str(source))) as hub:
        brand = str(uuid.uuid4())
        hub.create_webhook(brand, "Deals", "https://example.com/hook")
        for n in range(4):
            hub.publish(brand, "Deals", "Created", {"blob": str(n) * 300_000})
    migration = Migration(str(source), str(tmp_path / "target.db"), batch_rows=1000, batch_bytes=250_000)
    moved = []
    while migration.step():
        moved.append(migration.moved_rows)
    # brands, webhooks, 4 events one by one (each over the budget), deliveries: one batch each.
    assert [b - a for a, b in zip([0] + moved, moved)] == [1, 1, 1, 1, 1, 1, 4]
    assert migration.done and all(source == target for _, source, target in migration.counts())
