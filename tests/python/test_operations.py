"""Operator routes end to end: a real `brandhooks serve` process and real receivers on loopback.

PATCH and /state, tags, key rotation, recover, one delivery and redeliver, /metrics, /stats,
tokens over REST, and retention (pruning).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import json
import os
import re
import time
import uuid
from typing import Callable, ContextManager, Dict, FrozenSet, Iterator, List, Tuple

import pytest
from prometheus_client.parser import text_string_to_metric_families

import brandhooks
from conftest import ADMIN_TOKEN, Server, backend_server, sql_count
from receivers import Receiver, Received, wait_until

FAST_RETRIES = ["--allow-private", "--retry-schedule", "0,0.2,0.2", "--retry-jitter", "0"]
# The original ten fields first; the delivery controls follow `type`.
WEBHOOK_FIELDS = ["id", "created_at", "updated_at", "deleted_at", "brand", "topic", "url", "key", "tags", "type",
                  "ordered", "rate_limit", "headers"]
STATE_FIELDS = ["id", "enabled", "disabled_at", "disabled_reason", "failing_since", "last_success_at"]
STATS_FIELDS = ["webhooks", "disabled_webhooks", "events", "pending", "delivered", "failed", "cancelled",
                "due_now", "oldest_due_at", "node"]
UUID4 = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
# Events and deliveries get time-ordered ids (UUID v7): they are appended by the hundred thousand.
UUID7 = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
WAIT = 20  # seconds: the bound of every wait in this file


@pytest.fixture(scope="module")
def delivering(tmp_path_factory, new_database) -> Iterator[Server]:
    server = backend_server(new_database, tmp_path_factory.mktemp("operations"), "ops", *FAST_RETRIES).start()
    yield server
    server.stop()


@pytest.fixture()
def fresh_server(new_database, tmp_path) -> Callable[..., ContextManager[Server]]:
    """fresh_server(name, *flags): a server of its own on a new database of each backend."""

    @contextlib.contextmanager
    def start(name: str, *flags: str) -> Iterator[Server]:
        server = backend_server(new_database, tmp_path, name, *flags).start()
        try:
            yield server
        finally:
            server.stop()

    return start


# --- helpers -------------------------------------------------------------------------------

def create_webhook(api, brand: str, url: str, topic: str = "Deals", **extra) -> dict:
    response = api.post(f"/brands/{brand}/webhooks", json={"topic": topic, "url": url, **extra})
    assert response.status_code == 200, response.text
    return response.json()["data"]


def publish(api, brand: str, topic: str = "Deals", event: str = "Created", payload=None, **extra) -> dict:
    response = api.post(f"/brands/{brand}/events",
                        json={"topic": topic, "event": event, "payload": payload or {}, **extra})
    assert response.status_code == 202, response.text
    return response.json()["data"]


def state_of(api, brand: str, hook_id: str) -> dict:
    response = api.get(f"/brands/{brand}/webhooks/{hook_id}/state")
    assert response.status_code == 200, response.text
    return response.json()["data"]


def deliveries(api, brand: str, hook_id: str, **params) -> dict:
    response = api.get(f"/brands/{brand}/webhooks/{hook_id}/deliveries", params=params)
    assert response.status_code == 200, response.text
    return response.json()


def total(api, brand: str, hook_id: str, status=None) -> int:
    params = {"status": status} if status else {}
    return deliveries(api, brand, hook_id, **params)["info"]["total"]


def event_ids(requests: List[Received]) -> List[str]:
    return [json.loads(r.body)["id"] for r in requests]


def assert_error(response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert list(body) == ["http", "code", "message"]
    assert body["http"] == status and body["code"] == code and body["message"]


def assert_quiet(receiver: Receiver, count: int, seconds: float = 0.6) -> None:
    """Nothing more than `count` requests arrives in `seconds` (the dispatcher runs every few ms)."""
    time.sleep(seconds)
    assert len(receiver.requests) == count


def standard_signature(key_hex: str, msg_id: str, timestamp: str, body: bytes) -> str:
    digest = hmac.new(bytes.fromhex(key_hex), f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def simple_signature(key_hex: str, body: bytes) -> str:
    return hmac.new(bytes.fromhex(key_hex), body, hashlib.sha256).hexdigest()


Samples = Dict[Tuple[str, FrozenSet[Tuple[str, str]]], float]


def scrape(api) -> Tuple[Samples, Dict[str, str]]:
    """The /metrics samples by (name, labels), and each family's type."""
    response = api.get("/metrics")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    samples: Samples = {}
    types: Dict[str, str] = {}
    for family in text_string_to_metric_families(response.text):
        types[family.name] = family.type
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return samples, types


def metric(samples: Samples, name: str, **labels: str) -> float:
    key = (name, frozenset(labels.items()))
    assert key in samples, f"{name}{labels} missing from /metrics"
    return samples[key]


# --- PATCH and /state ------------------------------------------------------------------------

def test_patch_url_moves_the_next_event_to_the_new_receiver(delivering):
    brand = str(uuid.uuid4())
    with Receiver() as old, Receiver() as new, delivering.client() as api:
        hook = create_webhook(api, brand, old.url())
        first = publish(api, brand)
        assert event_ids(old.wait_for(1)) == [first["id"]]
        wait_until(lambda: total(api, brand, hook["id"], "delivered") == 1, timeout=WAIT)

        response = api.patch(f"/brands/{brand}/webhooks/{hook['id']}", json={"url": new.url("/moved")})
        assert response.status_code == 200, response.text
        body = json.loads(response.text)
        assert list(body) == ["code", "data"] and body["code"] == "OK"
        patched = body["data"]
        assert list(patched) == WEBHOOK_FIELDS
        assert patched["url"] == new.url("/moved")
        for field in ("id", "created_at", "brand", "topic", "key", "tags", "type", "deleted_at"):
            assert patched[field] == hook[field], field
        assert patched["updated_at"] > hook["updated_at"]
        assert api.get(f"/brands/{brand}/webhooks/{hook['id']}").json()["data"] == patched

        second = publish(api, brand)
        assert second["deliveries"] == 1
        got = new.wait_for(1)
        assert event_ids(got) == [second["id"]] and got[0].path == "/moved"
        assert brandhooks.verify(got[0].body, got[0].headers, hook["key"]) == "standard"
        assert_quiet(old, 1)


def test_disable_and_re_enable_by_an_operator(delivering):
    brand = str(uuid.uuid4())
    with Receiver() as receiver, delivering.client() as api:
        hook = create_webhook(api, brand, receiver.url())
        path = f"/brands/{brand}/webhooks/{hook['id']}"
        state = state_of(api, brand, hook["id"])
        assert list(state) == STATE_FIELDS
        assert state == {"id": hook["id"], "enabled": True, "disabled_at": None, "disabled_reason": None,
                         "failing_since": None, "last_success_at": None}

        before = time.time()
        response = api.patch(path, json={"enabled": False})
        after = time.time()
        assert response.status_code == 200, response.text
        assert list(response.json()["data"]) == WEBHOOK_FIELDS
        assert response.json()["data"]["url"] == hook["url"]
        state = state_of(api, brand, hook["id"])
        assert state["enabled"] is False
        assert state["disabled_reason"] == "disabled by an operator"
        assert isinstance(state["disabled_at"], float) and before - 1 <= state["disabled_at"] <= after + 1
        # A disabled webhook stays visible: GET and the list still show it.
        assert api.get(path).status_code == 200

        assert publish(api, brand)["deliveries"] == 0
        assert total(api, brand, hook["id"]) == 0
        assert_quiet(receiver, 0)

        # Disabling twice keeps the first time.
        assert api.patch(path, json={"enabled": False}).status_code == 200
        assert state_of(api, brand, hook["id"])["disabled_at"] == state["disabled_at"]

        response = api.patch(path, json={"enabled": True})
        assert response.status_code == 200, response.text
        assert state_of(api, brand, hook["id"]) == {
            "id": hook["id"], "enabled": True, "disabled_at": None, "disabled_reason": None,
            "failing_since": None, "last_success_at": None}
        event = publish(api, brand)
        assert event["deliveries"] == 1
        assert event_ids(receiver.wait_for(1)) == [event["id"]]
        wait_until(lambda: total(api, brand, hook["id"], "delivered") == 1, timeout=WAIT)


def test_webhook_disabled_by_410_is_re_enabled_by_patch(delivering):
    brand = str(uuid.uuid4())
    with Receiver(lambda n: 410 if n == 1 else 200) as receiver, delivering.client() as api:
        hook = create_webhook(api, brand, receiver.url())
        gone = publish(api, brand)
        receiver.wait_for(1)
        wait_until(lambda: not state_of(api, brand, hook["id"])["enabled"], timeout=WAIT)
        state = state_of(api, brand, hook["id"])
        assert state["disabled_reason"] == "the endpoint answered 410 Gone"
        assert isinstance(state["disabled_at"], float)
        failed = deliveries(api, brand, hook["id"])["data"]
        assert state["failing_since"] == failed[0]["attempts"][0]["started_at"]  # the re-enable clears it
        assert [(d["event"], d["state"], d["attempt_count"]) for d in failed] == [(gone["id"], "failed", 1)]
        assert failed[0]["attempts"][0]["status"] == 410  # no retry after 410 Gone

        assert publish(api, brand)["deliveries"] == 0
        assert_quiet(receiver, 1)

        assert api.patch(f"/brands/{brand}/webhooks/{hook['id']}", json={"enabled": True}).status_code == 200
        assert state_of(api, brand, hook["id"]) == {
            "id": hook["id"], "enabled": True, "disabled_at": None, "disabled_reason": None,
            "failing_since": None, "last_success_at": None}
        event = publish(api, brand)
        assert event["deliveries"] == 1
        assert event_ids(receiver.wait_for(2))[1] == event["id"]
        wait_until(lambda: total(api, brand, hook["id"], "delivered") == 1, timeout=WAIT)
        state = state_of(api, brand, hook["id"])
        assert state["enabled"] is True and state["failing_since"] is None and state["last_success_at"] is not None


@pytest.mark.parametrize(
    "body, code",
    [
        ({}, "Validation"),
        ({"enabled": "yes"}, "Validation"),
        ({"enabled": 1}, "Validation"),
        ({"topic": "deals"}, "Validation"),
        ({"topic": None}, "Validation"),
        ({"url": "/relative"}, "Validation"),
        ({"url": "ftp://example.com/hook"}, "Validation"),
        ({"url": 5}, "Validation"),
        ({"tags": "vip"}, "Validation"),
        ({"tags": [1]}, "Validation"),
        ({"url": "https://example.com/ok", "topic": "deals"}, "Validation"),  # all or nothing
        ([{"enabled": False}], "Validation"),
    ],
)
def test_bad_patch_changes_nothing(delivering, body, code):
    brand = str(uuid.uuid4())
    with delivering.client() as api:
        hook = create_webhook(api, brand, "https://example.com/hook", tags=["vip"])
        response = api.patch(f"/brands/{brand}/webhooks/{hook['id']}", json=body)
        assert_error(response, 400, code)
        assert api.get(f"/brands/{brand}/webhooks/{hook['id']}").json()["data"] == hook
        assert state_of(api, brand, hook["id"])["enabled"] is True


def test_patch_refuses_malformed_json_and_unknown_webhooks(delivering):
    brand = str(uuid.uuid4())
    with delivering.client() as api:
        hook = create_webhook(api, brand, "https://example.com/hook")
        path = f"/brands/{brand}/webhooks/{hook['id']}"
        assert_error(api.patch(path, content=b"{not json", headers={"content-type": "application/json"}),
                     400, "BadRequest")
        assert_error(api.patch(f"/brands/{brand}/webhooks/{uuid.uuid4()}", json={"enabled": False}),
                     404, "ResourceNotFound")
        assert_error(api.patch(f"/brands/{uuid.uuid4()}/webhooks/{hook['id']}", json={"enabled": False}),
                     404, "ResourceNotFound")
        assert_error(api.get(f"/brands/{uuid.uuid4()}/webhooks/{hook['id']}/state"), 404, "ResourceNotFound")
        assert api.get(path).json()["data"] == hook
        assert api.delete(path).status_code == 204
        assert_error(api.patch(path, json={"enabled": True}), 404, "ResourceNotFound")
        assert_error(api.get(path + "/state"), 404, "ResourceNotFound")
    with delivering.client(token=None) as anonymous:
        assert_error(anonymous.patch(path, json={"enabled": False}), 401, "UnauthorizedAccess")
        assert_error(anonymous.get(path + "/state"), 401, "UnauthorizedAccess")


def test_patch_topic_and_tags(delivering):
    brand = str(uuid.uuid4())
    with Receiver() as receiver, delivering.client() as api:
        hook = create_webhook(api, brand, receiver.url())
        path = f"/brands/{brand}/webhooks/{hook['id']}"
        patched = api.patch(path, json={"topic": "Showings", "tags": ["vip", "east"]}).json()["data"]
        assert patched["topic"] == "Showings" and patched["tags"] == ["vip", "east"]
        assert publish(api, brand, "Deals", tags=["vip"])["deliveries"] == 0
        assert publish(api, brand, "Showings", tags=["west"])["deliveries"] == 0
        matched = publish(api, brand, "Showings", tags=["east"])
        assert matched["deliveries"] == 1

        patched = api.patch(path, json={"tags": None}).json()["data"]  # null removes the tags
        assert patched["tags"] is None and patched["topic"] == "Showings"
        untagged = publish(api, brand, "Showings")
        assert untagged["deliveries"] == 1
        assert sorted(event_ids(receiver.wait_for(2))) == sorted([matched["id"], untagged["id"]])
        assert_quiet(receiver, 2)


# --- tags ----------------------------------------------------------------------------------

def test_tagged_webhook_receives_only_events_sharing_a_tag(delivering):
    brand = str(uuid.uuid4())
    with Receiver() as vip_receiver, Receiver() as all_receiver, delivering.client() as api:
        vip = create_webhook(api, brand, vip_receiver.url(), tags=["vip"])
        assert vip["tags"] == ["vip"]
        everything = create_webhook(api, brand, all_receiver.url())
        for_vip = publish(api, brand, tags=["vip"])
        assert for_vip["deliveries"] == 2
        mixed = publish(api, brand, tags=["new", "vip"])
        assert mixed["deliveries"] == 2
        other = publish(api, brand, tags=["other"])
        assert other["deliveries"] == 1
        empty = publish(api, brand, tags=[])
        assert empty["deliveries"] == 1
        untagged = publish(api, brand)
        assert untagged["deliveries"] == 1
        assert publish(api, brand, tags=["VIP"])["deliveries"] == 1  # tags are compared exactly

        vip_ids = event_ids(vip_receiver.wait_for(2))
        all_ids = event_ids(all_receiver.wait_for(6))
        wait_until(lambda: total(api, brand, everything["id"], "delivered") == 6, timeout=WAIT)
        wait_until(lambda: total(api, brand, vip["id"], "delivered") == 2, timeout=WAIT)
        assert sorted(vip_ids) == sorted([for_vip["id"], mixed["id"]])
        assert {for_vip["id"], mixed["id"], other["id"], empty["id"], untagged["id"]} <= set(all_ids)
        assert_quiet(vip_receiver, 2)
        assert total(api, brand, vip["id"]) == 2 and total(api, brand, everything["id"]) == 6


# --- key rotation --------------------------------------------------------------------------

def test_rotation_signs_with_both_keys_during_the_grace_period_only(delivering):
    brand = str(uuid.uuid4())
    grace = 2
    with Receiver() as receiver, delivering.client() as api:
        hook = create_webhook(api, brand, receiver.url())
        old_key = hook["key"]
        path = f"/brands/{brand}/webhooks/{hook['id']}"

        response = api.post(path + "/rotate", json={"grace_seconds": grace})
        rotated_at = time.monotonic()
        assert response.status_code == 200, response.text
        rotated = response.json()["data"]
        assert list(rotated) == WEBHOOK_FIELDS
        new_key = rotated["key"]
        assert re.fullmatch(r"[0-9a-f]{64}", new_key) and new_key != old_key
        assert rotated["id"] == hook["id"] and rotated["url"] == hook["url"]
        assert api.get(path).json()["data"]["key"] == new_key

        during = publish(api, brand, payload={"phase": "grace"})
        request = receiver.wait_for(1)[0]
        assert time.monotonic() - rotated_at < grace, "too slow to test the grace period"
        assert json.loads(request.body)["id"] == during["id"]
        msg_id, ts = request.headers["webhook-id"], request.headers["webhook-timestamp"]
        signatures = request.headers["webhook-signature"].split(" ")
        assert len(signatures) == 2 and all(s.startswith("v1,") for s in signatures)
        # Newest key first, then the old one.
        assert signatures == [standard_signature(new_key, msg_id, ts, request.body),
                              standard_signature(old_key, msg_id, ts, request.body)]
        assert brandhooks.verify(request.body, request.headers, new_key) == "standard"
        assert brandhooks.verify(request.body, request.headers, old_key) == "standard"
        assert request.headers["X-Webhook-Signature"] == simple_signature(new_key, request.body)
        simple_only = {"X-Webhook-Signature": request.headers["X-Webhook-Signature"]}
        assert brandhooks.verify(request.body, simple_only, new_key, scheme="simple") == "simple"
        with pytest.raises(brandhooks.SignatureError):
            brandhooks.verify(request.body, simple_only, old_key, scheme="simple")

        time.sleep(max(0.0, grace + 0.5 - (time.monotonic() - rotated_at)))
        after = publish(api, brand, payload={"phase": "after"})
        request = receiver.wait_for(2)[1]
        assert json.loads(request.body)["id"] == after["id"]
        msg_id, ts = request.headers["webhook-id"], request.headers["webhook-timestamp"]
        assert request.headers["webhook-signature"] == standard_signature(new_key, msg_id, ts, request.body)
        assert brandhooks.verify(request.body, request.headers, new_key) == "standard"
        with pytest.raises(brandhooks.SignatureError):
            brandhooks.verify(request.body, request.headers, old_key)
        assert request.headers["X-Webhook-Signature"] == simple_signature(new_key, request.body)


def test_rotation_with_default_grace_and_bad_grace(delivering):
    brand = str(uuid.uuid4())
    with Receiver() as receiver, delivering.client() as api:
        hook = create_webhook(api, brand, receiver.url())
        path = f"/brands/{brand}/webhooks/{hook['id']}/rotate"
        for body in ({"grace_seconds": -1}, {"grace_seconds": 2592001}, {"grace_seconds": "60"},
                     {"grace_seconds": 1.5}, {"grace_seconds": True}, [60]):
            assert_error(api.post(path, json=body), 400, "Validation")
        assert api.get(f"/brands/{brand}/webhooks/{hook['id']}").json()["data"]["key"] == hook["key"]
        assert_error(api.post(f"/brands/{brand}/webhooks/{uuid.uuid4()}/rotate", json={}), 404, "ResourceNotFound")
        assert_error(api.post(f"/brands/{uuid.uuid4()}/webhooks/{hook['id']}/rotate", json={}),
                     404, "ResourceNotFound")

        response = api.post(path)  # no body: a day of grace
        assert response.status_code == 200, response.text
        new_key = response.json()["data"]["key"]
        assert new_key != hook["key"]
        publish(api, brand)
        request = receiver.wait_for(1)[0]
        assert len(request.headers["webhook-signature"].split(" ")) == 2
        assert brandhooks.verify(request.body, request.headers, hook["key"]) == "standard"
        assert brandhooks.verify(request.body, request.headers, new_key) == "standard"

        # grace_seconds 0: the replaced key stops signing at once.
        response = api.post(path, json={"grace_seconds": 0})
        assert response.status_code == 200, response.text
        newest = response.json()["data"]["key"]
        publish(api, brand)
        request = receiver.wait_for(2)[1]
        signatures = request.headers["webhook-signature"].split(" ")
        msg_id, ts = request.headers["webhook-id"], request.headers["webhook-timestamp"]
        # Only the newest key signs: neither the key just replaced nor the first one, although
        # that one's own day of grace has not run out.
        assert signatures == [standard_signature(newest, msg_id, ts, request.body)]
        for ended in (new_key, hook["key"]):
            with pytest.raises(brandhooks.SignatureError):
                brandhooks.verify(request.body, request.headers, ended)


# --- recover -------------------------------------------------------------------------------

def test_recover_queues_failed_deliveries_again(fresh_server):
    flags = ["--allow-private", "--retry-schedule", "0", "--retry-jitter", "0"]
    brand = str(uuid.uuid4())
    with fresh_server("recover", *flags) as server, server.client() as api, \
            Receiver(lambda n: 500) as broken, Receiver() as healthy_a, Receiver() as healthy_b:
        hook_a = create_webhook(api, brand, broken.url("/a"))
        hook_b = create_webhook(api, brand, broken.url("/b"))
        start = time.time()
        time.sleep(0.01)
        published = [publish(api, brand, payload={"i": i}) for i in range(2)]
        time.sleep(0.05)
        middle = time.time()
        time.sleep(0.05)
        published += [publish(api, brand, payload={"i": i}) for i in range(2, 5)]
        assert all(p["deliveries"] == 2 for p in published)
        ids = [p["id"] for p in published]
        broken.wait_for(10)
        wait_until(lambda: total(api, brand, hook_a["id"], "failed") == 5
                   and total(api, brand, hook_b["id"], "failed") == 5, timeout=WAIT)
        failed_a = deliveries(api, brand, hook_a["id"])["data"]
        assert all(d["attempt_count"] == 1 and d["attempts"][0]["status"] == 500 for d in failed_a)
        delivery_of = {d["event"]: d["id"] for d in failed_a}
        assert state_of(api, brand, hook_a["id"])["enabled"] is True

        # Nothing is due: recovering from a future time queues nothing.
        future = api.post(f"/brands/{brand}/webhooks/{hook_a['id']}/recover", json={"since": time.time() + 3600})
        assert future.status_code == 202, future.text
        assert future.json() == {"code": "OK", "data": {"queued": 0, "deliveries": []}}

        for hook, receiver in ((hook_a, healthy_a), (hook_b, healthy_b)):
            assert api.patch(f"/brands/{brand}/webhooks/{hook['id']}", json={"url": receiver.url()}).status_code == 200

        response = api.post(f"/brands/{brand}/webhooks/{hook_a['id']}/recover", json={"since": start})
        assert response.status_code == 202, response.text
        body = response.json()
        assert list(body) == ["code", "data"] and list(body["data"]) == ["queued", "deliveries"]
        assert body["data"]["queued"] == 5
        assert sorted(body["data"]["deliveries"]) == sorted(delivery_of.values())
        got = healthy_a.wait_for(5)
        assert sorted(event_ids(got)) == sorted(ids)
        assert sorted(r.headers["webhook-id"] for r in got) == sorted(delivery_of.values())
        for request in got:
            assert delivery_of[json.loads(request.body)["id"]] == request.headers["webhook-id"]
            assert brandhooks.verify(request.body, request.headers, hook_a["key"]) == "standard"
        wait_until(lambda: total(api, brand, hook_a["id"], "delivered") == 5, timeout=WAIT)
        for d in deliveries(api, brand, hook_a["id"])["data"]:
            assert d["state"] == "delivered" and d["attempt_count"] == 2
            assert [a["status"] for a in d["attempts"]] == [500, 200]
            assert [a["number"] for a in d["attempts"]] == [1, 2]

        # Recovery is per webhook: B's deliveries are still failed, and `since` selects.
        assert total(api, brand, hook_b["id"], "failed") == 5
        assert healthy_b.requests == []
        later = api.post(f"/brands/{brand}/webhooks/{hook_b['id']}/recover", json={"since": middle}).json()["data"]
        assert later["queued"] == 3
        b_delivery_of = {d["event"]: d["id"] for d in deliveries(api, brand, hook_b["id"])["data"]}
        assert sorted(later["deliveries"]) == sorted(b_delivery_of[i] for i in ids[2:])
        assert sorted(event_ids(healthy_b.wait_for(3))) == sorted(ids[2:])
        wait_until(lambda: total(api, brand, hook_b["id"], "delivered") == 3, timeout=WAIT)
        assert total(api, brand, hook_b["id"], "failed") == 2
        earlier = api.post(f"/brands/{brand}/webhooks/{hook_b['id']}/recover", json={"since": start}).json()["data"]
        assert earlier["queued"] == 2
        assert sorted(earlier["deliveries"]) == sorted(b_delivery_of[i] for i in ids[:2])
        assert sorted(event_ids(healthy_b.wait_for(5))) == sorted(ids)
        wait_until(lambda: total(api, brand, hook_b["id"], "delivered") == 5, timeout=WAIT)

        # Nothing failed is left.
        again = api.post(f"/brands/{brand}/webhooks/{hook_a['id']}/recover", json={"since": start})
        assert again.json()["data"] == {"queued": 0, "deliveries": []}
        assert_quiet(healthy_a, 5)


def test_recover_refuses_bad_input(delivering):
    brand = str(uuid.uuid4())
    with delivering.client() as api:
        hook = create_webhook(api, brand, "https://example.com/hook")
        path = f"/brands/{brand}/webhooks/{hook['id']}/recover"
        for body in ({}, {"since": "yesterday"}, {"since": -1}, {"since": True}, {"since": 0, "limit": 0}):
            assert_error(api.post(path, json=body), 400, "Validation")
        assert_error(api.post(path), 400, "BadRequest")  # no body is no JSON
        assert_error(api.post(f"/brands/{brand}/webhooks/{uuid.uuid4()}/recover", json={"since": 0}),
                     404, "ResourceNotFound")
        assert_error(api.post(f"/brands/{uuid.uuid4()}/webhooks/{hook['id']}/recover", json={"since": 0}),
                     404, "ResourceNotFound")


# --- one delivery and redeliver -------------------------------------------------------------

def test_get_delivery_and_redeliver(delivering):
    brand = str(uuid.uuid4())
    with Receiver() as receiver, delivering.client() as api:
        hook = create_webhook(api, brand, receiver.url())
        event = publish(api, brand, payload={"price": 7})
        first = receiver.wait_for(1)[0]
        delivery_id = first.headers["webhook-id"]
        assert UUID7.match(delivery_id)
        path = f"/brands/{brand}/deliveries/{delivery_id}"
        wait_until(lambda: api.get(path).json()["data"]["state"] == "delivered", timeout=WAIT)

        response = api.get(path)
        assert response.status_code == 200
        body = response.json()
        assert list(body) == ["code", "data"]
        delivery = body["data"]
        assert delivery["id"] == delivery_id and delivery["event"] == event["id"]
        assert delivery["webhook"] == hook["id"] and delivery["brand"] == brand
        assert delivery["topic"] == "Deals" and delivery["event_type"] == "Created"
        assert delivery["type"] == "brand_webhook_delivery"
        assert delivery["attempt_count"] == 1 and delivery["next_attempt_at"] is None
        assert [a["status"] for a in delivery["attempts"]] == [200]
        assert delivery == deliveries(api, brand, hook["id"])["data"][0]

        response = api.post(path + "/redeliver")
        assert response.status_code == 202, response.text
        queued = response.json()["data"]
        assert queued["id"] == delivery_id and queued["state"] == "pending"
        assert queued["event"] == event["id"] and isinstance(queued["next_attempt_at"], float)

        second = receiver.wait_for(2)[1]
        assert second.body == first.body
        assert second.headers["webhook-id"] == delivery_id
        assert brandhooks.verify(second.body, second.headers, hook["key"]) == "standard"
        wait_until(lambda: api.get(path).json()["data"]["state"] == "delivered", timeout=WAIT)
        again = api.get(path).json()["data"]
        assert again["attempt_count"] == 2
        assert [(a["number"], a["status"]) for a in again["attempts"]] == [(1, 200), (2, 200)]
        assert total(api, brand, hook["id"]) == 1  # the same delivery, not a new one
        assert_quiet(receiver, 2)

        other_brand = str(uuid.uuid4())
        for unknown in (f"/brands/{brand}/deliveries/{uuid.uuid4()}",
                        f"/brands/{other_brand}/deliveries/{delivery_id}"):
            assert_error(api.get(unknown), 404, "ResourceNotFound")
            assert_error(api.post(unknown + "/redeliver"), 404, "ResourceNotFound")
        assert_error(api.get(f"/brands/{brand}/deliveries/not-a-uuid"), 400, "Validation")
        assert_error(api.post(f"/brands/{brand}/deliveries/not-a-uuid/redeliver"), 400, "Validation")

        token = api.post("/tokens", json={"brand": other_brand, "label": "elsewhere"}).json()["data"]
    with delivering.client(token["token"]) as stranger:
        assert_error(stranger.get(path), 403, "AccessForbidden")
        assert_error(stranger.post(path + "/redeliver"), 403, "AccessForbidden")
    with delivering.client(token=None) as anonymous:
        assert_error(anonymous.post(path + "/redeliver"), 401, "UnauthorizedAccess")
    assert len(receiver.requests) == 2


def test_redeliver_a_failed_delivery(delivering):
    brand = str(uuid.uuid4())
    outcomes = {1: 500, 2: 500, 3: 500}  # FAST_RETRIES: three attempts, all fail
    with Receiver(lambda n: outcomes.get(n, 200)) as receiver, delivering.client() as api:
        hook = create_webhook(api, brand, receiver.url())
        publish(api, brand)
        receiver.wait_for(3)
        wait_until(lambda: total(api, brand, hook["id"], "failed") == 1, timeout=WAIT)
        failed = deliveries(api, brand, hook["id"])["data"][0]
        assert failed["attempt_count"] == 3

        response = api.post(f"/brands/{brand}/deliveries/{failed['id']}/redeliver")
        assert response.status_code == 202 and response.json()["data"]["state"] == "pending"
        assert receiver.wait_for(4)[3].headers["webhook-id"] == failed["id"]
        wait_until(lambda: total(api, brand, hook["id"], "delivered") == 1, timeout=WAIT)
        done = api.get(f"/brands/{brand}/deliveries/{failed['id']}").json()["data"]
        assert [a["status"] for a in done["attempts"]] == [500, 500, 500, 200]


# --- /metrics ------------------------------------------------------------------------------

def test_metrics_count_what_happened(fresh_server):
    flags = ["--allow-private", "--retry-schedule", "0,0.2", "--retry-jitter", "0"]
    brand = str(uuid.uuid4())
    with fresh_server("metrics", *flags) as server, server.client() as api, \
            Receiver(lambda n: 500 if n == 1 else 200) as receiver:
        with server.client(token=None) as anonymous:
            assert_error(anonymous.get("/metrics"), 401, "UnauthorizedAccess")
        brand_token = api.post("/tokens", json={"brand": brand}).json()["data"]["token"]
        with server.client(brand_token) as brand_api:
            assert_error(brand_api.get("/metrics"), 403, "AccessForbidden")

        samples, types = scrape(api)
        assert metric(samples, "brandhooks_events_published_total") == 0
        assert metric(samples, "brandhooks_attempt_duration_seconds_count") == 0

        hook = create_webhook(api, brand, receiver.url())
        ids = [publish(api, brand, payload={"i": i})["id"] for i in range(3)]
        receiver.wait_for(4)
        wait_until(lambda: total(api, brand, hook["id"], "delivered") == 3, timeout=WAIT)
        assert sorted(set(event_ids(receiver.requests))) == sorted(ids)

        samples, types = scrape(api)
        assert types["brandhooks_events_published"] == "counter"
        assert types["brandhooks_attempt_duration_seconds"] == "histogram"
        assert types["brandhooks_deliveries"] == "gauge"
        assert metric(samples, "brandhooks_events_published_total") == 3
        assert metric(samples, "brandhooks_deliveries_created_total") == 3
        assert metric(samples, "brandhooks_attempts_total") == 4
        assert metric(samples, "brandhooks_retries_scheduled_total") == 1
        assert metric(samples, "brandhooks_webhooks_disabled_total") == 0
        assert metric(samples, "brandhooks_deliveries_pruned_total") == 0
        assert metric(samples, "brandhooks_deliveries_finished_total", outcome="delivered") == 3
        assert metric(samples, "brandhooks_deliveries_finished_total", outcome="failed") == 0

        assert metric(samples, "brandhooks_attempt_duration_seconds_count") == 4
        assert metric(samples, "brandhooks_attempt_duration_seconds_bucket", le="+Inf") == 4
        assert 0 < metric(samples, "brandhooks_attempt_duration_seconds_sum") < 4 * 15
        assert metric(samples, "brandhooks_publish_to_delivered_seconds_count") == 3
        assert metric(samples, "brandhooks_publish_to_delivered_seconds_bucket", le="+Inf") == 3
        # One of the three waited for its retry (0.2 s) before it was delivered.
        assert metric(samples, "brandhooks_publish_to_delivered_seconds_sum") >= 0.2
        assert metric(samples, "brandhooks_publish_to_delivered_seconds_bucket", le="0.1") <= 2
        buckets = sorted((float(labels_dict["le"]), value) for (name, labels), value in samples.items()
                         if name == "brandhooks_attempt_duration_seconds_bucket"
                         for labels_dict in [dict(labels)])
        assert [count for _, count in buckets] == sorted(count for _, count in buckets)  # cumulative

        assert metric(samples, "brandhooks_deliveries", state="delivered") == 3
        assert metric(samples, "brandhooks_deliveries", state="pending") == 0
        assert metric(samples, "brandhooks_deliveries", state="failed") == 0
        assert metric(samples, "brandhooks_deliveries", state="cancelled") == 0
        assert metric(samples, "brandhooks_webhooks", enabled="true") == 1
        assert metric(samples, "brandhooks_webhooks", enabled="false") == 0
        assert metric(samples, "brandhooks_queue_depth") == 0
        assert metric(samples, "brandhooks_oldest_due_age_seconds") == 0


def test_metrics_count_a_410_and_failures(fresh_server):
    flags = ["--allow-private", "--retry-schedule", "0", "--retry-jitter", "0"]
    brand = str(uuid.uuid4())
    with fresh_server("gone", *flags) as server, server.client() as api, \
            Receiver(lambda n: 410) as gone, Receiver(lambda n: 503) as broken:
        gone_hook = create_webhook(api, brand, gone.url())
        broken_hook = create_webhook(api, brand, broken.url())
        publish(api, brand)
        wait_until(lambda: total(api, brand, gone_hook["id"], "failed") == 1
                   and total(api, brand, broken_hook["id"], "failed") == 1, timeout=WAIT)
        samples, _ = scrape(api)
        assert metric(samples, "brandhooks_attempts_total") == 2
        assert metric(samples, "brandhooks_retries_scheduled_total") == 0
        assert metric(samples, "brandhooks_webhooks_disabled_total") == 1
        assert metric(samples, "brandhooks_deliveries_finished_total", outcome="failed") == 2
        assert metric(samples, "brandhooks_deliveries_finished_total", outcome="delivered") == 0
        assert metric(samples, "brandhooks_publish_to_delivered_seconds_count") == 0
        assert metric(samples, "brandhooks_webhooks", enabled="false") == 1
        assert metric(samples, "brandhooks_webhooks", enabled="true") == 1
        assert metric(samples, "brandhooks_deliveries", state="failed") == 2


# --- /stats --------------------------------------------------------------------------------

def test_stats_count_the_store(fresh_server):
    brand = str(uuid.uuid4())
    # No dispatcher: published deliveries stay pending and due.
    with fresh_server("stats", "--no-deliver") as server, server.client() as api:
        with server.client(token=None) as anonymous:
            assert_error(anonymous.get("/stats"), 401, "UnauthorizedAccess")
        brand_token = api.post("/tokens", json={"brand": brand}).json()["data"]["token"]
        with server.client(brand_token) as brand_api:
            assert_error(brand_api.get("/stats"), 403, "AccessForbidden")

        empty = api.get("/stats").json()
        assert list(empty) == ["code", "data"] and list(empty["data"]) == STATS_FIELDS
        node = empty["data"].pop("node")  # the default node id: host:pid:random
        assert node.startswith(f"{os.uname().nodename}:{server.proc.pid}:") and len(node.rsplit(":", 1)[1]) == 8
        assert empty["data"] == {"webhooks": 0, "disabled_webhooks": 0, "events": 0, "pending": 0, "delivered": 0,
                                 "failed": 0, "cancelled": 0, "due_now": 0, "oldest_due_at": None}

        a = create_webhook(api, brand, "https://example.com/a")
        b = create_webhook(api, brand, "https://example.com/b")
        c = create_webhook(api, brand, "https://example.com/c")
        d = create_webhook(api, brand, "https://example.com/d", topic="Showings")
        assert api.delete(f"/brands/{brand}/webhooks/{c['id']}").status_code == 204
        assert api.patch(f"/brands/{brand}/webhooks/{d['id']}", json={"enabled": False}).status_code == 200

        before = time.time()
        assert publish(api, brand)["deliveries"] == 2
        assert publish(api, brand)["deliveries"] == 2
        assert publish(api, brand, topic="Showings")["deliveries"] == 0
        after = time.time()

        stats = api.get("/stats").json()["data"]
        oldest = stats.pop("oldest_due_at")
        stats.pop("node")
        assert stats == {"webhooks": 3, "disabled_webhooks": 1, "events": 3, "pending": 4, "delivered": 0,
                         "failed": 0, "cancelled": 0, "due_now": 4}
        assert isinstance(oldest, float) and before - 1 <= oldest <= after + 1

        # Disabling a webhook cancels its waiting deliveries.
        assert api.patch(f"/brands/{brand}/webhooks/{b['id']}", json={"enabled": False}).status_code == 200
        stats = api.get("/stats").json()["data"]
        assert {k: stats[k] for k in ("webhooks", "disabled_webhooks", "pending", "cancelled", "due_now")} == \
            {"webhooks": 3, "disabled_webhooks": 2, "pending": 2, "cancelled": 2, "due_now": 2}
        assert total(api, brand, b["id"], "cancelled") == 2 and total(api, brand, a["id"], "pending") == 2

        samples, _ = scrape(api)
        assert metric(samples, "brandhooks_queue_depth") == 2
        assert metric(samples, "brandhooks_deliveries", state="cancelled") == 2
        assert metric(samples, "brandhooks_deliveries", state="pending") == 2
        assert metric(samples, "brandhooks_webhooks", enabled="false") == 2
        assert metric(samples, "brandhooks_webhooks", enabled="true") == 1
        assert metric(samples, "brandhooks_oldest_due_age_seconds") > 0


# --- tokens over REST ----------------------------------------------------------------------

def test_tokens_over_rest(delivering):
    brand, other, child = (str(uuid.uuid4()) for _ in range(3))
    with delivering.client() as api:
        response = api.post("/tokens", json={"brand": brand, "label": "x"})
        assert response.status_code == 200, response.text
        body = response.json()
        assert list(body) == ["code", "data"]
        issued = body["data"]
        assert list(issued) == ["id", "brand", "label", "created_at", "expires_at", "token"]
        assert UUID4.match(issued["id"]) and issued["brand"] == brand and issued["label"] == "x"
        assert issued["expires_at"] is None  # never, without expires_in
        assert isinstance(issued["created_at"], float)
        secret = issued["token"]
        assert secret.startswith("bh_") and len(secret) == 3 + 64

        assert api.put(f"/brands/{child}", json={"parent": brand}).status_code == 200
        with delivering.client(secret) as scoped:
            hook = create_webhook(scoped, brand, "https://example.com/hook")
            assert scoped.get(f"/brands/{brand}/webhooks").json()["info"]["total"] == 1
            assert scoped.get(f"/brands/{child}/webhooks").status_code == 200  # a descendant
            assert_error(scoped.get(f"/brands/{other}/webhooks"), 403, "AccessForbidden")
            assert_error(scoped.post(f"/brands/{other}/events",
                                     json={"topic": "Deals", "event": "Created", "payload": {}}),
                         403, "AccessForbidden")
            assert_error(scoped.post("/tokens", json={"brand": brand, "label": "mine"}), 403, "AccessForbidden")
            assert_error(scoped.get("/tokens"), 403, "AccessForbidden")
            assert_error(scoped.delete(f"/tokens/{issued['id']}"), 403, "AccessForbidden")
            assert_error(scoped.put(f"/brands/{other}", json={"parent": None}), 403, "AccessForbidden")

        listing = api.get("/tokens").json()
        assert listing["info"] == {"count": len(listing["data"]), "total": len(listing["data"])}
        assert all("token" not in t for t in listing["data"])
        assert all(list(t) == ["id", "brand", "label", "created_at", "expires_at"] for t in listing["data"])
        mine = [t for t in listing["data"] if t["id"] == issued["id"]]
        assert mine == [{k: issued[k] for k in ("id", "brand", "label", "created_at", "expires_at")}]
        assert secret not in json.dumps(listing)
        admins = [t for t in listing["data"] if t["brand"] is None]
        assert admins, "the serve --admin-token token is listed"

        # An admin token made over REST (no brand).
        admin_issued = api.post("/tokens", json={"label": "second admin"}).json()["data"]
        assert admin_issued["brand"] is None
        with delivering.client(admin_issued["token"]) as second_admin:
            assert second_admin.get("/stats").status_code == 200
            assert second_admin.get(f"/brands/{other}/webhooks").status_code == 200

        response = api.delete(f"/tokens/{issued['id']}")
        assert response.status_code == 204 and response.content == b""
        with delivering.client(secret) as revoked:
            assert_error(revoked.get(f"/brands/{brand}/webhooks"), 401, "UnauthorizedAccess")
            assert_error(revoked.get(f"/brands/{brand}/webhooks/{hook['id']}"), 401, "UnauthorizedAccess")
        assert issued["id"] not in [t["id"] for t in api.get("/tokens").json()["data"]]
        assert_error(api.delete(f"/tokens/{issued['id']}"), 404, "ResourceNotFound")
        assert_error(api.delete(f"/tokens/{uuid.uuid4()}"), 404, "ResourceNotFound")
        assert_error(api.delete("/tokens/not-a-uuid"), 400, "Validation")

        assert api.delete(f"/tokens/{admin_issued['id']}").status_code == 204
        with delivering.client(admin_issued["token"]) as second_admin:
            assert_error(second_admin.get("/stats"), 401, "UnauthorizedAccess")

        for body in ({"brand": "not-a-uuid"}, {"brand": 5}, {"label": 5}, [brand]):
            assert_error(api.post("/tokens", json=body), 400, "Validation")
        assert api.get("/stats").status_code == 200  # the admin token still works
    with delivering.client(token=None) as anonymous:
        assert_error(anonymous.post("/tokens", json={"brand": brand}), 401, "UnauthorizedAccess")
        assert_error(anonymous.get("/tokens"), 401, "UnauthorizedAccess")
    with delivering.client("bh_" + "0" * 64) as forged:
        assert_error(forged.get("/tokens"), 401, "UnauthorizedAccess")


# --- retention -----------------------------------------------------------------------------

def test_retention_prunes_finished_deliveries(fresh_server):
    flags = ["--allow-private", "--retry-schedule", "0", "--retry-jitter", "0",
             "--retention-s", "1", "--prune-interval-s", "1"]
    brand = str(uuid.uuid4())
    with fresh_server("retention", *flags) as server, server.client() as api, Receiver() as receiver:
        hook = create_webhook(api, brand, receiver.url())
        ids = [publish(api, brand, payload={"i": i})["id"] for i in range(3)]
        lonely = publish(api, brand, topic="Contacts")  # no webhook: an event without deliveries
        assert lonely["deliveries"] == 0
        assert sorted(event_ids(receiver.wait_for(3))) == sorted(ids)

        wait_until(lambda: total(api, brand, hook["id"]) == 0, timeout=WAIT)
        samples, _ = scrape(api)
        assert metric(samples, "brandhooks_deliveries_pruned_total") == 3
        assert metric(samples, "brandhooks_deliveries", state="delivered") == 0

        db = str(server.db)
        assert sql_count(db, "SELECT count(*) FROM attempts") == 0
        assert sql_count(db, "SELECT count(*) FROM deliveries") == 0
        wait_until(lambda: sql_count(db, "SELECT count(*) FROM events") == 0, timeout=WAIT)
        listed = ", ".join(f"'{event_id}'" for event_id in (*ids, lonely["id"]))  # UUIDs: safe to inline
        assert sql_count(db, f"SELECT count(*) FROM events WHERE id IN ({listed})") == 0
        stats = api.get("/stats").json()["data"]
        assert stats["events"] == 0 and stats["delivered"] == 0 and stats["webhooks"] == 1

        # The webhook itself is kept and still delivers.
        assert api.get(f"/brands/{brand}/webhooks/{hook['id']}").status_code == 200
        event = publish(api, brand)
        assert event_ids(receiver.wait_for(4))[3] == event["id"]


# --- more operator paths: in-flight redeliver, the third disable reason ----------------------

def test_redeliver_while_in_flight_is_a_conflict(fresh_server):
    flags = ["--allow-private", "--retry-schedule", "0,0.2", "--retry-jitter", "0", "--request-timeout-ms", "1500"]
    brand = str(uuid.uuid4())
    with fresh_server("inflight", *flags) as server, server.client() as api, \
            Receiver(lambda n: "hang" if n == 1 else 200) as receiver:
        hook = create_webhook(api, brand, receiver.url())
        publish(api, brand)
        delivery_id = receiver.wait_for(1)[0].headers["webhook-id"]
        # The first attempt hangs: the delivery is being attempted right now.
        assert_error(api.post(f"/brands/{brand}/deliveries/{delivery_id}/redeliver"), 409, "Conflict")
        receiver.wait_for(2)
        wait_until(lambda: total(api, brand, hook["id"], "delivered") == 1, timeout=WAIT)
        attempts = api.get(f"/brands/{brand}/deliveries/{delivery_id}").json()["data"]["attempts"]
        assert [(a["status"], a["error"]) for a in attempts] == [(None, "timeout"), (200, None)]


def test_webhook_disabled_for_failing_too_long_is_re_enabled(fresh_server):
    flags = ["--allow-private", "--retry-schedule", "0,0.4,0.4,0.4,0.4,0.4,0.4,0.4", "--retry-jitter", "0",
             "--disable-after-s", "1"]
    brand = str(uuid.uuid4())
    mode = {"status": 500}
    with fresh_server("failing", *flags) as server, server.client() as api, \
            Receiver(lambda n: mode["status"]) as receiver:
        hook = create_webhook(api, brand, receiver.url())
        publish(api, brand)
        wait_until(lambda: not state_of(api, brand, hook["id"])["enabled"], timeout=WAIT)
        state = state_of(api, brand, hook["id"])
        assert state["disabled_reason"] == "failing without a successful delivery for too long"
        [delivery] = deliveries(api, brand, hook["id"])["data"]
        assert delivery["state"] == "cancelled" and 3 <= delivery["attempt_count"] < 8
        assert publish(api, brand)["deliveries"] == 0
        samples, _ = scrape(api)
        assert metric(samples, "brandhooks_webhooks_disabled_total") == 1

        # Re-enabling clears the failure clock: one more failure does not disable it again.
        assert api.patch(f"/brands/{brand}/webhooks/{hook['id']}", json={"enabled": True}).status_code == 200
        assert state_of(api, brand, hook["id"])["enabled"] is True
        count = len(receiver.requests)
        event = publish(api, brand)
        assert event["deliveries"] == 1
        receiver.wait_for(count + 1)
        wait_until(lambda: deliveries(api, brand, hook["id"])["data"][0]["attempt_count"] >= 1, timeout=WAIT)
        assert state_of(api, brand, hook["id"])["enabled"] is True
        mode["status"] = 200
        wait_until(lambda: total(api, brand, hook["id"], "delivered") == 1, timeout=WAIT)
        state = state_of(api, brand, hook["id"])
        assert state["last_success_at"] is not None and state == {
            "id": hook["id"], "enabled": True, "disabled_at": None, "disabled_reason": None,
            "failing_since": None, "last_success_at": state["last_success_at"]}


# --- regressions: bugs found while writing these tests ---------------------------------------

@pytest.mark.parametrize("route, body", [
    ("rotate", b'{"grace_seconds": 1e20}'),
    ("rotate", b'{"grace_seconds": Infinity}'),
    ("rotate", b'{"grace_seconds": NaN}'),
    ("recover", b'{"since": 0, "limit": 1e20}'),
    ("recover", b'{"since": 0, "limit": Infinity}'),
    ("recover", b'{"since": 0, "limit": NaN}'),
    ("recover", b'{"since": 0, "limit": 100001}'),
])
def test_out_of_range_numbers_are_validation_errors(delivering, route, body):
    brand = str(uuid.uuid4())
    with delivering.client() as api:
        hook = create_webhook(api, brand, "https://example.com/hook")
    with delivering.client() as api:  # a connection of its own: a 500 may close it
        response = api.post(f"/brands/{brand}/webhooks/{hook['id']}/{route}", content=body,
                            headers={"content-type": "application/json"})
    assert_error(response, 400, "Validation")


@pytest.mark.parametrize("query", ["limit=99999999999999999999", "start=99999999999999999999",
                                   "limit=%C2%B2", "start=%C2%B2"])
def test_out_of_range_list_parameters_are_validation_errors(delivering, query):
    """Digits too many for 64 bits, or digits that are not ASCII ("²"), were 500s."""
    brand = str(uuid.uuid4())
    with delivering.client() as api:
        hook = create_webhook(api, brand, "https://example.com/hook")
    with delivering.client() as api:
        response = api.get(f"/brands/{brand}/webhooks/{hook['id']}/deliveries?{query}")
    assert_error(response, 400, "Validation")


def test_recover_on_a_disabled_webhook_loses_nothing(fresh_server):
    flags = ["--allow-private", "--retry-schedule", "0", "--retry-jitter", "0"]
    brand = str(uuid.uuid4())
    with fresh_server("lost", *flags) as server, server.client() as api, \
            Receiver(lambda n: 500) as broken, Receiver() as healthy:
        hook = create_webhook(api, brand, broken.url())
        path = f"/brands/{brand}/webhooks/{hook['id']}"
        start = time.time()
        ids = [publish(api, brand, payload={"i": i})["id"] for i in range(3)]
        wait_until(lambda: total(api, brand, hook["id"], "failed") == 3, timeout=WAIT)
        assert api.patch(path, json={"enabled": False, "url": healthy.url()}).status_code == 200
        refused = api.post(path + "/recover", json={"since": start})  # nothing may be lost
        assert refused.status_code == 409 and "enable it first" in refused.json()["message"]
        time.sleep(1)
        assert api.patch(path, json={"enabled": True}).status_code == 200
        api.post(path + "/recover", json={"since": start})
        wait_until(lambda: len(healthy.requests) >= 3, timeout=5)
        assert sorted(set(event_ids(healthy.requests))) == sorted(ids)


def test_replays_need_a_live_enabled_webhook(delivering):
    brand = str(uuid.uuid4())
    with delivering.client() as api, Receiver() as receiver:
        hook = create_webhook(api, brand, receiver.url())
        publish(api, brand)
        receiver.wait_for(1)
        wait_until(lambda: total(api, brand, hook["id"], "delivered") == 1, timeout=WAIT)
        delivery = deliveries(api, brand, hook["id"])["data"][0]
        path = f"/brands/{brand}/webhooks/{hook['id']}"
        assert api.patch(path, json={"enabled": False}).status_code == 200
        assert_error(api.post(f"/brands/{brand}/deliveries/{delivery['id']}/redeliver"), 409, "Conflict")
        assert_error(api.post(path + "/recover", json={"since": 0}), 409, "Conflict")
        assert api.delete(path).status_code == 204
        assert_error(api.post(f"/brands/{brand}/deliveries/{delivery['id']}/redeliver"), 404, "ResourceNotFound")
        assert_error(api.post(path + "/recover", json={"since": 0}), 404, "ResourceNotFound")
        assert api.get(f"/brands/{brand}/deliveries/{delivery['id']}").json()["data"]["state"] == "delivered"
        assert_quiet(receiver, 1)
