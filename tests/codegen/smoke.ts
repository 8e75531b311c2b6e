// The TypeScript client generated from a running brandhooks' /openapi.json (openapi-typescript
// types, openapi-fetch calls) against that server, and a receiver typed from the document's
// webhooks section. tests/python/test_codegen.py generates schema.d.ts beside this file, compiles
// both with tsc (strict: a type the document gets wrong fails here) and runs the result:
//   node out/smoke.js <server url> <admin token> <brand id>
// It prints one JSON line of what it saw; any failure throws (exit code 1).
import createClient from "openapi-fetch";
import { createServer, type IncomingHttpHeaders } from "node:http";
import type { AddressInfo } from "node:net";
import type { components, operations, paths } from "./schema.js";

type DealsEvent = components["schemas"]["DealsEvent"];
type DeliveryHeaders = operations["receive_deals_event"]["parameters"]["header"];
type ErrorEnvelope = components["schemas"]["ErrorEnvelope"];

const [baseUrl, token, brand] = process.argv.slice(2);
if (!baseUrl || !token || !brand) throw new Error("usage: smoke.js <url> <token> <brand>");

function check(condition: boolean, what: string): void {
  if (!condition) throw new Error(`check failed: ${what}`);
}

// The receiver: what arrives is typed by the webhooks section (body and headers).
const received: { body: DealsEvent; headers: DeliveryHeaders }[] = [];
function headersOf(raw: IncomingHttpHeaders): DeliveryHeaders {
  const text = (name: string): string => {
    const value = raw[name];
    if (typeof value !== "string") throw new Error(`the delivery has no ${name} header`);
    return value;
  };
  return {
    "X-Webhook-Signature": text("x-webhook-signature"),
    "webhook-id": text("webhook-id"),
    "webhook-timestamp": text("webhook-timestamp"),
    "webhook-signature": text("webhook-signature"),
    traceparent: typeof raw.traceparent === "string" ? raw.traceparent : undefined,
  };
}
const receiver = createServer((request, response) => {
  const chunks: Buffer[] = [];
  request.on("data", (chunk: Buffer) => chunks.push(chunk));
  request.on("end", () => {
    received.push({ body: JSON.parse(Buffer.concat(chunks).toString("utf8")) as DealsEvent, headers: headersOf(request.headers) });
    response.writeHead(204).end();
  });
});
await new Promise<void>((resolve) => receiver.listen(0, "127.0.0.1", resolve));
const receiverUrl = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hook`;

const api = createClient<paths>({ baseUrl, headers: { Authorization: `Bearer ${token}` } });

// Create a webhook.
const created = await api.POST("/brands/{brand}/webhooks", {
  params: { path: { brand } },
  body: { topic: "Deals", url: receiverUrl },
});
check(created.response.status === 200 && created.data !== undefined, `create webhook: ${created.response.status}`);
const webhook = created.data!.data;
check(webhook.topic === "Deals" && webhook.key.length === 64, "the webhook as the contract shows it");

// Publish an event, with a trace context.
const traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
const published = await api.POST("/brands/{brand}/events", {
  params: { path: { brand }, header: { traceparent } },
  body: { topic: "Deals", event: "Created", payload: { price: 1250000 } },
});
check(published.response.status === 202 && published.data !== undefined, `publish: ${published.response.status}`);
const accepted = published.data!.data;
const eventId = "id" in accepted ? accepted.id : undefined;
check(eventId !== undefined, "one event's answer");

// List its deliveries until the receiver's answer is recorded.
let state = "";
let listed = 0;
for (let i = 0; i < 300 && state !== "delivered"; i++) {
  const page = await api.GET("/brands/{brand}/webhooks/{webhook_id}/deliveries", {
    params: { path: { brand, webhook_id: webhook.id }, query: { limit: "10" } },
  });
  check(page.data !== undefined, `list deliveries: ${page.response.status}`);
  listed = page.data!.info.total;
  state = page.data!.data[0]?.state ?? "";
  if (state !== "delivered") await new Promise((resolve) => setTimeout(resolve, 50));
}
check(state === "delivered" && listed === 1, `the delivery: ${state}, ${listed}`);
const delivery = received[0];
check(delivery !== undefined && delivery.body.id === eventId && delivery.body.topic === "Deals", "the receiver got the event");
check(delivery!.body.payload["price"] === 1250000, "its payload");
check(delivery!.headers.traceparent?.split("-")[1] === "4bf92f3577b34da6a3ce929d0e0e4736", "the publisher's trace");

// Read an error envelope: a brand id that is not a UUID.
const bad = await api.GET("/brands/{brand}/webhooks", { params: { path: { brand: "not-a-uuid" } } });
const envelope: ErrorEnvelope | undefined = bad.error;
check(bad.response.status === 400 && envelope?.code === "Validation" && envelope.http === 400, "a 400 in the envelope");
const denied = await createClient<paths>({ baseUrl, headers: { Authorization: "Bearer wrong" } })
  .GET("/brands/{brand}/webhooks", { params: { path: { brand } } });
check(denied.error?.code === "UnauthorizedAccess", "a 401 in the envelope");

receiver.close();
console.log(JSON.stringify({ webhook: webhook.id, event: eventId, state, error: envelope?.message }));
