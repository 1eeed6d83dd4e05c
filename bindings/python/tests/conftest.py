"""Fixtures: the shared test vectors and a `freight sandbox` for the session."""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import urllib.request
from typing import Any, Dict, Iterator, List

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[3]
TOKEN = "sandbox-token"


def fixture(name: str) -> List[Dict[str, Any]]:
    text = (ROOT / "tests" / "fixtures" / name).read_text(encoding="utf-8")
    return [json.loads(line) for line in text.splitlines() if line.strip()]


class Sandbox:
    def __init__(self, url: str) -> None:
        self.url = url

    def get(self, path: str) -> Any:
        with urllib.request.urlopen(self.url + path) as r:
            return json.loads(r.read())

    def post(self, path: str, body: Any = None) -> Any:
        data = json.dumps(body).encode() if body is not None else b""
        req = urllib.request.Request(self.url + path, data=data, method="POST")
        with urllib.request.urlopen(req) as r:
            return json.loads(r.read())


@pytest.fixture(scope="session")
def sandbox_process() -> Iterator[Sandbox]:
    binary = os.environ.get("FREIGHT_BIN", str(ROOT / "target" / "debug" / "freight"))
    proc = subprocess.Popen([binary, "sandbox", "--port", "0"], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    url = proc.stdout.readline().strip()
    assert url.startswith("http://127.0.0.1:"), url
    yield Sandbox(url)
    proc.terminate()
    proc.wait(timeout=10)


@pytest.fixture()
def sandbox(sandbox_process: Sandbox) -> Sandbox:
    sandbox_process.post("/__sandbox/reset")
    return sandbox_process
