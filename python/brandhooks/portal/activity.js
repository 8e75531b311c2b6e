// The portal's activity section: attempts per minute by outcome over the last 24 hours, and
// p50/p99 attempt latency per webhook, from GET /brands/{id}/delivery-stats.
import {
  attemptsChart, fillMinutes, formatMinute, formatMs, h, latencyChart, legend, plural, summary, table, total, totals,
} from "./charts.js";

const EMPTY = "No delivery attempts in the last 24 hours: send a test event from a webhook to see one here";

/** Fills `element` and returns {refresh(): Promise<void>}. `api(method, path)` is api.js's
 *  (answers {data}, throws ApiError {http, code, message}); `webhooks` are the page's webhook
 *  records (their urls name the latency rows). */
export async function mountActivity(element, { api, brand, webhooks = [] }) {
  const heading = h("h2", { textContent: "Activity", id: `activity-heading-${brand}` });
  const refreshButton = h("button", { type: "button", textContent: "Refresh activity", className: "activity-refresh" });
  const status = h("p", { className: "activity-status", role: "status" });
  const body = h("div", { className: "activity-body" });
  element.replaceChildren(heading, refreshButton, status, body);
  element.setAttribute("aria-labelledby", heading.id);

  let stats = null; // the last answer, redrawn when the width changes
  let generation = 0; // only the newest refresh() draws

  let drawnWidth = 0;
  function draw() {
    if (!stats) return;
    drawnWidth = body.clientWidth; // the section's content box (without its padding)
    const open = [...body.querySelectorAll("details")].map((d) => d.open); // kept across redraws
    body.replaceChildren(...render(stats, webhooks, Math.max(300, Math.round(drawnWidth || 640))));
    body.querySelectorAll("details").forEach((d, i) => { d.open = open[i] ?? false; });
  }

  async function refresh() {
    const mine = ++generation;
    element.setAttribute("aria-busy", "true");
    status.textContent = "Loading delivery activity…";
    refreshButton.disabled = true;
    try {
      const { data } = await api("GET", `/brands/${encodeURIComponent(brand)}/delivery-stats`);
      if (mine !== generation) return;
      stats = data;
      status.textContent = "";
      draw();
    } catch (error) {
      if (mine !== generation) return;
      stats = null;
      status.textContent = "";
      const code = error.code ? ` (${error.code})` : "";
      body.replaceChildren(h("p", { className: "activity-error", role: "alert",
        textContent: `Could not load the delivery activity: ${error.message}${code}` }));
    } finally {
      if (mine === generation) {
        element.removeAttribute("aria-busy");
        refreshButton.disabled = false;
      }
    }
  }

  refreshButton.addEventListener("click", () => refresh());
  // Labels keep their pixel size: the charts are drawn for the width they get.
  const observer = new ResizeObserver(() => {
    if (!body.isConnected) observer.disconnect(); // the page mounted the section afresh
    else if (Math.abs(body.clientWidth - drawnWidth) > 24) draw();
  });
  observer.observe(body);

  await refresh();
  return { refresh };
}

/** The section's content for one answer of delivery-stats, drawn `width` px wide. */
export function render(stats, webhooks, width) {
  const rows = fillMinutes(stats.minutes, stats.since, stats.until, stats.bucket_seconds);
  const sums = totals(stats.minutes);
  if (sums.attempts === 0) return [h("p", { className: "activity-empty", textContent: EMPTY })];
  const hours = Math.round((stats.until - stats.since) / 3600);
  return [
    ...attemptsSection(rows, stats, sums, hours, width),
    ...latencySection(stats.webhooks, webhooks, width),
  ];
}

function attemptsSection(rows, stats, sums, hours, width) {
  const label = summary(sums, hours);
  const chart = attemptsChart(rows, { width, bucketSeconds: stats.bucket_seconds, label });
  const readout = h("p", { className: "activity-readout", textContent: "Point at or tap the chart, or focus it and use the arrow keys, to read a minute." });
  readout.setAttribute("aria-live", "polite");

  // One readout for the pointer and the keyboard; the arrow keys step through the minutes with
  // attempts (Home/End: the first/last of them).
  const busy = rows.flatMap((row, i) => (total(row) ? [i] : []));
  let current = null;
  const show = (i) => {
    current = i;
    chart.cursor(i);
    const r = rows[i];
    readout.textContent = total(r)
      ? `${formatMinute(r.at)}: ${r.succeeded} succeeded, ${r.failed} failed, ${plural(r.errors, "error", "errors")}`
      : `${formatMinute(r.at)}: no attempts`;
  };
  chart.svg.setAttribute("tabindex", "0");
  const keys = {
    ArrowRight: () => busy.find((i) => i > (current ?? -1)) ?? current,
    ArrowLeft: () => busy.findLast((i) => i < (current ?? rows.length)) ?? current,
    Home: () => busy[0],
    End: () => busy.at(-1),
  };
  chart.svg.addEventListener("keydown", (event) => {
    if (!Object.hasOwn(keys, event.key)) return;
    event.preventDefault();
    show(keys[event.key]());
  });
  chart.svg.addEventListener("focus", () => current === null && show(busy[0]));
  for (const type of ["pointermove", "pointerdown"]) { // a mouse, or a finger on a phone
    chart.svg.addEventListener(type, (event) => {
      const box = chart.svg.getBoundingClientRect();
      show(chart.at(((event.clientX - box.left) / box.width) * chart.svg.viewBox.baseVal.width));
    });
  }

  const busyRows = busy.map((i) => rows[i]);
  const numbers = h("details", { className: "activity-numbers" },
    h("summary", { textContent: `Attempts per minute: the ${plural(busyRows.length, "minute", "minutes")} with attempts` }),
    table(`Attempts per minute (last ${hours} h)`, ["Minute", "Succeeded", "Failed", "Errors", "Total"],
      busyRows.map((r) => [formatMinute(r.at), r.succeeded, r.failed, r.errors, total(r)]),
      ["Total", sums.succeeded, sums.failed, sums.errors, sums.attempts]));
  return [
    h("h3", { textContent: `Attempts per minute, last ${hours} hours` }),
    legend(sums), chart.svg, readout, numbers,
  ];
}

function latencySection(statRows, webhooks, width) {
  const urls = new Map(webhooks.map((w) => [w.id, w.url]));
  const items = statRows.map((w) => ({ ...w, url: urls.get(w.webhook) ?? w.webhook }));
  if (!items.length) return [];
  const label = `Attempt latency per webhook: ` + items.map((w) => (w.p50_ms === null
    ? `${w.url} no attempts`
    : `${w.url} p50 ${formatMs(w.p50_ms)}, p99 ${formatMs(w.p99_ms)}`)).join("; ");
  const ms = (v) => (v === null ? "–" : formatMs(v));
  return [
    h("h3", { textContent: "Attempt latency per webhook (p50 and p99)" }),
    latencyChart(items, { width, label }),
    h("details", { className: "activity-numbers" },
      h("summary", { textContent: "Latency per webhook: the numbers" }),
      table("Attempt latency per webhook", ["Webhook", "Attempts", "Succeeded", "Failed", "Errors", "p50", "p99"],
        items.map((w) => [w.url, w.attempts, w.succeeded, w.failed, w.errors, ms(w.p50_ms), ms(w.p99_ms)]))),
  ];
}
