"""``fourfold serve`` in its own process, attacked over raw sockets: a client that stalls
(partial headers, partial body, nothing at all) is cut off in bounded time while others
are served; and the first questions, sent together, all get answers."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from ...helpers.servers import wait_until_healthy

pytestmark = [pytest.mark.integration, pytest.mark.slow]

TOKEN = "notes-token-0123456789abcdef"
HEADER_TIMEOUT = 2.0
BODY_TIMEOUT = 2.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """A published index, then a fresh ``fourfold serve`` of it with short deadlines."""
    import fourfold
    from fourfold.index import refresh
    from fourfold.plugins import PluginHost
    from fourfold.settings import Settings

    root = tmp_path_factory.mktemp("serve-limits")
    (root / "kb").mkdir()
    (root / "kb" / "leave.md").write_text(
        "# Annual leave\n\nEmployees are entitled to twenty-five days of paid annual leave per year.\n"
        "Unused leave of up to five days may be carried over to the next year.\n"
    )
    manifest = root / "notes.yaml"
    manifest.write_text(textwrap.dedent("""
        fourfold: 1
        domain: notes
        title: Notes
        knowledge: {sources: [{path: kb}]}
        serve: {tokens_env: NOTES_TOKENS}
    """))
    settings = Settings(home=root / "home")
    host = PluginHost(settings)
    refresh(fourfold.Domain(fourfold.load_manifest(manifest, host), host, settings))

    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("FOURFOLD_")}
    env.update(FOURFOLD_HOME=str(root / "home"), HF_HUB_OFFLINE="1", NOTES_TOKENS=TOKEN)
    proc = subprocess.Popen(
        [sys.executable, "-m", "fourfold", "serve", str(manifest), "--port", str(port),
         "--header-timeout", str(HEADER_TIMEOUT), "--body-timeout", str(BODY_TIMEOUT)],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_healthy(proc, url, timeout=180)
        yield port, url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()


def ask(url: str, question: str) -> httpx.Response:
    return httpx.post(f"{url}/v1/domains/notes/ask", json={"question": question},
                      headers={"Authorization": f"Bearer {TOKEN}"}, timeout=120)


def test_the_first_questions_sent_together_are_all_answered(server):
    _, url = server
    questions = ["How many days of annual leave?", "Can unused leave be carried over?"] * 3
    with ThreadPoolExecutor(len(questions)) as pool:
        responses = list(pool.map(lambda q: ask(url, q), questions))
    assert [r.status_code for r in responses] == [200] * len(questions), [r.text for r in responses if r.status_code != 200]
    assert all(r.json()["citations"] for r in responses)


def until_closed(sock: socket.socket, trickle: bytes = b"", limit: float = 15.0) -> tuple[float, bytes]:
    """Seconds until the server closes ``sock`` (sending ``trickle`` every 0.3 s meanwhile),
    and what it sent."""
    started, received = time.monotonic(), b""
    sock.settimeout(0.3)
    while time.monotonic() - started < limit:
        try:
            data = sock.recv(4096)
            if not data:
                return time.monotonic() - started, received
            received += data
        except socket.timeout:
            if trickle:
                try:
                    sock.sendall(trickle)
                except OSError:
                    return time.monotonic() - started, received
        except OSError:
            return time.monotonic() - started, received
    pytest.fail(f"the server kept the stalled connection open for {limit} s")


@pytest.mark.parametrize(
    "opening, trickle",
    [
        (b"", b""),  # connects and says nothing
        (b"GET /healthz HTTP/1.1\r\nHost: x\r\n", b"X"),  # headers a byte at a time, never finished
        (b"POST /v1/domains/notes/ask HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
         b"Content-Length: 500\r\n\r\n{\"question\": ", b""),  # a body that stops
    ],
    ids=["silent", "slow-headers", "stalled-body"],
)
def test_a_stalled_client_is_cut_off_while_others_are_served(server, opening, trickle):
    port, url = server
    with socket.create_connection(("127.0.0.1", port)) as stalled:
        stalled.sendall(opening)
        started = time.monotonic()
        assert httpx.get(f"{url}/healthz", timeout=5).status_code == 200  # another client meanwhile
        assert time.monotonic() - started < 2
        took, said = until_closed(stalled, trickle)
    assert took < HEADER_TIMEOUT + BODY_TIMEOUT + 3
    if opening:
        assert said.startswith(b"HTTP/1.1 408 "), said


def test_a_kept_alive_connection_must_send_its_next_request_in_time(server):
    port, _ = server
    with socket.create_connection(("127.0.0.1", port)) as conn:
        conn.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        conn.settimeout(5)
        first = b""
        while b'"domains"' not in first:
            first += conn.recv(4096)
        assert first.startswith(b"HTTP/1.1 200 ")
        conn.sendall(b"GET /healthz HTTP/1.1\r\n")  # then the rest trickles, never ending
        took, said = until_closed(conn, b"X")
    assert took < HEADER_TIMEOUT + 3 and said.startswith(b"HTTP/1.1 408 ")
