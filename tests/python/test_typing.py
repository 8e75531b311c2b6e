"""The package is typed: py.typed and the compiled module's stubs ship with it, the stubs match
the module, and mypy --strict finds nothing in python/brandhooks."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import brandhooks

ROOT = Path(__file__).resolve().parents[2]
CACHE = ROOT / "build" / "mypy-cache"


def mypy(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=600, env=env)


def test_installed_package_carries_its_types():
    installed = Path(brandhooks.__file__).parent
    assert (installed / "py.typed").is_file()
    assert (installed / "_core.pyi").is_file()


def test_mypy_strict_is_clean():
    out = mypy("mypy", "--strict", "--cache-dir", str(CACHE), "python/brandhooks")
    assert out.returncode == 0, out.stdout + out.stderr


def test_core_stubs_match_the_compiled_module():
    """mypy's stubtest imports the built module and compares it with python/brandhooks/_core.pyi:
    a function, class, method or property missing on either side fails."""
    env = {**os.environ, "MYPYPATH": str(ROOT / "python")}
    out = mypy("mypy.stubtest", "brandhooks._core", "--allowlist", str(ROOT / "tests" / "python" / "stubtest-allowlist.txt"), env=env)
    assert out.returncode == 0, out.stdout + out.stderr
