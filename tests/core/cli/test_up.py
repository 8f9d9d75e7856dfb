"""The main job: ``fourfold up`` on the shipped medical and legal manifests, from an
empty state dir, ends with both assistants answering with citations to their own
documents — through the HTTP API, the official openai client and the chat page in a
real browser — and stops everything cleanly on SIGTERM."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from ...conftest import REPO_ROOT
from ...helpers.models import link_smollm2
from ...helpers.servers import chromium

pytestmark = [pytest.mark.integration, pytest.mark.slow]

MANIFESTS = REPO_ROOT / "deploy" / "manifests"
KNOWLEDGE = {name: MANIFESTS / name / "knowledge" for name in ("medical", "legal")}
START_TIMEOUT_S = 900  # first run: both indexes are built before the API starts


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def children_of(pid: int) -> list[int]:
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                out.append(int(entry.name))
    return out


class Deployment:
    def __init__(self, home: Path, port: int, log: Path):
        self.home, self.port, self.log = home, port, log
        self.url = f"http://127.0.0.1:{port}"
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("FOURFOLD_")}
        env.update(FOURFOLD_HOME=str(self.home), HF_HUB_OFFLINE="1", TOKENIZERS_PARALLELISM="false")
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "fourfold", "up", str(MANIFESTS / "medical.yaml"), str(MANIFESTS / "legal.yaml"), "--port", str(self.port)],
                cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                pytest.fail(f"fourfold up exited with {self.proc.returncode}:\n{self.output()[-4000:]}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(1)
        pytest.fail(f"fourfold up did not serve within {START_TIMEOUT_S}s:\n{self.output()[-4000:]}")

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def token(self, domain: str) -> str:
        match = re.search(rf"^  {domain} — .*?\n\s+token: (\S+)", self.output(), re.M)
        assert match, f"no token printed for {domain}:\n{self.output()}"
        return match.group(1)

    def auth(self, domain: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(domain)}"}

    def stop(self) -> int:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=60)


@pytest.fixture(scope="module")
def deployment(tmp_path_factory):
    home = tmp_path_factory.mktemp("up-home")
    link_smollm2(home)  # conversion itself is tested elsewhere; share the converted model
    d = Deployment(home, free_port(), tmp_path_factory.mktemp("up-log") / "up.log")
    d.start()
    yield d
    if d.proc and d.proc.poll() is None:
        d.proc.kill()
        d.proc.wait()


def sources_exist(domain: str, citations: list[dict]) -> bool:
    return bool(citations) and all((KNOWLEDGE[domain] / c["source"]).is_file() for c in citations)


def test_prints_the_url_and_a_token_per_domain(deployment):
    out = deployment.output()
    assert f"fourfold is serving on http://127.0.0.1:{deployment.port}" in out.replace("\n", " ")
    for domain in ("medical", "legal"):
        token = deployment.token(domain)
        assert len(token) > 20
        assert (deployment.home / "domains" / domain / "api-token").read_text().strip() == token
    assert "medical: building the index" in out and "legal: building the index" in out
    # no silent waits: the index builds' stages (plain lines in a log) and the model loading are reported
    assert "medical: embed" in out and "loading 2 domains" in out
    assert re.search(r"^  medical: ready \(\d", out, re.M) and re.search(r"^  legal: ready \(\d", out, re.M)


def test_legal_answers_with_citations_to_its_own_documents(deployment):
    r = httpx.post(f"{deployment.url}/v1/domains/legal/ask", json={"question": "How much notice is needed to terminate an agreement?"},
                   headers=deployment.auth("legal"), timeout=120)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["text"] and body["index_version"] == "v000001"
    assert sources_exist("legal", body["citations"]), body


def test_medical_answers_with_citations_to_its_own_documents(deployment):
    r = httpx.post(f"{deployment.url}/v1/domains/medical/ask",
                   json={"question": "How long should a burn be cooled under running water?", "max_tokens": 60},
                   headers=deployment.auth("medical"), timeout=600)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["text"] and body["index_version"] == "v000001"
    assert sources_exist("medical", body["citations"]), body


def test_a_token_opens_only_its_own_domain(deployment):
    r = httpx.post(f"{deployment.url}/v1/domains/medical/ask", json={"question": "What is asthma?"}, headers=deployment.auth("legal"), timeout=30)
    assert r.status_code == 403
    assert httpx.get(f"{deployment.url}/v1/models", timeout=30).status_code == 401


def test_the_official_openai_client(deployment):
    from openai import OpenAI

    legal = OpenAI(base_url=f"{deployment.url}/v1", api_key=deployment.token("legal"), max_retries=0, timeout=300)
    completion = legal.chat.completions.create(model="legal", messages=[{"role": "user", "content": "What is force majeure?"}])
    assert completion.choices[0].message.content
    assert sources_exist("legal", completion.model_extra["citations"])

    stream = legal.chat.completions.create(model="legal", messages=[{"role": "user", "content": "How long are personal data kept?"}], stream=True)
    chunks = list(stream)
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert sources_exist("legal", chunks[-1].model_extra["citations"])

    medical = OpenAI(base_url=f"{deployment.url}/v1", api_key=deployment.token("medical"), max_retries=0, timeout=600)
    chunks = list(medical.chat.completions.create(
        model="medical", messages=[{"role": "user", "content": "What are the symptoms of seasonal flu?"}], stream=True, max_tokens=40,
    ))
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices).strip()
    usage = chunks[-1].model_extra["fourfold"]["usage"]
    # the medical manifest answers extractively: its limit and its counts are in words
    assert usage["unit"] in ("tokens", "words") and 0 < usage["completion_tokens"] <= 40
    # the generator stopped at max_tokens ("length") or ended its answer sooner ("stop")
    assert chunks[-1].choices[0].finish_reason == ("length" if usage["completion_tokens"] == 40 else "stop") == usage["finish_reason"]


def test_the_chat_page_in_a_real_browser(deployment):
    from playwright.sync_api import expect

    token = deployment.token("legal")
    with chromium() as browser:
        page = browser.new_page()
        page.goto(f"{deployment.url}/?domain=legal#token={token}")
        page.click("#token-offer button[type=submit]", timeout=30_000)  # the page asks before adding a token
        # expect(), not wait_for_function: the page's Content Security Policy forbids evaluating strings
        expect(page.locator("#domain")).to_have_value("legal", timeout=30_000)
        expect(page.locator("#index-info")).to_contain_text("v000001", timeout=30_000)
        page.fill("#question", "How much notice is needed to terminate an agreement?")
        page.click("#ask")
        page.wait_for_selector(".answer[data-state=done]", timeout=120_000)
        answer = page.inner_text(".answer")
        assert answer.strip() and not answer.startswith("Error")
        citation = page.locator(".citation").first
        summary = citation.locator("summary").inner_text()
        assert re.match(r"\[\d+\] ", summary)
        page.locator("a.cite").first.click()
        assert citation.locator(".snippet").is_visible()
        source = citation.locator(".source").inner_text()
        assert (KNOWLEDGE["legal"] / source).is_file()
        assert "last refresh" in page.inner_text("#index-info")


def test_sigterm_stops_the_api_the_worker_and_the_scheduler(deployment):
    children = children_of(deployment.proc.pid)
    assert len(children) >= 2, "worker and beat should run as children of fourfold up"
    assert deployment.stop() == 0
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and any(Path(f"/proc/{pid}").exists() for pid in children):
        time.sleep(0.5)
    assert not [pid for pid in children if Path(f"/proc/{pid}").exists()]
    assert "stopped." in deployment.output()
