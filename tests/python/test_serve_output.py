"""What `brandhooks serve` tells: its banner, one log line per delivery attempt (never a
secret), a useful `GET /`, and CLI tables with readable times."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import uuid
from typing import Dict, List

import pytest

from brandhooks import Config, Hub, ValidationError
from conftest import Server, brandhooks_cmd
from receivers import Receiver, wait_until


def log_lines(output: str, log_format: str = "logfmt") -> List[Dict[str, str]]:
    """The core's lines (time=... level=... msg=... key=value ...), or with --log-format json
    every line (each one JSON object), their values as text either way and keys in order."""
    if log_format == "json":
        return [{key: str(value) for key, value in json.loads(line).items()} for line in output.splitlines()]
    return [dict(token.split("=", 1) for token in shlex.split(line))
            for line in output.splitlines() if line.startswith("time=")]


def test_banner_says_address_database_and_delivery_settings(tmp_path):
    server = Server(tmp_path / "b.db", "--allow-private", "--retry-schedule", "0,2s,5s").start()
    server.stop()
    out = server.output
    assert f"serving http://127.0.0.1:{server.port}" in out
    assert re.search(r"database\s+" + re.escape(str((tmp_path / "b.db").resolve())), out)
    assert re.search(r"delivery\s+on, retry schedule 0,2s,5s", out)
    assert re.search(r"private addresses\s+allowed", out)

    strict = Server(tmp_path / "s.db", "--no-deliver").start()
    strict.stop()
    assert re.search(r"private addresses\s+blocked \(use --allow-private", strict.output)
    assert re.search(r"delivery\s+off", strict.output)


@pytest.mark.parametrize("log_format", ["logfmt", "json"])
def test_a_log_line_per_attempt_with_ids_and_no_secret(tmp_path, log_format):
    """The same lines with the same fields, in the same order, in both formats (logfmt is the
    default: no flag)."""
    flags = ["--log-format", "json"] if log_format == "json" else []
    server = Server(tmp_path / "log.db", "--allow-private", "--retry-schedule", "0,100ms", "--retry-jitter", "0",
                    "--log-level", "info", *flags).start()
    brand = str(uuid.uuid4())
    try:
        with Receiver() as healthy, Receiver(lambda n: 500) as broken, server.client() as api:
            ok_url = healthy.url("/ok")
            good = api.post(f"/brands/{brand}/webhooks", json={"topic": "Deals", "url": ok_url}).json()["data"]
            bad = api.post(f"/brands/{brand}/webhooks", json={"topic": "Showings", "url": broken.url()}).json()["data"]
            for topic in ("Deals", "Showings"):
                api.post(f"/brands/{brand}/events", json={"topic": topic, "event": "Created", "payload": {}})
            wait_until(lambda: len([line for line in log_lines(server.output, log_format)
                                    if line.get("brand") == brand]) == 3)
            signatures = [r.headers["webhook-signature"] for r in healthy.requests + broken.requests]
            delivery_ids = {hook["id"]: api.get(f"/brands/{brand}/webhooks/{hook['id']}/deliveries").json()["data"][0]["id"]
                            for hook in (good, bad)}
    finally:
        server.stop()

    lines = [line for line in log_lines(server.output, log_format) if line.get("brand") == brand]
    delivered = [line for line in lines if line["webhook"] == good["id"]]
    failing = [line for line in lines if line["webhook"] == bad["id"]]
    assert len(delivered) == 1 and len(failing) == 2
    line = delivered[0]
    assert list(line) == ["time", "level", "msg", "delivery", "webhook", "brand", "attempt", "state", "status",
                          "duration_ms"]
    assert (line["level"], line["msg"], line["state"], line["status"], line["attempt"]) == \
        ("info", "delivered", "delivered", "200", "1")
    assert line["delivery"] == delivery_ids[good["id"]] and int(line["duration_ms"]) >= 0
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", line["time"])

    retry, final = sorted(failing, key=lambda line: line["attempt"])
    assert (retry["level"], retry["state"], retry["attempt"], retry["status"]) == ("info", "pending", "1", "500")
    assert "next_attempt_at" in retry and retry["delivery"] == delivery_ids[bad["id"]]
    assert (final["level"], final["state"], final["attempt"], final["msg"]) == \
        ("warning", "failed", "2", "delivery failed for good")
    assert "next_attempt_at" not in final
    assert list(retry) == ["time", "level", "msg", "delivery", "webhook", "brand", "attempt", "state", "status",
                           "duration_ms", "next_attempt_at"]

    for secret in [good["key"], bad["key"], *signatures, server.admin_token]:
        assert secret not in server.output
    if log_format == "json":
        # Every line is one JSON object: the banner, uvicorn's lines (the requests among them),
        # up to the shutdown.
        objects = [json.loads(line) for line in server.output.splitlines()]
        assert all(list(o)[:3] == ["time", "level", "msg"] for o in objects)
        serving = [o for o in objects if o["msg"] == "serving"]
        assert len(serving) == 1 and serving[0]["url"] == server.url and serving[0]["node"]
        requests = [o for o in objects if o["msg"] == "request"]
        assert {"client", "method", "path", "http_version", "status"} <= set(requests[0])
        assert any(o["method"] == "POST" and o["path"] == f"/brands/{brand}/events" and o["status"] == 202
                   for o in requests)
        assert any(o["msg"] == "Finished server process [%d]" % server.proc.pid for o in objects)


def test_json_logs_never_print_a_secret_and_startup_errors_are_json(tmp_path):
    db = tmp_path / "first.db"
    server = Server(db, "--log-format", "json", admin_token=None).start()  # a first start: no token yet
    server.stop()
    objects = [json.loads(line) for line in server.output.splitlines()]
    assert [o["level"] for o in objects if "token" in o["msg"]] == ["warning"]
    hub = Hub(Config(db=str(db)))
    assert not hub.has_tokens(), "no token made, since none could be shown"

    env = {**os.environ, "BRANDHOOKS_LOG_FORMAT": "json"}
    out = subprocess.run(brandhooks_cmd("serve", "--db", str(tmp_path / "missing" / "x.db")), env=env,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 1
    errors = [json.loads(line) for line in out.stderr.splitlines()]
    assert len(errors) == 1 and errors[0]["level"] == "error" and errors[0]["msg"], out.stderr


def test_library_default_is_quiet_and_levels_are_checked():
    assert Config().log_level == "warning"  # a Hub in a program logs only deliveries failed for good
    assert Config().log_format == "logfmt"
    with pytest.raises(ValidationError, match="log_level"):
        Hub(Config(db=":memory:", log_level="loud"))
    with pytest.raises(ValidationError, match="log_format"):
        Hub(Config(db=":memory:", log_format="xml"))


def test_warning_level_hides_successes(tmp_path):
    server = Server(tmp_path / "quiet.db", "--allow-private", "--retry-schedule", "0").start()  # --log-level warning
    brand = str(uuid.uuid4())
    try:
        with Receiver() as healthy, Receiver(lambda n: 503) as broken, server.client() as api:
            for topic, url in (("Deals", healthy.url()), ("Showings", broken.url())):
                api.post(f"/brands/{brand}/webhooks", json={"topic": topic, "url": url})
                api.post(f"/brands/{brand}/events", json={"topic": topic, "event": "Created", "payload": {}})
            wait_until(lambda: any(line.get("brand") == brand for line in log_lines(server.output)))
            healthy.wait_for(1)
    finally:
        server.stop()
    lines = [line for line in log_lines(server.output) if line.get("brand") == brand]
    assert [(line["level"], line["state"], line["status"]) for line in lines] == [("warning", "failed", "503")]


def test_root_leads_to_the_docs(server):
    with server.client(token=None) as anonymous:
        browser = anonymous.get("/", headers={"Accept": "text/html,application/xhtml+xml"})
        assert browser.status_code == 307 and browser.headers["location"] == "/docs"
        index = anonymous.get("/").json()
        assert index["code"] == "OK" and index["data"]["docs"] == "/docs"
        assert anonymous.get(index["data"]["openapi"]).status_code == 200
        portal = anonymous.get(index["data"]["portal"])
        assert portal.status_code == 200 and portal.headers["content-type"].startswith("text/html")


def test_cli_tables_show_local_iso_times_and_json_keeps_numbers(tmp_path):
    db = str(tmp_path / "t.db")
    brand = str(uuid.uuid4())
    env = {**os.environ, "TZ": "XYZ-5:30"}  # a POSIX zone 5 h 30 east of UTC, no tzdata needed

    def cli(*args: str) -> str:
        return subprocess.run(brandhooks_cmd(*args, "--db", db), capture_output=True, text=True, env=env,
                              check=True, timeout=60).stdout

    created = json.loads(cli("webhooks", "create", brand, "Deals", "https://example.com/a", "--json"))
    assert isinstance(created["created_at"], float)
    table = cli("webhooks", "list", brand)
    assert re.search(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+05:30", table), table
    assert str(int(created["created_at"])) not in table
