"""Adopting a domain-tuned embedder is a measured step: trained on one half of the
domain's questions, it is published only when it beats the published version on the
other half by the margin; otherwise the published version keeps serving and the tuned
model is removed, so no query is embedded by a model its index was not built with."""

from __future__ import annotations

import json

import pytest

from fourfold.adoption import CANDIDATES, FUSION_GRID, TITLE_WEIGHTS, Adoption, adopt_embedder, choose_settings
from fourfold.artifacts import ArtifactStore
from fourfold.domain import Domain
from fourfold.index import IndexLayout

TOPICS = {
    "gout": "Gout is a painful arthritis of the big toe caused by uric acid crystals in the joint.",
    "asthma": "Asthma narrows the airways of the lungs, which causes wheezing and a tight chest.",
    "flu": "Influenza is spread by droplets; the yearly vaccine prevents most infections.",
    "shingles": "Shingles is a painful rash caused by the chickenpox virus waking up again.",
    "anaemia": "Iron deficiency anaemia makes people tired and pale and may cause cravings for ice.",
    "migraine": "A migraine is a throbbing headache, often with nausea and sensitivity to light.",
}
QUESTIONS = [
    ("Why does my big toe hurt so much at night?", "gout"),
    ("What are uric acid crystals doing in a joint?", "gout"),
    ("Why am I wheezing with a tight chest?", "asthma"),
    ("What narrows the airways?", "asthma"),
    ("How does the flu spread?", "flu"),
    ("Does the yearly vaccine prevent infections?", "flu"),
    ("What causes a painful rash from the chickenpox virus?", "shingles"),
    ("Can chickenpox come back as a rash?", "shingles"),
    ("Why do I crave ice and feel tired?", "anaemia"),
    ("Why am I pale and tired all the time?", "anaemia"),
    ("What is a throbbing headache with nausea?", "migraine"),
    ("Why does light hurt during a headache?", "migraine"),
]

MANIFEST = """
fourfold: 1
domain: clinic
title: Clinic
knowledge:
  sources: [{path: kb}]
  eval: eval.jsonl
embedding: {use: minilm, with: {model: "artifact:clinic-embedder"}}
fine_tuning: [{use: embedder-contrastive, artifact: clinic-embedder, with: {steps: 2, batch_size: 4, eval_fraction: 0.5, max_eval_passages: 10, hard_negatives: 1}}]
retrieval: {use: hybrid, with: {top_k: 3}}
"""


@pytest.fixture
def clinic(write_manifest, tmp_path):
    (tmp_path / "kb").mkdir()
    for name, text in TOPICS.items():
        (tmp_path / "kb" / f"{name}.md").write_text(f"# {name.title()}\n\n{text}\n", encoding="utf-8")
    (tmp_path / "eval.jsonl").write_text("".join(json.dumps({"question": q, "source": f"{t}.md"}) + "\n" for q, t in QUESTIONS))
    return write_manifest(MANIFEST)


@pytest.mark.slow
def test_a_tuned_embedder_is_published_only_when_it_wins_on_held_out_questions(clinic, host):
    domain = Domain.from_file(clinic, host)
    refused = adopt_embedder(domain, margin=1.0)  # no embedder gains a whole nDCG point
    layout = IndexLayout.for_domain(domain)
    base_version = layout.read_current()
    assert not refused.adopted and refused.check + refused.tune == len(QUESTIONS) and refused.pairs >= 2
    assert refused.tuned_ndcg_at_10 is not None and "min_gain (+1.000)" in refused.summary()
    assert len(layout.complete_versions()) == 2  # the base version serving, the tuned one held
    assert ArtifactStore(domain.settings).find("clinic-embedder") is None  # nothing serves with it
    assert layout.history()[-1]["event"] == "adoption" and not layout.history()[-1]["adopted"]
    # the fusion weights were tried on tune questions kept from training, on the held version
    assert refused.weights_questions >= 1 and refused.pairs <= refused.tune - refused.weights_questions
    assert refused.fusion == {"fusion": "scores", "dense_weight": 1.0, "sparse_weight": 1.5, "candidates": 50, "title_weight": 1.0,
                              "ndcg_at_10": refused.fusion["ndcg_at_10"]}
    # every fusion setting, depth and BM25 title weight was scored (each other title weight on a scratch index,
    # gone afterwards)
    assert refused.settings_tried >= len(FUSION_GRID) + len(CANDIDATES) + len(TITLE_WEIGHTS) - 2
    assert not (domain.state_dir / "adoption" / "scratch").exists()
    assert refused.suggested_fusion is not None and refused.suggested_fusion["ndcg_at_10"] >= refused.fusion["ndcg_at_10"]
    assert refused.tuned_ndcg_at_10_suggested is not None
    recorded = json.loads((domain.state_dir / "adoption" / "adoption.json").read_text())
    assert recorded["suggested_fusion"] == refused.suggested_fusion
    # with hard_negatives: 1, each pair carries one: a passage the base search ranked high from another document
    topic_of = dict(QUESTIONS)
    pairs = [json.loads(line) for line in (domain.state_dir / "adoption" / "pairs.jsonl").read_text().splitlines()]
    assert len(pairs) == refused.pairs
    for pair in pairs:
        own = TOPICS[topic_of[pair["question"]]]
        assert own in pair["passage"]
        assert len(pair["negatives"]) == 1 and not any(own in n for n in pair["negatives"])
        assert all(any(text in n for text in TOPICS.values()) for n in pair["negatives"])

    adopted = adopt_embedder(Domain.from_file(clinic, host), margin=-1.0)
    assert adopted.adopted and adopted.version != base_version
    assert layout.read_current() == adopted.version
    assert layout.read_catalog(adopted.version).embedder != layout.read_catalog(base_version).embedder
    passages, version = Domain.from_file(clinic, host).search("Why do I crave ice?", top_k=1)
    assert version == adopted.version and passages[0].chunk.source == "anaemia.md"


def test_the_summary_names_the_settings_to_write_only_when_they_beat_the_manifests():
    result = Adoption(domain="clinic", artifact="clinic-embedder", questions="knowledge.eval", tune=40, check=40, pairs=30,
                      base_ndcg_at_10=0.6, tuned_ndcg_at_10=0.65, adopted=True, version="v000002", weights_questions=8)
    manifests = {"fusion": "scores", "dense_weight": 1.0, "sparse_weight": 1.5, "candidates": 50, "title_weight": 1.0}
    result.fusion = {**manifests, "ndcg_at_10": 0.61}
    result.suggested_fusion = {**manifests, **FUSION_GRID[4], "title_weight": 0.0, "ndcg_at_10": 0.7}  # dense_weight 3
    result.tuned_ndcg_at_10_suggested = 0.68
    assert result.suggestion() == "retrieval.with.dense_weight: 3.0, retrieval.with.title_weight: 0.0"
    assert "retrieval.with.dense_weight: 3.0, retrieval.with.title_weight: 0.0" in result.summary()
    assert "0.680 on the check half" in result.summary() and "the manifest's settings serve until it states these" in result.summary()

    result.suggested_fusion = result.fusion
    assert result.suggestion() is None and "dense_weight" not in result.summary()
    assert "retrieval settings are the best of those tried on 8 tune questions" in result.summary()


def test_the_settings_search_moves_one_setting_at_a_time_and_searches_fusion_again_after_a_new_title_weight():
    """A made-up score: titles hurt (best at title weight 0), and once they are off, dense
    search deserves twice BM25's weight and the deeper candidate lists."""
    tried = []

    def score(s):
        tried.append(dict(s))
        value = 0.60 - 0.02 * s["title_weight"] + (0.01 if s["candidates"] == 200 else 0.0)
        if s["title_weight"] == 0.0 and s["fusion"] == "scores" and s["dense_weight"] == 2.0:
            value += 0.03
        return round(value, 6)

    current = {"fusion": "scores", "dense_weight": 1.0, "sparse_weight": 1.5, "candidates": 50, "title_weight": 1.0}
    before, best = choose_settings(score, current)
    assert before == {**current, "ndcg_at_10": 0.58}
    assert best == {"fusion": "scores", "dense_weight": 2.0, "sparse_weight": 1.5, "candidates": 200, "title_weight": 0.0, "ndcg_at_10": 0.64}
    assert len(tried) == len({tuple(sorted(t.items())) for t in tried})  # each setting scored once
    assert {t["title_weight"] for t in tried} == set(TITLE_WEIGHTS) and {t["candidates"] for t in tried} == set(CANDIDATES)

    # ties keep the current settings, and a key the retriever does not have is never varied
    flat_before, flat_best = choose_settings(lambda s: 0.5, {"fusion": "scores", "dense_weight": 1.0, "sparse_weight": 1.5})
    assert flat_best == flat_before == {"fusion": "scores", "dense_weight": 1.0, "sparse_weight": 1.5, "ndcg_at_10": 0.5}


@pytest.mark.slow
def test_on_a_qdrant_server_the_title_weights_are_tried_on_local_scratch_indexes(clinic, monkeypatch, qdrant_server_url):
    """The other BM25 title weights need other sparse vectors; on a server they would land
    in the domain's own collection, next to the versions it serves. They are written to
    local edge indexes instead, and the server holds the two versions' points only."""
    import uuid

    from fourfold import settings as settings_module
    from fourfold.plugins import get_host
    from fourfold_qdrant.server import client_for

    monkeypatch.setenv("FOURFOLD_QDRANT_URL", qdrant_server_url)
    monkeypatch.setenv("FOURFOLD_NAMESPACE", f"fftest-{uuid.uuid4().hex[:8]}")
    settings_module.get_settings(fresh=True)
    domain = Domain.from_file(clinic, get_host(fresh=True))
    result = adopt_embedder(domain, margin=-1.0)
    assert result.adopted and result.settings_tried >= len(FUSION_GRID) + len(CANDIDATES) + len(TITLE_WEIGHTS) - 2
    store = domain.retriever.open_store()
    assert type(store).__name__ == "ServerStore"
    points = client_for(qdrant_server_url, None).count(store.collection).count
    assert points == 2 * len(TOPICS)  # one point per document in the base version and in the tuned one
    assert not (domain.state_dir / "adoption" / "scratch").exists()
    passages, version = Domain.from_file(clinic, get_host(fresh=True)).search("Why do I crave ice?", top_k=1)
    assert version == result.version and passages[0].chunk.source == "anaemia.md"
