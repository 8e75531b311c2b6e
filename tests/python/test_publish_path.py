"""Issue 14: the publish hot path (the raw body goes to the core once) and the batch route.

POST /brands/{id}/events takes one event or a JSON array of 1 to 1000, validated all or nothing
and committed in one transaction; bad input of every kind is a 4xx in the envelope."""

from __future__ import annotations

import json
import uuid
from typing import Any, Dict, List

import httpx
import pytest

from conftest import Server
from receivers import Receiver

EVENT = {"topic": "Deals", "event": "Created", "payload": {"price": 1}}


def assert_error(response: httpx.Response, status: int, code: str) -> str:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    body: Dict[str, Any] = response.json()
    assert list(body) == ["http", "code", "message"]
    assert body["http"] == status and body["code"] == code and body["message"]
    message: str = body["message"]
    return message


def post(api: httpx.Client, brand: str, content: bytes, **headers: str) -> httpx.Response:
    return api.post(f"/brands/{brand}/events", content=content,
                    headers={"Content-Type": "application/json", **headers})


def deliveries(api: httpx.Client, brand: str, hook: Dict[str, Any]) -> int:
    total: int = api.get(f"/brands/{brand}/webhooks/{hook['id']}/deliveries").json()["info"]["total"]
    return total


@pytest.fixture()
def hook(api: httpx.Client, brand: str) -> Dict[str, Any]:
    """A webhook of the brand (nothing listens: these tests count deliveries, not arrivals)."""
    created: Dict[str, Any] = api.post(f"/brands/{brand}/webhooks",
                                       json={"topic": "Deals", "url": "https://example.com/hook"}).json()["data"]
    return created


# --- the batch ----------------------------------------------------------------------------------

def test_a_batch_answers_the_ids_in_order_with_the_list_envelope(api: httpx.Client, brand: str,
                                                                  hook: Dict[str, Any]) -> None:
    events = [{**EVENT, "payload": {"i": i}} for i in range(5)]
    events[3]["topic"] = "Showings"  # no webhook: accepted, no delivery
    response = api.post(f"/brands/{brand}/events", json=events)
    assert response.status_code == 202, response.text
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert list(body) == ["code", "data", "info"] and body["code"] == "OK"
    assert body["info"] == {"count": 5, "total": 5}
    assert [list(item) for item in body["data"]] == [["id", "deliveries"]] * 5
    assert [item["deliveries"] for item in body["data"]] == [1, 1, 1, 0, 1]
    ids = [item["id"] for item in body["data"]]
    assert len(set(ids)) == 5
    listed = api.get(f"/brands/{brand}/webhooks/{hook['id']}/deliveries").json()["data"]
    # Listed newest first: stored in the order given, and answered in that order.
    assert [d["event"] for d in reversed(listed)] == [ids[i] for i in (0, 1, 2, 4)]


def test_a_batch_is_delivered_event_by_event(tmp_path) -> None:
    server = Server(tmp_path / "batch.db", "--allow-private").start()
    brand = str(uuid.uuid4())
    try:
        with Receiver() as receiver, server.client() as api:
            api.post(f"/brands/{brand}/webhooks", json={"topic": "Deals", "url": receiver.url()})
            events = [{**EVENT, "payload": {"i": i}, "tags": None} for i in range(50)]
            answer = api.post(f"/brands/{brand}/events", json=events).json()
            got = receiver.wait_for(50)
        by_id = {json.loads(r.body)["id"]: json.loads(r.body) for r in got}
        for i, item in enumerate(answer["data"]):
            assert by_id[item["id"]]["payload"] == {"i": i} and by_id[item["id"]]["brand"] == brand
    finally:
        server.stop()


@pytest.mark.parametrize("bad, message", [
    ({"topic": "Nope", "event": "Created", "payload": {}}, "events[2]: topic"),
    ({"topic": "Deals", "event": "", "payload": {}}, "events[2]: event"),
    ({"topic": "Deals", "event": "Created", "payload": []}, "events[2]: payload must be a JSON object"),
    ({"topic": "Deals", "event": "Created"}, "events[2]: payload must be a JSON object"),
    ({"event": "Created", "payload": {}}, "events[2]: topic is required"),
    ({"topic": 7, "event": "Created", "payload": {}}, "events[2]: topic must be a string"),
    ({"topic": "Deals", "event": "Created", "payload": {}, "tags": "vip"}, "events[2]: tags must be null or a list"),
    ({"topic": "Deals", "event": "Created", "payload": {}, "tags": [""]}, "events[2]: "),
    ("not an event", "events[2]: an event must be a JSON object"),
])
def test_one_bad_event_refuses_the_whole_batch_and_names_it(api: httpx.Client, brand: str, hook: Dict[str, Any],
                                                            bad: Any, message: str) -> None:
    events: List[Any] = [EVENT, EVENT, bad, EVENT]
    assert message in assert_error(api.post(f"/brands/{brand}/events", json=events), 400, "Validation")
    assert deliveries(api, brand, hook) == 0


def test_a_payload_too_deep_in_a_batch_is_named_too(api: httpx.Client, brand: str, hook: Dict[str, Any]) -> None:
    deep: Any = {}
    for _ in range(128):
        deep = [deep]
    message = assert_error(api.post(f"/brands/{brand}/events", json=[EVENT, {**EVENT, "payload": {"a": deep}}]),
                           400, "Validation")
    assert message.startswith("events[1]: ") and "128" in message
    assert deliveries(api, brand, hook) == 0


@pytest.mark.parametrize("count", [0, 1001])
def test_a_batch_has_1_to_1000_events(api: httpx.Client, brand: str, hook: Dict[str, Any], count: int) -> None:
    message = assert_error(api.post(f"/brands/{brand}/events", json=[EVENT] * count), 400, "Validation")
    assert "1 to 1000" in message
    assert deliveries(api, brand, hook) == 0


def test_1000_events_in_one_call_and_a_batch_body_over_1_mib(api: httpx.Client, brand: str,
                                                              hook: Dict[str, Any]) -> None:
    events = [{**EVENT, "payload": {"i": i, "note": "x" * 1500}} for i in range(1000)]
    content = json.dumps(events).encode()
    assert len(content) > 1 << 20
    response = post(api, brand, content)
    assert response.status_code == 202, response.text
    assert response.json()["info"]["count"] == 1000
    assert deliveries(api, brand, hook) == 1000


def test_bodies_too_large_are_413(api: httpx.Client, brand: str, hook: Dict[str, Any]) -> None:
    one = json.dumps({**EVENT, "payload": {"note": "x" * (1 << 20)}}).encode()
    assert_error(post(api, brand, one), 413, "PayloadTooLarge")
    batch = b"[" + b",".join([json.dumps({**EVENT, "payload": {"n": "x" * (1 << 20)}}).encode()] * 17) + b"]"
    assert_error(post(api, brand, batch), 413, "PayloadTooLarge")
    # Without Content-Length (chunked): counted as it arrives.
    response = api.post(f"/brands/{brand}/events", content=iter([one[: 1 << 19], one[1 << 19:]]),
                        headers={"Content-Type": "application/json"})
    assert "content-length" not in response.request.headers
    assert_error(response, 413, "PayloadTooLarge")
    assert deliveries(api, brand, hook) == 0


# --- the raw hot path: what the framework used to catch ------------------------------------------

@pytest.mark.parametrize("content", [
    b"", b"{", b'{"topic": "Deals",}', b"nul", b'{"topic": "Deals"} x', b"\xff\xfe{}",
    b'{"topic": "Deals", "event": "Cr\xc3", "payload": {}}', b'{"topic": "Deals", "event": "Created", "payload": NaN}',
    b"[" * 100_000, b'[{"topic": "Deals", "event": "Created", "payload": {}},',
])
def test_bodies_that_are_not_json_are_400_bad_request(api: httpx.Client, brand: str, hook: Dict[str, Any],
                                                      content: bytes) -> None:
    assert_error(post(api, brand, content), 400, "BadRequest")
    assert deliveries(api, brand, hook) == 0


@pytest.mark.parametrize("content", [
    b'{"topic": "Deals", "event": "Created", "payload": {"d": 11e308}}',
    b'[{"topic": "Deals", "event": "Created", "payload": {}}, {"topic": "Deals", "event": "Created", "payload": [-1e400]}]',
])
def test_numbers_no_double_holds_are_400_validation(api: httpx.Client, brand: str, hook: Dict[str, Any],
                                                    content: bytes) -> None:
    assert "too large" in assert_error(post(api, brand, content), 400, "Validation")
    assert deliveries(api, brand, hook) == 0


@pytest.mark.parametrize("content", [b"1", b'"event"', b"null", b"true"])
def test_json_that_is_not_an_event_is_400_validation(api: httpx.Client, brand: str, content: bytes) -> None:
    assert "JSON object" in assert_error(post(api, brand, content), 400, "Validation")


def test_lone_surrogates_in_a_batch_are_400_validation(api: httpx.Client, brand: str, hook: Dict[str, Any]) -> None:
    content = b'[{"topic": "Deals", "event": "Created", "payload": {"a": "\\udc00"}}]'
    assert "surrogate" in assert_error(post(api, brand, content), 400, "Validation")
    assert deliveries(api, brand, hook) == 0


def test_paired_surrogates_and_a_bom_are_fine(api: httpx.Client, brand: str, hook: Dict[str, Any]) -> None:
    content = '\ufeff{"topic": "Deals", "event": "Created", "payload": {"a": "\\ud83d\\ude00"}}'.encode()
    assert post(api, brand, content).status_code == 202
    assert deliveries(api, brand, hook) == 1


def test_who_may_publish(server: Server, api: httpx.Client, brand: str, hook: Dict[str, Any]) -> None:
    body = json.dumps([EVENT]).encode()
    with server.client(token=None) as anonymous:
        assert_error(post(anonymous, brand, body), 401, "UnauthorizedAccess")
        assert_error(post(anonymous, brand, body, Authorization="Basic abc"), 401, "UnauthorizedAccess")
        # A bad token is reported before a bad brand id or a bad body.
        assert_error(post(anonymous, "not-a-uuid", b"{", Authorization="Bearer nope"), 401, "UnauthorizedAccess")
    assert_error(post(api, "not-a-uuid", body), 400, "Validation")
    scoped = api.post("/tokens", json={"brand": str(uuid.uuid4())}).json()["data"]["token"]
    with server.client(token=scoped) as other:
        assert_error(post(other, brand, body), 403, "AccessForbidden")
        assert_error(post(other, brand, b"{"), 403, "AccessForbidden")
    assert deliveries(api, brand, hook) == 0


def test_other_methods_and_paths_still_go_to_the_framework(api: httpx.Client, brand: str) -> None:
    response = api.get(f"/brands/{brand}/events")
    assert_error(response, 405, "BadRequest")
    assert "POST" in response.headers["allow"]
    assert_error(api.post(f"/brands/{brand}/events/x", json=EVENT), 404, "ResourceNotFound")


def test_the_openapi_description_documents_the_batch(api: httpx.Client) -> None:
    schema = api.get("/openapi.json").json()
    operation = schema["paths"]["/brands/{brand}/events"]["post"]
    body = operation["requestBody"]["content"]["application/json"]["schema"]
    batch = next(choice for choice in body["anyOf"] if choice.get("type") == "array")
    assert batch["maxItems"] == 1000 and batch["minItems"] == 1
    answers = json.dumps(operation["responses"]["202"])
    assert "PublishedEnvelope" in answers and "PublishedListEnvelope" in answers
    assert {"400", "401", "403", "413"} <= set(operation["responses"])


def test_concurrent_publishes_each_get_their_own_answer(server: Server, brand: str, hook: Dict[str, Any]) -> None:
    """Requests arriving together share a commit (GroupCommit), but each is answered on its own:
    a bad one among them gets its error, the others their ids."""
    import threading

    bodies = [json.dumps({**EVENT, "payload": {"i": i}}).encode() if i % 5 else b"{" for i in range(40)]
    answers: Dict[int, httpx.Response] = {}

    def send(i: int) -> None:
        with server.client() as client:
            answers[i] = post(client, brand, bodies[i])

    threads = [threading.Thread(target=send, args=(i,)) for i in range(len(bodies))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    ids = set()
    for i, response in answers.items():
        if i % 5:
            assert response.status_code == 202, response.text
            ids.add(response.json()["data"]["id"])
        else:
            assert_error(response, 400, "BadRequest")
    assert len(ids) == 32
    with server.client() as api:
        listed = api.get(f"/brands/{brand}/webhooks/{hook['id']}/deliveries", params={"limit": 100}).json()["data"]
    assert {d["event"] for d in listed} == ids
