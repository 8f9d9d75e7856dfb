"""Small knowledge folders built on the fly, domains over them, and a way to compare
what two indexes hold."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

import fourfold
from fourfold.index import IndexLayout

MANIFEST = """
fourfold: 1
domain: {domain}
title: Test knowledge
knowledge:
  sources: [{{path: {kb}, tags: [kb]}}]
  chunking: {{max_tokens: {max_tokens}, overlap: 8}}
  keep_versions: {keep}
  gate: {{min_chunks: {min_chunks}}}
retrieval: {{use: {retriever}, with: {{top_k: 3}}}}
"""

TOPICS = {
    "diabetes.md": "# Diabetes\n\n## Symptoms\n\nType 2 diabetes causes thirst, frequent urination and tiredness.\n\n"
    "## Treatment\n\nDiabetes is treated with diet, exercise, metformin and insulin.\n",
    "asthma.md": "# Asthma\n\nAsthma inflames the airways of the lungs and causes wheezing.\n",
    "flu.txt": "Influenza spreads through droplets. A yearly flu vaccine prevents most infections.\n",
    "legal/nda.md": "# Non-disclosure agreement\n\nThe receiving party keeps confidential information secret for five years.\n",
    "legal/lease.txt": "The tenant pays monthly rent on the first day of each month.\n",
}


def write_files(root: Path, files: dict[str, str]) -> None:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")


def make_manifest(
    folder: Path,
    kb: Path,
    *,
    domain: str = "kb",
    keep: int = 3,
    min_chunks: int = 1,
    retriever: str = "hybrid",
    max_tokens: int = 64,
    name: str = "domain.yaml",
) -> Path:
    path = folder / name
    path.write_text(
        textwrap.dedent(MANIFEST).format(
            domain=domain, kb=kb, keep=keep, min_chunks=min_chunks, retriever=retriever, max_tokens=max_tokens
        ),
        encoding="utf-8",
    )
    return path


def load_domain(manifest: Path, home: Path | None = None) -> fourfold.Domain:
    from fourfold.plugins import get_host

    host = get_host()
    settings = fourfold.Settings(home=home) if home else None
    return fourfold.Domain(fourfold.load_manifest(manifest, host), host, settings)


def snapshot(domain: fourfold.Domain) -> dict:
    """What a user can observe of the published version: documents and their hashes,
    chunk ids, fingerprints and payloads (version names and timestamps aside)."""
    layout = IndexLayout.for_domain(domain)
    current = layout.read_current()
    if current is None:
        return {}
    catalog = layout.read_catalog(current)
    store = domain.retriever.open_store()
    reader = store.open_version(layout.store_dir(current))
    try:
        payloads = {c.id: c.payload() for c in reader.chunks()}
        count = reader.count()
    finally:
        reader.close()
    return {
        "documents": {p: (e.hash, sorted(e.chunks)) for p, e in catalog.documents.items()},
        "payloads": payloads,
        "count": count,
    }


@pytest.fixture
def kb(tmp_path) -> Path:
    root = tmp_path / "kb"
    write_files(root, TOPICS)
    return root
