"""The delivery engine with real receivers on loopback: signatures, retries, faults, TLS."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
import uuid

import pytest
import standardwebhooks

import brandhooks
from brandhooks import Config, Hub
from conftest import sql_count
from receivers import Receiver, self_signed_certificate, wait_until


@pytest.fixture()
def make_hub(new_database):
    """make(**config) -> a delivering Hub on a new database of each backend (or config's db)."""
    hubs = []

    def make(**overrides) -> Hub:
        settings = dict(db=new_database("hub"), deliver=True, allow_private=True,
                        retry_schedule="0,0.2,0.2", retry_jitter=0.0, request_timeout_ms=2000,
                        connect_timeout_ms=1000)
        settings.update(overrides)
        hub = Hub(Config(**settings))
        hubs.append(hub)
        return hub

    yield make
    for hub in hubs:
        hub.close()


def deliveries(hub, hook, status=None):
    return hub.list_deliveries(hook.brand, hook.id, status=status).items


def settled(hub, hook, count=1):
    """Waits until `count` deliveries of the webhook are no longer pending; returns them."""
    wait_until(lambda: len(deliveries(hub, hook)) >= count and all(
        d.state != "pending" for d in deliveries(hub, hook)))
    return deliveries(hub, hook)


def first_errors(hub, hooks):
    """The error kind of each webhook's single, settled delivery's first attempt."""
    return [settled(hub, hook)[0].attempts[0].error for hook in hooks]


def test_receiver_gets_the_contract_body_and_both_signatures(make_hub):
    hub = make_hub()
    with Receiver() as receiver:
        brand = str(uuid.uuid4())
        hook = hub.create_webhook(brand, "Deals", receiver.url("/deals?x=1"))
        before = int(time.time() * 1000)
        result = hub.publish(brand, "Deals", "Created", {"deal": 42, "name": "Ünïcode", "nested": {"b": 1, "a": 2}})
        assert result.deliveries == 1
        request = receiver.wait_for(1)[0]

    assert request.path == "/deals?x=1"
    assert request.headers["Content-Type"] == "application/json"
    body = json.loads(request.body)
    assert list(body) == ["topic", "event", "timestamp", "payload", "id", "brand"]
    assert body["topic"] == "Deals" and body["event"] == "Created" and body["brand"] == brand
    assert body["id"] == result.event_id
    assert body["payload"] == {"deal": 42, "name": "Ünïcode", "nested": {"b": 1, "a": 2}}
    assert list(body["payload"]["nested"]) == ["b", "a"]  # the payload's key order is kept
    assert isinstance(body["timestamp"], int) and abs(body["timestamp"] - before) < 5000

    key = bytes.fromhex(hook.key)
    assert request.headers["X-Webhook-Signature"] == hmac.new(key, request.body, hashlib.sha256).hexdigest()
    msg_id, ts = request.headers["webhook-id"], request.headers["webhook-timestamp"]
    assert abs(int(ts) - time.time()) < 10
    expected = base64.b64encode(hmac.new(key, f"{msg_id}.{ts}.".encode() + request.body, hashlib.sha256).digest())
    assert request.headers["webhook-signature"] == "v1," + expected.decode()
    # an independent Standard Webhooks implementation accepts it with the whsec_ secret
    secret = "whsec_" + base64.b64encode(key).decode()
    assert brandhooks.standard_webhooks_secret(hook.key) == secret
    standardwebhooks.Webhook(secret).verify(request.body, request.headers)
    # and so do our own receiver helpers
    assert brandhooks.verify(request.body, request.headers, hook.key) == "standard"
    simple_only = {"X-Webhook-Signature": request.headers["X-Webhook-Signature"]}
    assert brandhooks.verify(request.body, simple_only, hook.key, scheme="simple") == "simple"
    # No downgrade: without the webhook-* headers the default (standard) scheme refuses.
    with pytest.raises(brandhooks.SignatureError, match="missing webhook-id"):
        brandhooks.verify(request.body, simple_only, hook.key)
    with pytest.raises(brandhooks.SignatureError, match="missing X-Webhook-Signature"):
        brandhooks.verify(request.body, {k: v for k, v in request.headers.items() if k != "X-Webhook-Signature"},
                          hook.key, scheme="simple")
    with pytest.raises(brandhooks.SignatureError):
        brandhooks.verify(request.body + b" ", request.headers, hook.key)
    with pytest.raises(brandhooks.SignatureError):
        brandhooks.verify(request.body, request.headers, hook.key, now=int(ts) + 301)

    [delivery] = settled(hub, hook)
    assert delivery.state == "delivered" and delivery.id == msg_id
    assert [a.status for a in delivery.attempts] == [200] and delivery.attempts[0].response == b"status 200"


def test_signature_header_name_is_configurable(make_hub):
    hub = make_hub(signature_header="X-RECHAT-SIGNATURE")
    with Receiver() as receiver:
        brand = str(uuid.uuid4())
        hook = hub.create_webhook(brand, "Contacts", receiver.url())
        hub.publish(brand, "Contacts", "Updated", {})
        request = receiver.wait_for(1)[0]
    signature = request.headers["X-RECHAT-SIGNATURE"]
    assert signature == hmac.new(bytes.fromhex(hook.key), request.body, hashlib.sha256).hexdigest()
    assert "X-Webhook-Signature" not in request.headers
    assert brandhooks.verify(request.body, {"X-RECHAT-SIGNATURE": signature}, hook.key, scheme="simple",
                             signature_header="X-RECHAT-SIGNATURE") == "simple"


def test_retried_after_500_with_the_same_body_and_id(make_hub):
    hub = make_hub()
    with Receiver(lambda n: 500 if n == 1 else 200) as receiver:
        brand = str(uuid.uuid4())
        hook = hub.create_webhook(brand, "Deals", receiver.url())
        hub.publish(brand, "Deals", "Created", {"n": 1})
        first, second = receiver.wait_for(2)
    assert first.body == second.body
    assert first.headers["webhook-id"] == second.headers["webhook-id"]
    assert second.at - first.at >= 0.15  # the schedule's 0.2 s
    [delivery] = settled(hub, hook)
    assert delivery.state == "delivered"
    assert [a.status for a in delivery.attempts] == [500, 200]
    assert [a.number for a in delivery.attempts] == [1, 2]
    assert delivery.attempts[0].response == b"status 500"


def test_retries_end_in_failed_after_the_schedule(make_hub):
    hub = make_hub(retry_schedule="0,0.1,0.1")
    with Receiver(lambda n: 503) as receiver:
        brand = str(uuid.uuid4())
        hook = hub.create_webhook(brand, "Deals", receiver.url())
        hub.publish(brand, "Deals", "Created", {})
        [delivery] = settled(hub, hook)
        time.sleep(0.3)
        assert len(receiver.requests) == 3  # nothing after the last scheduled attempt
    assert delivery.state == "failed" and delivery.attempt_count == 3
    assert [a.status for a in delivery.attempts] == [503, 503, 503]


def test_timeout_is_logged_and_retried(make_hub):
    hub = make_hub(request_timeout_ms=500, retry_schedule="0,0.1")
    with Receiver(lambda n: "hang" if n == 1 else 200) as receiver:
        brand = str(uuid.uuid4())
        hook = hub.create_webhook(brand, "Deals", receiver.url())
        hub.publish(brand, "Deals", "Created", {})
        [delivery] = settled(hub, hook)
    assert delivery.state == "delivered"
    first, second = delivery.attempts
    assert first.error == "timeout" and first.status is None
    assert 400 <= first.duration_ms < 2000
    assert second.status == 200


def test_connection_reset_is_a_failed_attempt(make_hub):
    hub = make_hub(retry_schedule="0,0.1")
    with Receiver(lambda n: "reset" if n == 1 else 200) as receiver:
        brand = str(uuid.uuid4())
        hook = hub.create_webhook(brand, "Deals", receiver.url())
        hub.publish(brand, "Deals", "Created", {})
        [delivery] = settled(hub, hook)
    assert [a.error for a in delivery.attempts] == ["network", None]
    assert delivery.state == "delivered"


def test_connection_refused_is_a_connect_error(make_hub):
    hub = make_hub(retry_schedule="0")
    with Receiver() as receiver:
        dead_url = receiver.url()
    brand = str(uuid.uuid4())
    hook = hub.create_webhook(brand, "Deals", dead_url)  # nothing listens there any more
    hub.publish(brand, "Deals", "Created", {})
    [delivery] = settled(hub, hook)
    assert delivery.state == "failed" and delivery.attempts[0].error == "connect"


def test_redirects_are_not_followed(make_hub):
    hub = make_hub(retry_schedule="0")
    with Receiver() as target, Receiver(lambda n: (302, {"Location": target.url()})) as receiver:
        brand = str(uuid.uuid4())
        hook = hub.create_webhook(brand, "Deals", receiver.url())
        hub.publish(brand, "Deals", "Created", {})
        [delivery] = settled(hub, hook)
        assert target.requests == []
    assert delivery.state == "failed" and delivery.attempts[0].status == 302


def test_only_the_first_4_kib_of_a_response_are_kept(make_hub):
    hub = make_hub()
    big = b"x" * 10_000
    with Receiver(lambda n: (200, {}, big)) as receiver:
        brand = str(uuid.uuid4())
        hook = hub.create_webhook(brand, "Deals", receiver.url())
        hub.publish(brand, "Deals", "Created", {})
        hub.publish(brand, "Deals", "Created", {})  # the connection is still usable after it
        found = settled(hub, hook, count=2)
    assert [d.state for d in found] == ["delivered", "delivered"]
    assert all(d.attempts[0].response == big[:4096] for d in found)


def test_hub_takes_config_fields_as_keywords(tmp_path):
    hub = Hub(str(tmp_path / "kw.db"), retry_schedule="0,1", allow_private=True)
    assert hub.config.db == str(tmp_path / "kw.db") and hub.config.retry_schedule == "0,1"
    with pytest.raises(TypeError):
        Hub(str(tmp_path / "kw.db"), colour="blue")
    with pytest.raises(brandhooks.ValidationError):
        Hub(str(tmp_path / "kw.db"), retry_schedule="soon")
    with pytest.raises(brandhooks.ValidationError):
        Hub(str(tmp_path / "kw.db"), allow_cidrs="10.0.0.0/99")


def test_410_disables_the_webhook(make_hub):
    hub = make_hub()
    with Receiver(lambda n: 410) as receiver:
        brand = str(uuid.uuid4())
        hook = hub.create_webhook(brand, "Deals", receiver.url())
        hub.publish(brand, "Deals", "Created", {})
        [delivery] = settled(hub, hook)
        assert delivery.state == "failed" and delivery.attempt_count == 1
        disabled = hub.get_webhook(brand, hook.id)
        assert disabled.disabled_at is not None and "410" in disabled.disabled_reason
        assert hub.publish(brand, "Deals", "Created", {}).deliveries == 0  # no longer matched
        time.sleep(0.5)
        assert len(receiver.requests) == 1


def test_429_retry_after_is_honoured(make_hub):
    hub = make_hub(retry_schedule="0,0.05,0.05")
    with Receiver(lambda n: (429, {"Retry-After": "1"}) if n == 1 else 200) as receiver:
        brand = str(uuid.uuid4())
        hook = hub.create_webhook(brand, "Deals", receiver.url())
        hub.publish(brand, "Deals", "Created", {})
        first, second = receiver.wait_for(2)
    assert second.at - first.at >= 0.9  # Retry-After, not the schedule's 50 ms
    assert settled(hub, hook)[0].state == "delivered"


def test_a_dead_endpoint_does_not_delay_a_healthy_one(make_hub):
    hub = make_hub(request_timeout_ms=3000, max_in_flight_per_webhook=4)
    with Receiver(lambda n: "hang") as dead, Receiver() as healthy:
        brand = str(uuid.uuid4())
        hub.create_webhook(brand, "Deals", dead.url())
        hub.create_webhook(brand, "Deals", healthy.url())
        start = time.monotonic()
        hub.publish_many([(brand, "Deals", "Created", {"i": i}) for i in range(50)])
        healthy.wait_for(50, timeout=10)
        took = time.monotonic() - start
        assert took < 2.0, f"the healthy endpoint waited {took:.2f} s behind the dead one"
        assert len(dead.requests) <= 4  # the per-webhook in-flight limit holds


def test_several_http_threads_deliver_each_once_and_signed(make_hub):
    """Scheduling runs on whichever HTTP thread finishes an attempt: with three of them, every
    delivery still goes out once, correctly signed."""
    hub = make_hub(delivery_threads=3)
    with Receiver() as first, Receiver() as second:
        brand = str(uuid.uuid4())
        hooks = {first: hub.create_webhook(brand, "Deals", first.url()),
                 second: hub.create_webhook(brand, "Deals", second.url())}
        hub.publish_many([(brand, "Deals", "Created", {"i": i}) for i in range(150)])
        for receiver, hook in hooks.items():
            requests = receiver.wait_for(150)
            time.sleep(0.2)
            assert len(receiver.requests) == 150
            assert len({r.headers["webhook-id"] for r in requests}) == 150
            key = bytes.fromhex(hook.key)
            for r in requests:
                assert r.headers["X-Webhook-Signature"] == hmac.new(key, r.body, hashlib.sha256).hexdigest()
            assert sorted(json.loads(r.body)["payload"]["i"] for r in requests) == list(range(150))


def test_a_published_batch_starts_up_to_the_webhook_limit_at_once(make_hub):
    hub = make_hub(max_in_flight_per_webhook=4)
    with Receiver(lambda n: "hang") as receiver:
        brand = str(uuid.uuid4())
        hub.create_webhook(brand, "Deals", receiver.url())
        hub.publish_many([(brand, "Deals", "Created", {"i": i}) for i in range(10)])
        receiver.wait_for(4, timeout=2)  # four at once, though none has answered
        time.sleep(0.2)
        assert len(receiver.requests) == 4


def test_leased_bodies_stay_within_the_memory_budget(make_hub, new_database):
    """Large events are not all taken into memory at once: the dispatcher leases at most
    64 MiB of bodies, whatever its room in deliveries."""
    db = new_database("budget")
    hub = make_hub(db=db, request_timeout_ms=10000)
    big = "x" * 1_000_000  # just under the 1 MiB body limit with the envelope
    with Receiver(lambda n: "hang") as receiver:
        brand = str(uuid.uuid4())
        hub.create_webhook(brand, "Deals", receiver.url())
        for i in range(100):
            hub.publish(brand, "Deals", "Created", {"i": i, "big": big})
        receiver.wait_for(8)  # the lane's in-flight limit: the rest waits, leased or not
        time.sleep(0.3)
        leased = sql_count(db, "SELECT count(*) FROM deliveries WHERE lease_owner IS NOT NULL")
    # 64 MiB holds 67 of these bodies, and a claim always takes one more; without the budget
    # all 100 would be leased.
    assert 8 <= leased <= 68


def test_the_global_in_flight_limit_holds_and_is_shared_round_robin(make_hub):
    hub = make_hub(max_in_flight=3)
    lock = threading.Lock()
    concurrency = {"now": 0, "peak": 0}

    def slow(n):
        with lock:
            concurrency["now"] += 1
            concurrency["peak"] = max(concurrency["peak"], concurrency["now"])
        time.sleep(0.05)
        with lock:
            concurrency["now"] -= 1
        return 200

    with Receiver(slow) as a, Receiver(slow) as b, Receiver(slow) as c:
        brand = str(uuid.uuid4())
        hub.create_webhook(brand, "Deals", a.url())
        hub.create_webhook(brand, "Showings", b.url())
        hub.create_webhook(brand, "Showings", c.url())
        # a's six deliveries come first and fill every global slot.
        hub.publish_many([(brand, "Deals", "Created", {"i": i}) for i in range(6)] +
                         [(brand, "Showings", "Created", {"i": i}) for i in range(6)])
        for receiver in (a, b, c):
            receiver.wait_for(6)
    assert concurrency["peak"] == 3
    # b and c queue for the next free slots instead of waiting until a has sent everything.
    arrivals = sorted((r.at, name) for name, rx in (("a", a), ("b", b), ("c", c)) for r in rx.requests)
    assert {name for _, name in arrivals[:6]} == {"a", "b", "c"}


def test_brand_tree_parent_sees_child_events_sibling_does_not(make_hub):
    hub = make_hub()
    parent, child, sibling = (str(uuid.uuid4()) for _ in range(3))
    hub.set_brand_parent(child, parent)
    hub.set_brand_parent(sibling, parent)
    with Receiver() as parent_rx, Receiver() as child_rx, Receiver() as sibling_rx:
        hub.create_webhook(parent, "Showings", parent_rx.url())
        hub.create_webhook(child, "Showings", child_rx.url())
        hub.create_webhook(sibling, "Showings", sibling_rx.url())
        hub.create_webhook(child, "Deals", child_rx.url("/deals"))  # another topic: not matched
        result = hub.publish(child, "Showings", "Scheduled", {"at": "10:00"})
        assert result.deliveries == 2
        parent_rx.wait_for(1)
        child_rx.wait_for(1)
        time.sleep(0.3)
        assert sibling_rx.requests == [] and len(child_rx.requests) == 1
        assert json.loads(parent_rx.requests[0].body)["brand"] == child


def test_deleted_webhook_gets_no_further_attempts(make_hub):
    hub = make_hub(retry_schedule="0,0.3,0.3,0.3")
    with Receiver(lambda n: 500) as receiver:
        brand = str(uuid.uuid4())
        hook = hub.create_webhook(brand, "Deals", receiver.url())
        hub.publish(brand, "Deals", "Created", {})
        receiver.wait_for(1)
        hub.delete_webhook(brand, hook.id)
        time.sleep(1.2)
        assert len(receiver.requests) <= 2  # at most the attempt already under way
    [delivery] = deliveries(hub, hook)
    assert delivery.state == "cancelled"


def test_webhook_failing_too_long_is_disabled(make_hub):
    hub = make_hub(retry_schedule="0,0.3,0.3,0.3,0.3,0.3,0.3", disable_after_s=1)
    with Receiver(lambda n: 500) as receiver:
        brand = str(uuid.uuid4())
        hook = hub.create_webhook(brand, "Deals", receiver.url())
        hub.publish(brand, "Deals", "Created", {})
        wait_until(lambda: hub.get_webhook(brand, hook.id).disabled_at is not None, timeout=10)
        count = len(receiver.requests)
        time.sleep(0.6)
        assert len(receiver.requests) == count
    webhook = hub.get_webhook(brand, hook.id)
    assert "failing" in webhook.disabled_reason
    assert deliveries(hub, hook)[0].state in ("cancelled", "failed")


def test_success_resets_the_failure_streak(make_hub):
    hub = make_hub(retry_schedule="0,0.4", disable_after_s=1)
    outcomes = iter([500, 200] * 50)
    with Receiver(lambda n: next(outcomes)) as receiver:
        brand = str(uuid.uuid4())
        hook = hub.create_webhook(brand, "Deals", receiver.url())
        for _ in range(4):
            hub.publish(brand, "Deals", "Created", {})
            time.sleep(0.5)
        receiver.wait_for(8)
    assert hub.get_webhook(brand, hook.id).disabled_at is None


def test_https_needs_a_trusted_certificate(make_hub, tmp_path):
    cert, key = self_signed_certificate(tmp_path)
    untrusting = make_hub(retry_schedule="0")
    trusting = make_hub(ca_file=cert)
    with Receiver(tls=(cert, key)) as receiver:
        brand = str(uuid.uuid4())
        refused = untrusting.create_webhook(brand, "Deals", receiver.url(host="localhost"))
        untrusting.publish(brand, "Deals", "Created", {})
        [delivery] = settled(untrusting, refused)
        assert delivery.state == "failed" and delivery.attempts[0].error == "tls"
        assert receiver.requests == []

        accepted = trusting.create_webhook(brand, "Deals", receiver.url(host="localhost"))
        by_ip = trusting.create_webhook(brand, "Contacts", receiver.url(host="127.0.0.1"))
        trusting.publish(brand, "Deals", "Created", {"secure": True})
        trusting.publish(brand, "Contacts", "Created", {"secure": True})
        requests = receiver.wait_for(2)
    assert {json.loads(r.body)["topic"] for r in requests} == {"Deals", "Contacts"}
    assert settled(trusting, accepted)[0].state == "delivered"
    assert settled(trusting, by_ip)[0].state == "delivered"


def test_https_host_name_must_match(make_hub, tmp_path):
    """A trusted certificate issued for another name is refused."""
    cert, key = self_signed_certificate(tmp_path, names="DNS:other.example")
    hub = make_hub(ca_file=cert, retry_schedule="0")
    with Receiver(tls=(cert, key)) as receiver:
        brand = str(uuid.uuid4())
        by_name = hub.create_webhook(brand, "Deals", receiver.url(host="localhost"))
        by_ip = hub.create_webhook(brand, "Deals", receiver.url(host="127.0.0.1"))
        hub.publish(brand, "Deals", "Created", {})
        assert first_errors(hub, [by_name, by_ip]) == ["tls", "tls"]
        assert receiver.requests == []


def test_blocked_addresses_without_allow_private(make_hub):
    hub = make_hub(allow_private=False, retry_schedule="0")
    with Receiver() as receiver:
        brand = str(uuid.uuid4())
        hooks = [hub.create_webhook(brand, "Deals", receiver.url(host=host))
                 for host in ("127.0.0.1", "localhost", "[::1]")]
        hub.publish(brand, "Deals", "Created", {})
        assert first_errors(hub, hooks) == ["blocked"] * 3
        assert {settled(hub, hook)[0].state for hook in hooks} == {"failed"}
        assert receiver.requests == []


def test_allow_list_opens_one_network(make_hub):
    hub = make_hub(allow_private=False, allow_cidrs="127.0.0.1/32")
    with Receiver() as receiver:
        brand = str(uuid.uuid4())
        hub.create_webhook(brand, "Deals", receiver.url())
        hub.publish(brand, "Deals", "Created", {})
        receiver.wait_for(1)


def test_stop_does_not_hang_and_requeues(make_hub, new_database):
    db = new_database("requeue")
    hub = make_hub(db=db, request_timeout_ms=1000)
    with Receiver(lambda n: "hang" if n == 1 else 200) as receiver:
        brand = str(uuid.uuid4())
        hook = hub.create_webhook(brand, "Deals", receiver.url())
        hub.publish(brand, "Deals", "Created", {})
        receiver.wait_for(1)
        start = time.monotonic()
        hub.close()
        assert time.monotonic() - start < 5
        again = make_hub(db=db)
        receiver.wait_for(2)
        [delivery] = settled(again, hook)
    assert delivery.state == "delivered"


def test_publish_validates_and_changes_nothing(make_hub):
    hub = make_hub()
    brand = str(uuid.uuid4())
    hook = hub.create_webhook(brand, "Deals", "https://example.com/")
    for args in [("nope", "Deals", "Created", {}), (brand, "deals", "Created", {}), (brand, "Deals", "", {}),
                 (brand, "Deals", "Created", "[1, 2]"), (brand, "Deals", "Created", "{bad json")]:
        with pytest.raises(brandhooks.ValidationError):
            hub.publish(*args)
    with pytest.raises(brandhooks.ValidationError):
        hub.publish_many([(brand, "Deals", "Created", {}), (brand, "Nope", "Created", {})])
    assert deliveries(hub, hook) == []


def test_publish_many_is_one_batch(make_hub):
    hub = make_hub(deliver=False)
    brand = str(uuid.uuid4())
    hook = hub.create_webhook(brand, "Deals", "https://example.com/")
    results = hub.publish_many([{"brand": brand, "topic": "Deals", "event": "Created", "payload": {"i": i}}
                                for i in range(100)])
    assert len(results) == 100 and all(r.deliveries == 1 for r in results)
    assert len({r.event_id for r in results}) == 100
    assert hub.list_deliveries(brand, hook.id, limit=1000).total == 100
    assert {d.state for d in deliveries(hub, hook)} == {"pending"}
