"""The embedder and loader contracts: vectors of the promised shape, normalised, in input
order; token spans that chunking can cut at; loaders that read samples and refuse broken
files."""

from __future__ import annotations

import datetime
import json
import re
from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest

from fourfold.components import Embedder, Loader
from fourfold.sizing import EmbeddingWork
from fourfold.testing.base import ComponentContract, call, check_cost_profile, expect, label, type_name
from fourfold.testing.corpus import SAMPLE_DOCUMENTS
from fourfold.testing.samples import SAMPLE_FORMATS, SAMPLE_SENTENCE, write_broken_sample, write_sample
from fourfold.types import LoadedDocument, Section, SourceFile

__all__ = ["EmbedderContract", "LoaderContract"]

_TEXTS = [doc[4] for doc in SAMPLE_DOCUMENTS]


def _only_dates(value):
    # Dates (from front matter, say) are stored as their ISO text; anything else must be JSON.
    if isinstance(value, (datetime.date, datetime.datetime)):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} {value!r}")


class EmbedderContract(ComponentContract):
    """Checks a :class:`fourfold.Embedder`: ``(n, dimension)`` float32 L2-normalised
    vectors in input order, queries closest to their own text, reproducible vectors, and
    token spans covering the whole text."""

    kind = "embedder"

    def embed(self, component: Embedder, texts: list[str]) -> np.ndarray:
        __tracebackhide__ = True
        vectors = call(component, "embed_documents", texts, fix="embed_documents(texts) must return a float32 array (len(texts), dimension)")
        expect(
            isinstance(vectors, np.ndarray),
            f"{label(component)}: embed_documents() returned {type_name(vectors)}; return a numpy array of shape (len(texts), dimension)",
        )
        expect(
            vectors.shape == (len(texts), component.dimension),
            f"{label(component)}: embed_documents() of {len(texts)} texts returned shape {vectors.shape}; expected ({len(texts)}, {component.dimension}) (dimension={component.dimension})",
        )
        expect(vectors.dtype == np.float32, f"{label(component)}: embed_documents() returned {vectors.dtype} vectors; return float32")
        return vectors

    def test_describes_its_cost_or_none(self, component):
        check_cost_profile(component, EmbeddingWork)

    def test_identity_is_declared(self, component):
        expect(
            isinstance(component.model_id, str) and component.model_id,
            f"{label(component)}: model_id is {component.model_id!r}; return a non-empty string that changes whenever the vectors would",
        )
        expect(
            isinstance(component.dimension, int) and component.dimension > 0,
            f"{label(component)}: dimension is {component.dimension!r}; return the vector length as a positive int",
        )
        expect(
            isinstance(component.max_tokens, int) and component.max_tokens > 0,
            f"{label(component)}: max_tokens is {component.max_tokens!r}; return the longest input in tokens",
        )

    def test_vectors_are_normalised(self, component):
        vectors = self.embed(component, _TEXTS[:4])
        norms = np.linalg.norm(vectors, axis=1)
        expect(
            np.allclose(norms, 1.0, atol=1e-3),
            f"{label(component)}: vector norms are {np.round(norms, 4).tolist()}; L2-normalise each vector (fourfold scores by dot product)",
        )

    def test_vectors_keep_input_order(self, component):
        forward = self.embed(component, _TEXTS[:3])
        backward = self.embed(component, _TEXTS[:3][::-1])
        expect(
            np.allclose(forward, backward[::-1], atol=1e-4),
            f"{label(component)}: embedding texts in reverse order changed their vectors; row i must belong to texts[i] whatever the batch",
        )

    def test_empty_batch(self, component):
        self.embed(component, [])

    def test_query_vector(self, component):
        query = call(component, "embed_query", "How often should cats be fed?", fix="embed_query(text) returns one vector (dimension,)")
        expect(
            isinstance(query, np.ndarray) and query.shape == (component.dimension,),
            f"{label(component)}: embed_query() returned {getattr(query, 'shape', type_name(query))}; return one vector of shape ({component.dimension},)",
        )
        expect(abs(float(np.linalg.norm(query)) - 1.0) < 1e-3, f"{label(component)}: embed_query() vector has norm {float(np.linalg.norm(query)):.4f}; L2-normalise it")

    def test_a_text_is_nearest_to_itself(self, component):
        docs = self.embed(component, _TEXTS)
        for i in (0, 5, 9):
            query = component.embed_query(_TEXTS[i])
            best = int(np.argmax(docs @ query))
            expect(
                best == i,
                f"{label(component)}: embed_query({_TEXTS[i][:30]!r}…) is nearest to {_TEXTS[best][:30]!r}…, not to the same text; "
                "queries and documents must live in one vector space",
            )

    def test_vectors_are_reproducible(self, component):
        first, second = self.embed(component, _TEXTS[:2]), self.embed(component, _TEXTS[:2])
        expect(
            np.allclose(first, second, atol=1e-5),
            f"{label(component)}: the same texts gave different vectors; vectors are cached by content and model_id, so they must not vary",
        )

    def test_token_spans_cover_the_whole_text(self, component):
        text = " ".join(_TEXTS) * 8  # longer than any embedder reads at once
        spans = call(component, "token_spans", text, fix="token_spans(text) returns (start, end) character offsets")
        expect(isinstance(spans, list) and spans, f"{label(component)}: token_spans() returned {type_name(spans)}; return a list of (start, end) pairs")
        previous_end = 0
        for start, end in spans:
            expect(
                isinstance(start, int) and isinstance(end, int) and 0 <= start < end <= len(text),
                f"{label(component)}: token_spans() gave ({start}, {end}) for a text of {len(text)} characters; each span is 0 <= start < end <= len(text)",
            )
            expect(start >= previous_end, f"{label(component)}: token_spans() gave overlapping or unordered spans at ({start}, {end}); return them in text order")
            previous_end = end
        words = len(re.findall(r"\S+", text))
        expect(
            spans[-1][1] >= len(text.rstrip()) - 1,
            f"{label(component)}: token_spans() stopped at character {spans[-1][1]} of {len(text)} ({len(spans)} spans for {words} words); "
            "return spans for the whole text, without truncating at max_tokens — chunking cuts it",
        )


class LoaderContract(ComponentContract):
    """Checks a :class:`fourfold.Loader`: it reads a sample file of its format into a
    titled document whose sections hold the text, and raises on a broken file.

    The sample and broken files come from the ``sample_file`` and ``broken_file``
    fixtures: for md, txt, html and pdf fourfold writes them; for other formats override
    them (and set ``expected_text`` to a sentence your sample contains).
    """

    kind = "loader"
    expected_text: ClassVar[str | None] = None

    @pytest.fixture
    def sample_file(self, component_class_under_test, tmp_path: Path) -> Path:
        """A readable file of the loader's format."""
        known = [e for e in component_class_under_test.extensions if e in SAMPLE_FORMATS]
        if not known:
            pytest.fail(
                f"{label(component_class_under_test)} reads {component_class_under_test.extensions}; fourfold has no sample of those: "
                "override the sample_file fixture to write one and set expected_text",
                pytrace=False,
            )
        return write_sample(known[0], tmp_path / "knowledge")

    @pytest.fixture
    def broken_file(self, component_class_under_test, tmp_path: Path) -> Path | None:
        """A file of the loader's format that cannot be read, or None when every file is readable."""
        for ext in component_class_under_test.extensions:
            path = write_broken_sample(ext, tmp_path / "knowledge")
            if path is not None:
                return path
        return None

    def source(self, path: Path) -> SourceFile:
        return SourceFile(path=path, relpath=path.name, size=path.stat().st_size)

    def load_records(self, component: Loader, path: Path) -> list[LoadedDocument]:
        """What ``load()`` returns for ``path``, as a list of records (one document for
        most formats), each checked for the fields fourfold reads."""
        __tracebackhide__ = True
        loaded = call(component, "load", self.source(path), fix="load(file) must return a fourfold.LoadedDocument (or a list of them, one per record)")
        records = loaded if isinstance(loaded, list) else [loaded]
        expect(records, f"{label(component)}: load({path.name}) returned an empty list; return at least one fourfold.LoadedDocument for a readable file")
        for doc in records:
            expect(
                isinstance(doc, LoadedDocument),
                f"{label(component)}: load() returned {type_name(doc) if doc is loaded else 'a list containing ' + type_name(doc)}; "
                "return fourfold.LoadedDocument(title=..., sections=[...]) or a list of them, one per record",
            )
            expect(isinstance(doc.title, str), f"{label(component)}: LoadedDocument.title is {type_name(doc.title)}; give a str (the file name when the format has no title)")
            expect(doc.title.strip(), f"{label(component)}: load({path.name}) returned a document with an empty title; citations show it: give the document's title, or the file name when it has none")
            expect(isinstance(doc.sections, list), f"{label(component)}: LoadedDocument.sections is {type_name(doc.sections)}; give a list of fourfold.Section")
            for s in doc.sections:
                expect(isinstance(s, Section), f"{label(component)}: sections contains {type_name(s)}; use fourfold.Section(text, heading_path, page)")
                expect(isinstance(s.text, str), f"{label(component)}: a section's text is {type_name(s.text)}; it must be a str")
                expect(
                    isinstance(s.heading_path, tuple) and all(isinstance(h, str) for h in s.heading_path),
                    f"{label(component)}: a section's heading_path is {s.heading_path!r}; give a tuple of heading strings, outermost first",
                )
                expect(s.page is None or (isinstance(s.page, int) and s.page >= 1), f"{label(component)}: a section's page is {s.page!r}; give None or a page number from 1")
            expect(isinstance(doc.metadata, dict), f"{label(component)}: LoadedDocument.metadata is {type_name(doc.metadata)}; give a dict")
            warnings = doc.metadata.get("warnings")
            expect(
                warnings is None or (isinstance(warnings, list) and all(isinstance(w, str) for w in warnings)),
                f"{label(component)}: metadata['warnings'] is {warnings!r}; give a list of strings, each saying where (\"line 4: ...\")",
            )
            url = doc.metadata.get("url")
            expect(url is None or isinstance(url, str), f"{label(component)}: metadata['url'] is {type_name(url)}; give the record's link as a str")
            try:
                json.dumps({k: v for k, v in doc.metadata.items() if k != "warnings"}, default=_only_dates)
            except TypeError as exc:
                pytest.fail(f"{label(component)}: metadata is not JSON-serialisable ({exc}); give str, int, float, bool, lists and dicts of them", pytrace=False)
        return records

    def load(self, component: Loader, path: Path) -> LoadedDocument:
        """The document ``load()`` returns for ``path`` (its records' sections joined, for a loader of records)."""
        __tracebackhide__ = True
        records = self.load_records(component, path)
        if len(records) == 1:
            return records[0]
        return LoadedDocument(title=records[0].title, sections=[s for r in records for s in r.sections])

    def test_extensions_are_declared(self, component_class_under_test):
        exts = component_class_under_test.extensions
        expect(
            isinstance(exts, tuple) and exts,
            f"{label(component_class_under_test)}: extensions is {exts!r}; give a tuple of the file extensions it reads, e.g. ('md', 'markdown')",
        )
        for ext in exts:
            expect(
                isinstance(ext, str) and ext == ext.lower() and not ext.startswith(".") and ext,
                f"{label(component_class_under_test)}: extension {ext!r}: write extensions lower-case without the dot ('md', not '.MD')",
            )

    def test_reads_a_sample(self, component, sample_file):
        doc = self.load(component, sample_file)
        expect(doc.text.strip(), f"{label(component)}: load({sample_file.name}) returned no text; return the document's text in sections")
        expected = type(self).expected_text or (SAMPLE_SENTENCE if sample_file.stem == "cats" else None)
        if expected:
            squashed = re.sub(r"\s+", " ", doc.text)
            expect(
                expected in squashed,
                f"{label(component)}: load({sample_file.name}) did not return the sentence {expected!r}; got {squashed[:120]!r}",
            )

    def test_loading_is_deterministic(self, component, sample_file):
        first, second = self.load(component, sample_file), self.load(component, sample_file)
        expect(
            first.sections == second.sections and first.title == second.title,
            f"{label(component)}: loading the same file twice gave different sections; refreshes detect changes by content, so loading must be reproducible",
        )

    def test_records_from_one_file_are_each_citable(self, component, sample_file):
        records = self.load_records(component, sample_file)
        if len(records) < 2:
            pytest.skip("the loader returns one document per file")
        for i, doc in enumerate(records):
            expect(doc.text.strip(), f"{label(component)}: record {i} of {sample_file.name} ({doc.title!r}) has no text; leave out records without text")
        labels = [(doc.title, doc.metadata.get("url")) for doc in records]
        twins = sorted({lb for lb in labels if labels.count(lb) > 1}, key=str)
        expect(
            not twins,
            f"{label(component)}: records of {sample_file.name} share title and url {twins}; a citation could not tell them apart: "
            "give each record its own title (the question, the subject) or metadata['url']",
        )

    def test_a_broken_file_raises(self, component, broken_file):
        if broken_file is None:
            pytest.skip("every file of this format is readable")
        try:
            doc = component.load(self.source(broken_file))
        except Exception as exc:  # any exception: the refresh records it as a warning naming the file
            expect(str(exc).strip(), f"{label(component)}: load() of a broken file raised {type(exc).__name__} with no message; say what is wrong")
            return
        pytest.fail(
            f"{label(component)}: load({broken_file.name}) of a broken file returned {type_name(doc)} instead of raising; raise an exception "
            "saying what is wrong so the refresh can warn about the file",
            pytrace=False,
        )
