"""The Python client generated from a running brandhooks' /openapi.json by openapi-python-client
(the package brandhooks_client, on PYTHONPATH), used against that server as a user would.
tests/python/test_codegen.py generates it and runs this:
    python smoke.py <server url> <admin token> <brand id>
It prints one JSON line of what it saw; a failed check raises (exit code 1)."""

import http.server
import json
import sys
import threading
import time
import uuid

from brandhooks_client import AuthenticatedClient
from brandhooks_client.api.deliveries import list_deliveries
from brandhooks_client.api.events import publish_event
from brandhooks_client.api.webhooks import create_webhook, get_webhook
from brandhooks_client.models import (DealsEvent, DeliveryListEnvelope, ErrorEnvelope, EventCreate, EventCreatePayload,
                                      EventCreateTopic, PublishedEnvelope, WebhookCreate, WebhookEnvelope)

base_url, token, brand = sys.argv[1:4]
received = []


class Receiver(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True

    def do_POST(self) -> None:  # noqa: N802
        body = self.rfile.read(int(self.headers["content-length"]))
        received.append(DealsEvent.from_dict(json.loads(body)))  # the webhooks section's model
        self.send_response(204)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


receiver = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
threading.Thread(target=receiver.serve_forever, daemon=True).start()
hook_url = f"http://127.0.0.1:{receiver.server_address[1]}/hook"

with AuthenticatedClient(base_url=base_url, token=token) as client:
    created = create_webhook.sync(uuid.UUID(brand), client=client,
                                  body=WebhookCreate.from_dict({"topic": "Deals", "url": hook_url}))
    assert isinstance(created, WebhookEnvelope), created
    webhook = created.data

    published = publish_event.sync(uuid.UUID(brand), client=client,
                                   body=EventCreate(topic=EventCreateTopic.DEALS, event="Created",
                                                    payload=EventCreatePayload.from_dict({"n": 1})))
    assert isinstance(published, PublishedEnvelope), published
    event_id = published.data.id

    state = None
    for _ in range(300):
        page = list_deliveries.sync(uuid.UUID(brand), webhook.id, client=client)
        assert isinstance(page, DeliveryListEnvelope), page
        state = page.data[0].state.value if page.data else None
        if state == "delivered":
            break
        time.sleep(0.05)
    assert state == "delivered" and page.info.total == 1, state
    assert [str(e.id) for e in received] == [str(event_id)] and received[0].payload["n"] == 1

    refused = create_webhook.sync(uuid.UUID(brand), client=client,
                                  body=WebhookCreate.from_dict({"topic": "Deals", "url": "ftp://example.com/"}))
    assert isinstance(refused, ErrorEnvelope) and refused.http == 400, refused
    missing = get_webhook.sync(uuid.UUID(brand), uuid.uuid4(), client=client)
    assert isinstance(missing, ErrorEnvelope) and missing.code.value == "ResourceNotFound", missing

with AuthenticatedClient(base_url=base_url, token="wrong") as stranger:
    denied = create_webhook.sync(uuid.UUID(brand), client=stranger,
                                 body=WebhookCreate.from_dict({"topic": "Deals", "url": hook_url}))
    assert isinstance(denied, ErrorEnvelope) and denied.code.value == "UnauthorizedAccess", denied

receiver.shutdown()
print(json.dumps({"webhook": str(webhook.id), "event": str(event_id), "state": state,
                  "error_code": refused.code.value}))
