"""Fixtures of the portal's browser tests: a real `brandhooks serve`, a real loopback receiver
the test can make fail, and Debian's Chromium driven by Playwright (never a downloaded browser).

This directory is a package (it has an __init__.py) so that this conftest does not take the
module name `conftest` from tests/python/conftest.py, which the other tests import."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Iterator, List

import pytest

from conftest import Server
from receivers import Receiver

CHROMIUM = Path("/usr/bin/chromium")
ROOT = Path(__file__).resolve().parents[3]
SCREENSHOTS = ROOT / "build" / "portal-screenshots"
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 375, "height": 800}

sync_api = pytest.importorskip("playwright.sync_api", reason="the [test] extra installs playwright")
# Generous waits: deliveries go through a real dispatcher on a shared 2-core machine.
sync_api.expect.set_options(timeout=15_000)


@pytest.fixture(scope="package")
def portal_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One server for the browser tests: loopback receivers allowed, a single attempt per
    delivery (a failure is final at once, so that `recover` has something to queue)."""
    server = Server(tmp_path_factory.mktemp("portal") / "portal.db", "--allow-private",
                    "--retry-schedule", "0", "--retry-jitter", "0").start()
    yield server
    server.stop()


class SwitchableReceiver(Receiver):
    """A loopback receiver that answers `status` (200 until the test says otherwise), with
    `body` when one is set."""

    def __init__(self) -> None:
        self.status = 200
        self.body: bytes | None = None
        super().__init__(lambda n: (self.status, {"Content-Type": "text/html"}, self.body)
                         if self.body is not None else self.status)


@pytest.fixture()
def receiver() -> Iterator[SwitchableReceiver]:
    with SwitchableReceiver() as switchable:
        yield switchable


# Package scope, not session: Playwright's sync API keeps an asyncio loop running in the main
# thread while it is open, and the suites after this package call asyncio.run().
@pytest.fixture(scope="package")
def browser() -> Iterator[Any]:
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: `make test` installs Debian's chromium and chromium-driver")
    with sync_api.sync_playwright() as playwright:
        # --no-sandbox: the tests may run as root (CI, the fresh chroot), where Chromium's
        # sandbox refuses to start.
        instance = playwright.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        yield instance
        instance.close()


class Problems:
    """What went wrong in the page: uncaught errors, console errors (a CSP violation is one),
    and any dialog a script opened (an injected alert())."""

    def __init__(self) -> None:
        self.messages: List[str] = []


@pytest.fixture()
def problems() -> Problems:
    return Problems()


@pytest.fixture()
def page(browser: Any, problems: Problems) -> Iterator[Any]:
    context = browser.new_context(viewport=DESKTOP)
    context.set_default_timeout(15_000)
    page = context.new_page()
    page.on("pageerror", lambda error: problems.messages.append(f"page error: {error}"))
    # An answer of 4xx is logged as "Failed to load resource": the tests provoke those.
    page.on("console", lambda message: message.type == "error" and "Failed to load resource" not in message.text
            and problems.messages.append(f"console error: {message.text}"))

    def dialog(d: Any) -> None:
        problems.messages.append(f"a script opened a {d.type} dialog: {d.message}")
        d.dismiss()

    page.on("dialog", dialog)
    yield page
    context.close()


Screenshot = Callable[[str], None]


@pytest.fixture()
def screenshot(page: Any) -> Screenshot:
    """screenshot(name): the page as it is, at 1280 px and at 375 px, into build/portal-screenshots/."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)

    def take(name: str) -> None:
        for size in (DESKTOP, PHONE):
            page.set_viewport_size(size)
            page.screenshot(path=str(SCREENSHOTS / f"{name}-{size['width']}.png"), full_page=True)
            if size is PHONE:
                # Nothing sticks out sideways at 375 px (a long url, a table, a dialog).
                width = page.evaluate("document.documentElement.scrollWidth")
                assert width <= PHONE["width"], f"{name}: the page is {width} px wide at 375 px"
        page.set_viewport_size(DESKTOP)

    return take
