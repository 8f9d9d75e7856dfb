"""``fourfold serve``: the API alone, in its own process."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import textwrap
import time

import httpx
import pytest

from ...helpers.servers import wait_until_healthy

pytestmark = pytest.mark.integration


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def manifest(tmp_path):
    (tmp_path / "kb").mkdir()
    (tmp_path / "kb" / "a.md").write_text("# A\n\nSomething worth knowing about the subject at hand.\n")
    path = tmp_path / "notes.yaml"
    path.write_text(textwrap.dedent("""
        fourfold: 1
        domain: notes
        title: Notes
        knowledge: {sources: [{path: kb}]}
        serve: {tokens_env: NOTES_TOKENS}
    """))
    return path


def run(args, home, **kwargs):
    env = {k: v for k, v in os.environ.items() if not k.startswith("FOURFOLD_")}
    env.update(FOURFOLD_HOME=str(home), HF_HUB_OFFLINE="1", **kwargs.pop("env", {}))
    return subprocess.Popen([sys.executable, "-m", "fourfold", *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **kwargs)


def test_serves_a_domain_with_tokens_from_its_env_var(tmp_path):
    port = free_port()
    token = "notes-token-0123456789abcdef"
    proc = run(["serve", str(manifest(tmp_path)), "--port", str(port)], tmp_path / "home", env={"NOTES_TOKENS": token})
    try:
        url = f"http://127.0.0.1:{port}"
        wait_until_healthy(proc, url, timeout=120)
        auth = {"Authorization": f"Bearer {token}"}
        assert [m["id"] for m in httpx.get(f"{url}/v1/models", headers=auth).json()["data"]] == ["notes"]
        r = httpx.post(f"{url}/v1/domains/notes/ask", json={"question": "What is worth knowing?"}, headers=auth, timeout=60)
        assert r.status_code == 503 and "fourfold index build" in r.json()["error"]["message"]
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
        out = proc.stdout.read()
        assert f"fourfold is serving on {url}" in out
        assert "token: from $NOTES_TOKENS (1 token(s))" in out and token not in out
    finally:
        if proc.poll() is None:
            proc.kill()


def test_a_busy_port_is_reported_before_anything_starts(tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        proc = run(["serve", str(manifest(tmp_path)), "--port", str(port)], tmp_path / "home")
        code = proc.wait(timeout=60)
        out = proc.stdout.read()
    assert code == 1
    assert re.search(rf"error: cannot listen on 127\.0\.0\.1:{port}: .*; pick another with --port", out)


def test_json_logs_hold_one_line_per_request_without_token_or_question(tmp_path):
    import json

    port = free_port()
    token = "notes-token-0123456789abcdef"
    proc = run(["serve", str(manifest(tmp_path)), "--port", str(port), "--log-format", "json"], tmp_path / "home", env={"NOTES_TOKENS": token})
    try:
        url = f"http://127.0.0.1:{port}"
        wait_until_healthy(proc, url, timeout=120)
        httpx.post(f"{url}/v1/domains/notes/ask", json={"question": "What is SECRET-WORDS worth?"}, headers={"Authorization": f"Bearer {token}"}, timeout=60)
        httpx.get(f"{url}/v1/models", headers={"Authorization": "Bearer wrong-token-abcdefghijkl"})
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
        out = proc.stdout.read()
    finally:
        if proc.poll() is None:
            proc.kill()
    records = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    requests = [r for r in records if r["logger"] == "fourfold.access"]
    assert {"route": "/v1/domains/{domain}/ask", "domain": "notes", "status": 503, "method": "POST"}.items() <= requests[-2].items()
    assert requests[-1]["status"] == 401 and requests[-1]["route"] == "/v1/models" and requests[-1]["level"] == "info"
    assert "SECRET-WORDS" not in out and token not in out and "wrong-token" not in out
