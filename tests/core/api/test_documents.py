"""Documents uploaded, replaced and deleted over real HTTP (uvicorn on a socket): write
tokens only, paths that stay inside the domain's uploads, the size limit, and the index
answering from an upload after a refresh — and no longer after its deletion."""

from __future__ import annotations

import socket
import textwrap
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest

from ...helpers.servers import serving

pytestmark = pytest.mark.integration

KETTLE = "# Kettles\n\nDescale the kettle every month with white vinegar to keep the water tasting clean.\n"
TEA = "# Tea\n\nGreen tea brews best with water at eighty degrees for two minutes.\n"
SMALL_LIMIT = 10_000  # bytes: max_mb 0.01 rounds to 10485 bytes


def write_manifest(root: Path, name: str, sources: str, extra: str = "") -> Path:
    folder = root / name
    (folder / "knowledge").mkdir(parents=True, exist_ok=True)
    (folder / "knowledge" / "tea.md").write_text(TEA, encoding="utf-8")
    path = folder / f"{name}.yaml"
    path.write_text(
        textwrap.dedent(f"""
            fourfold: 1
            domain: {name}
            title: {name.title()} uploads
            knowledge:
              sources: {sources}
              chunking: {{max_tokens: 64, overlap: 8}}
              gate: {{min_chunks: 1}}
            retrieval: {{use: bm25, with: {{top_k: 3}}}}
            generation: {{use: extractive}}
            trust: {{answerability: off}}
        """) + extra,
        encoding="utf-8",
    )
    return path


@dataclass
class Api:
    url: str
    assistants: object

    def read(self, domain: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.assistants.tokens[domain].tokens[0]}"}

    def write(self, domain: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.assistants.write_tokens[domain].tokens[0]}"}

    def domain(self, name: str):
        return self.assistants.domains[name]


@pytest.fixture(scope="module")
def api(tmp_path_factory):
    """'docs' (a folder and uploads of up to 0.01 MB), 'wide' (uploads at the default
    limit) and 'plain' (a folder only), served by uvicorn in a thread."""
    from fourfold.api import ApiOptions, create_app
    from fourfold.api.assistants import Assistants
    from fourfold.plugins import PluginHost
    from fourfold.settings import Settings

    root = tmp_path_factory.mktemp("uploads")
    settings = Settings(home=root / "home")
    paths = [
        write_manifest(root, "docs", "[{path: knowledge}, {use: upload, with: {max_mb: 0.01}}]"),
        write_manifest(root, "wide", "[{path: knowledge}, {use: upload}]"),
        write_manifest(root, "plain", "[{path: knowledge}]"),
    ]
    assistants = Assistants.from_manifests(paths, host=PluginHost(settings), settings=settings)
    app = create_app(assistants=assistants, options=ApiOptions(max_body_bytes=4 * 1024, warm_up=False))
    with serving(app) as url:
        yield Api(url, assistants)


def documents_url(api: Api, domain: str, path: str = "") -> str:
    base = f"{api.url}/v1/domains/{domain}/documents"
    return f"{base}/{quote(path)}" if path else base


# -- who may change documents ---------------------------------------------------------


def test_a_write_token_is_generated_kept_private_and_differs_from_the_read_token(api):
    from fourfold.api.tokens import token_file

    writes = api.assistants.write_tokens["docs"]
    assert writes.origin in ("generated", "state") and writes.tokens[0].startswith("ffw-docs-")
    assert writes.tokens[0] not in api.assistants.tokens["docs"].tokens
    kept = token_file(api.assistants.settings, "docs", write=True)
    assert kept.read_text().strip() == writes.tokens[0] and kept.stat().st_mode & 0o777 == 0o600
    assert "plain" not in api.assistants.write_tokens, "a domain without an upload source has no write token"


def test_uploading_needs_a_write_token(api):
    url = documents_url(api, "docs", "notes/kettle.md")
    missing = httpx.put(url, content=KETTLE.encode())
    assert missing.status_code == 401 and missing.headers["WWW-Authenticate"] == "Bearer"
    unknown = httpx.put(url, content=KETTLE.encode(), headers={"Authorization": "Bearer not-a-token-of-anyone"})
    assert unknown.status_code == 401

    read = httpx.put(url, content=KETTLE.encode(), headers=api.read("docs"))
    assert read.status_code == 403 and read.json()["error"]["code"] == "write_token_required"
    assert "write token" in read.json()["error"]["message"]
    assert httpx.delete(url, headers=api.read("docs")).status_code == 403

    other = httpx.put(url, content=KETTLE.encode(), headers=api.write("wide"))
    assert other.status_code == 403, "a write token opens its own domain only"
    assert httpx.get(documents_url(api, "docs"), headers=api.read("docs")).json()["documents"] == []


def test_listing_takes_a_read_or_a_write_token(api):
    for headers in (api.read("wide"), api.write("wide")):
        listed = httpx.get(documents_url(api, "wide"), headers=headers)
        assert listed.status_code == 200 and listed.json()["domain"] == "wide"
    assert httpx.get(documents_url(api, "wide")).status_code == 401


def test_a_write_token_reads_its_domains_status_and_nothing_else(api):
    # the chat page's documents view follows the refresh a change queued with the write token
    status = httpx.get(f"{api.url}/v1/domains/wide/status", headers=api.write("wide"))
    assert status.status_code == 200 and status.json()["domain"] == "wide" and "task" in status.json()
    assert httpx.get(f"{api.url}/v1/domains/docs/status", headers=api.write("wide")).status_code == 403
    asked = httpx.post(f"{api.url}/v1/domains/wide/ask", json={"question": "Tea?"}, headers=api.write("wide"))
    assert asked.status_code == 401, "a write token asks nothing"
    assert httpx.get(f"{api.url}/v1/models", headers=api.write("wide")).status_code == 401
    refresh = httpx.post(f"{api.url}/v1/domains/wide/refresh", headers=api.write("wide"))
    assert refresh.status_code == 401, "nor does it queue refreshes of its own"


def test_a_domain_without_an_upload_source_takes_no_uploads(api):
    answer = httpx.put(documents_url(api, "plain", "a.md"), content=b"# A\n", headers=api.read("plain"))
    assert answer.status_code == 409 and answer.json()["error"]["code"] == "no_upload_source"
    listed = httpx.get(documents_url(api, "plain"), headers=api.read("plain"))
    assert listed.status_code == 409 and "{use: upload}" in listed.json()["error"]["message"]


# -- paths, types and sizes -------------------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    [
        "..%2Fescape.md",
        "notes/%2E%2E/%2E%2E/escape.md",
        "%2Fetc%2Fpasswd.md",
        "/etc/passwd.md",
        "notes%5C..%5Cescape.md",
        "notes/a%00.md",
        "notes//a.md",
        "notes/.hidden.md",
    ],
)
def test_paths_that_leave_the_uploads_are_refused(api, raw):
    answer = httpx.put(f"{api.url}/v1/domains/docs/documents/{raw}", content=b"# Escape\n\nNo.\n", headers=api.write("docs"))
    assert answer.status_code == 400, answer.text
    assert answer.json()["error"]["code"] == "invalid_document_path"
    store = api.assistants.settings.domain_dir("docs") / "uploads"
    assert not any(p.name == "escape.md" for p in api.assistants.settings.state_dir.rglob("*")), "nothing was written"
    assert not store.exists() or all(store in p.parents for p in store.rglob("*"))


def test_a_type_no_loader_reads_is_refused_naming_those_read(api):
    answer = httpx.put(documents_url(api, "docs", "photo.png"), content=b"\x89PNG", headers=api.write("docs"))
    assert answer.status_code == 415
    message = answer.json()["error"]["message"]
    assert ".png" in message and ".md" in message and ".pdf" in message


def test_the_size_limit_is_the_sources_not_the_apis(api):
    body = b"# Big\n\n" + b"word " * 1500  # 7.5 KB: over the API's 4 KB body limit, under the source's
    kept = httpx.put(documents_url(api, "docs", "big.md"), content=body, headers=api.write("docs"))
    assert kept.status_code == 201, kept.text

    over = b"# Bigger\n\n" + b"word " * 3000  # 15 KB: over max_mb 0.01
    declared = httpx.put(documents_url(api, "docs", "bigger.md"), content=over, headers=api.write("docs"))
    assert declared.status_code == 413 and "max_mb (0.01 MB)" in declared.json()["error"]["message"]

    def chunks():  # no Content-Length: counted as it arrives
        for i in range(0, len(over), 1000):
            yield over[i : i + 1000]

    streamed = httpx.put(documents_url(api, "docs", "bigger.md"), content=chunks(), headers=api.write("docs"))
    assert streamed.status_code == 413
    names = [d["path"] for d in httpx.get(documents_url(api, "docs"), headers=api.read("docs")).json()["documents"]]
    assert "bigger.md" not in names
    assert httpx.delete(documents_url(api, "docs", "big.md"), headers=api.write("docs")).status_code == 200


def test_the_default_limit_is_50_mb_and_is_checked_before_the_body_arrives(api):
    from fourfold_sources import UploadSource

    assert UploadSource.Config().max_mb == 50
    # A request declaring one byte over 50 MB is answered at once, with no body sent.
    host, port = api.url.removeprefix("http://").split(":")
    token = api.write("wide")["Authorization"]
    request = (
        f"PUT /v1/domains/wide/documents/huge.md HTTP/1.1\r\nHost: {host}\r\nAuthorization: {token}\r\n"
        f"Content-Length: {50 * 1048576 + 1}\r\n\r\n"
    ).encode()
    with socket.create_connection((host, int(port)), timeout=10) as conn:
        conn.sendall(request)
        reply = b""
        while b"\r\n\r\n" not in reply or len(reply.partition(b"\r\n\r\n")[2]) < _declared_length(reply):
            piece = conn.recv(4096)
            if not piece:
                break
            reply += piece
    reply = reply.decode()
    assert reply.startswith("HTTP/1.1 413"), reply
    assert "max_mb (50 MB)" in reply


def _declared_length(reply: bytes) -> int:
    head = reply.partition(b"\r\n\r\n")[0].decode().lower()
    found = [line.split(":", 1)[1] for line in head.splitlines() if line.startswith("content-length:")]
    return int(found[0]) if found else 0


def test_unicode_names_are_kept_and_listed(api):
    name = "guides/café/Привет 世界.md"
    decomposed = "guides/cafe\u0301/Привет 世界.md"  # how macOS spells it
    first = httpx.put(documents_url(api, "wide", name), content="# Привет\n\nКофе и чай.\n".encode(), headers=api.write("wide"))
    assert first.status_code == 201 and first.json()["path"] == name
    again = httpx.put(documents_url(api, "wide", decomposed), content="# Привет\n\nКофе и чай.\n".encode(), headers=api.write("wide"))
    assert again.status_code == 200 and again.json()["action"] == "unchanged" and again.json()["path"] == name
    listed = httpx.get(documents_url(api, "wide"), headers=api.read("wide")).json()["documents"]
    assert [d["path"] for d in listed] == [name]
    deleted = httpx.delete(documents_url(api, "wide", name), headers=api.write("wide"))
    assert deleted.status_code == 200 and deleted.json()["action"] == "deleted"


# -- upload, refresh, answer; delete, refresh, gone ----------------------------------


def ask(api: Api, domain: str, question: str) -> dict:
    answer = httpx.post(f"{api.url}/v1/domains/{domain}/ask", json={"question": question}, headers=api.read(domain), timeout=60)
    assert answer.status_code == 200, answer.text
    return answer.json()


def test_an_upload_is_answered_from_after_a_refresh_and_forgotten_after_its_deletion(api):
    from fourfold.index import refresh

    domain = api.domain("docs")
    url = documents_url(api, "docs", "home/kettle.md")
    cited = "upload/home/kettle.md"  # beside a folder, each source's documents sit under its prefix

    created = httpx.put(url, content=KETTLE.encode(), headers={**api.write("docs"), "Content-Type": "text/markdown"})
    assert created.status_code == 201, created.text
    change = created.json()
    assert change["action"] == "created" and change["document"]["size"] == len(KETTLE.encode())
    assert change["refresh"]["queued"] is True and change["refresh"]["task"]["id"]
    listed = httpx.get(documents_url(api, "docs"), headers=api.write("docs")).json()["documents"]
    assert [(d["path"], d["sha256"]) for d in listed] == [("home/kettle.md", change["document"]["sha256"])]

    report = refresh(domain)
    assert report.published and cited in report.added
    answer = ask(api, "docs", "How often should the kettle be descaled?")
    assert "every month" in answer["text"]
    assert any(c["source"] == cited for c in answer["citations"])

    replaced = httpx.put(url, content=KETTLE.replace("every month", "every week").encode(), headers=api.write("docs"))
    assert replaced.status_code == 200 and replaced.json()["action"] == "replaced"
    report = refresh(domain)
    assert report.changed == [cited]
    assert "every week" in ask(api, "docs", "How often should the kettle be descaled?")["text"]

    deleted = httpx.delete(url, headers=api.write("docs"))
    assert deleted.status_code == 200 and deleted.json()["action"] == "deleted" and deleted.json()["refresh"]["queued"]
    assert httpx.delete(url, headers=api.write("docs")).status_code == 404
    report = refresh(domain)
    assert report.removed == [cited]
    passages, _ = domain.search("kettle descale vinegar", top_k=3)
    assert all(p.chunk.source != cited for p in passages)
    answer = ask(api, "docs", "How often should the kettle be descaled?")
    assert all(c["source"] != cited for c in answer["citations"])


def test_a_change_is_kept_when_no_refresh_can_be_queued(api, monkeypatch):
    from fourfold.worker import client

    def no_broker(*args, **kwargs):
        raise ConnectionError("broker at redis://nowhere:6379 refused the connection")

    monkeypatch.setattr(client, "request_refresh", no_broker)
    answer = httpx.put(documents_url(api, "wide", "later.md"), content=b"# Later\n\nIndexed at the next refresh.\n", headers=api.write("wide"))
    assert answer.status_code == 201
    refresh = answer.json()["refresh"]
    assert refresh["queued"] is False and "could not be queued" in refresh["reason"] and "refused the connection" in refresh["reason"]
    names = [d["path"] for d in httpx.get(documents_url(api, "wide"), headers=api.read("wide")).json()["documents"]]
    assert "later.md" in names


# -- write tokens from the environment, and printed by serve ----------------------------


def test_write_tokens_come_from_serve_write_tokens_env(tmp_path, monkeypatch):
    from fourfold.api.assistants import Assistants
    from fourfold.errors import FourfoldError
    from fourfold.plugins import PluginHost
    from fourfold.settings import Settings

    settings = Settings(home=tmp_path / "home")
    extra = "serve: {tokens_env: SHOP_READ_TOKENS, write_tokens_env: SHOP_WRITE_TOKENS}\n"
    manifest = write_manifest(tmp_path, "shop", "[{use: upload}]", extra)
    monkeypatch.setenv("SHOP_READ_TOKENS", "read-token-0123456789")
    monkeypatch.setenv("SHOP_WRITE_TOKENS", "write-token-0123456789, write-token-abcdefghij")
    assistants = Assistants.from_manifests([manifest], host=PluginHost(settings), settings=settings)
    writes = assistants.write_tokens["shop"]
    assert writes.origin == "env" and writes.tokens == ["write-token-0123456789", "write-token-abcdefghij"]
    assert assistants.write_book.domains_for("write-token-abcdefghij") == {"shop"}
    assert not (settings.domain_dir("shop") / "api-write-token").exists()

    monkeypatch.setenv("SHOP_WRITE_TOKENS", "read-token-0123456789")
    with pytest.raises(FourfoldError, match="both a read token .* and a write token"):
        Assistants.from_manifests([manifest], host=PluginHost(settings), settings=settings)
    monkeypatch.setenv("SHOP_WRITE_TOKENS", "short")
    with pytest.raises(FourfoldError, match=r"\$SHOP_WRITE_TOKENS \(serve.write_tokens_env of domain 'shop'\) holds a token of 5 characters"):
        Assistants.from_manifests([manifest], host=PluginHost(settings), settings=settings)


def test_serve_prints_the_write_token_of_each_domain_taking_uploads(api):
    from fourfold.cli.common import console
    from fourfold.cli.serve_cmds import _print_access

    with console.capture() as captured:
        _print_access(api.assistants, "http://127.0.0.1:8000")
    lines = captured.get().splitlines()
    printed = [line.split("write token: ")[1].split()[0] for line in lines if "write token: " in line]
    assert printed == [api.assistants.write_tokens["docs"].tokens[0], api.assistants.write_tokens["wide"].tokens[0]]
    assert any("PUT http://127.0.0.1:8000/v1/domains/docs/documents/PATH" in line for line in lines)
