"""docs/operator-notebook.ipynb runs from top to bottom against a real server, so it cannot rot."""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path

import nbformat
from nbclient import NotebookClient

from conftest import ADMIN_TOKEN, Server
from receivers import Receiver, wait_until

NOTEBOOK = Path(__file__).resolve().parents[2] / "docs" / "operator-notebook.ipynb"


def test_operator_notebook_recovers_a_failing_endpoint(tmp_path, monkeypatch):
    server = Server(tmp_path / "nb.db", "--allow-private", "--retry-schedule", "0").start()
    brand = str(uuid.uuid4())
    try:
        with Receiver(lambda n: (500, {}, b"database is down")) as broken, Receiver() as healthy, \
                server.client() as api:
            ok_hook = api.post(f"/brands/{brand}/webhooks", json={"topic": "Deals", "url": healthy.url("/ok")}).json()
            hook = api.post(f"/brands/{brand}/webhooks", json={"topic": "Showings", "url": broken.url()}).json()["data"]
            events = [api.post(f"/brands/{brand}/events", json={"topic": "Showings", "event": "Booked",
                                                                 "payload": {"n": i}}).json()["data"]["id"]
                      for i in range(3)]
            path = f"/brands/{brand}/webhooks/{hook['id']}/deliveries"
            wait_until(lambda: api.get(path, params={"status": "failed"}).json()["info"]["total"] == 3)
            assert ok_hook["code"] == "OK"

            monkeypatch.setenv("BRANDHOOKS_URL", server.url)
            monkeypatch.setenv("BRANDHOOKS_TOKEN", ADMIN_TOKEN)
            monkeypatch.setenv("BRANDHOOKS_BRAND", brand)
            monkeypatch.setenv("BRANDHOOKS_FIXED_URL", healthy.url("/fixed"))
            notebook = nbformat.read(NOTEBOOK, as_version=4)
            start = time.monotonic()
            NotebookClient(notebook, timeout=120, kernel_name="python3",
                           resources={"metadata": {"path": str(tmp_path)}}).execute()
            print(f"notebook ran in {time.monotonic() - start:.1f} s")

            fixed = [r for r in healthy.requests if r.path == "/fixed"]
            assert sorted(json.loads(r.body)["id"] for r in fixed) == sorted(events)
            outputs = "\n".join(
                str(output.get("text", "")) + json.dumps(output.get("data", {}))
                for cell in notebook.cells if cell.cell_type == "code" for output in cell.get("outputs", [])
            )
            assert "queued 3 deliveries again" in outputs
            assert "all recovered deliveries arrived" in outputs
            assert "database is down" in outputs  # the attempts table showed the receiver's answer
            assert "<table" in outputs  # HTML tables rendered
    finally:
        server.stop()


def test_operator_notebook_makes_its_own_failing_endpoint(tmp_path, monkeypatch):
    """Followed as the README says (no brand of one's own): section 0 sets up a failing webhook
    on a receiver in the kernel, and the rest recovers it."""
    server = Server(tmp_path / "own.db", "--allow-private", "--retry-schedule", "0,1s").start()
    try:
        monkeypatch.setenv("BRANDHOOKS_URL", server.url)
        monkeypatch.setenv("BRANDHOOKS_TOKEN", ADMIN_TOKEN)
        monkeypatch.delenv("BRANDHOOKS_BRAND", raising=False)
        monkeypatch.delenv("BRANDHOOKS_FIXED_URL", raising=False)
        notebook = nbformat.read(NOTEBOOK, as_version=4)
        NotebookClient(notebook, timeout=120, kernel_name="python3",
                       resources={"metadata": {"path": str(tmp_path)}}).execute()
        outputs = "\n".join(
            str(output.get("text", "")) + json.dumps(output.get("data", {}))
            for cell in notebook.cells if cell.cell_type == "code" for output in cell.get("outputs", [])
        )
        assert "queued 3 deliveries again" in outputs
        assert "all recovered deliveries arrived" in outputs
        assert "database is down" in outputs
    finally:
        server.stop()
