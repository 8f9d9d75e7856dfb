from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

import fourfold
from tests.core import toy_plugin


@pytest.fixture(scope="module")
def minilm():
    """The real embedder; chunking only needs its tokenizer, so the model never loads."""
    from fourfold_minilm import MiniLMEmbedder

    return MiniLMEmbedder()


@pytest.fixture
def knowledge_domain(tmp_path, host):
    """Build a domain over folders in ``tmp_path`` from a ``knowledge:`` block (YAML).

    The other blocks use the toy plugin's components, so these tests exercise only
    scanning, loading and chunking.
    """
    host.register(toy_plugin, name="toy")

    def make(knowledge_yaml: str) -> fourfold.Domain:
        body = textwrap.indent(textwrap.dedent(knowledge_yaml).strip("\n"), "  ")
        path = tmp_path / "domain.yaml"
        path.write_text(
            "fourfold: 1\ndomain: kb\ntitle: KB\n"
            "prompt: {use: toy-prompt}\nretrieval: {use: toy-retriever}\ngeneration: {use: toy-generator}\n"
            f"knowledge:\n{body}\n",
            encoding="utf-8",
        )
        return fourfold.Domain.from_file(path, host=host)

    return make


def write(folder: Path, relpath: str, content: str | bytes = "text") -> Path:
    path = folder / relpath
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return path
