"""The alert rules (deploy/prometheus/brandhooks-alerts.yml, docs/operations.md "Alerts"):
promtool checks them and runs their unit tests (tests/prometheus/), every alert has a case that
fires and one that stays quiet, every metric they read is served by a real `brandhooks serve`
on both backends, and the metrics they need answer when the database does not."""

from __future__ import annotations

import re
import shutil
import sqlite3
import subprocess
import time
import uuid
from pathlib import Path
from typing import Dict, FrozenSet, Set, Tuple

import httpx
import yaml
from prometheus_client.parser import text_string_to_metric_families

from conftest import PgServer, Server
from receivers import wait_until

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "deploy" / "prometheus" / "brandhooks-alerts.yml"
RULE_TESTS = ROOT / "tests" / "prometheus" / "brandhooks-alerts.test.yml"

Samples = Dict[Tuple[str, FrozenSet[Tuple[str, str]]], float]


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    tool = shutil.which("promtool")
    assert tool, "promtool is missing: it comes with Debian's prometheus package (`make test` installs it)"
    return subprocess.run([tool, *args], capture_output=True, text=True, timeout=120)


def alert_rules() -> Dict[str, str]:
    """Each alert's name and expression."""
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return {rule["alert"]: rule["expr"] for group in groups for rule in group["rules"] if "alert" in rule}


def scrape(client: httpx.Client) -> Tuple[Samples, Set[str]]:
    """The /metrics samples by (name, labels), and every name it declares (# TYPE lines: a
    family without samples yet, such as a labelled counter before its first event, counts)."""
    response = client.get("/metrics")
    assert response.status_code == 200, response.text
    samples: Samples = {}
    declared = set(re.findall(r"^# TYPE (\S+) ", response.text, re.MULTILINE))
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
            declared.add(sample.name)
    return samples, declared


def value(samples: Samples, name: str, **labels: str) -> float:
    key = (name, frozenset(labels.items()))
    assert key in samples, f"{name}{labels} missing from /metrics"
    return samples[key]


def names(samples: Samples) -> Set[str]:
    return {name for name, _ in samples}


# --- the rules themselves ------------------------------------------------------------------------

def test_promtool_checks_the_rules() -> None:
    out = promtool("check", "rules", str(RULES))
    assert out.returncode == 0, out.stdout + out.stderr
    assert f"SUCCESS: {len(alert_rules())} rules found" in out.stdout


def test_promtool_runs_the_rules_unit_tests() -> None:
    out = promtool("test", "rules", str(RULE_TESTS))
    assert out.returncode == 0, out.stdout + out.stderr
    assert "SUCCESS" in out.stdout


def test_every_alert_has_a_case_that_fires_and_one_that_stays_quiet() -> None:
    cases = [case for test in yaml.safe_load(RULE_TESTS.read_text())["tests"] for case in test["alert_rule_test"]]
    for alert in alert_rules():
        mine = [case for case in cases if case["alertname"] == alert]
        assert any(case["exp_alerts"] for case in mine), f"{alert}: no unit test where it fires"
        assert any(not case["exp_alerts"] for case in mine), f"{alert}: no unit test where it stays quiet"


# --- the rules against a real server ------------------------------------------------------------

def test_every_metric_the_rules_read_is_served(server: Server, brand: str) -> None:
    """On each backend: every brandhooks_* name an alert reads is declared by a real /metrics, and
    the labels the alerts group by or show are on the samples."""
    with server.client() as api:
        # A webhook on loopback, which the server refuses to reach (no --allow-private): its
        # first attempt fails, so a failure streak starts.
        hook = api.post(f"/brands/{brand}/webhooks", json={"topic": "Deals", "url": "http://127.0.0.1:9/x"})
        assert hook.status_code == 200, hook.text
        assert api.post(f"/brands/{brand}/events",
                        json={"topic": "Deals", "event": "Created", "payload": {}}).status_code == 202

        def failing() -> bool:
            return any(name == "brandhooks_longest_failing_webhook_seconds" for name in names(scrape(api)[0]))

        wait_until(failing, timeout=30, interval=0.1)
        samples, declared = scrape(api)
    used = {name for expr in alert_rules().values() for name in re.findall(r"\bbrandhooks_[a-z0-9_]+", expr)}
    assert used, "the rules read brandhooks metrics"
    assert used <= declared, f"read by the rules but not served: {sorted(used - declared)}"
    assert value(samples, "brandhooks_database_up") == 1
    requests = [dict(labels) for name, labels in samples if name == "brandhooks_http_requests_total"]
    assert requests and all(set(labels) == {"method", "route", "status"} for labels in requests)
    failing_labels = [dict(labels) for name, labels in samples if name == "brandhooks_longest_failing_webhook_seconds"]
    assert len(failing_labels) == 1 and set(failing_labels[0]) == {"brand", "webhook"}


def test_responses_are_counted_by_route_template_method_and_status(server: Server, brand: str) -> None:
    other = str(uuid.uuid4())
    with server.client() as api, server.client(token="not-a-token") as stranger:
        before, _ = scrape(api)

        def count(samples: Samples, method: str, route: str, status: str) -> float:
            return samples.get(("brandhooks_http_requests_total",
                                frozenset({"method": method, "route": route, "status": status}.items())), 0)

        for owner in (brand, other):  # two brands, one series: ids never become labels
            assert api.get(f"/brands/{owner}/webhooks").status_code == 200
        event = {"topic": "Deals", "event": "Created", "payload": {}}
        assert api.post(f"/brands/{brand}/events", json=event).status_code == 202  # the fast path
        assert api.post(f"/brands/{brand}/events", json={"topic": "Nope"}).status_code == 400
        assert stranger.get(f"/brands/{brand}/webhooks").status_code == 401
        assert api.get(f"/brands/{brand}/webhooks/{uuid.uuid4()}/deliveries").status_code == 404
        assert api.get("/no/such/path").status_code == 404
        assert api.request("PURGE", "/healthz").status_code == 405
        after, _ = scrape(api)
    expected = [("GET", "/brands/{brand}/webhooks", "200", 2),
                ("POST", "/brands/{brand}/events", "202", 1),
                ("POST", "/brands/{brand}/events", "400", 1),
                ("GET", "/brands/{brand}/webhooks", "401", 1),
                ("GET", "/brands/{brand}/webhooks/{webhook_id}/deliveries", "404", 1),
                ("GET", "unmatched", "404", 1),
                ("other", "/healthz", "405", 1),
                ("GET", "/metrics", "200", 1)]  # the first scrape
    for method, route, status, n in expected:
        assert count(after, method, route, status) - count(before, method, route, status) == n, (method, route, status)
    assert not any(brand in dict(labels).get("route", "") for _, labels in after)


# --- the database-unavailable alert can fire while the database is down ---------------------------

def test_metrics_answer_while_postgresql_is_down(own_pg_server: PgServer, tmp_path: Path) -> None:
    server = Server(own_pg_server.create_database(), log_path=tmp_path / "serve.log").start()
    brand = str(uuid.uuid4())
    try:
        with server.client() as api:
            revoked = api.post("/tokens", json={"label": "revoked scraper"}).json()["data"]
            never_scraped = api.post("/tokens", json={"label": "never scraped"}).json()["data"]
            with server.client(token=revoked["token"]) as scraper:
                assert scrape(scraper)[0]  # verified in the store once
            assert api.delete(f"/tokens/{revoked['id']}").status_code == 204
            with server.client(token=revoked["token"]) as scraper:
                assert scraper.get("/metrics").status_code == 401  # the store refuses it: forgotten
            up, _ = scrape(api)
            assert value(up, "brandhooks_database_up") == 1
            assert "brandhooks_queue_depth" in names(up)

            own_pg_server.stop(remove=False)
            try:
                down, declared = scrape(api)  # the admin token this node verified before
                assert value(down, "brandhooks_database_up") == 0
                # What the store would say is absent, not a false zero; the node's own counters stay.
                assert not names(down) & {"brandhooks_queue_depth", "brandhooks_oldest_due_age_seconds",
                                          "brandhooks_deliveries", "brandhooks_webhooks"}
                assert value(down, "brandhooks_attempts_total") >= 0
                # A token this node never verified, or one the store refused, cannot be checked now.
                for token in (never_scraped["token"], revoked["token"], "not-a-token"):
                    with server.client(token=token) as other:
                        answer = other.get("/metrics")
                        assert answer.status_code == 503 and answer.json()["code"] == "Unavailable", answer.text
                publish = api.post(f"/brands/{brand}/events", json={"topic": "Deals", "event": "Created", "payload": {}})
                assert publish.status_code == 503
                counted, _ = scrape(api)
                assert value(counted, "brandhooks_http_requests_total",
                             method="POST", route="/brands/{brand}/events", status="503") == 1
            finally:
                own_pg_server.start()
            wait_until(lambda: value(scrape(api)[0], "brandhooks_database_up") == 1, timeout=60, interval=0.2)
    finally:
        server.stop()
    assert "Traceback" not in server.output


def test_metrics_say_a_locked_sqlite_database_is_down(tmp_path: Path) -> None:
    db = tmp_path / "locked.db"
    server = Server(db, "--busy-timeout-ms", "200").start()
    try:
        with server.client() as api:
            assert value(scrape(api)[0], "brandhooks_database_up") == 1
            holder = sqlite3.connect(db, isolation_level=None)
            try:
                holder.execute("BEGIN IMMEDIATE")  # another process holds the write lock
                started = time.monotonic()
                down, _ = scrape(api)
                assert value(down, "brandhooks_database_up") == 0
                assert "brandhooks_queue_depth" not in names(down)
                assert time.monotonic() - started < 10
            finally:
                holder.execute("ROLLBACK")
                holder.close()
            assert value(scrape(api)[0], "brandhooks_database_up") == 1
    finally:
        server.stop()
