"""/openapi.json is good enough for code generators: it validates as OpenAPI 3.1, describes what
receivers get (webhooks), and clients generated from it in TypeScript (openapi-typescript +
openapi-fetch, from tests/codegen/package-lock.json, which `make test` installs into
build/codegen) and Python (openapi-python-client) work against a real `brandhooks serve`.
Nothing generated is kept in the repository: everything goes to build/codegen."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any, Dict, Iterator

import httpx
import pytest
from openapi_spec_validator import validate

from conftest import ADMIN_TOKEN, Server

ROOT = Path(__file__).resolve().parents[2]
CODEGEN = ROOT / "build" / "codegen"
SOURCES = ROOT / "tests" / "codegen"


@pytest.fixture(scope="module")
def serving(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    server = Server(tmp_path_factory.mktemp("codegen") / "codegen.db", "--allow-private",
                    "--signature-header", "X-Webhook-Signature").start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def document(serving: Server) -> Dict[str, Any]:
    served: Dict[str, Any] = httpx.get(serving.url + "/openapi.json", timeout=10).json()
    return served


def test_the_served_document_is_valid_openapi_3_1(document: Dict[str, Any]) -> None:
    assert document["openapi"].startswith("3.1.")
    validate(document)  # openapi-spec-validator: raises on any error


def test_operation_ids_are_the_routes_names(document: Dict[str, Any]) -> None:
    """Generators name their functions after operationId: short, unique, stable names."""
    ids = [op["operationId"] for item in document["paths"].values() for op in item.values()]
    assert len(ids) == len(set(ids))
    assert all(re.fullmatch(r"[a-z][a-z_]*", i) for i in ids), ids
    assert {"create_webhook", "publish_event", "list_deliveries"} <= set(ids)


def test_webhooks_describe_the_request_a_receiver_gets(document: Dict[str, Any]) -> None:
    webhooks = document["webhooks"]
    assert set(webhooks) == {"Deals", "Showings", "Contacts"}
    for topic, item in webhooks.items():
        operation = item["post"]
        headers = {p["name"]: p for p in operation["parameters"] if p["in"] == "header"}
        assert {name for name, p in headers.items() if p["required"]} == {
            "X-Webhook-Signature", "webhook-id", "webhook-timestamp", "webhook-signature"}
        assert {name for name, p in headers.items() if not p["required"]} == {"traceparent", "tracestate"}
        body = operation["requestBody"]["content"]["application/json"]["schema"]
        schema = document["components"]["schemas"][body["$ref"].rsplit("/", 1)[1]]
        assert schema["properties"]["topic"]["const"] == topic
        assert schema["required"] == ["topic", "event", "timestamp", "payload", "id", "brand"]
        assert {"2XX", "410", "429", "503", "default"} <= set(operation["responses"])
        assert "Retry-After" in operation["responses"]["429"]["headers"]


def test_the_signature_header_is_the_one_the_server_sends(tmp_path: Path) -> None:
    server = Server(tmp_path / "sig.db", "--signature-header", "X-RECHAT-SIGNATURE").start()
    try:
        document = httpx.get(server.url + "/openapi.json", timeout=10).json()
    finally:
        server.stop()
    names = {p["name"] for p in document["webhooks"]["Deals"]["post"]["parameters"]}
    assert "X-RECHAT-SIGNATURE" in names and "X-Webhook-Signature" not in names


def test_the_publish_route_documents_the_trace_context_headers(document: Dict[str, Any]) -> None:
    operation = document["paths"]["/brands/{brand}/events"]["post"]
    headers = {p["name"] for p in operation["parameters"] if p["in"] == "header"}
    assert {"traceparent", "tracestate", "Idempotency-Key"} <= headers


@pytest.fixture(scope="module")
def spec_file(document: Dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("openapi") / "openapi.json"  # one per pytest worker
    path.write_text(json.dumps(document, indent=1))
    return path


def run(*args: str, cwd: Path = ROOT, env: Dict[str, str] | None = None) -> str:
    out = subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=600, env=env)
    assert out.returncode == 0, f"{' '.join(args)}:\n{out.stdout}\n{out.stderr}"
    return out.stdout


def test_a_typescript_client_generated_from_the_document_works(serving: Server, spec_file: Path) -> None:
    """openapi-typescript types the paths and webhooks; tsc (strict) compiles the smoke test
    against them; node runs it: create a webhook, publish, list the deliveries until the typed
    receiver got the event, read error envelopes."""
    tools = CODEGEN / "node_modules" / ".bin"
    assert (tools / "openapi-typescript").exists() and (tools / "tsc").exists(), (
        "the npm packages of tests/codegen are missing from build/codegen: `make test` installs them "
        "(make codegen-deps)")
    work = CODEGEN / "ts"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    for name in ("smoke.ts", "tsconfig.json"):
        shutil.copy(SOURCES / name, work / name)
    # Request fields with a default are optional (the server applies the default): as docs/api.md
    # says, openapi-typescript makes them required unless told otherwise.
    run(str(tools / "openapi-typescript"), str(spec_file), "--default-non-nullable", "false",
        "--output", str(work / "schema.d.ts"))
    run(str(tools / "tsc"), "-p", str(work))
    brand = str(uuid.uuid4())
    seen = json.loads(run("node", str(work / "out" / "smoke.js"), serving.url, ADMIN_TOKEN, brand).splitlines()[-1])
    assert seen["state"] == "delivered" and seen["error"].startswith("brand id")
    with serving.client() as api:  # what the generated client did is there
        hooks = api.get(f"/brands/{brand}/webhooks").json()["data"]
    assert [h["id"] for h in hooks] == [seen["webhook"]]


def test_a_python_client_generated_from_the_document_works(serving: Server, spec_file: Path) -> None:
    """openapi-python-client generates a package from the document (no warning about anything it
    could not read); the smoke test uses it as a user would."""
    out_dir = CODEGEN / "py"
    shutil.rmtree(out_dir, ignore_errors=True)
    generated = run(sys.executable, "-m", "openapi_python_client", "generate", "--path", str(spec_file),
                    "--config", str(SOURCES / "openapi-python-client.yaml"), "--meta", "none",
                    "--output-path", str(out_dir / "brandhooks_client"))
    assert "Warning" not in generated and "Unable" not in generated, generated
    env = {**os.environ, "PYTHONPATH": str(out_dir)}
    brand = str(uuid.uuid4())
    seen = json.loads(run(sys.executable, str(SOURCES / "smoke.py"), serving.url, ADMIN_TOKEN, brand,
                          env=env).splitlines()[-1])
    assert seen["state"] == "delivered" and seen["error_code"] == "Validation"
