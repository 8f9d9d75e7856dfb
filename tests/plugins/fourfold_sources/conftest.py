"""Real servers for the sources' tests: moto's S3 server in its own process, and a small
website served by http.server from a thread."""

from __future__ import annotations

import email.utils
import hashlib
import textwrap
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

import fourfold

from ...helpers.moto_s3 import CREDENTIALS, MotoServer, start_moto


@pytest.fixture(scope="module")
def moto(tmp_path_factory) -> MotoServer:
    server = start_moto(tmp_path_factory.mktemp("moto"))
    yield server
    server.stop()


@pytest.fixture
def aws_env(monkeypatch):
    """Credentials as any S3 client finds them: the standard AWS_* variables."""
    for name, value in CREDENTIALS.items():
        monkeypatch.setenv(name, value)


_buckets = iter(range(1, 10_000))


@pytest.fixture
def bucket(moto, aws_env) -> str:
    name = f"knowledge-{next(_buckets):04d}"
    moto.client().create_bucket(Bucket=name)
    return name


def load_domain(manifest: Path) -> fourfold.Domain:
    from fourfold.plugins import get_host

    host = get_host()
    return fourfold.Domain(fourfold.load_manifest(manifest, host), host)


def write_manifest(folder: Path, sources: str, *, gate: str = "{min_chunks: 1}") -> Path:
    """A manifest whose ``knowledge.sources`` is the YAML flow text ``sources``; bm25
    retrieval, so no vectors are computed."""
    path = folder / "domain.yaml"
    path.write_text(
        textwrap.dedent(
            f"""
            fourfold: 1
            domain: remote
            title: Remote knowledge
            knowledge:
              sources: {sources}
              chunking: {{max_tokens: 64, overlap: 8}}
              gate: {gate}
            retrieval: {{use: bm25, with: {{top_k: 3}}}}
            """
        ).lstrip(),
        encoding="utf-8",
    )
    return path


# -------------------------------------------------------------------------
# a website
# -------------------------------------------------------------------------


class Site:
    """Pages served with ETag and Last-Modified validators, answering conditional GETs
    with 304; every request is logged as ``(method, path, status)``."""

    def __init__(self):
        self.pages: dict[str, tuple[str, bytes]] = {}  # path -> (content type, body)
        self.modified: dict[str, str] = {}
        self.log: list[tuple[str, str, int]] = []
        self.down = False  # connections are dropped
        self.failing = False  # every request is answered 503
        site = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 - http.server's name
                path = self.path.split("#")[0]
                if site.down:
                    self.connection.close()
                    return
                if site.failing:
                    return self._answer(503, b"try later", "text/plain")
                page = site.pages.get(path)
                if page is None:
                    return self._answer(404, b"not found", "text/plain")
                kind, body = page
                etag = '"' + hashlib.sha256(body).hexdigest()[:16] + '"'
                headers = {"ETag": etag, "Last-Modified": site.modified[path]}
                if self.headers.get("If-None-Match") == etag:
                    return self._answer(304, b"", kind, headers)
                return self._answer(200, body, kind, headers)

            def _answer(self, status, body, kind, headers=None):
                site.log.append(("GET", self.path, status))
                self.send_response(status)
                self.send_header("Content-Type", kind)
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                if status != 304:
                    self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if status != 304:
                    self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def put(self, path: str, body: str, kind: str = "text/html") -> None:
        self.pages[path] = (kind, body.encode("utf-8"))
        self.modified[path] = email.utils.formatdate(usegmt=True)

    def delete(self, path: str) -> None:
        self.pages.pop(path, None)

    def requests(self, status: int | None = None) -> list[str]:
        return [p for _, p, s in self.log if status is None or s == status]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def site():
    served = Site()
    yield served
    served.close()


def page(title: str, text: str, links: list[str] = ()) -> str:
    anchors = "".join(f'<a href="{href}">{href}</a>' for href in links)
    return f"<html><head><title>{title}</title></head><body><h1>{title}</h1><p>{text}</p>{anchors}</body></html>"
