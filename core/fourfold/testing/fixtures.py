"""pytest fixtures for plugin authors: a fresh plugin host, a plugin registered for one
test, and a small ready-made domain with knowledge.

They become available when fourfold is installed (``pytest11`` entry point ``fourfold``)
and do nothing until a test asks for them. Disable them with ``-p no:fourfold``.
"""

from __future__ import annotations

import html
from collections import defaultdict
from pathlib import Path
from typing import Any, Callable

import pytest
import yaml

from fourfold.testing.corpus import SAMPLE_DOCUMENTS
from fourfold.testing.samples import _pdf

__all__ = ["fourfold_host", "register_plugin", "make_fourfold_domain", "fourfold_domain", "write_sample_knowledge"]


def write_sample_knowledge(folder: Path) -> list[Path]:
    """Write the sample documents (Markdown, text, HTML and PDF files with known answers)
    into ``folder``; returns the files written."""
    by_source: dict[str, list[tuple[str, str, str]]] = defaultdict(list)
    for source, title, heading, _tags, text in SAMPLE_DOCUMENTS:
        by_source[source].append((title, heading, text))
    written = []
    for source, parts in by_source.items():
        path = Path(folder) / source
        path.parent.mkdir(parents=True, exist_ok=True)
        title = parts[0][0]
        ext = path.suffix.lstrip(".")
        if ext == "md":
            path.write_text(f"# {title}\n\n" + "".join(f"## {h}\n\n{t}\n\n" for _, h, t in parts), encoding="utf-8")
        elif ext == "html":
            body = "".join(f"<h2>{html.escape(h)}</h2><p>{html.escape(t)}</p>" for _, h, t in parts)
            path.write_text(f"<!doctype html><html><head><title>{html.escape(title)}</title></head><body><h1>{html.escape(title)}</h1>{body}</body></html>\n", encoding="utf-8")
        elif ext == "pdf":
            path.write_bytes(_pdf([title] + [line for _, h, t in parts for line in (h, t)]))
        else:
            path.write_text(f"{title}\n\n" + "".join(f"{h}\n\n{t}\n\n" for _, h, t in parts), encoding="utf-8")
        written.append(path)
    return written


@pytest.fixture
def fourfold_host(tmp_path_factory, monkeypatch):
    """A freshly loaded :class:`fourfold.PluginHost` (every installed plugin) with its own
    state dir; it is also the process-wide host, so ``fourfold`` commands run in-process
    (``typer.testing.CliRunner``) and domains see what the test registers."""
    from fourfold import plugins, settings

    monkeypatch.setenv("FOURFOLD_HOME", str(tmp_path_factory.mktemp("fourfold-home")))
    previous = plugins._host
    host = plugins.get_host(fresh=True)
    yield host
    plugins._host = previous
    settings._cached.cache_clear()


@pytest.fixture
def register_plugin(fourfold_host) -> Callable[..., Any]:
    """Register a plugin object (module, class or instance with hookimpls) for this test::

        def test_my_hook(register_plugin, fourfold_domain):
            register_plugin(my_plugin_module)

    Fails the test with the host's reason when the plugin does not load (no
    ``FOURFOLD_PLUGIN_API``, a bad component, a duplicate name). Returns the
    :class:`fourfold.plugins.PluginRecord`.
    """
    names: list[str] = []

    def register(plugin: Any, name: str | None = None) -> Any:
        name = name or getattr(plugin, "__name__", None) or type(plugin).__name__
        record = fourfold_host.register(plugin, name=name)
        names.append(name)
        if record.status != "loaded":
            pytest.fail(f"plugin '{name}' did not load: {record.error}", pytrace=False)
        return record

    yield register
    for name in reversed(names):
        fourfold_host.unregister(name)


@pytest.fixture
def make_fourfold_domain(fourfold_host, tmp_path) -> Callable[..., Any]:
    """Build a :class:`fourfold.Domain` from a temporary manifest over the sample
    knowledge (:func:`write_sample_knowledge`)::

        domain = make_fourfold_domain(retrieval={"use": "my-retriever", "with": {"top_k": 3}})
        domain = make_fourfold_domain(build_index=True)   # index built by fourfold's lifecycle

    Keyword arguments are manifest keys (``prompt``, ``retrieval``, ``generation``,
    ``embedding``, ``training``, ``fine_tuning``, ``knowledge``, ``domain``, ``title``…);
    the rest keep fourfold's defaults. The manifest lives in ``tmp_path/<domain>/domain.yaml``
    and the knowledge in ``knowledge/`` beside it.
    """

    def make(*, build_index: bool = False, **manifest: Any) -> Any:
        from fourfold.domain import Domain

        name = manifest.get("domain", "sample")
        folder = tmp_path / name
        write_sample_knowledge(folder / "knowledge")
        data: dict[str, Any] = {
            "fourfold": 1,
            "domain": name,
            "title": "Sample assistant",
            "knowledge": {"sources": [{"path": "knowledge"}], "chunking": {"max_tokens": 64, "overlap": 8}},
        }
        data.update(manifest)
        path = folder / "domain.yaml"
        path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
        domain = Domain.from_file(path, host=fourfold_host)
        if build_index:
            refresh_index(domain)
        return domain

    return make


@pytest.fixture
def fourfold_domain(make_fourfold_domain) -> Any:
    """A ready-made domain ('sample') over the sample knowledge with fourfold's default
    components; no index is built (use ``make_fourfold_domain(build_index=True)``)."""
    return make_fourfold_domain()


def refresh_index(domain: Any) -> Any:
    """Build and publish the domain's index through fourfold's real lifecycle."""
    try:
        from fourfold.index import refresh
    except ImportError as exc:  # the index lifecycle is part of fourfold; this only guards odd installs
        pytest.skip(f"this fourfold has no index lifecycle ({exc})")
    return refresh(domain)
