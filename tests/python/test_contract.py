"""The REST contract of DESIGN.md, field by field, against a real server."""

from __future__ import annotations

import json
import re
import time
import uuid

from conftest import sql_rows

# The original ten fields first, in this order; the delivery controls follow `type`.
WEBHOOK_FIELDS = ["id", "created_at", "updated_at", "deleted_at", "brand", "topic", "url", "key", "tags", "type",
                  "ordered", "rate_limit", "headers"]
UUID4 = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")


def create(api, brand, topic="Showings", url="https://example.com/hook", **extra):
    response = api.post(f"/brands/{brand}/webhooks", json={"topic": topic, "url": url, **extra})
    assert response.status_code == 200, response.text
    return response.json()["data"]


def test_create_returns_the_webhook_in_contract_order(api, brand):
    before = time.time()
    response = api.post(f"/brands/{brand}/webhooks", json={"topic": "Showings", "url": "https://Example.com/A?b=C"})
    after = time.time()
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    body = json.loads(response.text)  # dicts keep the order of the JSON text
    assert list(body) == ["code", "data"]
    assert body["code"] == "OK"
    hook = body["data"]
    assert list(hook) == WEBHOOK_FIELDS
    assert UUID4.match(hook["id"])
    assert hook["brand"] == brand
    assert hook["topic"] == "Showings"
    assert hook["url"] == "https://Example.com/A?b=C"  # exactly as given
    assert re.fullmatch(r"[0-9a-f]{64}", hook["key"])
    assert hook["tags"] is None
    assert hook["type"] == "brand_webhook"
    assert hook["deleted_at"] is None
    assert (hook["ordered"], hook["rate_limit"], hook["headers"]) == (False, None, {})  # the defaults
    for field in ("created_at", "updated_at"):
        assert isinstance(hook[field], float)
        assert before - 1 <= hook[field] <= after + 1
        # microsecond resolution: the value is a whole number of microseconds
        assert abs(hook[field] * 1e6 - round(hook[field] * 1e6)) < 0.5
    assert hook["created_at"] == hook["updated_at"]


def test_timestamps_carry_microseconds(api, brand):
    stamps = [create(api, brand)["created_at"] for _ in range(5)]
    assert any(s != int(s) for s in stamps)  # not whole seconds
    assert len(set(stamps)) == 5


def test_keys_are_unique(api, brand):
    keys = {create(api, brand)["key"] for _ in range(20)}
    assert len(keys) == 20


def test_tags_are_kept(api, brand):
    hook = create(api, brand, tags=["vip", "office-7"])
    assert hook["tags"] == ["vip", "office-7"]
    assert api.get(f"/brands/{brand}/webhooks/{hook['id']}").json()["data"]["tags"] == ["vip", "office-7"]


def test_uppercase_brand_id_is_the_same_brand(api, brand):
    hook = create(api, brand.upper())
    assert hook["brand"] == brand
    assert [h["id"] for h in api.get(f"/brands/{brand}/webhooks").json()["data"]] == [hook["id"]]


def test_list_filter_and_info(api, brand):
    deals = [create(api, brand, topic="Deals", url=f"https://d.example/{i}") for i in range(3)]
    shows = [create(api, brand, topic="Showings") for _ in range(2)]
    create(api, str(uuid.uuid4()), topic="Deals")  # another brand's: never listed here

    everything = api.get(f"/brands/{brand}/webhooks")
    assert everything.status_code == 200
    body = json.loads(everything.text)
    assert list(body) == ["code", "data", "info"]
    assert [h["id"] for h in body["data"]] == [h["id"] for h in deals + shows]  # oldest first
    assert body["info"] == {"count": 5, "total": 5}
    assert all(list(h) == WEBHOOK_FIELDS for h in body["data"])

    only_deals = api.get(f"/brands/{brand}/webhooks", params={"topic": "Deals"}).json()
    assert [h["id"] for h in only_deals["data"]] == [h["id"] for h in deals]
    assert only_deals["info"] == {"count": 3, "total": 3}
    assert [h["url"] for h in only_deals["data"]] == [f"https://d.example/{i}" for i in range(3)]


def test_paging_only_when_asked(api, brand):
    hooks = [create(api, brand, topic="Contacts") for _ in range(5)]
    page = api.get(f"/brands/{brand}/webhooks", params={"start": 1, "limit": 2}).json()
    assert [h["id"] for h in page["data"]] == [h["id"] for h in hooks[1:3]]
    assert page["info"] == {"count": 2, "total": 5}
    tail = api.get(f"/brands/{brand}/webhooks", params={"start": 4}).json()
    assert [h["id"] for h in tail["data"]] == [hooks[4]["id"]]
    assert tail["info"] == {"count": 1, "total": 5}
    empty = api.get(f"/brands/{brand}/webhooks", params={"limit": 0}).json()
    assert empty["data"] == [] and empty["info"] == {"count": 0, "total": 5}


def test_empty_list(api, brand):
    assert api.get(f"/brands/{brand}/webhooks").json() == {"code": "OK", "data": [], "info": {"count": 0, "total": 0}}


def test_get_one(api, brand):
    hook = create(api, brand)
    got = api.get(f"/brands/{brand}/webhooks/{hook['id']}")
    assert got.status_code == 200
    assert got.json() == {"code": "OK", "data": hook}


def test_delete_is_soft_204_and_hides_the_webhook(api, brand, server):
    keep, gone = create(api, brand), create(api, brand)
    response = api.delete(f"/brands/{brand}/webhooks/{gone['id']}")
    assert response.status_code == 204
    assert response.content == b""
    listed = api.get(f"/brands/{brand}/webhooks").json()
    assert [h["id"] for h in listed["data"]] == [keep["id"]]
    assert listed["info"] == {"count": 1, "total": 1}
    assert api.get(f"/brands/{brand}/webhooks/{gone['id']}").status_code == 404

    # soft: the row is still in the database, with deleted_at set
    [(deleted_at, updated_at)] = sql_rows(str(server.db), "SELECT deleted_at, updated_at FROM webhooks "
                                                         f"WHERE id = '{gone['id']}'")
    assert deleted_at not in (None, "") and deleted_at == updated_at
    assert float(deleted_at) / 1e6 >= gone["created_at"]


def test_delete_twice_unknown_or_foreign_is_404(api, brand):
    hook = create(api, brand)
    other = str(uuid.uuid4())
    foreign = api.delete(f"/brands/{other}/webhooks/{hook['id']}")
    assert foreign.status_code == 404
    assert foreign.json() == {"http": 404, "code": "ResourceNotFound", "message": "webhook not found"}
    assert api.get(f"/brands/{brand}/webhooks/{hook['id']}").status_code == 200  # untouched
    assert api.delete(f"/brands/{brand}/webhooks/{hook['id']}").status_code == 204
    again = api.delete(f"/brands/{brand}/webhooks/{hook['id']}")
    assert again.status_code == 404 and again.json()["code"] == "ResourceNotFound"
    unknown = api.delete(f"/brands/{brand}/webhooks/{uuid.uuid4()}")
    assert unknown.status_code == 404


def test_healthz(server):
    with server.client(token=None) as anonymous:
        response = anonymous.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"code": "OK", "data": {"status": "ok"}}


def test_openapi_describes_the_real_shapes(server):
    with server.client(token=None) as anonymous:
        spec = anonymous.get("/openapi.json").json()
        docs = anonymous.get("/docs")
    paths = spec["paths"]
    assert set(paths["/brands/{brand}/webhooks"]) == {"get", "post"}
    assert set(paths["/brands/{brand}/webhooks/{webhook_id}"]) == {"get", "delete", "patch"}
    assert "put" in paths["/brands/{brand}"]
    schemas = spec["components"]["schemas"]
    assert list(schemas["WebhookOut"]["properties"]) == WEBHOOK_FIELDS
    assert set(schemas["ErrorEnvelope"]["properties"]) == {"http", "code", "message"}
    assert set(schemas["WebhookListEnvelope"]["properties"]) == {"code", "data", "info"}
    create_op = paths["/brands/{brand}/webhooks"]["post"]
    body = create_op["requestBody"]["content"]["application/json"]["schema"]
    assert schemas[body["$ref"].rsplit("/", 1)[1]]["required"] == ["topic", "url"]
    assert "400" in create_op["responses"] and "413" in create_op["responses"]
    assert "204" in paths["/brands/{brand}/webhooks/{webhook_id}"]["delete"]["responses"]
    assert docs.status_code == 200 and "swagger" in docs.text.lower()
