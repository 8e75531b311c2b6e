"""Test events and delivery statistics through a real `brandhooks serve` (both backends) with
real loopback receivers: a test event reaches its webhook only, signed; the statistics count
2xx, other answers and no answer apart, per minute and per webhook."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from pathlib import Path
from typing import Any, Dict, Iterator

import httpx
import pytest
import standardwebhooks

from conftest import NewDatabase, Server, backend_server, free_port
from receivers import Receiver, wait_until

FINAL = ("delivered", "failed")


@pytest.fixture(scope="module")
def stats_server(new_database: NewDatabase, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    # One attempt per delivery (schedule "0"): every count below is exact.
    server = backend_server(new_database, tmp_path_factory.mktemp("stats"), "stats", "--allow-private",
                            "--retry-schedule", "0", "--retry-jitter", "0").start()
    yield server
    server.stop()


def create(api: httpx.Client, brand: str, url: str, topic: str = "Deals") -> Dict[str, Any]:
    response = api.post(f"/brands/{brand}/webhooks", json={"topic": topic, "url": url})
    assert response.status_code == 200, response.text
    hook: Dict[str, Any] = response.json()["data"]
    return hook


def send_test(api: httpx.Client, brand: str, hook: Dict[str, Any]) -> Dict[str, Any]:
    response = api.post(f"/brands/{brand}/webhooks/{hook['id']}/test")
    assert response.status_code == 202, response.text
    delivery: Dict[str, Any] = response.json()["data"]
    return delivery


def finished(api: httpx.Client, brand: str, delivery_id: str) -> Dict[str, Any]:
    """The delivery once its (only) attempt is recorded."""
    found: Dict[str, Any] = {}

    def done() -> bool:
        found.update(api.get(f"/brands/{brand}/deliveries/{delivery_id}").json()["data"])
        return found["state"] in FINAL

    wait_until(done, timeout=30)
    return found


def expect_error(response: httpx.Response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["http"] == status and body["code"] == code, body


def test_a_test_event_reaches_only_its_webhook_signed(stats_server: Server, brand: str) -> None:
    with Receiver() as target, Receiver() as sibling, stats_server.client() as api:
        hook = create(api, brand, target.url())
        other = create(api, brand, sibling.url())  # same brand and topic: gets no test event
        delivery = send_test(api, brand, hook)
        assert delivery["webhook"] == hook["id"] and delivery["brand"] == brand
        assert delivery["event_type"] == "Test" and delivery["topic"] == "Deals"
        assert delivery["state"] == "pending" and delivery["type"] == "brand_webhook_delivery"
        (request,) = target.wait_for(1)
        assert finished(api, brand, delivery["id"])["state"] == "delivered"

        body = json.loads(request.body)
        assert list(body) == ["topic", "event", "timestamp", "payload", "id", "brand"]
        assert body["topic"] == "Deals" and body["event"] == "Test" and body["brand"] == brand
        assert body["payload"] == {"test": True, "message": "a test event sent on request", "webhook": hook["id"]}
        key = bytes.fromhex(hook["key"])
        assert request.headers["X-Webhook-Signature"] == hmac.new(key, request.body, hashlib.sha256).hexdigest()
        assert request.headers["webhook-id"] == delivery["id"]
        standardwebhooks.Webhook("whsec_" + base64.b64encode(key).decode()).verify(request.body, request.headers)

        # A real event afterwards: the sibling's first request is that event, never the test.
        api.post(f"/brands/{brand}/events", json={"topic": "Deals", "event": "Created", "payload": {}})
        (first,) = sibling.wait_for(1)
        assert json.loads(first.body)["event"] == "Created"
        listed = api.get(f"/brands/{brand}/webhooks/{other['id']}/deliveries").json()["data"]
        assert [d["event_type"] for d in listed] == ["Created"]
        assert len(target.wait_for(2)) == 2  # the target got the real event too


def test_test_events_refused_for_unknown_deleted_disabled_and_other_brands(stats_server: Server, brand: str) -> None:
    with stats_server.client() as api:
        hook = create(api, brand, "http://127.0.0.1:9/never")
        expect_error(api.post(f"/brands/{brand}/webhooks/{uuid.uuid4()}/test"), 404, "ResourceNotFound")
        expect_error(api.post(f"/brands/{brand}/webhooks/not-a-uuid/test"), 400, "Validation")
        expect_error(api.post(f"/brands/{uuid.uuid4()}/webhooks/{hook['id']}/test"), 404, "ResourceNotFound")
        assert api.patch(f"/brands/{brand}/webhooks/{hook['id']}", json={"enabled": False}).status_code == 200
        expect_error(api.post(f"/brands/{brand}/webhooks/{hook['id']}/test"), 409, "Conflict")
        assert api.get(f"/brands/{brand}/webhooks/{hook['id']}/deliveries").json()["data"] == []
        assert api.delete(f"/brands/{brand}/webhooks/{hook['id']}").status_code == 204
        expect_error(api.post(f"/brands/{brand}/webhooks/{hook['id']}/test"), 404, "ResourceNotFound")
        other = api.post("/tokens", json={"brand": str(uuid.uuid4()), "label": "other"}).json()["data"]["token"]
        live = create(api, brand, "http://127.0.0.1:9/never")
    with stats_server.client(other) as foreign:
        expect_error(foreign.post(f"/brands/{brand}/webhooks/{live['id']}/test"), 403, "AccessForbidden")
        expect_error(foreign.get(f"/brands/{brand}/delivery-stats"), 403, "AccessForbidden")


def test_stats_count_succeeded_failed_and_errors_per_minute_and_webhook(stats_server: Server, brand: str) -> None:
    refused = f"http://127.0.0.1:{free_port()}/nobody-listens"
    with Receiver() as ok, Receiver(lambda n: 500) as failing, stats_server.client() as api:
        hooks = [create(api, brand, ok.url()), create(api, brand, failing.url()), create(api, brand, refused),
                 create(api, brand, ok.url("/idle"), topic="Contacts")]
        sent = [send_test(api, brand, hooks[0]), send_test(api, brand, hooks[0]),
                send_test(api, brand, hooks[1]), send_test(api, brand, hooks[2])]
        outcomes = [finished(api, brand, d["id"]) for d in sent]
        assert [d["state"] for d in outcomes] == ["delivered", "delivered", "failed", "failed"]
        assert outcomes[3]["attempts"][0]["error"] == "connect"
        before = time.time()
        response = api.get(f"/brands/{brand}/delivery-stats", params={"hours": 1})
        after = time.time()
        assert response.status_code == 200, response.text
        answer = response.json()
        assert list(answer) == ["code", "data"] and answer["code"] == "OK"
        stats = answer["data"]

    assert list(stats) == ["since", "until", "bucket_seconds", "minutes", "webhooks"]
    assert stats["bucket_seconds"] == 60
    assert stats["until"] - stats["since"] == 3600 and stats["until"] % 60 == 0
    assert before - 60 < stats["until"] - 60 <= after  # the current minute is the last one
    minutes = stats["minutes"]
    assert minutes and all(list(m) == ["at", "succeeded", "failed", "errors"] for m in minutes)
    assert [m["at"] for m in minutes] == sorted(m["at"] for m in minutes)
    assert all(m["at"] % 60 == 0 and stats["since"] <= m["at"] < stats["until"] for m in minutes)
    assert sum(m["succeeded"] for m in minutes) == 2
    assert sum(m["failed"] for m in minutes) == 1
    assert sum(m["errors"] for m in minutes) == 1

    by_id = {w["webhook"]: w for w in stats["webhooks"]}
    assert [w["webhook"] for w in stats["webhooks"]] == [h["id"] for h in hooks]  # listing order
    assert {k: by_id[hooks[0]["id"]][k] for k in ("attempts", "succeeded", "failed", "errors")} == \
        {"attempts": 2, "succeeded": 2, "failed": 0, "errors": 0}
    assert {k: by_id[hooks[1]["id"]][k] for k in ("attempts", "succeeded", "failed", "errors")} == \
        {"attempts": 1, "succeeded": 0, "failed": 1, "errors": 0}
    assert {k: by_id[hooks[2]["id"]][k] for k in ("attempts", "succeeded", "failed", "errors")} == \
        {"attempts": 1, "succeeded": 0, "failed": 0, "errors": 1}
    idle = by_id[hooks[3]["id"]]
    assert idle["attempts"] == 0 and idle["p50_ms"] is None and idle["p99_ms"] is None
    for hook, delivery in zip(hooks[1:3], outcomes[2:]):
        duration = delivery["attempts"][0]["duration_ms"]
        for name in ("p50_ms", "p99_ms"):  # one attempt: its duration, within the histogram's 9%
            estimate = by_id[hook["id"]][name]
            assert isinstance(estimate, float)
            assert duration / 1.0906 <= estimate <= duration * 1.0906 or (duration < 0.1 and estimate == 0.05)

    # A deleted webhook leaves the statistics; the default window is 24 h.
    with stats_server.client() as api:
        assert api.delete(f"/brands/{brand}/webhooks/{hooks[2]['id']}").status_code == 204
        day = api.get(f"/brands/{brand}/delivery-stats").json()["data"]
    assert day["until"] - day["since"] == 24 * 3600
    assert [w["webhook"] for w in day["webhooks"]] == [hooks[0]["id"], hooks[1]["id"], hooks[3]["id"]]
    assert sum(m["errors"] for m in day["minutes"]) == 0


@pytest.mark.parametrize("hours", ["0", "25", "x", "1.5", "", "-1", "١"])
def test_bad_hours_are_a_400_that_names_them(stats_server: Server, brand: str, hours: str) -> None:
    with stats_server.client() as api:
        response = api.get(f"/brands/{brand}/delivery-stats", params={"hours": hours})
    expect_error(response, 400, "Validation")
    assert "hours" in response.json()["message"]


def test_a_brand_without_webhooks_has_empty_stats(stats_server: Server, brand: str) -> None:
    with stats_server.client() as api:
        response = api.get(f"/brands/{brand}/delivery-stats", params={"hours": "24"})
    assert response.status_code == 200
    data = response.json()["data"]
    assert data["minutes"] == [] and data["webhooks"] == []


def test_the_hub_answers_the_same_record(tmp_path: Path) -> None:
    from brandhooks import _core

    hub = _core.Hub(str(tmp_path / "hub.db"), deliver=False)
    brand = str(uuid.uuid4())
    hook = hub.create_webhook(brand, "Deals", "https://example.com/")
    delivery = hub.send_test_event(brand, hook.id)
    assert delivery.event == "Test" and delivery.webhook_id == hook.id
    stats = hub.delivery_stats(brand, 2)
    assert stats.until - stats.since == 7200 and stats.minutes == []
    assert [w.webhook for w in stats.webhooks] == [hook.id] and stats.webhooks[0].p50_ms is None
    assert json.loads(stats.to_json()) == stats.to_dict()
    with pytest.raises(_core.ValidationError, match="hours"):
        hub.delivery_stats(brand, 0)
