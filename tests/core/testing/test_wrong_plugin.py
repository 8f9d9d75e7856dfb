"""A plugin that breaks its contracts fails the contract tests with messages that say
what to fix (run as a plugin author would: pytest in a subprocess)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

WRONG_PLUGIN_TESTS = '''
import fourfold
import pytest
from fourfold.testing import GeneratorContract, PromptStrategyContract, RetrieverContract, EmbedderContract, LoaderContract

FOURFOLD_PLUGIN_API = "1.0"


class EverythingRetriever(fourfold.Retriever):
    """Ignores top_k and filters, and ranks worst first."""

    name = "everything"

    def open_store(self):
        return fourfold.FileIndexStore(name="everything")

    def search(self, reader, query, *, top_k=None, filters=None):
        return [fourfold.Passage(c, float(i)) for i, c in enumerate(reader.chunks())]


class BrokenStrategy(fourfold.PromptStrategy):
    name = "broken"

    def build(self, question, passages, history):
        raise RuntimeError("template file prompts/answer.txt is missing")


class TupleGenerator(fourfold.Generator):
    name = "TupleGenerator"

    class Config(fourfold.ComponentConfig):
        model_config = {"extra": "allow"}

    def generate(self, prompt, limits):
        return ("an answer",)


class UnnormalisedEmbedder(fourfold.testing.HashingEmbedder):
    name = "unnormalised"

    def embed_documents(self, texts, progress=None):
        return super().embed_documents(texts) * 3


class ReorderingRetriever(fourfold.Retriever):
    """Re-orders what a keyword match finds (longest text first) but keeps the old scores,
    and rebuilds chunks without their url and metadata."""

    name = "reordering"

    def open_store(self):
        return fourfold.FileIndexStore(name="reordering")

    def search(self, reader, query, *, top_k=None, filters=None):
        words = set(query.lower().split())
        found = [
            fourfold.Passage(c, float(len(words & set(c.text.lower().split()))))
            for c in reader.chunks()
            if (not filters or filters.matches(c)) and words & set(c.text.lower().split())
        ]
        found.sort(key=lambda p: (-p.score, p.chunk.id))
        found = found[: top_k or self.config.top_k]
        found.sort(key=lambda p: -len(p.chunk.text))
        return [
            fourfold.Passage(fourfold.Chunk(p.chunk.id, p.chunk.text, p.chunk.source, p.chunk.title, p.chunk.heading, p.chunk.page,
                                            p.chunk.ordinal, p.chunk.text_hash, p.chunk.file_type, p.chunk.tags), p.score)
            for p in found
        ]


class UntitledLoader(fourfold.Loader):
    name = "untitled"
    extensions = ("md",)

    def load(self, file):
        return fourfold.LoadedDocument(title="", sections=[fourfold.Section(file.path.read_text())])


class TwinRecordsLoader(fourfold.Loader):
    """One record per line, every record titled the same."""

    name = "twin-records"
    extensions = ("faq",)

    def load(self, file):
        return [fourfold.LoadedDocument(title="FAQ", sections=[fourfold.Section(line)]) for line in file.path.read_text().splitlines()]


class TestEverything(RetrieverContract):
    component_class = EverythingRetriever


class TestBroken(PromptStrategyContract):
    component_class = BrokenStrategy


class TestTuple(GeneratorContract):
    component_class = TupleGenerator


class TestUnnormalised(EmbedderContract):
    component_class = UnnormalisedEmbedder


class TestReordering(RetrieverContract):
    component_class = ReorderingRetriever


class TestUntitled(LoaderContract):
    component_class = UntitledLoader


class TestTwinRecords(LoaderContract):
    component_class = TwinRecordsLoader
    expected_text = "Adult cats are fed twice a day."

    @pytest.fixture
    def sample_file(self, tmp_path):
        path = tmp_path / "cats.faq"
        path.write_text("Adult cats are fed twice a day.\\nKittens eat four times a day.\\n")
        return path
'''


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> str:
    folder = tmp_path_factory.mktemp("wrong-plugin")
    (folder / "test_wrong.py").write_text(textwrap.dedent(WRONG_PLUGIN_TESTS))
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-rf", "-p", "no:cacheprovider", "--rootdir", str(folder), str(folder / "test_wrong.py")],
        capture_output=True, text=True, cwd=folder, timeout=300,
        # the outer run's options (--durations, -v, …) would add test names to the report
        env={k: v for k, v in os.environ.items() if k != "PYTEST_ADDOPTS"},
    )
    assert result.returncode == 1, result.stdout + result.stderr
    return result.stdout


@pytest.mark.parametrize(
    "message",
    [
        # ignores top_k
        "retriever 'everything': search() returned 12 passages with top_k=3: return at most top_k",
        # ignores filters
        "return only chunks for which filters.matches(chunk) is true",
        # wrong order
        "return the best passage first, scores descending",
        # raises
        "prompt strategy 'broken': build('How often should adult cats be fed?', [Passage(chunk=Chunk(id='",
        "raised RuntimeError: template file prompts/answer.txt is missing — build() must return a fourfold.Prompt",
        # wrong return type
        "generator 'TupleGenerator': generate() returned tuple; return the answer as a str",
        # bad name, config that accepts anything
        "TupleGenerator.name = 'TupleGenerator': give it a short kebab-case name",
        "Config accepts unknown keys; subclass fourfold.ComponentConfig (extra='forbid')",
        # vectors not normalised
        "embedder 'unnormalised': vector norms are [3.0, 3.0, 3.0, 3.0]; L2-normalise each vector",
        # re-ordered, keeping the old scores
        "a retriever that re-orders another's results must give each passage its new score, not keep the old one",
        # drops a record's url and metadata
        "retriever 'reordering': search() returned chunk",
        "metadata={}, indexed with url='https://faq.example/",
        # empty title
        "loader 'untitled': load(cats.md) returned a document with an empty title; citations show it",
        # records a citation cannot tell apart
        "loader 'twin-records': records of cats.faq share title and url [('FAQ', None)]; a citation could not tell them apart",
    ],
)
def test_failures_say_what_to_fix(report, message):
    assert message in report, report[-4000:]


def test_what_a_good_component_does_passes(report):
    # The contracts check behaviour, not style: the broken retriever still passes the
    # store round trip, and the broken strategy's config checks pass.
    assert "TestEverything::test_a_version_round_trips_chunks" not in report
    assert "TestBroken::test_config_rejects_unknown_keys" not in report
