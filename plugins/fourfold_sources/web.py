"""The ``web`` source: pages of a website, from a list of URLs or a sitemap.

Each page is fetched with a conditional GET: the validators of its last response
(``ETag``, ``Last-Modified``) are kept in the document's change marker, so an unchanged
page is answered ``304 Not Modified`` and neither downloaded nor read again. Only the
sites of the configured URLs are read (``follow_links`` and sitemap entries leading
elsewhere are ignored), ``robots.txt`` is obeyed, and pages over ``max_page_mb`` or
beyond ``max_pages`` are skipped with a warning. A page answered 404 or 410 is gone from
the index at this refresh.
"""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path, PurePosixPath
from typing import BinaryIO, Callable, Iterable, Mapping
from urllib.parse import urldefrag, urljoin, urlsplit
from urllib.robotparser import RobotFileParser
from xml.etree import ElementTree

import httpx
from pydantic import Field, model_validator
from selectolax.lexbor import LexborHTMLParser

import fourfold

_READABLE = {"html", "htm", "md", "markdown", "txt", "pdf"}
_GONE = (404, 410)


class WebSource(fourfold.Source):
    """Pages of one or more websites."""

    name = "web"
    description = "Pages of a website from a list of URLs or a sitemap, fetched conditionally; robots.txt obeyed."

    class Config(fourfold.ComponentConfig):
        urls: list[str] = Field(default_factory=list, description="Pages to read (http or https).")
        sitemap: str | None = Field(None, description="URL of a sitemap (or sitemap index) listing the pages to read.")
        follow_links: int = Field(0, ge=0, le=5, description="Also read pages linked from these, this many links deep (same site only).")
        max_pages: int = Field(500, ge=1, description="Pages read at most; the rest are skipped with a warning.")
        max_page_mb: float = Field(5, gt=0, description="Pages larger than this are skipped with a warning.")
        timeout_s: float = Field(10.0, gt=0, description="Timeout of each request, in seconds.")
        user_agent: str = Field("fourfold", description="User-Agent sent, and the agent robots.txt rules are read for.")

        @model_validator(mode="after")
        def _something_to_read(self) -> "WebSource.Config":
            if not self.urls and not self.sitemap:
                raise ValueError("give 'urls' (a list of pages) or 'sitemap' (the URL of a sitemap)")
            for url in [*self.urls, *([self.sitemap] if self.sitemap else [])]:
                if urlsplit(url).scheme not in ("http", "https") or not urlsplit(url).netloc:
                    raise ValueError(f"'{url}' is not an http(s) URL")
            return self

    @property
    def location(self) -> str:
        return self.config.sitemap or ", ".join(self.config.urls[:3]) + (" …" if len(self.config.urls) > 3 else "")

    @property
    def sites(self) -> set[str]:
        """The origins (``scheme://host:port``) pages are read from."""
        return {_origin(u) for u in [*self.config.urls, *([self.config.sitemap] if self.config.sitemap else [])]}

    @property
    def pages_dir(self) -> Path:
        """Where the last body of each page is kept (to follow its links and to open it
        without fetching it twice): one folder per configured set of pages, so two web
        sources of a domain never drop each other's pages."""
        assert self.context is not None
        start = json.dumps([self.config.urls, self.config.sitemap])
        return self.context.state_dir / "web-pages" / hashlib.sha256(start.encode()).hexdigest()[:16]

    def documents(self, previous: Mapping[str, str], warn: Callable[[str], None]) -> Iterable[fourfold.SourceDocument]:
        c = self.config
        with self._http() as http:
            robots = _Robots(http, c.user_agent)
            start = list(dict.fromkeys(urldefrag(u)[0] for u in c.urls))
            if c.sitemap:
                start += [u for u in _sitemap_pages(http, c.sitemap, self.sites, warn) if u not in start]
            queue = [(u, 0) for u in start]
            seen = set(start)
            out: list[fourfold.SourceDocument] = []
            while queue:
                url, depth = queue.pop(0)
                if len(out) >= c.max_pages:
                    warn(f"{len(queue) + 1} more pages beyond max_pages ({c.max_pages}); skipped")
                    break
                if not robots.allowed(url):
                    warn(f"{url}: disallowed by robots.txt; skipped")
                    continue
                key = page_key(url)
                page = self._fetch(http, url, key, previous.get(key), warn)
                if page is None:
                    continue
                out.append(page)
                if depth < c.follow_links:
                    for link in self._links(url, key):
                        if link not in seen and _origin(link) in self.sites:
                            seen.add(link)
                            queue.append((link, depth + 1))
        self._forget_pages_except({_cache_name(d.key) for d in out})
        return out

    def _forget_pages_except(self, kept: set[str]) -> None:
        """Drop the kept bodies of pages no longer listed."""
        if self.pages_dir.is_dir():
            for body in self.pages_dir.iterdir():
                if body.name not in kept and not body.name.startswith("."):
                    body.unlink(missing_ok=True)

    def open(self, document: fourfold.SourceDocument) -> BinaryIO:
        body = self.pages_dir / _cache_name(document.key)
        if body.is_file():
            return open(body, "rb")
        assert document.url is not None
        with self._http() as http:
            response = http.get(document.url)
            response.raise_for_status()
            return io.BytesIO(response.content)

    # -- fetching -----------------------------------------------------------------------

    def _http(self) -> httpx.Client:
        return httpx.Client(follow_redirects=True, timeout=self.config.timeout_s, headers={"User-Agent": self.config.user_agent})

    def _fetch(self, http: httpx.Client, url: str, key: str, marker: str | None, warn) -> fourfold.SourceDocument | None:
        """The page's document, fetched conditionally on ``marker`` (None: gone or skipped)."""
        validators = _validators(marker)
        body_path = self.pages_dir / _cache_name(key)
        headers = {}
        if validators and body_path.is_file():
            if validators.get("etag"):
                headers["If-None-Match"] = validators["etag"]
            if validators.get("modified"):
                headers["If-Modified-Since"] = validators["modified"]
        limit = int(self.config.max_page_mb * 1024 * 1024)
        try:
            with http.stream("GET", url, headers=headers) as response:
                if _origin(str(response.url)) not in self.sites:
                    warn(f"{url}: redirected off the site to {response.url}; skipped")
                    return None
                if response.status_code == 304 and marker is not None:
                    return fourfold.SourceDocument(key=key, marker=marker, url=url)
                if response.status_code in _GONE:
                    return None
                if response.status_code >= 400:
                    raise httpx.HTTPStatusError(f"HTTP {response.status_code}", request=response.request, response=response)
                declared = int(response.headers.get("Content-Length") or 0)
                if declared > limit:
                    warn(f"{url}: {declared / 1048576:.1f} MB is over max_page_mb ({self.config.max_page_mb:g} MB); skipped")
                    return None
                chunks, size = [], 0
                for chunk in response.iter_bytes():
                    size += len(chunk)
                    if size > limit:
                        warn(f"{url}: over max_page_mb ({self.config.max_page_mb:g} MB); skipped")
                        return None
                    chunks.append(chunk)
                body = b"".join(chunks)
                found = {
                    "etag": response.headers.get("ETag"),
                    "modified": response.headers.get("Last-Modified"),
                    "sha256": hashlib.sha256(body).hexdigest(),
                }
        except httpx.HTTPError as exc:
            if marker is not None:
                warn(f"{url}: could not be fetched ({exc}); kept the previous version of it")
                return fourfold.SourceDocument(key=key, marker=marker, url=url)
            warn(f"{url}: could not be fetched ({exc}); skipped")
            return None
        body_path.parent.mkdir(parents=True, exist_ok=True)
        fourfold.write_atomic(body_path, body)
        marker = "web:" + json.dumps({k: v for k, v in found.items() if v}, sort_keys=True, separators=(",", ":"))
        return fourfold.SourceDocument(key=key, marker=marker, size=len(body), url=url)

    def _links(self, url: str, key: str) -> list[str]:
        body = self.pages_dir / _cache_name(key)
        if not body.is_file() or PurePosixPath(key).suffix.lower() not in (".html", ".htm"):
            return []
        tree = LexborHTMLParser(body.read_bytes())
        out = []
        for node in tree.css("a[href]"):
            link = urldefrag(urljoin(url, node.attributes.get("href") or ""))[0]
            if urlsplit(link).scheme in ("http", "https"):
                out.append(link)
        return out


def page_key(url: str) -> str:
    """The document key of a page: ``host[:port]/path``, with ``index.html`` for a
    folder and ``.html`` added when the path has no extension a loader reads."""
    parts = urlsplit(url)
    path = parts.path or "/"
    if path.endswith("/"):
        path += "index.html"
    stem, dot, ext = path.rpartition(".")
    if not dot or "/" in ext or ext.lower() not in _READABLE:
        stem, ext = path, "html"
    if parts.query:
        stem += "-" + hashlib.sha256(parts.query.encode()).hexdigest()[:10]
    segments = [s for s in f"{stem}.{ext}".split("/") if s not in ("", ".", "..")]
    return "/".join([parts.netloc.replace(":", "_"), *[s.lstrip(".") or "_" for s in segments]])


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc.lower()}"


def _cache_name(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def _validators(marker: str | None) -> dict[str, str]:
    if not marker or not marker.startswith("web:"):
        return {}
    try:
        found = json.loads(marker[4:])
    except ValueError:
        return {}
    return found if isinstance(found, dict) else {}


def _sitemap_pages(http: httpx.Client, url: str, sites: set[str], warn, depth: int = 0) -> list[str]:
    """The page URLs a sitemap (or a sitemap index, one level deep) lists on ``sites``.

    :raises httpx.HTTPError: the sitemap cannot be fetched (the site is unreachable).
    """
    response = http.get(url)
    response.raise_for_status()
    try:
        root = ElementTree.fromstring(response.content)
    except ElementTree.ParseError as exc:
        raise ValueError(f"sitemap {url} is not XML: {exc}") from exc
    out: list[str] = []
    for loc in root.iter():
        if not loc.tag.endswith("loc") or not (loc.text or "").strip():
            continue
        found = urldefrag(loc.text.strip())[0]
        if _origin(found) not in sites:
            warn(f"{found}: listed by the sitemap but on another site; skipped")
            continue
        if root.tag.endswith("sitemapindex"):
            if depth == 0:
                out += _sitemap_pages(http, found, sites, warn, depth + 1)
        elif found not in out:
            out.append(found)
    return out


class _Robots:
    """robots.txt of each site, fetched once per listing."""

    def __init__(self, http: httpx.Client, agent: str):
        self.http = http
        self.agent = agent
        self.parsers: dict[str, RobotFileParser] = {}

    def allowed(self, url: str) -> bool:
        origin = _origin(url)
        parser = self.parsers.get(origin)
        if parser is None:
            parser = self.parsers[origin] = RobotFileParser(origin + "/robots.txt")
            response = self.http.get(origin + "/robots.txt")  # a site that is down fails the listing here
            if response.status_code >= 500:
                # Read as "disallow everything", it would empty the index of a site that
                # is only having trouble: fail the listing instead, keeping what serves.
                response.raise_for_status()
            if response.status_code in (401, 403):
                parser.disallow_all = True
            elif response.status_code >= 400:
                parser.allow_all = True
            else:
                parser.parse(response.text.splitlines())
        return parser.can_fetch(self.agent, url)
