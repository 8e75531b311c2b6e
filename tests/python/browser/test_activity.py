"""The portal's activity section (portal/charts.js, portal/activity.js) in Debian's Chromium.

The module tests load the two modules, as the browser gets them, from a loopback page that
serves python/brandhooks/portal, and mount the section with an `api` function that answers a
given delivery-stats record (or error): they check what the section draws from the numbers.
The last test draws real attempts of a real `brandhooks serve` through the portal's api.js.
"""

from __future__ import annotations

import functools
import http.server
import threading
import time
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional

import pytest

from conftest import Server, free_port
from receivers import Receiver, wait_until

PORTAL = Path(__file__).resolve().parents[3] / "python" / "brandhooks" / "portal"
SCREENSHOTS = Path(__file__).resolve().parents[3] / "build" / "portal-screenshots"

HARNESS = b"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>activity</title><link rel="icon" href="data:,"><style>body { font-family: sans-serif; margin: 0; padding: 8px; }</style></head>
<body><main><section id="activity"></section></main>
<script type="module">
import * as charts from "/portal/charts.js";
import { mountActivity } from "/portal/activity.js";
window.charts = charts;
// mount(answer): mounts the section with an api that answers `window.answer`
// ({data} or {error: {http, code, message}}), held back while window.hold is set.
window.mount = async (answer, brand, webhooks) => {
  window.answer = answer;
  window.calls = [];
  const api = async (method, path) => {
    window.calls.push([method, path]);
    if (window.hold) await new Promise((resolve) => { window.release = resolve; });
    if (window.answer.error) throw Object.assign(new Error(window.answer.error.message), window.answer.error);
    return { data: window.answer.data, info: null };
  };
  window.handle = await mountActivity(document.getElementById("activity"), { api, brand, webhooks });
};
window.ready = true;
</script></body></html>
"""

BRAND = "0b7e5d0c-3f7a-4f55-9d7e-2b1c3a4d5e6f"
UNTIL = 1_796_000_040  # a minute boundary (UTC), the end of the current minute
SINCE = UNTIL - 24 * 3600
WEBHOOKS = [
    {"id": "11111111-1111-4111-8111-111111111111", "url": "https://hooks.example.com/brandhooks/receiver/deals"},
    {"id": "22222222-2222-4222-8222-222222222222",
     "url": "https://a-very-long-host-name.integrations.example.org/" + "path/that/goes/on/" * 10 + "showings?x=1"},
    {"id": "33333333-3333-4333-8333-333333333333", "url": "https://idle.example.net/never"},
]
# 312 attempts: 300 succeeded, 10 failed, 2 errors, in five minutes.
MINUTES = [
    {"at": SINCE + 60 * 5, "succeeded": 100, "failed": 0, "errors": 0},
    {"at": SINCE + 60 * 300, "succeeded": 90, "failed": 5, "errors": 1},
    {"at": SINCE + 60 * 301, "succeeded": 0, "failed": 3, "errors": 0},
    {"at": SINCE + 60 * 1000, "succeeded": 60, "failed": 2, "errors": 0},
    {"at": UNTIL - 60, "succeeded": 50, "failed": 0, "errors": 1},
]


def stats(minutes: List[Dict[str, int]] = MINUTES, webhooks: Optional[List[Dict[str, Any]]] = None) -> Dict[str, Any]:
    if webhooks is None:
        webhooks = [
            {"webhook": WEBHOOKS[0]["id"], "attempts": 250, "succeeded": 245, "failed": 4, "errors": 1,
             "p50_ms": 42.0, "p99_ms": 310.5},
            {"webhook": WEBHOOKS[1]["id"], "attempts": 62, "succeeded": 55, "failed": 6, "errors": 1,
             "p50_ms": 120.0, "p99_ms": 2400.0},
            {"webhook": WEBHOOKS[2]["id"], "attempts": 0, "succeeded": 0, "failed": 0, "errors": 0,
             "p50_ms": None, "p99_ms": None},
        ]
    return {"since": SINCE, "until": UNTIL, "bucket_seconds": 60, "minutes": minutes, "webhooks": webhooks}


class PortalFiles(http.server.SimpleHTTPRequestHandler):
    """/portal/<file> from the source tree, /harness the page above."""

    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True

    def do_GET(self) -> None:  # noqa: N802 (http.server naming)
        if self.path == "/harness":
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(HARNESS)))
            self.end_headers()
            self.wfile.write(HARNESS)
        elif self.path.startswith("/portal/"):
            self.path = self.path[len("/portal"):]
            super().do_GET()
        else:
            self.send_error(404)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def files_url() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0),
                                             functools.partial(PortalFiles, directory=str(PORTAL)))
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def open_page(browser: Any, files_url: str, problems: Any, width: int = 1280) -> Any:
    """The harness page in the viewer's time zone UTC (the times shown are then known)."""
    context = browser.new_context(viewport={"width": width, "height": 900}, timezone_id="UTC")
    page = context.new_page()
    page.on("pageerror", lambda error: problems.messages.append(f"page error: {error}"))
    page.on("console", lambda message: message.type == "error" and problems.messages.append(message.text))
    page.goto(files_url + "/harness")
    page.wait_for_function("window.ready === true")
    return page


@pytest.fixture()
def harness(browser: Any, files_url: str, problems: Any) -> Iterator[Any]:
    page = open_page(browser, files_url, problems)
    yield page
    page.context.close()
    assert problems.messages == []


def mount(harness: Any, answer: Dict[str, Any], webhooks: List[Dict[str, str]] = WEBHOOKS) -> None:
    harness.evaluate("([a, b, w]) => window.mount(a, b, w)", [answer, BRAND, webhooks])


def table_rows(harness: Any, index: int = 0) -> List[List[str]]:
    return harness.evaluate(
        """(i) => [...document.querySelectorAll('#activity table')[i].tBodies[0].rows]
                   .map(r => [...r.cells].map(c => c.textContent))""", index)


# --- the pure functions --------------------------------------------------------------------

def test_pure_functions(harness: Any) -> None:
    result = harness.evaluate("""() => {
      const c = window.charts;
      const filled = c.fillMinutes([{at: 120, succeeded: 2, failed: 1, errors: 0}], 0, 300, 60);
      return {
        filled,
        ticks312: c.niceTicks(312, 4, {integer: true}),
        ticks7: c.niceTicks(7, 4, {integer: true}),
        ticks1: c.niceTicks(1, 4, {integer: true}),
        ticks0: c.niceTicks(0, 4, {integer: true}),
        ticksMs: c.niceTicks(2400, 4),
        ticksSmall: c.niceTicks(0.7, 4),
        stack: c.stack({succeeded: 3, failed: 0, errors: 2}),
        totals: c.totals([{succeeded: 3, failed: 1, errors: 0}, {succeeded: 1, failed: 0, errors: 2}]),
        summary: c.summary({attempts: 312, succeeded: 300, failed: 10, errors: 2}, 24),
        summaryOne: c.summary({attempts: 1, succeeded: 0, failed: 0, errors: 1}, 1),
        cut: c.truncateMiddle("https://hooks.example.com/a/very/long/path", 20),
        short: c.truncateMiddle("https://x.io/", 20),
        hoursWide: c.hourTicks(86400 * 100 + 1800, 86400 * 101 + 1800, 1200).map(c.formatClock),
        hoursNarrow: c.hourTicks(86400 * 100 + 1800, 86400 * 101 + 1800, 300).map(c.formatClock),
        ms: [c.formatMs(8.25), c.formatMs(42.4), c.formatMs(2400)],
      };
    }""")
    assert result["filled"] == [
        {"at": 0, "succeeded": 0, "failed": 0, "errors": 0},
        {"at": 60, "succeeded": 0, "failed": 0, "errors": 0},
        {"at": 120, "succeeded": 2, "failed": 1, "errors": 0},
        {"at": 180, "succeeded": 0, "failed": 0, "errors": 0},
        {"at": 240, "succeeded": 0, "failed": 0, "errors": 0},
    ]
    assert result["ticks312"] == [0, 100, 200, 300, 400]
    assert result["ticks7"] == [0, 2, 4, 6, 8]
    assert result["ticks1"] == [0, 1]
    assert result["ticks0"] == [0, 1]
    assert result["ticksMs"] == [0, 1000, 2000, 3000]
    assert result["ticksSmall"] == [0, 0.2, 0.4, 0.6, 0.8]
    assert result["stack"] == [{"key": "succeeded", "y0": 0, "y1": 3}, {"key": "errors", "y0": 3, "y1": 5}]
    assert result["totals"] == {"succeeded": 4, "failed": 1, "errors": 2, "attempts": 7}
    assert result["summary"] == "312 attempts in 24 h: 300 succeeded, 10 failed, 2 errors"
    assert result["summaryOne"] == "1 attempt in 1 h: 0 succeeded, 0 failed, 1 error"
    assert result["cut"] == "https://ho…long/path" and len(result["cut"]) == 20
    assert result["short"] == "https://x.io/"
    # 24 h from 00:30 UTC: whole hours only, every 2 h on 1200 px, every 6 h on 300 px.
    assert result["hoursWide"] == [f"{h:02d}:00" for h in range(2, 24, 2)] + ["00:00"]
    assert result["hoursNarrow"] == ["06:00", "12:00", "18:00", "00:00"]
    assert result["ms"] == ["8.3 ms", "42 ms", "2.4 s"]


# --- the section -----------------------------------------------------------------------------

def test_attempts_chart_draws_the_numbers(harness: Any) -> None:
    mount(harness, {"data": stats()})
    assert harness.evaluate("window.calls") == [["GET", f"/brands/{BRAND}/delivery-stats"]]
    chart = harness.locator("#activity svg.activity-attempts")
    assert chart.get_attribute("role") == "img"
    assert chart.get_attribute("aria-label") == "312 attempts in 24 h: 300 succeeded, 10 failed, 2 errors"

    # One stacked bar per minute with attempts, one segment per outcome it has, at its minute.
    bars = harness.evaluate("""() => [...document.querySelectorAll('#activity .activity-bar')].map(g => ({
        at: +g.dataset.at,
        segments: [...g.querySelectorAll('rect')].map(r => ({outcome: r.dataset.outcome,
            x: +r.getAttribute('x'), y: +r.getAttribute('y'), height: +r.getAttribute('height')}))}))""")
    assert [b["at"] for b in bars] == [m["at"] for m in MINUTES]
    for bar, minute in zip(bars, MINUTES):
        assert [s["outcome"] for s in bar["segments"]] == [k for k in ("succeeded", "failed", "errors") if minute[k]]
        # Stacked: each segment sits on the one below it, and its height is its count.
        for below, above in zip(bar["segments"], bar["segments"][1:]):
            assert above["y"] + above["height"] == pytest.approx(below["y"])
        for segment in bar["segments"]:
            px_per_attempt = segment["height"] / minute[segment["outcome"]]
            assert px_per_attempt == pytest.approx(bars[0]["segments"][0]["height"] / 100)
    # Bars in time order, the gaps (empty minutes) kept as space: x grows with the minute.
    xs = [b["segments"][0]["x"] for b in bars]
    assert xs == sorted(xs)
    assert (xs[2] - xs[1]) * 699 == pytest.approx(xs[3] - xs[2], rel=0.01)
    # A y axis from 0 to 100 (the tallest bar) in nice steps, hours on the time axis.
    texts = harness.evaluate("() => [...document.querySelectorAll('#activity svg.activity-attempts text')].map(t => t.textContent)")
    assert texts[:4] == ["0", "50", "100", "150"] or texts[:3] == ["0", "50", "100"]
    assert "12:00" in texts and all(t.endswith(":00") for t in texts if ":" in t)

    legend = harness.locator("#activity .activity-legend li").all_text_contents()
    assert [t.strip() for t in legend] == ["Succeeded: 300", "Failed: 10", "Errors: 2"]

    # The numbers behind it: the minutes with attempts, each with its total, and the sums.
    assert table_rows(harness) == [
        ["2026-11-29 00:59", "100", "0", "0", "100"],
        ["2026-11-29 05:54", "90", "5", "1", "96"],
        ["2026-11-29 05:55", "0", "3", "0", "3"],
        ["2026-11-29 17:34", "60", "2", "0", "62"],
        ["2026-11-30 00:53", "50", "0", "1", "51"],
    ]
    footer = harness.evaluate("() => [...document.querySelector('#activity table tfoot tr').cells].map(c => c.textContent)")
    assert footer == ["Total", "300", "10", "2", "312"]


def test_latency_chart(harness: Any) -> None:
    mount(harness, {"data": stats()})
    chart = harness.locator("#activity svg.activity-latency")
    assert chart.get_attribute("role") == "img"
    label = chart.get_attribute("aria-label")
    assert label == (f"Attempt latency per webhook: {WEBHOOKS[0]['url']} p50 42 ms, p99 311 ms; "
                     f"{WEBHOOKS[1]['url']} p50 120 ms, p99 2.4 s; {WEBHOOKS[2]['url']} no attempts")
    rows = harness.evaluate("""() => [...document.querySelectorAll('#activity .activity-latency-row')].map(g => ({
        title: g.querySelector('.activity-url title').textContent,
        shown: g.querySelector('.activity-url').lastChild.textContent,
        none: g.querySelector('.activity-none')?.textContent ?? null,
        p50: +(g.querySelector('.activity-p50')?.getAttribute('width') ?? -1),
        p99: +(g.querySelector('.activity-p99')?.getAttribute('width') ?? -1)}))""")
    assert [r["title"] for r in rows] == [w["url"] for w in WEBHOOKS]
    assert rows[0]["shown"] == WEBHOOKS[0]["url"]
    assert "…" in rows[1]["shown"] and len(rows[1]["shown"]) < len(WEBHOOKS[1]["url"])
    assert rows[1]["shown"].startswith("https://a-very") and rows[1]["shown"].endswith("showings?x=1")
    assert [r["none"] for r in rows] == [None, None, "no attempts"]
    # Bar lengths in proportion to the milliseconds.
    assert rows[0]["p99"] / rows[0]["p50"] == pytest.approx(310.5 / 42, rel=0.02)
    assert rows[1]["p99"] / rows[0]["p99"] == pytest.approx(2400 / 310.5, rel=0.02)
    assert rows[2]["p50"] == rows[2]["p99"] == -1
    assert table_rows(harness, 1) == [
        [WEBHOOKS[0]["url"], "250", "245", "4", "1", "42 ms", "311 ms"],
        [WEBHOOKS[1]["url"], "62", "55", "6", "1", "120 ms", "2.4 s"],
        [WEBHOOKS[2]["url"], "0", "0", "0", "0", "–", "–"],
    ]


def test_a_webhook_the_page_does_not_know_is_named_by_its_id(harness: Any) -> None:
    mount(harness, {"data": stats()}, webhooks=WEBHOOKS[:1])
    titles = harness.locator("#activity .activity-url title").all_text_contents()
    assert titles == [WEBHOOKS[0]["url"], WEBHOOKS[1]["id"], WEBHOOKS[2]["id"]]


def test_empty_state(harness: Any) -> None:
    mount(harness, {"data": stats(minutes=[])})
    assert harness.locator("#activity .activity-empty").text_content() == (
        "No delivery attempts in the last 24 hours: send a test event from a webhook to see one here")
    assert harness.locator("#activity svg[role=img]").count() == 0
    assert harness.locator("#activity table").count() == 0


def test_api_error_is_shown(harness: Any) -> None:
    mount(harness, {"error": {"http": 403, "code": "AccessForbidden", "message": "this token does not reach that brand"}})
    alert = harness.locator("#activity [role=alert]")
    assert alert.text_content() == ("Could not load the delivery activity: this token does not reach that brand"
                                    " (AccessForbidden)")
    assert harness.locator("#activity svg[role=img]").count() == 0
    assert harness.locator("#activity").get_attribute("aria-busy") is None


def test_loading_state_then_refresh(harness: Any) -> None:
    harness.evaluate("window.hold = true")
    harness.evaluate("([a, b, w]) => { window.mount(a, b, w); }", [{"data": stats()}, BRAND, WEBHOOKS])
    harness.wait_for_function("typeof window.release === 'function'")
    assert harness.locator("#activity [role=status]").text_content() == "Loading delivery activity…"
    assert harness.locator("#activity").get_attribute("aria-busy") == "true"
    assert harness.locator("#activity .activity-refresh").is_disabled()
    harness.evaluate("window.hold = false; window.release()")
    harness.wait_for_function("window.handle !== undefined")
    assert harness.locator("#activity [role=status]").text_content() == ""
    assert harness.locator("#activity .activity-bar").count() == 5

    # refresh() asks again and draws the new answer; an error after data replaces the charts.
    harness.evaluate("(a) => { window.answer = a; return window.handle.refresh(); }",
                  {"data": stats(minutes=MINUTES[:2])})
    assert harness.locator("#activity .activity-bar").count() == 2
    assert harness.locator("#activity svg.activity-attempts").get_attribute("aria-label") == (
        "196 attempts in 24 h: 190 succeeded, 5 failed, 1 error")
    harness.evaluate("(a) => { window.answer = a; }", {"error": {"http": 0, "code": "Network", "message": "Failed to fetch"}})
    harness.locator("#activity .activity-refresh").click()
    harness.wait_for_selector("#activity [role=alert]")
    assert harness.locator("#activity .activity-bar").count() == 0
    assert len(harness.evaluate("window.calls")) == 3


def test_hostile_url_is_text(harness: Any) -> None:
    hostile = 'https://evil.example/<img src=x onerror="window.pwned=1">/<script>window.pwned=2</script>'
    webhooks = [{"id": WEBHOOKS[0]["id"], "url": hostile}]
    mount(harness, {"data": stats(webhooks=[{"webhook": WEBHOOKS[0]["id"], "attempts": 1, "succeeded": 1, "failed": 0,
                                          "errors": 0, "p50_ms": 5.0, "p99_ms": 5.0}])}, webhooks=webhooks)
    harness.locator("#activity details").nth(1).locator("summary").click()
    assert harness.locator("#activity .activity-url title").text_content() == hostile
    assert harness.locator("#activity table").nth(1).locator("tbody th").text_content() == hostile
    assert harness.locator("#activity img, #activity script").count() == 0
    assert harness.evaluate("window.pwned") is None


def test_keyboard_and_pointer_read_a_minute(harness: Any) -> None:
    mount(harness, {"data": stats()})
    harness.keyboard.press("Tab")  # the refresh button
    assert harness.evaluate("document.activeElement.textContent") == "Refresh activity"
    harness.keyboard.press("Tab")  # the chart
    assert harness.evaluate("document.activeElement.getAttribute('class')") == "activity-attempts"
    readout = harness.locator("#activity .activity-readout")
    assert readout.text_content() == "2026-11-29 00:59: 100 succeeded, 0 failed, 0 errors"
    harness.keyboard.press("ArrowRight")
    assert readout.text_content() == "2026-11-29 05:54: 90 succeeded, 5 failed, 1 error"
    harness.keyboard.press("End")
    assert readout.text_content() == "2026-11-30 00:53: 50 succeeded, 0 failed, 1 error"
    harness.keyboard.press("ArrowRight")  # stays on the last
    assert readout.text_content() == "2026-11-30 00:53: 50 succeeded, 0 failed, 1 error"
    harness.keyboard.press("ArrowLeft")
    assert readout.text_content() == "2026-11-29 17:34: 60 succeeded, 2 failed, 0 errors"
    # The pointer reads the minute under it.
    box = harness.locator("#activity .activity-bar >> nth=3").bounding_box()
    harness.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] - 1)
    assert readout.text_content() == "2026-11-29 17:34: 60 succeeded, 2 failed, 0 errors"
    harness.keyboard.press("Tab")  # the first <details>
    assert harness.evaluate("document.activeElement.tagName") == "SUMMARY"
    harness.keyboard.press("Enter")
    assert harness.locator("#activity details").first.get_attribute("open") is not None


@pytest.mark.parametrize("width", [1280, 375])
def test_layout_and_screenshots(browser: Any, files_url: str, problems: Any, width: int) -> None:
    page = open_page(browser, files_url, problems, width)
    try:
        mount(page, {"data": stats()})
        # Drawn for the width it has (labels keep their size), nothing wider than the screen.
        geometry = page.evaluate("""() => {
            const svg = document.querySelector('#activity svg.activity-attempts');
            const label = [...svg.querySelectorAll('text')].find(t => t.textContent === '12:00');
            return {viewBox: svg.viewBox.baseVal.width, shown: svg.getBoundingClientRect().width,
                    labelHeight: label.getBoundingClientRect().height,
                    scrollWidth: document.scrollingElement.scrollWidth};
        }""")
        assert geometry["scrollWidth"] <= width
        assert geometry["viewBox"] == pytest.approx(geometry["shown"], abs=2)
        assert geometry["labelHeight"] >= 11
        # Each url fits in its chart (long ones cut in the middle).
        overflow = page.evaluate("""() => {
            const svg = document.querySelector('#activity svg.activity-latency').getBoundingClientRect();
            return [...document.querySelectorAll('#activity .activity-url')]
                .filter(t => t.getBoundingClientRect().right > svg.right + 1).map(t => t.textContent);
        }""")
        assert overflow == []
        for details in page.locator("#activity details summary").all():
            details.click()
        # The tables too: a long url wraps.
        assert page.evaluate("document.scrollingElement.scrollWidth") <= width
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / f"activity-{width}.png"), full_page=True)
        assert problems.messages == []
    finally:
        page.context.close()


def test_redraws_when_the_width_changes(browser: Any, files_url: str, problems: Any) -> None:
    page = open_page(browser, files_url, problems)
    try:
        mount(page, {"data": stats()})
        wide = page.evaluate("document.querySelector('#activity svg.activity-attempts').viewBox.baseVal.width")
        page.locator("#activity details summary").first.click()
        page.set_viewport_size({"width": 375, "height": 900})
        page.wait_for_function(
            "document.querySelector('#activity svg.activity-attempts').viewBox.baseVal.width < 400")
        narrow = page.evaluate("document.querySelector('#activity svg.activity-attempts').viewBox.baseVal.width")
        assert wide > 1000 and narrow < 400
        assert page.locator("#activity .activity-bar").count() == 5
        # A redraw keeps what the reader opened.
        assert page.evaluate("[...document.querySelectorAll('#activity details')].map(d => d.open)") == [True, False]
        # Mounted again in the same element (the page does so for another brand): only the new
        # section draws, on later resizes too.
        mount(page, {"data": stats(minutes=MINUTES[:2])})
        page.set_viewport_size({"width": 1280, "height": 900})
        page.wait_for_function(
            "document.querySelector('#activity svg.activity-attempts').viewBox.baseVal.width > 1000")
        assert page.locator("#activity .activity-bar").count() == 2
        assert page.locator("#activity h2").count() == 1
    finally:
        page.context.close()


def test_no_markup_from_data_in_the_modules() -> None:
    # The modules build the DOM from elements and text only (urls come from users).
    for name in ("charts.js", "activity.js"):
        source = (PORTAL / name).read_text()
        for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval("):
            assert sink not in source, f"{name} uses {sink}"


# --- against a real server -------------------------------------------------------------------

def test_charts_of_real_attempts(portal_server: Server, browser: Any, problems: Any, brand: str) -> None:
    """Real attempts (2xx, 500, connection refused) through a real `brandhooks serve`, drawn by
    the modules the server serves, called through the portal's own api.js with a brand token."""
    hostile = 'https://idle.example/"><img/src=x/onerror=window.pwned=1>'
    with Receiver() as ok, Receiver(lambda n: 500) as failing, portal_server.client() as admin:
        def create(url: str) -> Dict[str, Any]:
            answer = admin.post(f"/brands/{brand}/webhooks", json={"topic": "Deals", "url": url})
            assert answer.status_code == 200, answer.text
            return answer.json()["data"]

        def send(hook: Dict[str, Any], times: int) -> None:
            for _ in range(times):
                answer = admin.post(f"/brands/{brand}/webhooks/{hook['id']}/test")
                assert answer.status_code == 202, answer.text
                ids.append(answer.json()["data"]["id"])

        def settled() -> bool:
            states = [admin.get(f"/brands/{brand}/deliveries/{i}").json()["data"]["state"] for i in ids]
            return all(state in ("delivered", "failed") for state in states)

        ids: List[str] = []
        hooks = [create(ok.url("/ok")), create(failing.url("/fail")),
                 create(f"http://127.0.0.1:{free_port()}/refused"), create(hostile)]
        send(hooks[0], 3)
        send(hooks[1], 2)
        send(hooks[2], 1)
        wait_until(settled, timeout=30)
        expected = admin.get(f"/brands/{brand}/delivery-stats").json()["data"]
        token = admin.post("/tokens", json={"brand": brand, "label": "activity test"}).json()["data"]

        context = browser.new_context(viewport={"width": 1280, "height": 900}, timezone_id="UTC")
        page = context.new_page()
        page.on("pageerror", lambda error: problems.messages.append(f"page error: {error}"))
        # A CSP violation is a console error; the 401 at the end is "Failed to load resource".
        page.on("console", lambda message: message.type == "error" and "Failed to load resource" not in message.text
                and problems.messages.append(message.text))
        try:
            page.goto(portal_server.url + "/portal")
            page.evaluate("""async ([token, brand, webhooks]) => {
                const { api, setToken } = await import("/portal/api.js");
                const { mountActivity } = await import("/portal/activity.js");
                setToken(token);
                const section = document.createElement("section");
                section.id = "activity-e2e";
                document.querySelector("main").prepend(section);
                window.handle = await mountActivity(section, { api, brand, webhooks });
            }""", [token["token"], brand, hooks])
            section = page.locator("#activity-e2e")
            summary_label = "6 attempts in 24 h: 3 succeeded, 2 failed, 1 error"
            assert section.locator("svg.activity-attempts").get_attribute("aria-label") == summary_label
            assert section.locator(".activity-bar").count() == len(expected["minutes"]) >= 1
            footer = page.evaluate("() => [...document.querySelector('#activity-e2e table tfoot tr').cells].map(c => c.textContent)")
            assert footer == ["Total", "3", "2", "1", "6"]
            minutes = page.evaluate("""() => [...document.querySelector('#activity-e2e table').tBodies[0].rows]
                                       .map(r => [...r.cells].map(c => c.textContent))""")
            assert [[int(n) for n in row[1:]] for row in minutes] == [
                [m["succeeded"], m["failed"], m["errors"], m["succeeded"] + m["failed"] + m["errors"]]
                for m in expected["minutes"]]
            assert [row[0] for row in minutes] == [
                time.strftime("%Y-%m-%d %H:%M", time.gmtime(m["at"])) for m in expected["minutes"]]

            latency = page.evaluate("""() => [...document.querySelectorAll('#activity-e2e table')[1].tBodies[0].rows]
                                       .map(r => [...r.cells].map(c => c.textContent))""")
            assert [row[:5] for row in latency] == [
                [hooks[0]["url"], "3", "3", "0", "0"], [hooks[1]["url"], "2", "0", "2", "0"],
                [hooks[2]["url"], "1", "0", "0", "1"], [hostile, "0", "0", "0", "0"]]
            assert all(row[5].endswith("ms") or row[5].endswith(" s") for row in latency[:3])
            assert latency[3][5:] == ["–", "–"]
            assert section.locator(".activity-none").all_text_contents() == ["no attempts"]
            assert section.locator("img").count() == 0 and page.evaluate("window.pwned") is None

            # refresh() shows a new attempt; a revoked token's 401 is shown from the envelope.
            send(hooks[0], 1)
            wait_until(settled, timeout=30)
            page.evaluate("window.handle.refresh()")
            assert section.locator("svg.activity-attempts").get_attribute("aria-label") == (
                "7 attempts in 24 h: 4 succeeded, 2 failed, 1 error")
            SCREENSHOTS.mkdir(parents=True, exist_ok=True)
            for width in (1280, 375):
                page.set_viewport_size({"width": width, "height": 900})
                # Redrawn for its width (wait_for_function evaluates a string: the portal's CSP forbids it).
                wait_until(lambda: page.evaluate("""() => {
                    const svg = document.querySelector('#activity-e2e svg.activity-attempts');
                    return Math.abs(svg.viewBox.baseVal.width - svg.getBoundingClientRect().width) <= 24;
                }"""))
                assert page.evaluate("document.documentElement.scrollWidth") <= width
                section.screenshot(path=str(SCREENSHOTS / f"activity-real-{width}.png"))
            assert admin.delete(f"/tokens/{token['id']}").status_code == 204
            page.evaluate("window.handle.refresh()")
            alert = section.locator("[role=alert]").text_content()
            assert alert.startswith("Could not load the delivery activity: ") and alert.endswith("(UnauthorizedAccess)")
            assert section.locator("svg").count() == 0
        finally:
            context.close()
    assert problems.messages == []
