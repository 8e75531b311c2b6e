"""The OpenAPI description matches the server: schemathesis, every check, against a real
`brandhooks serve` with an admin token. Bounded and deterministic so that it is repeatable and
short (about 40 s here).

Known and intended: larger random runs of the stateful phase report ST301 ("deleted resource
still available") for GET .../webhooks/{id}/deliveries after the webhook's DELETE: a deleted
webhook keeps its delivery history readable (docs/api.md), which that heuristic cannot know."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any, Dict, Iterator, List

import httpx
import pytest

from conftest import ADMIN_TOKEN, Server

#: Test cases per operation and phase: enough to cross every declared constraint once, small
#: enough to keep the run near a minute on a shared 2-core machine.
MAX_EXAMPLES = 12


@pytest.fixture()
def fuzzed_server(tmp_path: Path) -> Iterator[Server]:
    server = Server(tmp_path / "fuzz.db", "--no-deliver").start()
    yield server
    server.stop()


def schemathesis_command() -> List[str]:
    found = shutil.which("schemathesis", path=str(Path(sys.executable).parent)) or shutil.which("schemathesis")
    if found is None:
        pytest.fail("schemathesis is not installed: pip install '.[test]'")
    return [found]


def test_openapi_describes_what_the_server_does(fuzzed_server: Server, tmp_path: Path) -> None:
    command = schemathesis_command() + [
        "run", fuzzed_server.url + "/openapi.json",
        "--checks", "all",
        "-H", f"Authorization: Bearer {ADMIN_TOKEN}",
        "--max-examples", str(MAX_EXAMPLES),
        "--generation-deterministic",  # no random seed: the same cases on every run
        "--workers", "1",
        "--no-color",
    ]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SCHEMATHESIS_", "HYPOTHESIS_"))}
    run = subprocess.run(command, capture_output=True, text=True, timeout=300, env=env, cwd=tmp_path)
    assert run.returncode == 0, run.stdout[-20000:] + run.stderr[-5000:]
    # Guard against a run that tested nothing (e.g. a schema that failed to load): every
    # operation of the description was exercised.
    with httpx.Client(base_url=fuzzed_server.url) as client:
        operations = sum(len(methods) for methods in client.get("/openapi.json").json()["paths"].values())
    assert f"Tested: {operations}" in run.stdout, run.stdout[-5000:]


def test_openapi_declares_uuid_ids_optional_bodies_and_every_status(fuzzed_server: Server) -> None:
    with httpx.Client(base_url=fuzzed_server.url) as client:
        spec: Dict[str, Any] = client.get("/openapi.json").json()
    for path, methods in spec["paths"].items():
        for method, operation in methods.items():
            for parameter in operation.get("parameters", []):
                if parameter["in"] == "path":
                    assert parameter["schema"].get("format") == "uuid", (method, path, parameter)
                    assert "400" in operation["responses"], (method, path)
            if path != "/healthz":
                assert {"401", "503"} <= set(operation["responses"]), (method, path)
            assert "422" not in operation["responses"], (method, path)  # the server answers 400
    assert spec["paths"]["/tokens"]["post"]["requestBody"]["required"] is False
    assert spec["paths"]["/healthz"]["get"]["responses"]["503"]["headers"]["Retry-After"]
