"""Delivery controls of a webhook (issue 12) through `brandhooks serve` on both backends: the
fields on create and PATCH, custom headers on every attempt, and what is refused."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import subprocess
import uuid

import httpx
import pytest

from conftest import ADMIN_TOKEN, Server, brandhooks_cmd
from receivers import Receiver, wait_until

FAST_RETRIES = ["--allow-private", "--retry-schedule", "0,0.2,0.2", "--retry-jitter", "0"]


@pytest.fixture(scope="module", params=["sqlite", "pg"])
def node(request, tmp_path_factory):
    """A delivering server on a SQLite file, or on a fresh PostgreSQL database."""
    directory = tmp_path_factory.mktemp("controls")
    if request.param == "pg":
        db = request.getfixturevalue("pg_server").create_database()
        server = Server(directory / "node.db", *FAST_RETRIES, "--db", db)  # the later --db wins
    else:
        server = Server(directory / "node.db", *FAST_RETRIES)
    server.start()
    yield server
    server.stop()


@pytest.fixture()
def api(node):
    with node.client() as client:
        yield client


def create(api, brand, url="https://example.com/hook", **controls):
    response = api.post(f"/brands/{brand}/webhooks", json={"topic": "Deals", "url": url, **controls})
    assert response.status_code == 200, response.text
    return response.json()["data"]


def assert_validation(response, *named):
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["code"] == "Validation", body
    for text in named:
        assert text in body["message"], body


def test_controls_on_create_get_list_and_patch(api, brand):
    hook = create(api, brand, ordered=True, rate_limit=20, headers={"X-Tenant": "a1", "Authorization": "Bearer t"})
    assert (hook["ordered"], hook["rate_limit"], hook["headers"]) == (True, 20, {"X-Tenant": "a1",
                                                                               "Authorization": "Bearer t"})
    path = f"/brands/{brand}/webhooks/{hook['id']}"
    assert api.get(path).json()["data"] == hook
    assert api.get(f"/brands/{brand}/webhooks").json()["data"] == [hook]

    changed = api.patch(path, json={"rate_limit": None, "headers": {}}).json()["data"]
    assert (changed["ordered"], changed["rate_limit"], changed["headers"]) == (True, None, {})
    changed = api.patch(path, json={"ordered": False, "rate_limit": 10000, "headers": {"X-A": "1"}}).json()["data"]
    assert (changed["ordered"], changed["rate_limit"], changed["headers"]) == (False, 10000, {"X-A": "1"})
    assert api.patch(path, json={"url": "https://example.com/2"}).json()["data"]["headers"] == {"X-A": "1"}

    plain = create(api, brand)
    assert (plain["ordered"], plain["rate_limit"], plain["headers"]) == (False, None, {})


@pytest.mark.parametrize("controls, named", [
    ({"rate_limit": 0}, ["rate_limit"]),
    ({"rate_limit": 10001}, ["rate_limit"]),
    ({"rate_limit": 2**70}, ["rate_limit"]),
    ({"rate_limit": 1.5}, ["rate_limit"]),
    ({"rate_limit": "5"}, ["rate_limit"]),
    ({"rate_limit": True}, ["rate_limit"]),
    ({"ordered": "yes"}, ["ordered"]),
    ({"ordered": 1}, ["ordered"]),
    ({"headers": ["X-A: 1"]}, ["headers"]),
    ({"headers": {"X-A": 1}}, ["headers"]),
    ({"headers": {"X-A": None}}, ["headers"]),
    ({"headers": {f"X-H{i}": "v" for i in range(21)}}, ["20"]),
    ({"headers": {"X-Big": "a" * 8192}}, ["8192"]),
    ({"headers": {"X A": "1"}}, ["X?A"]),
])
def test_bad_controls_are_400_and_change_nothing(api, brand, controls, named):
    assert_validation(api.post(f"/brands/{brand}/webhooks",
                               json={"topic": "Deals", "url": "https://example.com/", **controls}), *named)
    assert api.get(f"/brands/{brand}/webhooks").json()["info"]["total"] == 0
    hook = create(api, brand, rate_limit=7, headers={"X-Keep": "1"})
    path = f"/brands/{brand}/webhooks/{hook['id']}"
    assert_validation(api.patch(path, json={"url": "https://example.com/changed", **controls}), *named)
    assert api.get(path).json()["data"] == hook


REFUSED = ["Host", "host", "Content-Length", "Transfer-Encoding", "Connection", "Content-Type", "Content-Encoding",
           "User-Agent", "Upgrade", "TE", "Trailer", "Keep-Alive", "Expect", "Proxy-Authorization",
           "Proxy-Connection", "X-Webhook-Signature", "x-webhook-signature", "webhook-id", "Webhook-Timestamp",
           "webhook-signature", "webhook-other"]


@pytest.mark.parametrize("name", REFUSED)
def test_refused_header_names_are_400_naming_the_header(api, brand, name):
    assert_validation(api.post(f"/brands/{brand}/webhooks", json={"topic": "Deals", "url": "https://example.com/",
                                                                  "headers": {name: "x"}}), name)
    assert api.get(f"/brands/{brand}/webhooks").json()["info"]["total"] == 0
    hook = create(api, brand, headers={"X-Keep": "1"})
    path = f"/brands/{brand}/webhooks/{hook['id']}"
    assert_validation(api.patch(path, json={"headers": {name: "x"}}), name)
    assert api.get(path).json()["data"] == hook


@pytest.mark.parametrize("value", ["a\r\nX-Injected: 1", "a\nb", "a\rb", "a\x00b", "caf\u00e9", "\x7f", " a", "a\t"])
def test_header_values_with_cr_lf_or_other_bytes_are_400(api, brand, value):
    assert_validation(api.post(f"/brands/{brand}/webhooks", json={"topic": "Deals", "url": "https://example.com/",
                                                                  "headers": {"X-Tenant": value}}), "X-Tenant")
    assert api.get(f"/brands/{brand}/webhooks").json()["info"]["total"] == 0


def test_custom_headers_arrive_on_every_attempt_including_a_retry(api, brand):
    # The first attempt fails: the retry must carry the headers too.
    with Receiver(lambda n: 500 if n == 1 else 200) as receiver, Receiver() as plain_receiver:
        hook = create(api, brand, url=receiver.url(), headers={"X-Tenant": "a1", "Authorization": "Bearer s3cret",
                                                                "X-Empty": ""})
        plain = create(api, brand, url=plain_receiver.url())
        published = api.post(f"/brands/{brand}/events", json={"topic": "Deals", "event": "Created", "payload": {}})
        assert published.status_code == 202 and published.json()["data"]["deliveries"] == 2
        with_headers = receiver.wait_for(2)  # the failed attempt and its retry
        other = plain_receiver.wait_for(1)[0]
    key = bytes.fromhex(hook["key"])
    assert with_headers[0].body == with_headers[1].body
    for request in with_headers:
        assert request.headers["X-Tenant"] == "a1"
        assert request.headers["Authorization"] == "Bearer s3cret"
        assert request.headers["X-Empty"] == ""
        assert request.headers["Content-Type"] == "application/json"
        assert request.headers["X-Webhook-Signature"] == hmac.new(key, request.body, hashlib.sha256).hexdigest()
    assert "X-Tenant" not in other.headers and plain["headers"] == {}

    # Changed headers go with the next deliveries; removed ones no more.
    with Receiver() as receiver:
        path = f"/brands/{brand}/webhooks/{hook['id']}"
        api.patch(path, json={"url": receiver.url(), "headers": {"X-Tenant": "b2"}}).raise_for_status()
        api.post(f"/brands/{brand}/events", json={"topic": "Deals", "event": "Updated", "payload": {}})
        got = receiver.wait_for(1)[0]
        assert got.headers["X-Tenant"] == "b2" and "Authorization" not in got.headers
        api.patch(path, json={"headers": {}}).raise_for_status()
        api.post(f"/brands/{brand}/events", json={"topic": "Deals", "event": "Deleted", "payload": {}})
        wait_until(lambda: len(receiver.requests) == 2)
        assert "X-Tenant" not in receiver.requests[1].headers
        assert json.loads(receiver.requests[1].body)["event"] == "Deleted"


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(brandhooks_cmd(*args), capture_output=True, text=True, timeout=60)


def test_cli_creates_and_updates_the_controls(node, brand):
    target = ["--url", node.url, "--token", ADMIN_TOKEN, "--json"]
    out = cli("webhooks", "create", brand, "Deals", "https://example.com/a", "--ordered", "--rate-limit", "5",
              "--header", "X-Tenant: a1", "--header", "X-Other:two", *target)
    assert out.returncode == 0, out.stderr
    created = json.loads(out.stdout)
    assert (created["ordered"], created["rate_limit"], created["headers"]) == (True, 5, {"X-Tenant": "a1",
                                                                                      "X-Other": "two"})
    out = cli("webhooks", "update", brand, created["id"], "--unordered", "--rate-limit", "none", "--no-headers",
              *target)
    assert out.returncode == 0, out.stderr
    updated = json.loads(out.stdout)
    assert (updated["ordered"], updated["rate_limit"], updated["headers"]) == (False, None, {})
    out = cli("webhooks", "update", brand, created["id"], "--header", "Host: evil", *target)
    assert out.returncode != 0 and "Host" in out.stderr
    table = cli("webhooks", "list", brand, "--url", node.url, "--token", ADMIN_TOKEN).stdout
    assert "ORDERED" in table and "RATE_LIMIT" in table and "HEADERS" in table


# --- idempotent publishing ---------------------------------------------------------------------

EVENT = {"topic": "Deals", "event": "Created", "payload": {"price": 1}}


def publish(api, brand, body, key=None, raw=None):
    headers = {"Idempotency-Key": key} if key is not None else {}
    if raw is not None:
        return api.post(f"/brands/{brand}/events", content=raw, headers={**headers, "Content-Type": "application/json"})
    return api.post(f"/brands/{brand}/events", json=body, headers=headers)


def test_the_same_key_twice_answers_the_same_id_and_delivers_once(api, brand):
    with Receiver() as first, Receiver() as second:
        create(api, brand, url=first.url())
        create(api, brand, url=second.url())
        answer = publish(api, brand, EVENT, "order-1")
        assert answer.status_code == 202 and answer.json()["data"]["deliveries"] == 2
        again = publish(api, brand, EVENT, "order-1")
        assert again.status_code == 202 and again.json() == answer.json()
        first.wait_for(1)
        second.wait_for(1)
        conflict = publish(api, brand, {**EVENT, "payload": {"price": 2}}, "order-1")
        assert conflict.status_code == 409 and conflict.json()["code"] == "Conflict", conflict.text
        assert "order-1" in conflict.json()["message"]
        # Nothing more arrives: one delivery per webhook for both requests.
        publish(api, brand, {**EVENT, "event": "Marker"}).raise_for_status()
        wait_until(lambda: len(first.requests) == 2 and len(second.requests) == 2)
        assert [json.loads(r.body)["event"] for r in first.requests] == ["Created", "Marker"]
        assert [json.loads(r.body)["event"] for r in second.requests] == ["Created", "Marker"]
        hook = api.get(f"/brands/{brand}/webhooks").json()["data"][0]
        deliveries = api.get(f"/brands/{brand}/webhooks/{hook['id']}/deliveries").json()
        assert deliveries["info"]["total"] == 2


def test_a_batch_with_a_key_is_answered_whole_again(api, brand):
    create(api, brand)
    batch = [EVENT, {**EVENT, "event": "Updated"}]
    answer = publish(api, brand, batch, "batch-1")
    assert answer.status_code == 202 and answer.json()["info"] == {"count": 2, "total": 2}
    assert publish(api, brand, batch, "batch-1").json() == answer.json()
    assert publish(api, brand, batch[:1], "batch-1").status_code == 409


def test_keys_are_per_brand(api, brand):
    other = str(uuid.uuid4())
    create(api, brand)
    create(api, other)
    mine = publish(api, brand, EVENT, "shared-key").json()["data"]["id"]
    theirs = publish(api, other, EVENT, "shared-key")
    assert theirs.status_code == 202 and theirs.json()["data"]["id"] != mine


def test_a_request_that_failed_validation_is_not_remembered(api, brand):
    create(api, brand)
    bad = publish(api, brand, {**EVENT, "topic": "Nope"}, "k-1")
    assert bad.status_code == 400 and bad.json()["code"] == "Validation"
    assert publish(api, brand, None, "k-1", raw=b"{not json").status_code == 400
    good = publish(api, brand, EVENT, "k-1")
    assert good.status_code == 202  # the key was free
    assert publish(api, brand, EVENT, "k-1").json() == good.json()


@pytest.mark.parametrize("key", ["", "x" * 256, "has space", "tab\there"])
def test_malformed_keys_are_400(api, brand, key):
    response = publish(api, brand, EVENT, key)
    assert_validation(response, "Idempotency-Key")


def test_concurrent_requests_with_one_key_publish_once(node, brand):
    """Many clients retrying at once (one group commit or several): one event, one answer."""
    from concurrent.futures import ThreadPoolExecutor

    with node.client() as api:
        create(api, brand)

    def send(_):
        with node.client() as client:
            return publish(client, brand, EVENT, "race-1")

    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(send, range(16)))
    assert all(a.status_code == 202 for a in answers), [a.text for a in answers]
    assert len({a.json()["data"]["id"] for a in answers}) == 1


def test_the_fastapi_route_and_the_python_hub_take_keys_too(tmp_path):
    """The route behind the fast path (as a TestClient sees it) and Hub.publish/publish_many."""
    from brandhooks import Config, Hub
    from brandhooks.api import create_app
    from brandhooks.api.publish import PublishFastPath

    hub = Hub(Config(db=str(tmp_path / "h.db")))
    brand = str(uuid.uuid4())
    hub.create_webhook(brand, "Deals", "https://example.com/")
    first = hub.publish(brand, "Deals", "Created", {"a": 1}, idempotency_key="py-1")
    assert hub.publish(brand, "Deals", "Created", {"a": 1}, idempotency_key="py-1").event_id == first.event_id
    from brandhooks import ConflictError
    with pytest.raises(ConflictError):
        hub.publish(brand, "Deals", "Created", {"a": 2}, idempotency_key="py-1")
    many = [{"brand": brand, "topic": "Deals", "event": "Created", "payload": {}, "idempotency_key": "m-1"}]
    assert hub.publish_many(many)[0].event_id == hub.publish_many(many)[0].event_id
    token = hub.create_token(None).secret
    app = create_app(hub)
    # Without the fast path, so that the route itself answers (the stack is built on first use).
    app.user_middleware = [m for m in app.user_middleware if m.cls is not PublishFastPath]
    headers = {"Authorization": f"Bearer {hub.create_token(None).secret}", "Idempotency-Key": "route-1"}

    async def through_the_route():
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://route") as client:
            path = f"/brands/{brand}/events"
            one = await client.post(path, json=EVENT, headers=headers)
            assert one.status_code == 202, one.text
            assert (await client.post(path, json=EVENT, headers=headers)).json() == one.json()
            other = await client.post(path, json={**EVENT, "event": "Other"}, headers=headers)
            assert other.status_code == 409 and other.json()["code"] == "Conflict"
            bad = await client.post(path, json=EVENT, headers={**headers, "Idempotency-Key": "a b"})
            assert bad.status_code == 400 and bad.json()["code"] == "Validation"

    asyncio.run(through_the_route())
    hub.close()
