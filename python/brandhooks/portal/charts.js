// Charts of the portal's activity section: pure functions (gaps, ticks, stacking, labels) and
// two SVG builders. No library and no markup parsing: every text from the API (urls come from users)
// goes through textContent.

const SVG_NS = "http://www.w3.org/2000/svg";

// Outcome of an attempt, in stacking order (bottom first). Okabe-Ito colours (distinct for the
// common colour-vision deficiencies) and a pattern each, so that colour is never the only cue.
export const OUTCOMES = [
  { key: "succeeded", label: "Succeeded", colour: "#0072B2", pattern: "solid" },
  { key: "failed", label: "Failed", colour: "#E69F00", pattern: "hatch" },
  { key: "errors", label: "Errors", colour: "#CC79A7", pattern: "dots" },
];

// ---- pure functions ----------------------------------------------------------------------

/** Every bucket from `since` to `until` (exclusive), oldest first; the API lists only the
 *  buckets with attempts, the missing ones are zeros. */
export function fillMinutes(minutes, since, until, bucketSeconds = 60) {
  const byStart = new Map(minutes.map((m) => [m.at, m]));
  const filled = [];
  for (let at = since; at < until; at += bucketSeconds) {
    const m = byStart.get(at);
    filled.push({ at, succeeded: m?.succeeded ?? 0, failed: m?.failed ?? 0, errors: m?.errors ?? 0 });
  }
  return filled;
}

export const total = (row) => OUTCOMES.reduce((sum, o) => sum + (row[o.key] ?? 0), 0);

/** Sums of each outcome over `rows`, and their total. */
export function totals(rows) {
  const sums = { succeeded: 0, failed: 0, errors: 0 };
  for (const row of rows) for (const o of OUTCOMES) sums[o.key] += row[o.key] ?? 0;
  return { ...sums, attempts: total(sums) };
}

/** A row's segments, bottom up: [{key, y0, y1}] for the outcomes it has (none for zeros). */
export function stack(row) {
  const segments = [];
  let y = 0;
  for (const o of OUTCOMES) {
    const n = row[o.key] ?? 0;
    if (n > 0) segments.push({ key: o.key, y0: y, y1: y + n });
    y += n;
  }
  return segments;
}

/** The step of about `max / count`, rounded to 1, 2 or 5 times a power of ten. */
export function niceStep(max, count = 4, { integer = false } = {}) {
  const raw = max > 0 ? max / count : 1;
  const power = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((f) => f * power).find((s) => s >= raw);
  return integer ? Math.max(1, Math.round(step)) : step;
}

/** Ticks from 0 to the first step at or above `max` (at least one step). */
export function niceTicks(max, count = 4, options = {}) {
  const step = niceStep(max, count, options);
  const top = Math.max(step, Math.ceil(max / step - 1e-9) * step);
  const ticks = [];
  for (let i = 0; i * step <= top + step * 1e-9; i++) ticks.push(+(i * step).toPrecision(12));
  return ticks;
}

/** Time-axis ticks: local whole hours in [since, until], every `hours` hours (the fewest hours
 *  whose labels are at least `minGap` px apart on a `width`-px axis). */
export function hourTicks(since, until, width, minGap = 56) {
  const span = until - since;
  const hours = [1, 2, 3, 4, 6, 12, 24].find((h) => (width * h * 3600) / span >= minGap) ?? 24;
  const ticks = [];
  const start = new Date(since * 1000);
  start.setMinutes(0, 0, 0);
  for (let d = start; d.getTime() / 1000 <= until; d = new Date(d.getTime() + 3600e3)) {
    const t = d.getTime() / 1000;
    if (t >= since && d.getHours() % hours === 0) ticks.push(t);
  }
  return ticks;
}

const pad = (n) => String(n).padStart(2, "0");
/** "14:00" in the viewer's time zone. */
export const formatClock = (t) => {
  const d = new Date(t * 1000);
  return `${pad(d.getHours())}:${pad(d.getMinutes())}`;
};
/** "2026-11-29 14:03" in the viewer's time zone. */
export const formatMinute = (t) => {
  const d = new Date(t * 1000);
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${formatClock(t)}`;
};

/** "120 ms", "8.5 ms", "1.2 s". */
export function formatMs(ms) {
  if (ms >= 1000) return `${+(ms / 1000).toFixed(1)} s`;
  return ms < 10 ? `${+ms.toFixed(1)} ms` : `${Math.round(ms)} ms`;
}

export const plural = (n, one, many) => `${n} ${n === 1 ? one : many}`;

/** "312 attempts in 24 h: 300 succeeded, 10 failed, 2 errors". */
export function summary(sums, hours) {
  return `${plural(sums.attempts, "attempt", "attempts")} in ${hours} h: ${sums.succeeded} succeeded, ` +
    `${sums.failed} failed, ${plural(sums.errors, "error", "errors")}`;
}

/** `text` cut to at most `max` characters, an ellipsis in the middle (an url's host and its
 *  last path segment are what tell webhooks apart). */
export function truncateMiddle(text, max) {
  if (text.length <= max) return text;
  const keep = max - 1;
  const head = Math.ceil(keep / 2);
  return `${text.slice(0, head)}…${text.slice(text.length - (keep - head))}`;
}

// ---- DOM building (createElement/createElementNS and textContent only) --------------------

/** An HTML element: h("p", {className: "x"}, "text", child, ...). Properties, not markup. */
export function h(tag, props = {}, ...children) {
  const node = Object.assign(document.createElement(tag), props);
  node.append(...children.filter((c) => c !== null && c !== undefined));
  return node;
}

/** An SVG element with attributes; string children become text nodes. */
export function s(tag, attrs = {}, ...children) {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [name, value] of Object.entries(attrs)) node.setAttribute(name, String(value));
  node.append(...children.filter((c) => c !== null && c !== undefined));
  return node;
}

let uid = 0;

/** <pattern>s of the outcomes, ids unique in the page; returns {defs, fill(key)}. */
function outcomePatterns() {
  const prefix = `bh-outcome-${++uid}`;
  const defs = s("defs");
  for (const o of OUTCOMES) {
    const p = s("pattern", { id: `${prefix}-${o.key}`, width: 6, height: 6, patternUnits: "userSpaceOnUse" },
      s("rect", { width: 6, height: 6, fill: o.colour }));
    if (o.pattern === "hatch") p.append(s("path", { d: "M-1,1 l2,-2 M0,6 l6,-6 M5,7 l2,-2", stroke: "#000", "stroke-width": 1.2, "stroke-opacity": 0.55 }));
    if (o.pattern === "dots") p.append(s("circle", { cx: 3, cy: 3, r: 1.3, fill: "#000", "fill-opacity": 0.55 }));
    defs.append(p);
  }
  return { defs, fill: (key) => `url(#${prefix}-${key})` };
}

/** The legend: a swatch with the outcome's colour and pattern, its name and its count. */
export function legend(sums) {
  const { defs, fill } = outcomePatterns();
  const list = h("ul", { className: "activity-legend" });
  Object.assign(list.style, { display: "flex", flexWrap: "wrap", gap: "0.25rem 1rem", listStyle: "none", padding: "0", margin: "0.25rem 0" });
  OUTCOMES.forEach((o, i) => {
    const swatch = s("svg", { width: 14, height: 14, viewBox: "0 0 14 14", "aria-hidden": "true" },
      i === 0 ? defs : null,
      s("rect", { x: 0.5, y: 0.5, width: 13, height: 13, fill: fill(o.key), stroke: "currentColor" }));
    swatch.style.verticalAlign = "-2px";
    list.append(h("li", { className: `activity-legend-${o.key}` }, swatch, ` ${o.label}: ${sums[o.key]}`));
  });
  return list;
}

const FONT = { "font-size": 12, "font-family": "inherit", fill: "currentColor" };

/** Stacked bars of attempts per bucket. `rows` is the filled series (fillMinutes); returns
 *  {svg, at(x): the row index under viewBox x, cursor(index): a dashed line on that row}. */
export function attemptsChart(rows, { width, height = 220, bucketSeconds = 60, label }) {
  const m = { top: 10, right: 12, bottom: 26, left: 40 };
  const plotW = Math.max(1, width - m.left - m.right);
  const plotH = height - m.top - m.bottom;
  const since = rows.length ? rows[0].at : 0;
  const until = rows.length ? rows[rows.length - 1].at + bucketSeconds : bucketSeconds;
  const ticks = niceTicks(Math.max(0, ...rows.map(total)), 4, { integer: true });
  const top = ticks[ticks.length - 1];
  const y = (v) => m.top + plotH - (v / top) * plotH;
  const slot = plotW / Math.max(1, rows.length);
  const barW = Math.max(slot, 3); // a lone attempt stays visible at 1440 minutes on 375 px
  const x = (i) => m.left + i * slot + slot / 2;
  const { defs, fill } = outcomePatterns();

  const svg = s("svg", { viewBox: `0 0 ${width} ${height}`, width: "100%", role: "img", "aria-label": label, class: "activity-attempts" });
  svg.style.display = "block";
  svg.style.maxWidth = "100%";
  svg.append(defs);
  const axes = s("g", { "aria-hidden": "true" });
  for (const t of ticks) {
    axes.append(s("line", { x1: m.left, x2: m.left + plotW, y1: y(t), y2: y(t), stroke: "currentColor", "stroke-opacity": t ? 0.15 : 0.6 }),
      s("text", { ...FONT, x: m.left - 6, y: y(t), "text-anchor": "end", "dominant-baseline": "middle" }, String(t)));
  }
  for (const t of hourTicks(since, until, plotW)) {
    const tx = m.left + ((t - since) / (until - since)) * plotW;
    axes.append(s("line", { x1: tx, x2: tx, y1: m.top + plotH, y2: m.top + plotH + 4, stroke: "currentColor" }),
      s("text", { ...FONT, x: tx, y: height - 6, "text-anchor": "middle" }, formatClock(t)));
  }
  const bars = s("g", { class: "activity-bars" });
  rows.forEach((row, i) => {
    const segments = stack(row);
    if (!segments.length) return;
    const bar = s("g", { class: "activity-bar", "data-at": row.at });
    for (const seg of segments) {
      bar.append(s("rect", { x: x(i) - barW / 2, width: barW, y: y(seg.y1), height: y(seg.y0) - y(seg.y1), fill: fill(seg.key), "data-outcome": seg.key }));
    }
    bars.append(bar);
  });
  const cursorLine = s("line", { y1: m.top, y2: m.top + plotH, stroke: "currentColor", "stroke-dasharray": "3 2", visibility: "hidden" });
  svg.append(axes, bars, cursorLine);
  return {
    svg,
    at: (vx) => Math.min(rows.length - 1, Math.max(0, Math.floor((vx - m.left) / slot))),
    cursor(i) {
      cursorLine.setAttribute("x1", x(i));
      cursorLine.setAttribute("x2", x(i));
      cursorLine.setAttribute("visibility", "visible");
    },
  };
}

/** Horizontal p50/p99 bars per webhook, each row named by its url (truncated; the full url in
 *  a <title>); webhooks without attempts say so. `items`: [{url, p50_ms, p99_ms}]. */
export function latencyChart(items, { width, label }) {
  const m = { top: 8, right: 70, left: 8, bottom: 24 };
  const rowH = 52; // url line, p50 bar, p99 bar
  const plotW = Math.max(1, width - m.left - m.right - 30);
  const height = m.top + items.length * rowH + m.bottom;
  const ticks = niceTicks(Math.max(0, ...items.map((w) => w.p99_ms ?? 0), ...items.map((w) => w.p50_ms ?? 0)), 4);
  const top = ticks[ticks.length - 1];
  const x0 = m.left + 30;
  const x = (v) => x0 + (v / top) * plotW;
  const chars = Math.max(16, Math.floor((width - m.left - m.right) / 7));

  const svg = s("svg", { viewBox: `0 0 ${width} ${height}`, width: "100%", role: "img", "aria-label": label, class: "activity-latency" });
  svg.style.display = "block";
  svg.style.maxWidth = "100%";
  const axes = s("g", { "aria-hidden": "true" });
  for (const t of ticks) {
    // Grid lines beside the bars only, not across the url above them.
    items.forEach((_, i) => axes.append(s("line", { x1: x(t), x2: x(t), y1: m.top + i * rowH + 16, y2: m.top + (i + 1) * rowH,
      stroke: "currentColor", "stroke-opacity": t ? 0.15 : 0.6 })));
    axes.append(s("text", { ...FONT, x: x(t), y: height - 6, "text-anchor": "middle" }, t ? formatMs(t) : "0"));
  }
  svg.append(axes);
  items.forEach((w, i) => {
    const y = m.top + i * rowH;
    const row = s("g", { class: "activity-latency-row" },
      s("text", { ...FONT, x: m.left, y: y + 12, "font-weight": "bold", class: "activity-url" },
        s("title", {}, w.url), truncateMiddle(w.url, chars)));
    if (w.p50_ms === null || w.p50_ms === undefined) {
      row.append(s("text", { ...FONT, x: x0, y: y + 32, "font-style": "italic", class: "activity-none" }, "no attempts"));
    } else {
      [["p50", w.p50_ms, "#56B4E9", 18], ["p99", w.p99_ms, "#0072B2", 34]].forEach(([name, value, colour, dy]) => {
        row.append(s("text", { ...FONT, x: x0 - 4, y: y + dy + 6, "text-anchor": "end", "dominant-baseline": "middle" }, name),
          s("rect", { x: x0, y: y + dy, width: Math.max(1, x(value) - x0), height: 12, fill: colour, class: `activity-${name}` }),
          s("text", { ...FONT, x: x(value) + 4, y: y + dy + 6, "dominant-baseline": "middle" }, formatMs(value)));
      });
    }
    svg.append(row);
  });
  return svg;
}

/** A table: caption, header cells and rows of cell texts (all via textContent), the first
 *  cell of a row its header. In a box that scrolls sideways when the screen is narrower. */
export function table(caption, headers, rows, footer = null) {
  const row = (texts) => h("tr", {}, ...texts.map((text, i) => {
    const cell = h(i ? "td" : "th", { textContent: String(text) });
    if (i) cell.style.whiteSpace = "nowrap";
    else {
      cell.scope = "row";
      Object.assign(cell.style, { overflowWrap: "anywhere", minWidth: "10em" }); // a long url wraps
    }
    return cell;
  }));
  const box = h("div", { className: "activity-table", tabIndex: 0 },
    h("table", {},
      h("caption", { textContent: caption }),
      h("thead", {}, h("tr", {}, ...headers.map((text) => h("th", { textContent: text, scope: "col" })))),
      h("tbody", {}, ...rows.map(row)),
      footer ? h("tfoot", {}, row(footer)) : null));
  box.setAttribute("role", "region");
  box.setAttribute("aria-label", caption);
  box.style.overflowX = "auto";
  return box;
}
