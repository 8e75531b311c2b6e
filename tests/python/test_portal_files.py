"""GET /portal and its files: served from the package by `brandhooks serve`, with headers that
keep the page to its own files, and nothing else of the package reachable."""

from __future__ import annotations

import http.client
import json
from pathlib import Path
from typing import Iterator

import httpx
import pytest

import brandhooks
from conftest import Server

PORTAL = Path(brandhooks.__file__).parent / "portal"


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    server = Server(tmp_path_factory.mktemp("portal-files") / "files.db").start()
    yield server
    server.stop()


@pytest.mark.parametrize("path, content_type, file", [
    ("/portal", "text/html; charset=utf-8", "index.html"),
    ("/portal/index.html", "text/html; charset=utf-8", "index.html"),
    ("/portal/app.js", "text/javascript; charset=utf-8", "app.js"),
    ("/portal/api.js", "text/javascript; charset=utf-8", "api.js"),
    ("/portal/style.css", "text/css; charset=utf-8", "style.css"),
])
def test_portal_files_are_served_with_strict_headers(served: Server, path: str, content_type: str, file: str) -> None:
    answer = httpx.get(served.url + path)  # no token: the page and its files are public
    assert answer.status_code == 200
    assert answer.headers["content-type"] == content_type
    assert answer.content == (PORTAL / file).read_bytes()  # the installed package's own file
    csp = answer.headers["content-security-policy"]
    assert "default-src 'none'" in csp and "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
    assert answer.headers["referrer-policy"] == "no-referrer"
    assert answer.headers["x-frame-options"] == "DENY"
    assert answer.headers["x-content-type-options"] == "nosniff"
    assert answer.headers["cache-control"] == "no-cache"


def test_the_page_has_no_inline_script_or_style() -> None:
    """The CSP refuses inline code: everything must come from the portal's own files."""
    html = (PORTAL / "index.html").read_text()
    assert "<script>" not in html and " on" + "click=" not in html and "style=" not in html
    assert 'src="/portal/app.js"' in html


@pytest.mark.parametrize("path", [
    "/portal/cli.py", "/portal/__init__.py", "/portal/..%2fcli.py", "/portal/%2e%2e%2f%2e%2e%2fVERSION",
    "/portal/..", "/portal/.hidden.js", "/portal/missing.js", "/portal/app.js%00.js", "/portal/APP.JS",
    "/portal/sub/app.js",
])
def test_nothing_else_is_reachable(served: Server, path: str) -> None:
    # http.client sends the path exactly as written (httpx would resolve the dots first).
    connection = http.client.HTTPConnection("127.0.0.1", served.port, timeout=10)
    try:
        connection.request("GET", path)
        answer = connection.getresponse()
        assert answer.status == 404
        assert json.loads(answer.read())["code"] == "ResourceNotFound"
    finally:
        connection.close()


def test_the_portal_is_outside_the_openapi_schema(served: Server) -> None:
    paths = httpx.get(served.url + "/openapi.json").json()["paths"]
    assert not [path for path in paths if path.startswith("/portal")]
