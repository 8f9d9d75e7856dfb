"""The web source against a local website: unchanged pages are answered 304 and not read
again, robots.txt is obeyed, other sites are left alone, removed pages leave the index."""

from __future__ import annotations

import pytest

import fourfold
from fourfold.index import index_status, refresh
from fourfold.testing import SourceContract, make_context
from fourfold_sources import WebSource
from fourfold_sources.web import page_key

import fourfold_sources

from .conftest import load_domain, page, write_manifest


def sitemap(site, paths: list[str], extra: list[str] = ()) -> str:
    locs = "".join(f"<url><loc>{site.url}{p}</loc></url>" for p in paths) + "".join(f"<url><loc>{u}</loc></url>" for u in extra)
    return f'<?xml version="1.0" encoding="UTF-8"?><urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">{locs}</urlset>'


@pytest.fixture
def website(site):
    site.put("/robots.txt", "User-agent: *\nDisallow: /private/\n", "text/plain")
    site.put("/cats.html", page("Cats", "Adult cats should be fed twice a day."))
    site.put("/dogs", page("Dogs", "Dogs need a walk at least twice daily."))
    site.put("/tea/", page("Tea", "Green tea brews best with water at eighty degrees."))
    site.put("/private/secret.html", page("Secret", "The launch code is hidden."))
    site.put(
        "/sitemap.xml",
        sitemap(site, ["/cats.html", "/dogs", "/tea/", "/private/secret.html"], ["http://elsewhere.invalid/page.html"]),
        "application/xml",
    )
    return site


def web_manifest(tmp_path, url: str) -> fourfold.Domain:
    return load_domain(write_manifest(tmp_path, f"[{{use: web, with: {{sitemap: '{url}/sitemap.xml'}}}}]"))


def test_unchanged_pages_are_answered_304_and_not_read_again(tmp_path, website):
    domain = web_manifest(tmp_path, website.url)
    host = page_key(website.url + "/").split("/")[0]
    first = refresh(domain)
    assert first.published
    assert sorted(first.added) == [f"{host}/cats.html", f"{host}/dogs.html", f"{host}/tea/index.html"]
    assert any("disallowed by robots.txt" in w and "/private/secret.html" in w for w in first.warnings)
    assert any("elsewhere.invalid/page.html: listed by the sitemap but on another site" in w for w in first.warnings)
    assert "/private/secret.html" not in website.requests()

    website.log.clear()
    again = refresh(domain)
    assert not again.published and again.reason == "no change"
    assert sorted(website.requests(304)) == ["/cats.html", "/dogs", "/tea/"]
    assert sorted(website.requests(200)) == ["/robots.txt", "/sitemap.xml"]

    website.put("/cats.html", page("Cats", "Kittens eat four small meals a day."))
    website.delete("/dogs")
    website.log.clear()
    report = refresh(domain)
    assert report.published and report.changed == [f"{host}/cats.html"] and report.removed == [f"{host}/dogs.html"]
    assert report.unchanged == [f"{host}/tea/index.html"] and website.requests(304) == ["/tea/"]
    bodies = [p for p in (domain.state_dir / "web-pages").rglob("*") if p.is_file()]
    assert len(bodies) == 2  # the removed page's body is not kept
    passages, _ = domain.search("kittens meals", top_k=1)
    assert passages[0].chunk.source == f"{host}/cats.html" and passages[0].chunk.url == f"{website.url}/cats.html"


def test_links_are_followed_on_the_same_site_only(tmp_path, site):
    site.put("/index.html", page("Start", "Welcome to the handbook.", ["/guide.html", "http://elsewhere.invalid/x.html", "#top"]))
    site.put("/guide.html", page("Guide", "Descale the kettle monthly.", ["/index.html", "/deeper.html"]))
    site.put("/deeper.html", page("Deeper", "Two links away."))
    source = WebSource(WebSource.Config(urls=[site.url + "/index.html"], follow_links=1), make_context(tmp_path, kind="source"))
    warnings: list[str] = []
    keys = sorted(d.key.split("/", 1)[1] for d in source.documents({}, warnings.append))
    assert keys == ["guide.html", "index.html"]
    assert sorted(site.requests()) == ["/guide.html", "/index.html", "/robots.txt"]  # deeper.html is two links away


def test_an_unreachable_site_keeps_the_published_version(tmp_path, website):
    domain = web_manifest(tmp_path, website.url)
    published = refresh(domain).version
    website.down = True
    with pytest.raises(fourfold.KnowledgeError) as caught:
        refresh(domain)
    assert "knowledge.sources[0]: source 'web'" in str(caught.value) and "could not be listed" in str(caught.value)
    assert index_status(domain).published == published and index_status(domain).documents == 3


def test_a_site_answering_503_is_not_read_as_empty(tmp_path, site):
    site.put("/cats.html", page("Cats", "Adult cats should be fed twice a day."))
    domain = load_domain(write_manifest(tmp_path, f"[{{use: web, with: {{urls: ['{site.url}/cats.html']}}}}]"))
    published = refresh(domain).version
    site.failing = True
    with pytest.raises(fourfold.KnowledgeError, match=r"source 'web' .* could not be listed: HTTPStatusError: .*503"):
        refresh(domain)
    assert index_status(domain).published == published and index_status(domain).documents == 1


def test_a_page_over_the_size_limit_is_skipped(tmp_path, site):
    site.put("/big.html", page("Big", "x" * 3000))
    site.put("/small.html", page("Small", "tiny"))
    source = WebSource(
        WebSource.Config(urls=[site.url + "/big.html", site.url + "/small.html"], max_page_mb=0.001), make_context(tmp_path, kind="source")
    )
    warnings: list[str] = []
    assert [d.key.split("/", 1)[1] for d in source.documents({}, warnings.append)] == ["small.html"]
    assert any("/big.html" in w and "over max_page_mb" in w for w in warnings)


def test_page_keys():
    assert page_key("http://example.org/") == "example.org/index.html"
    assert page_key("https://example.org:8443/a/b") == "example.org_8443/a/b.html"
    assert page_key("http://example.org/a.pdf") == "example.org/a.pdf"
    assert page_key("http://example.org/a.php?id=3").startswith("example.org/a.php-")


class TestWebSourceContract(SourceContract):
    component_class = WebSource
    plugin = fourfold_sources

    @pytest.fixture
    def component_config(self, website):
        self.site = website
        return {"sitemap": website.url + "/sitemap.xml"}

    @pytest.fixture
    def change_document(self):
        def change(document):
            path = "/" + document.key.split("/", 1)[1]
            path = {"/dogs.html": "/dogs", "/tea/index.html": "/tea/"}.get(path, path)
            self.site.put(path, page("Changed", "Changed text."))

        return change

    @pytest.fixture
    def remove_document(self):
        def remove(document):
            path = "/" + document.key.split("/", 1)[1]
            self.site.delete({"/dogs.html": "/dogs", "/tea/index.html": "/tea/"}.get(path, path))

        return remove
