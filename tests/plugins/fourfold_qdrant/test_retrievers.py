"""The retriever contract on both engines: top_k honoured, scores descending, metadata
filters honoured, the right passage first for a plain question.

Uses the real all-MiniLM-L6-v2 embedder, qdrant-edge, and qdrant-client's local mode
standing in for a Qdrant server (same API).
"""

from __future__ import annotations

import pytest

import fourfold
from fourfold.index import embedding_text
from fourfold.plugins import get_host

pytestmark = pytest.mark.slow  # loads the embedder once per module

DOCS = [
    # source, title, heading, text, tags
    ("medical/diabetes.md", "Diabetes", "Symptoms", "Type 2 diabetes causes thirst, frequent urination and tiredness. Blood sugar stays high.", ("health",)),
    ("medical/diabetes.md", "Diabetes", "Treatment", "Diabetes is treated with diet, exercise, metformin and sometimes insulin injections.", ("health",)),
    ("medical/asthma.html", "Asthma", "Overview", "Asthma inflames the airways of the lungs, causing wheezing and shortness of breath.", ("health",)),
    ("medical/flu.txt", "Influenza", "Prevention", "A yearly flu vaccine is the best way to prevent influenza infection.", ("health", "vaccines")),
    ("medical/measles.pdf", "Measles", "Vaccination", "The MMR vaccine protects children against measles, mumps and rubella.", ("health", "vaccines")),
    ("legal/nda.md", "Non-disclosure agreement", "Confidentiality", "The receiving party shall keep all confidential information secret for five years.", ("contracts",)),
    ("legal/nda.md", "Non-disclosure agreement", "Termination", "Either party may terminate this agreement with thirty days written notice.", ("contracts",)),
    ("legal/privacy.html", "Privacy policy", "Sharing", "We do not sell your personal data to advertisers or other third parties.", ("policies",)),
    ("legal/privacy.html", "Privacy policy", "Cookies", "Our website uses cookies to remember your preferences and measure traffic.", ("policies",)),
    ("legal/lease.txt", "Office lease", "Rent", "The tenant pays monthly rent of 2,000 euros on the first day of each month.", ("contracts",)),
    ("legal/merger.pdf", "Merger agreement", "Closing", "The merger closes after regulatory approval and shareholder consent.", ("contracts",)),
    ("misc/notes.md", "Gardening notes", "Tomatoes", "Tomatoes need full sun, regular watering and support stakes as they grow.", ()),
]

RETRIEVERS = ["dense", "sparse", "hybrid", "bm25"]


def _chunks() -> list[fourfold.Chunk]:
    out = []
    for i, (source, title, heading, text, tags) in enumerate(DOCS):
        out.append(
            fourfold.Chunk(
                id=fourfold.chunk_point_id("test", source, fourfold.content_hash(text), 0),
                text=text,
                source=source,
                title=title,
                heading=heading,
                ordinal=i,
                text_hash=fourfold.content_hash(text),
                file_type=source.rsplit(".", 1)[1],
                tags=tags,
            )
        )
    return out


@pytest.fixture(scope="module", params=["edge", "server"])
def engine_settings(request, tmp_path_factory):
    home = tmp_path_factory.mktemp(f"home-{request.param}")
    url = ":memory:" if request.param == "server" else None
    return request.param, fourfold.Settings(home=home, qdrant_url=url)


@pytest.fixture(scope="module")
def indexes(engine_settings, tmp_path_factory):
    """One built version per store kind (qdrant stores share one) → (domain, readers)."""
    engine, settings = engine_settings
    host = get_host(fresh=True)
    chunks = _chunks()
    built = {}
    readers = {}
    domains = {}
    for name in RETRIEVERS:
        manifest = fourfold.Manifest.model_validate(
            {"fourfold": 1, "domain": f"contract-{engine}", "title": "t", "retrieval": {"use": name, "with": {"top_k": 3}}}
        )
        domain = fourfold.Domain(manifest, host, settings)
        store = domain.retriever.open_store()
        if store.store_id not in built:
            location = tmp_path_factory.mktemp(f"{engine}-{name}") / "v000001" / "store"
            location.parent.mkdir(parents=True, exist_ok=True)
            vectors = domain.embedder.embed_documents([embedding_text(c) for c in chunks]) if store.needs_vectors else None
            writer = store.create_version(location, None)
            writer.upsert(chunks, vectors)
            assert writer.count() == len(chunks)
            writer.commit()
            store.publish(location)
            built[store.store_id] = store.open_version(location)
        readers[name] = built[store.store_id]
        domains[name] = domain
    yield domains, readers
    for reader in built.values():
        reader.close()


@pytest.mark.parametrize("name", RETRIEVERS)
def test_top_k_is_honoured_and_scores_descend(indexes, name):
    domains, readers = indexes
    retriever = domains[name].retriever
    # words from most documents, so that lexical retrievers have 7 matches too
    question = "vaccine agreement data rent diabetes tomatoes asthma"
    for k in (1, 3, 7):
        passages = retriever.search(readers[name], question, top_k=k)
        assert len(passages) == k, (name, k)
        scores = [p.score for p in passages]
        assert scores == sorted(scores, reverse=True)
    assert len(retriever.search(readers[name], question)) == 3  # the config's top_k


@pytest.mark.parametrize("name", RETRIEVERS)
@pytest.mark.parametrize(
    ("question", "source", "heading"),
    [
        ("how is diabetes treated? metformin or insulin", "medical/diabetes.md", "Treatment"),
        ("can I end the NDA with notice", "legal/nda.md", "Termination"),
        ("do you sell my personal data to advertisers", "legal/privacy.html", "Sharing"),
    ],
)
def test_the_answering_passage_comes_first(indexes, name, question, source, heading):
    domains, readers = indexes
    best = domains[name].retriever.search(readers[name], question, top_k=3)[0]
    assert (best.chunk.source, best.chunk.heading) == (source, heading)


@pytest.mark.parametrize("name", RETRIEVERS)
@pytest.mark.parametrize(
    "filters",
    [
        fourfold.SearchFilters(source_prefix="legal/"),
        fourfold.SearchFilters(source_prefix="medical/dia"),
        fourfold.SearchFilters(file_types=("pdf",)),
        fourfold.SearchFilters(file_types=("md", "txt")),
        fourfold.SearchFilters(tags=("vaccines",)),
        fourfold.SearchFilters(tags=("health", "vaccines"), file_types=("pdf",)),
    ],
    ids=["prefix-dir", "prefix-partial", "pdf", "md-or-txt", "tag", "tags-and-type"],
)
def test_filters_are_honoured(indexes, name, filters):
    domains, readers = indexes
    passages = domains[name].retriever.search(readers[name], "vaccine agreement data rent diabetes", top_k=10, filters=filters)
    assert passages, "some chunk matches every filter"
    assert all(filters.matches(p.chunk) for p in passages)
    expected = sum(1 for c in _chunks() if filters.matches(c))
    if name in ("dense", "hybrid"):  # dense search ranks every matching chunk
        assert len(passages) == min(10, expected)


@pytest.mark.parametrize("name", RETRIEVERS)
def test_passages_carry_what_citations_need(indexes, name):
    domains, readers = indexes
    p = domains[name].retriever.search(readers[name], "tomatoes full sun", top_k=1)[0]
    assert p.chunk.source == "misc/notes.md"
    assert p.chunk.title == "Gardening notes" and p.chunk.heading == "Tomatoes"
    assert p.chunk.file_type == "md" and p.chunk.text.startswith("Tomatoes need")


def test_readers_list_every_chunk(indexes):
    _, readers = indexes
    for reader in readers.values():
        assert reader.count() == len(DOCS)
        assert sorted(c.id for c in reader.chunks()) == sorted(c.id for c in _chunks())


def test_a_question_of_stop_words_finds_nothing_lexically(indexes):
    domains, readers = indexes
    assert domains["sparse"].retriever.search(readers["sparse"], "what is it", top_k=3) == []
    assert len(domains["hybrid"].retriever.search(readers["hybrid"], "what is it", top_k=3)) == 3
