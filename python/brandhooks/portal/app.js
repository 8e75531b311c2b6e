// The brand portal: sign in, pick a brand, manage its webhooks, look at their deliveries.
// Only the public REST API (api.js); data from users (urls, tags, response bodies) is only ever
// set as textContent, never parsed as HTML.

import { mountActivity } from "./activity.js";
import { api, ApiError, clearToken, getToken, setToken } from "./api.js";

// A portal link carries its token in the fragment (#token=...): move it to sessionStorage and
// out of the address bar (and so out of history and bookmarks) before anything else.
const fragment = new URLSearchParams(location.hash.slice(1));
if (fragment.has("token")) {
  setToken(fragment.get("token"));
  history.replaceState(null, "", location.pathname + location.search);
}

const TOPICS = ["Deals", "Showings", "Contacts"];
const $ = (id) => document.getElementById(id);

const state = {
  session: null,      // the token record of GET /tokens/current
  pickerRoot: null,   // the brand whose descendants the picker lists
  brand: null,        // the brand on display
  webhooks: [],
  activity: null,     // the charts of the brand on display (activity.js)
  open: null,         // the webhook whose deliveries are on display
  deliveriesRun: 0,   // increases on every load: a late answer of an older load is dropped
  expiryTimer: 0,
  pollTimer: 0,
};

// --- small helpers -------------------------------------------------------------------------

// An element with attributes (class, text, or any property) and children (nodes or text).
function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === undefined || value === null) continue;
    if (name === "class") node.className = value;
    else if (name === "text") node.textContent = value;
    else if (name === "role" || name.startsWith("aria-") || name.startsWith("data-")) node.setAttribute(name, value);
    else node[name] = value;
  }
  for (const child of children) {
    if (child !== null && child !== undefined) node.append(child);
  }
  return node;
}

function when(seconds) {
  if (seconds === null || seconds === undefined) return "—";
  return new Date(seconds * 1000).toLocaleString(undefined, { dateStyle: "medium", timeStyle: "medium" });
}

// How long ago `seconds` was, roughly: "45 s", "12 min", "3 h 5 min", "2 d 4 h".
function elapsed(seconds) {
  const total = Math.max(0, Math.floor(Date.now() / 1000 - seconds));
  const [d, h, m] = [Math.floor(total / 86400), Math.floor(total / 3600) % 24, Math.floor(total / 60) % 60];
  if (d) return `${d} d ${h} h`;
  if (h) return `${h} h ${m} min`;
  return m ? `${m} min` : `${total} s`;
}

function describe(error) {
  if (error instanceof ApiError) {
    return error.http ? `${error.message} (${error.http} ${error.code})` : error.message;
  }
  return String(error && error.message ? error.message : error);
}

function show(node, text, isError = false) {
  node.textContent = text || "";
  node.hidden = !text;
  node.classList.toggle("error", Boolean(isError));
}

function notice(text) {
  show($("notice"), text, true);
}

function brandPath(suffix = "") {
  return `/brands/${encodeURIComponent(state.brand)}${suffix}`;
}

function webhookPath(webhook, suffix = "") {
  return brandPath(`/webhooks/${encodeURIComponent(webhook.id)}${suffix}`);
}

// api() for the signed-in page: a 401 (expired or revoked token) ends the session.
async function call(method, path, body) {
  try {
    return await api(method, path, body);
  } catch (error) {
    if (error instanceof ApiError && error.http === 401) {
      signOut(`Your session ended: ${describe(error)}. Open a new portal link or sign in again.`);
    }
    throw error;
  }
}

function parseTags(text) {
  const tags = text.split(",").map((tag) => tag.trim()).filter((tag) => tag.length > 0);
  return tags.length ? tags : null;
}

function parseHeaders(text) {
  const headers = {};
  for (const line of text.split("\n")) {
    if (!line.trim()) continue;
    const colon = line.indexOf(":");
    if (colon <= 0) throw new Error(`a header line needs "Name: value": ${line.trim()}`);
    headers[line.slice(0, colon).trim()] = line.slice(colon + 1).trim();
  }
  return headers;
}

// --- sign in and out -----------------------------------------------------------------------

async function signIn() {
  let session;
  show($("page-status"), "Signing in…");
  try {
    session = (await api("GET", "/tokens/current")).data;
  } catch (error) {
    show($("page-status"), "");
    clearToken();
    showSignIn(error instanceof ApiError && error.http === 401
      ? `This link or token cannot sign in: ${describe(error)}. Ask for a new portal link, or paste a valid token.`
      : `Could not sign in: ${describe(error)}`);
    return;
  }
  show($("page-status"), "");
  state.session = session;
  $("signin").hidden = true;
  $("session").hidden = false;
  $("brand").hidden = false;
  updateExpiry();
  state.expiryTimer = setInterval(updateExpiry, 15000);
  if (session.brand) {
    $("brand-input").value = session.brand;
    await openBrand(session.brand, true);
  } else {
    $("brand-input").focus();
  }
}

function updateExpiry() {
  const session = state.session;
  if (!session) return;
  const who = session.brand ? `brand ${session.brand}` : "admin";
  const label = session.label ? ` (${session.label})` : "";
  if (session.expires_at === null || session.expires_at === undefined) {
    $("session-text").textContent = `Signed in: ${who}${label}`;
    return;
  }
  const left = session.expires_at - Date.now() / 1000;
  if (left <= 0) {
    signOut(`Your session expired at ${when(session.expires_at)}. Open a new portal link or sign in again.`);
    return;
  }
  const minutes = Math.max(1, Math.round(left / 60));
  $("session-text").textContent =
    `Signed in: ${who}${label}; session expires at ${when(session.expires_at)} (in ${minutes} min)`;
}

function showSignIn(message) {
  for (const id of ["session", "brand", "webhooks", "deliveries", "activity"]) $(id).hidden = true;
  $("signin").hidden = false;
  notice(message);
  $("token-input").focus();
}

function signOut(message) {
  clearToken();
  clearInterval(state.expiryTimer);
  clearTimeout(state.pollTimer);
  Object.assign(state, { session: null, pickerRoot: null, brand: null, webhooks: [], activity: null, open: null });
  $("activity").replaceChildren();
  state.deliveriesRun += 1;
  $("webhook-list").replaceChildren();
  $("delivery-list").replaceChildren();
  $("brand-picker").replaceChildren();
  $("brand-picker-row").hidden = true;
  show($("brand-error"), "");
  $("brand-input").value = "";
  for (const dialog of document.querySelectorAll("dialog[open]")) dialog.close();
  $("key-value").value = "";
  showSignIn(message);
}

// --- the brand -----------------------------------------------------------------------------

async function openBrand(brand, fromPicker = false) {
  show($("brand-error"), "");
  notice("");
  closeDeliveries();
  state.brand = brand;
  $("brand-input").value = brand;
  const loaded = await loadWebhooks();
  if (!loaded) return;
  if (!fromPicker || state.pickerRoot === null) {
    state.pickerRoot = brand;
    await loadPicker();
  }
  $("brand-picker").value = brand;
}

async function loadPicker() {
  const picker = $("brand-picker");
  let brands = [];
  try {
    brands = (await call("GET", `/brands/${encodeURIComponent(state.pickerRoot)}/descendants`)).data;
  } catch (error) {
    show($("brand-error"), `Could not list the brands below this one: ${describe(error)}`, true);
  }
  picker.replaceChildren(el("option", { value: state.pickerRoot, text: `${state.pickerRoot} (this brand)` }),
    ...brands.map((brand) => el("option", { value: brand.id, text: `${brand.id} (below ${brand.parent})` })));
  $("brand-picker-row").hidden = brands.length === 0;
}

// --- webhooks ------------------------------------------------------------------------------

async function loadWebhooks() {
  const section = $("webhooks");
  const status = $("webhooks-status");
  section.hidden = false;
  section.setAttribute("aria-busy", "true");
  status.textContent = "Loading webhooks…";
  try {
    const { data } = await call("GET", brandPath("/webhooks"));
    // In place: the charts hold this list (their latency rows are named by its urls).
    state.webhooks.splice(0, state.webhooks.length, ...data);
  } catch (error) {
    section.hidden = true;
    $("activity").hidden = true;
    $("activity").replaceChildren();
    state.activity = null;
    const forbidden = error instanceof ApiError && error.http === 403;
    show($("brand-error"), forbidden
      ? `This token cannot see brand ${state.brand}: ${describe(error)}`
      : `Could not load the webhooks of brand ${state.brand}: ${describe(error)}`, true);
    state.brand = null;
    return false;
  } finally {
    section.removeAttribute("aria-busy");
  }
  renderWebhooks();
  showActivity();
  return true;
}

// The charts of the brand's delivery attempts: mounted once per brand, then refreshed.
async function showActivity() {
  const section = $("activity");
  section.hidden = false;
  if (state.activity && state.activity.brand === state.brand) {
    await state.activity.refresh();
    return;
  }
  const brand = state.brand;
  state.activity = { brand, refresh: async () => {} };
  const mounted = await mountActivity(section, { api: call, brand, webhooks: state.webhooks });
  if (state.activity && state.activity.brand === brand) state.activity.refresh = () => mounted.refresh();
}

function renderWebhooks() {
  const list = $("webhook-list");
  const status = $("webhooks-status");
  list.replaceChildren(...state.webhooks.map(webhookCard));
  status.textContent = state.webhooks.length === 0
    ? "No webhooks yet: open “New webhook” above, give the URL that should receive events, then send it a test event."
    : `${state.webhooks.length} webhook${state.webhooks.length === 1 ? "" : "s"}`;
}

function webhookCard(webhook) {
  const titleId = `webhook-${webhook.id}`;
  const stateLine = el("p", { class: "state", text: "Checking whether it is enabled…" });
  const healthLine = el("p", { class: "health" },
    el("span", { class: "failing" }), el("span", { class: "muted last", text: "Looking for the last success…" }));
  const message = el("p", { class: "status", role: "status" });
  const settings = [];
  if (webhook.ordered) settings.push("ordered");
  if (webhook.rate_limit) settings.push(`at most ${webhook.rate_limit}/s`);
  const headerNames = Object.keys(webhook.headers || {});
  if (headerNames.length) settings.push(`headers: ${headerNames.join(", ")}`);

  const button = (text, action, className = "secondary") => {
    const node = el("button", { type: "button", class: className, text, "aria-describedby": titleId });
    node.addEventListener("click", () => action(node));
    return node;
  };
  const toggle = button("Disable", () => toggleEnabled(webhook, toggle, message));
  toggle.classList.add("toggle");
  const card = el("li", { class: "card webhook", "data-webhook": webhook.id },
    el("h3", { id: titleId },
      el("span", { class: "topic", text: webhook.topic }), " ",
      el("span", { class: "url mono", text: webhook.url })),
    el("p", { class: "muted", text: webhook.tags && webhook.tags.length
      ? `Tags: ${webhook.tags.join(", ")}` : "No tags: every event of the topic" }),
    settings.length ? el("p", { class: "muted", text: settings.join(" · ") }) : null,
    stateLine, healthLine,
    el("div", { class: "actions" },
      button("Deliveries", () => openDeliveries(webhook)),
      button("Send test event", (node) => sendTest(webhook, node, message), "primary"),
      button("Edit", () => editWebhook(webhook)),
      toggle,
      button("Rotate key", (node) => rotateKey(webhook, node, message)),
      button("Delete", () => deleteWebhook(webhook), "danger")),
    message);
  loadWebhookState(webhook, card);
  return card;
}

// The card's state, failure streak and last success, from GET .../state.
async function loadWebhookState(webhook, card) {
  const line = card.querySelector(".state");
  const toggle = card.querySelector(".toggle");
  const failing = card.querySelector(".failing");
  const last = card.querySelector(".last");
  try {
    const { data } = await call("GET", webhookPath(webhook, "/state"));
    webhook.enabled = data.enabled;
    line.replaceChildren(el("span", { class: data.enabled ? "badge ok" : "badge bad",
      text: data.enabled ? "Enabled" : "Disabled" }),
    data.enabled ? "" : ` since ${when(data.disabled_at)}: ${data.disabled_reason || "no reason given"}`);
    toggle.textContent = data.enabled ? "Disable" : "Enable";
    failing.textContent = data.failing_since === null ? ""
      : `Failing since ${when(data.failing_since)} (${elapsed(data.failing_since)}) · `;
    last.textContent = data.last_success_at === null ? "No successful delivery yet"
      : `Last success ${when(data.last_success_at)}`;
  } catch (error) {
    line.textContent = `State unknown: ${describe(error)}`;
    failing.textContent = "";
    last.textContent = "";
  }
}

async function busy(node, work) {
  node.disabled = true;
  try {
    return await work();
  } finally {
    node.disabled = false;
  }
}

async function createWebhook(event) {
  event.preventDefault();
  const form = event.currentTarget;
  const alert = form.querySelector(".alert");
  const submit = form.querySelector("button[type=submit]");
  show(alert, "");
  const body = { topic: $("create-topic").value, url: $("create-url").value.trim() };
  const tags = parseTags($("create-tags").value);
  if (tags) body.tags = tags;
  try {
    await busy(submit, () => call("POST", brandPath("/webhooks"), body));
  } catch (error) {
    show(alert, `Could not create the webhook: ${describe(error)}`, true);
    return;
  }
  form.reset();
  $("create-details").open = false;
  await loadWebhooks();
  $("webhooks-status").textContent = `Webhook created for ${body.url}. Send it a test event to check it.`;
}

async function toggleEnabled(webhook, node, message) {
  const enabled = webhook.enabled === false;
  try {
    await busy(node, () => call("PATCH", webhookPath(webhook), { enabled }));
    await loadWebhooks();
    $("webhooks-status").textContent = `Webhook ${enabled ? "enabled" : "disabled"}: ${webhook.url}`;
  } catch (error) {
    show(message, `Could not ${enabled ? "enable" : "disable"} it: ${describe(error)}`, true);
  }
}

async function sendTest(webhook, node, message) {
  try {
    const { data } = await busy(node, () => call("POST", webhookPath(webhook, "/test")));
    show(message, `Test event sent (delivery ${data.id}): follow it under Deliveries.`);
    await openDeliveries(webhook, false);
  } catch (error) {
    show(message, `Could not send a test event: ${describe(error)}`, true);
  }
}

// --- dialogs -------------------------------------------------------------------------------

// Buttons with a value close their dialog with it; the focus goes back where it was.
for (const dialog of document.querySelectorAll("dialog")) {
  dialog.addEventListener("click", (event) => {
    const button = event.target.closest("button[value], button[data-close]");
    if (button) dialog.close(button.value || "cancel");
  });
}

function ask(dialog) {
  const back = document.activeElement;
  dialog.returnValue = "";
  dialog.showModal();
  return new Promise((resolve) => {
    dialog.addEventListener("close", () => {
      if (back && document.contains(back)) back.focus();
      resolve(dialog.returnValue);
    }, { once: true });
  });
}

function editWebhook(webhook) {
  const dialog = $("edit-dialog");
  const form = $("edit-form");
  show(form.querySelector(".alert"), "");
  $("edit-topic").value = webhook.topic;
  $("edit-url").value = webhook.url;
  $("edit-tags").value = (webhook.tags || []).join(", ");
  $("edit-ordered").checked = Boolean(webhook.ordered);
  $("edit-rate").value = webhook.rate_limit || "";
  $("edit-headers").value = Object.entries(webhook.headers || {}).map(([k, v]) => `${k}: ${v}`).join("\n");
  form.dataset.webhook = webhook.id;
  ask(dialog);
}

async function saveWebhook(event) {
  event.preventDefault();
  const form = event.currentTarget;
  const alert = form.querySelector(".alert");
  const webhook = state.webhooks.find((w) => w.id === form.dataset.webhook);
  if (!webhook) return;
  let body;
  try {
    const rate = $("edit-rate").value.trim();
    body = {
      topic: $("edit-topic").value,
      url: $("edit-url").value.trim(),
      tags: parseTags($("edit-tags").value),
      ordered: $("edit-ordered").checked,
      rate_limit: rate === "" ? null : Number(rate),
      headers: parseHeaders($("edit-headers").value),
    };
  } catch (error) {
    show(alert, describe(error), true);
    return;
  }
  try {
    await busy(form.querySelector("button[type=submit]"), () => call("PATCH", webhookPath(webhook), body));
  } catch (error) {
    show(alert, `Could not save: ${describe(error)}`, true);
    return;
  }
  $("edit-dialog").close("saved");
  await loadWebhooks();
  $("webhooks-status").textContent = `Webhook saved: ${body.url}`;
  if (state.open && state.open.id === webhook.id) {
    state.open = state.webhooks.find((w) => w.id === webhook.id) || state.open;
    $("deliveries-webhook").textContent = `${state.open.topic} → ${state.open.url}`;
  }
}

async function deleteWebhook(webhook) {
  $("confirm-text").textContent =
    `The webhook to ${webhook.url} (${webhook.topic}) stops receiving events. Its deliveries stay listed. This cannot be undone.`;
  if (await ask($("confirm-dialog")) !== "confirm") return;
  try {
    await call("DELETE", webhookPath(webhook));
  } catch (error) {
    $("webhooks-status").textContent = `Could not delete the webhook: ${describe(error)}`;
    return;
  }
  if (state.open && state.open.id === webhook.id) closeDeliveries();
  await loadWebhooks();
  $("webhooks-status").textContent = `Webhook deleted: ${webhook.url}`;
}

async function rotateKey(webhook, node, message) {
  let data;
  try {
    ({ data } = await busy(node, () => call("POST", webhookPath(webhook, "/rotate"), {})));
  } catch (error) {
    show(message, `Could not rotate the key: ${describe(error)}`, true);
    return;
  }
  show(message, "Key rotated.");
  $("key-value").value = data.key;
  $("key-copied").textContent = "";
  await ask($("key-dialog"));
  $("key-value").value = "";  // shown once: gone from the page when the dialog closes
}

async function copyKey() {
  const input = $("key-value");
  try {
    await navigator.clipboard.writeText(input.value);
    $("key-copied").textContent = "Copied to the clipboard.";
  } catch {
    input.select();
    $("key-copied").textContent = "Selected: copy it with Ctrl+C (or ⌘C).";
  }
}

// --- deliveries ----------------------------------------------------------------------------

async function openDeliveries(webhook, focus = true) {
  state.open = webhook;
  $("deliveries").hidden = false;
  $("deliveries-webhook").textContent = `${webhook.topic} → ${webhook.url}`;
  show($("recover-result"), "");
  if (!$("recover-since").value) $("recover-since").value = localInput(Date.now() / 1000 - 86400);
  if (focus) $("deliveries-title").focus();
  await loadDeliveries();
}

function closeDeliveries() {
  state.open = null;
  state.deliveriesRun += 1;
  clearTimeout(state.pollTimer);
  $("deliveries").hidden = true;
  $("delivery-list").replaceChildren();
}

// A datetime-local value (local time, to the second) for Unix seconds, and back.
function localInput(seconds) {
  const date = new Date(seconds * 1000);
  const pad = (n) => String(n).padStart(2, "0");
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}T` +
    `${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())}`;
}

async function loadDeliveries() {
  const webhook = state.open;
  if (!webhook) return;
  const run = ++state.deliveriesRun;
  clearTimeout(state.pollTimer);
  const section = $("deliveries");
  const status = $("deliveries-status");
  const filter = $("delivery-status").value;
  section.setAttribute("aria-busy", "true");
  if (!$("delivery-list").childElementCount) status.textContent = "Loading deliveries…";
  let page;
  try {
    page = await call("GET", webhookPath(webhook, `/deliveries?limit=50${filter ? `&status=${filter}` : ""}`));
  } catch (error) {
    if (run === state.deliveriesRun) status.textContent = `Could not load the deliveries: ${describe(error)}`;
    return;
  } finally {
    section.removeAttribute("aria-busy");
  }
  if (run !== state.deliveriesRun) return;
  const deliveries = page.data;
  $("delivery-list").replaceChildren(...deliveries.map(deliveryCard));
  if (deliveries.length === 0) {
    status.textContent = filter
      ? `No ${filter} deliveries. Choose “all” to see every delivery.`
      : "No deliveries yet: use “Send test event” on the webhook to see one here.";
  } else {
    const total = page.info ? page.info.total : deliveries.length;
    status.textContent = total > deliveries.length
      ? `The newest ${deliveries.length} of ${total} deliveries` : `${total} deliver${total === 1 ? "y" : "ies"}`;
  }
  // While some are on their way, look again shortly; once all are settled, the webhook's card
  // catches up (its last success, or a disabling).
  if (deliveries.some((delivery) => delivery.state === "pending")) {
    state.pollTimer = setTimeout(loadDeliveries, 1000);
  } else {
    const card = document.querySelector(`li.webhook[data-webhook="${webhook.id}"]`);
    if (state.activity) state.activity.refresh();
    if (card) loadWebhookState(webhook, card);
  }
}

function deliveryCard(delivery) {
  const message = el("p", { class: "status", role: "status" });
  const redeliver = el("button", { type: "button", class: "secondary", text: "Redeliver",
    "aria-describedby": `delivery-${delivery.id}` });
  redeliver.addEventListener("click", async () => {
    try {
      await busy(redeliver, () => call("POST", brandPath(`/deliveries/${encodeURIComponent(delivery.id)}/redeliver`)));
      show(message, "Queued for a new attempt now.");
      await loadDeliveries();
    } catch (error) {
      show(message, `Could not redeliver: ${describe(error)}`, true);
    }
  });
  const pending = delivery.state === "pending" && delivery.next_attempt_at
    ? ` · next attempt ${when(delivery.next_attempt_at)}` : "";
  return el("li", { class: `card delivery ${delivery.state}`, "data-delivery": delivery.id },
    el("h3", { id: `delivery-${delivery.id}` },
      el("span", { class: `badge ${badgeClass(delivery.state)}`, text: delivery.state }), " ",
      `${delivery.topic} ${delivery.event_type}`),
    el("p", { class: "muted", text: `Created ${when(delivery.created_at)} · ${delivery.attempt_count} ` +
      `attempt${delivery.attempt_count === 1 ? "" : "s"}${pending}` }),
    el("p", { class: "muted mono wrap", text: `Delivery ${delivery.id} · event ${delivery.event}` }),
    delivery.attempts.length ? attemptsTable(delivery) : el("p", { class: "muted", text: "No attempt yet." }),
    el("div", { class: "actions" }, redeliver),
    message);
}

function badgeClass(deliveryState) {
  return { delivered: "ok", failed: "bad", pending: "wait", cancelled: "off" }[deliveryState] || "off";
}

function attemptsTable(delivery) {
  const rows = [...delivery.attempts].reverse().map((attempt) => {
    const ok = attempt.status !== null && attempt.status >= 200 && attempt.status < 300;
    const result = attempt.status !== null ? `HTTP ${attempt.status}` : `error: ${attempt.error}`;
    return el("tr", { class: ok ? "ok" : "bad" },
      el("td", { "data-label": "Attempt", text: String(attempt.number) }),
      el("td", { "data-label": "Time", text: when(attempt.started_at) }),
      el("td", { "data-label": "Result" }, el("span", { class: `badge ${ok ? "ok" : "bad"}`, text: result }),
        attempt.detail ? el("span", { class: "detail", text: ` ${attempt.detail}` }) : null),
      el("td", { "data-label": "Duration", text: `${attempt.duration_ms.toFixed(1)} ms` }),
      el("td", { "data-label": "Response" }, attempt.response
        ? el("pre", { class: "excerpt", text: attempt.response }) : el("span", { class: "muted", text: "(empty)" })));
  });
  return el("div", { class: "table-wrap" },
    el("table", { class: "attempts" },
      el("caption", { text: "Attempts, newest first" }),
      el("thead", {}, el("tr", {}, ...["#", "Time", "Result", "Duration", "Response"].map(
        (name) => el("th", { scope: "col", text: name })))),
      el("tbody", {}, ...rows)));
}

async function recover(event) {
  event.preventDefault();
  const webhook = state.open;
  const result = $("recover-result");
  const since = new Date($("recover-since").value).getTime() / 1000;
  if (!webhook) return;
  if (!Number.isFinite(since)) {
    show(result, "Give the moment to recover from.", true);
    return;
  }
  try {
    const { data } = await busy(event.currentTarget.querySelector("button"),
      () => call("POST", webhookPath(webhook, "/recover"), { since }));
    show(result, data.queued === 0
      ? `No failed delivery since ${when(since)}: nothing to send again.`
      : `Queued ${data.queued} failed deliver${data.queued === 1 ? "y" : "ies"} again.`);
    await loadDeliveries();
  } catch (error) {
    show(result, `Could not recover: ${describe(error)}`, true);
  }
}

// --- wiring --------------------------------------------------------------------------------

$("signin-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const input = $("token-input");
  const token = input.value.trim();
  input.value = "";
  if (!token) return;
  setToken(token);
  notice("");
  await signIn();
});
$("sign-out").addEventListener("click", () => signOut("Signed out. Open a portal link or paste a token to sign in again."));
$("brand-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const brand = $("brand-input").value.trim();
  if (brand) openBrand(brand);
});
$("brand-picker").addEventListener("change", (event) => openBrand(event.target.value, true));
$("refresh-webhooks").addEventListener("click", () => loadWebhooks());
$("create-form").addEventListener("submit", createWebhook);
$("edit-form").addEventListener("submit", saveWebhook);
$("key-copy").addEventListener("click", copyKey);
$("close-deliveries").addEventListener("click", closeDeliveries);
$("refresh-deliveries").addEventListener("click", () => loadDeliveries());
$("delivery-status").addEventListener("change", () => {
  $("delivery-list").replaceChildren();
  loadDeliveries();
});
$("recover-form").addEventListener("submit", recover);

for (const select of [$("create-topic"), $("edit-topic")]) {
  select.replaceChildren(...TOPICS.map((topic) => el("option", { value: topic, text: topic })));
}

if (getToken()) {
  signIn();
} else {
  showSignIn("");
}
