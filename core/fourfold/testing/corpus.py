"""A small knowledge base with known answers, and a fast deterministic embedder, for
contract tests and plugin authors' own tests."""

from __future__ import annotations

import hashlib
import re
from typing import Sequence

import numpy as np
from pydantic import Field

from fourfold.components import ComponentConfig, Embedder, Progress
from fourfold.types import Chunk, Passage, chunk_point_id, content_hash

__all__ = ["HashingEmbedder", "SAMPLE_DOCUMENTS", "sample_chunks", "sample_passages", "SAMPLE_QUESTION"]

# (source, title, heading, tags, text): distinct vocabulary per document, so a lexical or
# semantic retriever can tell them apart, with sources, file types and tags to filter on.
SAMPLE_DOCUMENTS: list[tuple[str, str, str, tuple[str, ...], str]] = [
    ("guides/cats.md", "Caring for cats", "Feeding", ("pets",),
     "Adult cats should be fed twice a day. Kittens need four small meals of wet food."),
    ("guides/cats.md", "Caring for cats", "Grooming", ("pets",),
     "Brush a long-haired cat every day to prevent matted fur and hairballs."),
    ("guides/dogs.md", "Caring for dogs", "Walking", ("pets",),
     "Dogs need a walk at least twice daily; working breeds like collies need long runs."),
    ("guides/dogs.md", "Caring for dogs", "Vaccination", ("pets", "health"),
     "Puppies receive rabies and distemper vaccines between eight and sixteen weeks of age."),
    ("guides/fish.md", "Keeping fish", "Aquarium water", ("pets",),
     "Goldfish aquarium water must be changed weekly and kept free of chlorine."),
    ("faq/tea.txt", "Tea questions", "Brewing", ("drinks",),
     "Green tea brews best with water at eighty degrees for two minutes."),
    ("faq/tea.txt", "Tea questions", "Caffeine", ("drinks", "health"),
     "A cup of black tea contains roughly half the caffeine of a cup of coffee."),
    ("faq/coffee.html", "Coffee questions", "Espresso", ("drinks",),
     "An espresso shot uses nine bars of pressure and finely ground coffee beans."),
    ("faq/coffee.html", "Coffee questions", "Storage", ("drinks",),
     "Store roasted coffee beans in an airtight container away from sunlight."),
    ("manuals/bike.pdf", "Bicycle manual", "Brakes", ("tools",),
     "Adjust the bicycle brake cable until the pads grip the rim firmly."),
    ("manuals/bike.pdf", "Bicycle manual", "Tyres", ("tools",),
     "Inflate bicycle tyres to the pressure printed on the tyre sidewall."),
    ("manuals/kettle.pdf", "Kettle manual", "Descaling", ("tools",),
     "Descale the kettle monthly with vinegar to remove limescale deposits."),
]

SAMPLE_QUESTION = "How often should adult cats be fed?"


def sample_chunks(embedder_id: str = "contract") -> list[Chunk]:
    """The sample documents as chunks, with the ids fourfold's lifecycle would give them.

    The ``faq/`` ones are records of an FAQ: each has a ``url`` and ``metadata``
    (``topic``, ``reviewed``, ``authors``), as a records loader gives them."""
    chunks = []
    ordinals: dict[str, int] = {}
    for source, title, heading, tags, text in SAMPLE_DOCUMENTS:
        h = content_hash(text)
        ordinal = ordinals.get(source, 0)
        ordinals[source] = ordinal + 1
        chunks.append(
            Chunk(
                id=chunk_point_id(embedder_id, source, h, 0),
                text=text,
                source=source,
                title=title,
                heading=heading,
                page=1 if source.endswith(".pdf") else None,
                ordinal=ordinal,
                text_hash=h,
                file_type=source.rsplit(".", 1)[-1],
                tags=tags,
                url=f"https://faq.example/{heading.lower()}" if source.startswith("faq/") else None,
                metadata=(
                    {"topic": title.split()[0].lower(), "reviewed": "2024-05-01", "authors": ["ann", "bo"]}
                    if source.startswith("faq/")
                    else {}
                ),
            )
        )
    return chunks


def sample_passages(n: int = 3) -> list[Passage]:
    """The first ``n`` sample chunks as passages, scores descending."""
    return [Passage(chunk=c, score=round(1.0 - i * 0.1, 3)) for i, c in enumerate(sample_chunks()[:n])]


_WORD = re.compile(r"\w+", re.UNICODE)


class HashingEmbedder(Embedder):
    """Bag-of-words vectors by feature hashing: deterministic, instant, no model files.

    Texts sharing words get similar vectors, which is enough to test a retriever's
    wiring, ordering and filters. Not meant for real retrieval quality.
    """

    name = "hashing"

    class Config(ComponentConfig):
        dimension: int = Field(256, ge=8, le=4096, description="Vector length.")

    @property
    def model_id(self) -> str:
        return f"hashing-{self.config.dimension}"

    @property
    def dimension(self) -> int:
        return self.config.dimension

    def token_spans(self, text: str) -> list[tuple[int, int]]:
        return [m.span() for m in _WORD.finditer(text)]

    def embed_documents(self, texts: Sequence[str], progress: Progress | None = None) -> np.ndarray:
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        for row, text in enumerate(texts):
            if not isinstance(text, str):
                raise TypeError(f"expected text (str), got {type(text).__name__}")
            for word in _WORD.findall(text.lower()):
                digest = hashlib.blake2b(word.encode("utf-8"), digest_size=8).digest()
                bucket = int.from_bytes(digest[:4], "little") % self.dimension
                out[row, bucket] += 1.0 if digest[4] & 1 else -1.0
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return out / np.where(norms == 0, 1.0, norms)
