"""Each record's shape has one definition, the core's field tables (_core.record_fields): a field
added in one place only fails here. The live answers of a real server, the served OpenAPI
schemas, the client's records and the docs' field tables all have the table's fields, in its
order."""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path
from typing import Any, Dict, List

import httpx
import jsonschema
import pytest

from brandhooks import Client, _core, records
from brandhooks.api.inputs import Fields, int_field
from brandhooks.api.models import RecoverRequest, RotateRequest
from conftest import ADMIN_TOKEN, Server

DOCS = Path(__file__).resolve().parents[2] / "docs"


def answers(server: Server) -> Dict[str, List[Dict[str, Any]]]:
    """Every record as the server answers it (a list per record: each route that answers it)."""
    brand, child = str(uuid.uuid4()), str(uuid.uuid4())
    seen: Dict[str, List[Dict[str, Any]]] = {name: [] for name in _core.record_names()}
    with server.client() as api:
        def data(method: str, path: str, **kwargs: Any) -> Any:
            response = api.request(method, path, **kwargs)
            assert response.is_success, response.text
            return response.json()["data"]

        # A loopback url: the delivery's attempt is refused (blocked) at once, nothing leaves the host.
        hook = data("POST", f"/brands/{brand}/webhooks", json={"topic": "Deals", "url": "http://127.0.0.1:9/x"})
        seen["webhook"] += [hook, *data("GET", f"/brands/{brand}/webhooks"),
                            data("PATCH", f"/brands/{brand}/webhooks/{hook['id']}", json={"tags": ["a"]})]
        seen["webhook_state"].append(data("GET", f"/brands/{brand}/webhooks/{hook['id']}/state"))
        published = data("POST", f"/brands/{brand}/events", json={"topic": "Deals", "event": "Created",
                                                                     "payload": {}, "tags": ["a"]})
        seen["published"].append(published)
        deadline = time.monotonic() + 60
        while not (listed := data("GET", f"/brands/{brand}/webhooks/{hook['id']}/deliveries"))[0]["attempts"]:
            assert time.monotonic() < deadline, "no attempt within 60 s"
            time.sleep(0.1)
        seen["delivery"] += [*listed, data("GET", f"/brands/{brand}/deliveries/{listed[0]['id']}")]
        stats = data("GET", f"/brands/{brand}/delivery-stats")
        seen["delivery_stats"].append(stats)
        seen["stats_minute"] += stats["minutes"]
        seen["webhook_stats"] += stats["webhooks"]
        seen["delivery"].append(data("POST", f"/brands/{brand}/webhooks/{hook['id']}/test"))
        seen["attempt"] += [a for d in seen["delivery"] for a in d["attempts"]]
        seen["recovered"].append(data("POST", f"/brands/{brand}/webhooks/{hook['id']}/recover", json={"since": 0}))
        seen["new_token"] += [data("POST", "/tokens", json={"brand": brand, "label": "shapes"}),
                              data("POST", "/tokens", json={"brand": brand, "expires_in": 60})]
        seen["token"] += [*data("GET", "/tokens"), data("GET", "/tokens/current")]
        seen["portal_link"].append(data("POST", f"/brands/{brand}/portal-links", json={}))
        seen["stats"].append(data("GET", "/stats"))
        seen["brand"] += [data("PUT", f"/brands/{child}", json={"parent": brand}),
                          *data("GET", f"/brands/{brand}/descendants"),
                          data("PUT", f"/brands/{child}", json={"parent": None})]
        spec = api.get("/openapi.json").json()
    seen["openapi"] = [spec]
    return seen


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Dict[str, List[Dict[str, Any]]]:
    server = Server(tmp_path_factory.mktemp("shapes") / "shapes.db").start()
    try:
        return answers(server)
    finally:
        server.stop()


@pytest.mark.parametrize("record", _core.record_names())
def test_every_answer_has_the_core_table_fields_in_order(served: Dict[str, Any], record: str) -> None:
    assert served[record], f"no route answered a {record}"
    for answer in served[record]:
        assert list(answer) == list(records.names(record))


@pytest.mark.parametrize("record", _core.record_names())
def test_the_served_schema_is_the_core_table_and_validates_the_answers(served: Dict[str, Any], record: str) -> None:
    spec = served["openapi"][0]
    schema = spec["components"]["schemas"][records.schema_name(record)]
    assert list(schema["properties"]) == list(records.names(record))
    assert schema["required"] == list(records.names(record))
    for field in records.fields(record):
        assert schema["properties"][field["name"]]["description"] == field["description"]
    resolver = {**schema, "components": spec["components"]}  # $refs point into components
    for answer in served[record]:
        jsonschema.validate(answer, resolver)


def test_a_listed_token_has_no_secret_and_a_new_one_always_has_it(served: Dict[str, Any]) -> None:
    """The hand-written TokenOut had drifted: it declared the secret in listings too."""
    schemas = served["openapi"][0]["components"]["schemas"]
    assert "token" not in schemas["TokenOut"]["properties"]
    assert "token" in schemas["NewTokenOut"]["required"]
    paths = served["openapi"][0]["paths"]
    created = paths["/tokens"]["post"]["responses"]["200"]["content"]["application/json"]["schema"]
    assert created["$ref"].endswith("/NewTokenEnvelope")


def test_every_route_is_described_with_its_answer(served: Dict[str, Any]) -> None:
    for path, methods in served["openapi"][0]["paths"].items():
        for method, operation in methods.items():
            success = [status for status in operation["responses"] if status.startswith("2")]
            assert success, (method, path)


def test_client_records_are_the_core_tables(served: Dict[str, Any]) -> None:
    from brandhooks.client import Attempt, Delivery, Webhook

    for cls in (Webhook, Attempt, Delivery):
        assert cls.FIELDS == records.names(cls.RECORD)
    hook, delivery = served["webhook"][0], served["delivery"][0]
    assert Webhook(**hook).to_dict() == hook
    assert list(Webhook(**hook).to_dict()) == list(hook)
    assert Delivery.from_json(delivery).to_dict() == delivery
    assert "key=" not in repr(Webhook(**hook))
    with pytest.raises(TypeError, match="unknown fields \\['extra'\\]"):
        Webhook(**hook, extra=1)
    with pytest.raises(TypeError, match="missing \\['type'\\]"):
        Webhook(**{k: v for k, v in hook.items() if k != "type"})


def test_the_client_reads_every_record_it_returns(tmp_path: Path) -> None:
    server = Server(tmp_path / "client.db", "--no-deliver").start()
    try:
        brand = str(uuid.uuid4())
        with Client(server.url, ADMIN_TOKEN) as client:
            hook = client.create_webhook(brand, "Deals", "https://example.com/hook")
            assert client.webhooks(brand)[0] == hook
            assert client.update_webhook(brand, hook.id, tags=["t"]).tags == ["t"]
            client.publish(brand, "Deals", "Created", {}, tags=["t"])
            (delivery,) = client.deliveries(brand, hook.id)
            assert client.delivery(brand, delivery.id) == delivery
    finally:
        server.stop()


def test_docs_field_tables_are_written_from_the_core_tables() -> None:
    documented = set()
    for page in sorted(DOCS.glob("*.md")):
        text = page.read_text(encoding="utf-8")
        assert records.render_docs(text) == text, (
            f"{page.name}'s field tables are stale: .venv/bin/python -m brandhooks.records docs/*.md")
        documented |= {m.group(2) for m in records._TABLE.finditer(text)}
    assert documented == set(_core.record_names())


def test_a_route_reads_only_what_its_request_model_declares() -> None:
    """A field read but not declared (RecoverRequest once lacked `limit`) is a bug, not a default."""
    with pytest.raises(LookupError, match="does not declare"):
        Fields({"since": 1}, RecoverRequest).get("until")
    with pytest.raises(LookupError, match="does not declare"):
        _ = "until" in Fields({}, RecoverRequest)
    # Defaults and bounds come from the model the OpenAPI description shows.
    assert int_field(Fields({}, RotateRequest), "grace_seconds") == RotateRequest.model_fields["grace_seconds"].default
    with pytest.raises(_core.ValidationError, match="limit must be between 1 and 100000"):
        int_field(Fields({"since": 0, "limit": 100001}, RecoverRequest), "limit")


def test_the_cli_shows_columns_the_records_have() -> None:
    from brandhooks import cli

    assert set(cli.WEBHOOK_COLUMNS) <= set(records.names("webhook"))
    assert set(cli.DELIVERY_COLUMNS) <= set(records.names("delivery"))


def test_unknown_record_is_a_key_error() -> None:
    with pytest.raises(KeyError):
        _core.record_fields("nope")


def test_every_core_record_converts_through_its_table(tmp_path: Path) -> None:
    """to_dict() of every record the Hub returns is its to_json(): the table's fields, in order."""
    hub = _core.Hub(str(tmp_path / "hub.db"), deliver=False)
    brand = str(uuid.uuid4())
    hook = hub.create_webhook(brand, "Deals", "https://example.com/")
    issued = hub.create_token(brand, "x")
    link = hub.create_portal_link(issued.secret, brand, 60, "http://127.0.0.1:1")
    result = hub.publish(brand, "Deals", "Created", {})
    pairs: List[Any] = [(hook, "webhook"), (issued, "new_token"), (issued.info, "token"), (result, "published"),
                        (hub.stats(), "stats"), (hub.set_brand_parent(brand, None), "brand"),
                        (hub.recover(brand, hook.id, 0), "recovered"),
                        (hub.list_deliveries(brand, hook.id).items[0], "delivery"), (link, "portal_link"),
                        (hub.current_token(issued.secret), "token"),
                        (hub.send_test_event(brand, hook.id), "delivery"), (hub.delivery_stats(brand), "delivery_stats")]
    for value, record in pairs:
        assert list(value.to_dict()) == list(records.names(record)), record
        assert json.loads(value.to_json()) == value.to_dict(), record  # the answer's bytes are the core's
    assert list(hook.state_dict()) == list(records.names("webhook_state"))
    assert issued.to_dict()["token"] == issued.secret and result.to_dict() == {"id": result.event_id, "deliveries": 1}
    assert hook.state_dict() == {"id": hook.id, "enabled": True, "disabled_at": None, "disabled_reason": None,
                                 "failing_since": None, "last_success_at": None}
    assert (hook.failing_since, hook.last_success_at) == (None, None)
