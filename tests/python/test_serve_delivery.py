"""Delivery through `brandhooks serve`: REST publish, the deliveries route, kill -9 and restart."""

from __future__ import annotations

import hashlib
import hmac
import json
import signal
import threading
import time
import uuid

import httpx
import pytest
import standardwebhooks

from conftest import Server
from receivers import Receiver, wait_until

FAST_RETRIES = ["--allow-private", "--retry-schedule", "0,0.2,0.2", "--retry-jitter", "0"]


@pytest.fixture(scope="module")
def delivering(tmp_path_factory):
    server = Server(tmp_path_factory.mktemp("deliver") / "d.db", *FAST_RETRIES).start()
    yield server
    server.stop()


def test_publish_through_rest_reaches_the_receiver(delivering):
    brand = str(uuid.uuid4())
    with Receiver() as receiver, delivering.client() as api:
        hook = api.post(f"/brands/{brand}/webhooks", json={"topic": "Deals", "url": receiver.url()}).json()["data"]
        response = api.post(f"/brands/{brand}/events",
                            json={"topic": "Deals", "event": "Created", "payload": {"price": 1_250_000}})
        assert response.status_code == 202
        accepted = response.json()
        assert list(accepted) == ["code", "data"] and accepted["code"] == "OK"
        assert accepted["data"]["deliveries"] == 1
        request = receiver.wait_for(1)[0]

    body = json.loads(request.body)
    assert body["id"] == accepted["data"]["id"] and body["payload"] == {"price": 1_250_000}
    key = bytes.fromhex(hook["key"])
    assert request.headers["X-Webhook-Signature"] == hmac.new(key, request.body, hashlib.sha256).hexdigest()
    standardwebhooks.Webhook("whsec_" + __import__("base64").b64encode(key).decode()).verify(
        request.body, request.headers)


def test_deliveries_route_newest_first_with_attempts_and_filters(delivering):
    brand = str(uuid.uuid4())
    outcomes = {1: 500}
    with Receiver(lambda n: outcomes.get(n, 200)) as receiver, delivering.client() as api:
        hook = api.post(f"/brands/{brand}/webhooks", json={"topic": "Showings", "url": receiver.url()}).json()["data"]
        ids = []
        for i in range(3):
            ids.append(api.post(f"/brands/{brand}/events",
                                json={"topic": "Showings", "event": "Booked", "payload": {"i": i}}).json()["data"]["id"])
            receiver.wait_for(i + 1)
        path = f"/brands/{brand}/webhooks/{hook['id']}/deliveries"
        wait_until(lambda: api.get(path, params={"status": "delivered"}).json()["info"]["total"] == 3)

        listed = api.get(path).json()
        assert listed["info"] == {"count": 3, "total": 3}
        assert [d["event"] for d in listed["data"]] == ids[::-1]  # newest first
        first = listed["data"][-1]
        assert list(first) == ["id", "event", "webhook", "brand", "topic", "event_type", "state", "attempt_count",
                               "created_at", "updated_at", "next_attempt_at", "attempts", "type"]
        assert first["state"] == "delivered" and first["attempt_count"] == 2
        assert [a["status"] for a in first["attempts"]] == [500, 200]
        assert first["attempts"][0]["response"] == "status 500"
        assert all(isinstance(a["duration_ms"], float) for a in first["attempts"])

        page = api.get(path, params={"start": 1, "limit": 1}).json()
        assert [d["event"] for d in page["data"]] == [ids[1]] and page["info"] == {"count": 1, "total": 3}
        assert api.get(path, params={"status": "failed"}).json()["info"]["total"] == 0

        for params in ({"status": "done"}, {"limit": "5000"}, {"start": "-1"}):
            bad = api.get(path, params=params)
            assert bad.status_code == 400 and bad.json()["code"] == "Validation"
        assert api.get(f"/brands/{brand}/webhooks/{uuid.uuid4()}/deliveries").status_code == 404
        assert api.get(f"/brands/{uuid.uuid4()}/webhooks/{hook['id']}/deliveries").status_code == 404


def test_state_shows_the_failure_streak_and_the_last_success(delivering):
    brand = str(uuid.uuid4())
    # Request 1 succeeds; 2-4 (the second event's three attempts) and 5 fail; 6 succeeds.
    with Receiver(lambda n: 500 if 2 <= n <= 5 else 200) as receiver, delivering.client() as api:
        hook = api.post(f"/brands/{brand}/webhooks", json={"topic": "Deals", "url": receiver.url()}).json()["data"]
        assert "failing_since" not in hook and "last_success_at" not in hook  # the webhook's shape is a contract
        path = f"/brands/{brand}/webhooks/{hook['id']}"

        def state():
            return api.get(f"{path}/state").json()["data"]

        def publish_and_settle(count):
            assert api.post(f"/brands/{brand}/events", json={"topic": "Deals", "event": "Created", "payload": {}}).status_code == 202
            wait_until(lambda: api.get(f"{path}/deliveries", params={"status": "pending"}).json()["info"]["total"] == 0
                       and len(receiver.requests) == count)
            return api.get(f"{path}/deliveries", params={"limit": 1}).json()["data"][0]

        fresh = state()
        assert list(fresh) == ["id", "enabled", "disabled_at", "disabled_reason", "failing_since", "last_success_at"]
        assert (fresh["failing_since"], fresh["last_success_at"]) == (None, None)

        # A success: its start, to the second.
        first = publish_and_settle(1)
        assert first["state"] == "delivered"
        succeeded = state()
        assert succeeded["last_success_at"] == int(first["attempts"][0]["started_at"])
        assert succeeded["failing_since"] is None

        # Three failed attempts: a streak from the first one; the last success is kept.
        second = publish_and_settle(4)
        assert second["state"] == "failed" and len(second["attempts"]) == 3
        failing = state()
        assert failing["failing_since"] == second["attempts"][0]["started_at"]
        assert failing["last_success_at"] == succeeded["last_success_at"] and failing["enabled"] is True

        # A re-enable clears the streak; a failure then a success: no streak, a newer last success.
        assert api.patch(path, json={"enabled": True}).status_code == 200
        assert state()["failing_since"] is None
        third = publish_and_settle(6)
        assert third["state"] == "delivered" and [a["status"] for a in third["attempts"]] == [500, 200]
        recovered = state()
        assert recovered["failing_since"] is None
        assert recovered["last_success_at"] == int(third["attempts"][1]["started_at"])


@pytest.mark.parametrize(
    "body, code",
    [
        ({"topic": "Deals", "event": "Created"}, "Validation"),
        ({"topic": "Deals", "event": "Created", "payload": [1]}, "Validation"),
        ({"topic": "deals", "event": "Created", "payload": {}}, "Validation"),
        ({"topic": "Deals", "payload": {}}, "Validation"),
        ({"topic": "Deals", "event": 5, "payload": {}}, "Validation"),
    ],
)
def test_bad_events_are_refused(delivering, body, code):
    with delivering.client() as api:
        response = api.post(f"/brands/{uuid.uuid4()}/events", json=body)
    assert response.status_code == 400 and response.json()["code"] == code


def test_events_need_access_to_the_brand(delivering):
    with delivering.client(token=None) as anonymous:
        assert anonymous.post(f"/brands/{uuid.uuid4()}/events", json={}).status_code == 401


def test_blocked_without_allow_private(tmp_path):
    server = Server(tmp_path / "strict.db", "--retry-schedule", "0").start()
    brand = str(uuid.uuid4())
    try:
        with Receiver() as receiver, server.client() as api:
            hook = api.post(f"/brands/{brand}/webhooks", json={"topic": "Deals", "url": receiver.url()}).json()["data"]
            api.post(f"/brands/{brand}/events", json={"topic": "Deals", "event": "Created", "payload": {}})
            path = f"/brands/{brand}/webhooks/{hook['id']}/deliveries"
            wait_until(lambda: api.get(path).json()["data"][0]["state"] == "failed")
            attempt = api.get(path).json()["data"][0]["attempts"][0]
            assert attempt["error"] == "blocked" and attempt["status"] is None
            # The detail says how an operator allows the address.
            assert "127.0.0.1" in attempt["detail"] and "--allow-private" in attempt["detail"]
            assert "--allow-cidrs 127.0.0.1/32" in attempt["detail"]
            assert receiver.requests == []
    finally:
        server.stop()


def test_kill_9_loses_no_accepted_event(tmp_path):
    """Publish thousands of events while delivering, kill -9 mid-way, restart: all arrive."""
    # One delivery at a time to a receiver taking 4 ms: a backlog builds up behind publishing.
    server = Server(tmp_path / "crash.db", *FAST_RETRIES, "--max-in-flight-per-webhook", "1").start()
    brand = str(uuid.uuid4())
    accepted, stop_publishing = [], threading.Event()
    with Receiver(lambda n: time.sleep(0.004) or 200) as receiver:
        with server.client() as api:
            api.post(f"/brands/{brand}/webhooks", json={"topic": "Contacts", "url": receiver.url()})

        def publish() -> None:
            with server.client() as api:
                for i in range(3000):
                    if stop_publishing.is_set():
                        return
                    try:
                        r = api.post(f"/brands/{brand}/events",
                                     json={"topic": "Contacts", "event": "Created", "payload": {"i": i}})
                    except httpx.TransportError:
                        return  # the server is gone: this event was not accepted
                    if r.status_code == 202:
                        accepted.append(r.json()["data"]["id"])

        publisher = threading.Thread(target=publish)
        publisher.start()
        wait_until(lambda: len(accepted) >= 2000 or not publisher.is_alive(), timeout=60)
        server.proc.send_signal(signal.SIGKILL)
        server.proc.wait()
        stop_publishing.set()
        publisher.join()
        server.stop()
        got_before = len(receiver.requests)
        assert len(accepted) >= 2000
        assert got_before < len(accepted) - 200, "no backlog at the kill: the test proves nothing"

        server.start()  # same file
        try:
            def all_arrived() -> bool:
                with receiver.lock:
                    seen = {json.loads(r.body)["id"] for r in receiver.requests}
                return set(accepted) <= seen

            wait_until(all_arrived, timeout=60)
        finally:
            server.stop()
    assert len(receiver.requests) >= len(accepted)
    print(f"accepted {len(accepted)}, received {got_before} before the kill, {len(receiver.requests)} in all")
