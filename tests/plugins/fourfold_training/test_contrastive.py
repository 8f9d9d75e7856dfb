"""``embedder-contrastive``: fine-tunes MiniLM on (question, passage) pairs, records
nDCG@10 on held-out questions before and after, and the result serves as the domain's
embedder through ``embedding: {use: minilm, with: {model: artifact:NAME}}``."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from fourfold.artifacts import ArtifactStore
from fourfold.cli import app

from .conftest import manifest_text, write_jsonl

runner = CliRunner()


def obliqa_pairs(shared_data, n: int) -> list[dict[str, str]]:
    folder = shared_data / "obliqa"
    corpus = {}
    with open(folder / "corpus.jsonl", encoding="utf-8") as fh:
        for line in fh:
            row = json.loads(line)
            corpus[row["id"]] = row["text"]
    queries = {}
    with open(folder / "queries.jsonl", encoding="utf-8") as fh:
        for line in fh:
            row = json.loads(line)
            queries[row["id"]] = row["text"]
    pairs = []
    with open(folder / "qrels.tsv", encoding="utf-8") as fh:
        next(fh)
        for line in fh:
            qid, pid, _ = line.rstrip("\n").split("\t")
            pairs.append({"question": queries[qid], "passage": corpus[pid]})
            if len(pairs) == n:
                break
    return pairs


@pytest.mark.slow
def test_contrastive_fine_tune_makes_an_embedder_artifact_retrieval_can_use(clinic, shared_data):
    write_jsonl(clinic / "pairs.jsonl", obliqa_pairs(shared_data, 96))
    block = {
        "use": "embedder-contrastive",
        "artifact": "clinic-embedder",
        "with": {"data": "pairs.jsonl", "steps": 4, "batch_size": 8, "max_passage_tokens": 96, "max_query_tokens": 32,
                 "learning_rate": 5e-5, "eval_fraction": 0.2, "save_every": 2},
    }
    manifest = clinic / "clinic.yaml"
    manifest.write_text(manifest_text(None, [block]))
    result = runner.invoke(app, ["fine-tune", str(manifest), "--quiet"])
    assert result.exit_code == 0, result.output

    artifact = ArtifactStore().get("clinic-embedder")
    metrics = artifact.metrics
    assert artifact.kind == "embedder" and metrics["method"] == "contrastive"
    assert metrics["final_step"] == 4 and metrics["heldout_questions"] >= 10
    for side in ("before", "after"):
        assert 0 < metrics[side]["ndcg@10"] <= 1
    assert (artifact.model_dir / "sentence_bert_config.json").is_file()
    assert (artifact.model_dir / "tokenizer.json").is_file()

    # The artifact is the domain's embedder now: its vectors differ from the base model's.
    manifest.write_text(manifest_text(None, [block], extra="embedding: {use: minilm, with: {model: 'artifact:clinic-embedder'}}\n"))
    from fourfold.domain import Domain

    domain = Domain.from_file(manifest)
    tuned = domain.embedder
    base = domain.build("embedder", "minilm")  # default config: the packaged all-MiniLM-L6-v2
    text = "Which disclosures must a PFP Operator give a client using the exit facility?"
    a, b = tuned.embed_query(text), base.embed_query(text)
    assert a.shape == b.shape == (384,)
    assert np.isclose(np.linalg.norm(a), 1, atol=1e-3)
    assert float(a @ b) < 0.99999
    assert tuned.model_id != base.model_id


@pytest.mark.parametrize("group_by_length", [True, False])
def test_epoch_batches_are_full_seeded_and_cover_the_data(group_by_length):
    from fourfold_training.contrastive import batches_for_epoch
    from fourfold_training.pairs import Example

    train = [Example(f"q{i}", "p" * (1 + (i * 37) % 300), f"x:{i}") for i in range(100)]
    batches = batches_for_epoch(train, 8, seed=3, group_by_length=group_by_length)
    assert len(batches) == 12 and all(len(b) == 8 for b in batches)
    assert len({e.first for b in batches for e in b}) == 96  # no pair twice; the remainder waits for the next epoch
    assert batches == batches_for_epoch(train, 8, seed=3, group_by_length=group_by_length)  # a resumed run sees the same
    assert batches != batches_for_epoch(train, 8, seed=4, group_by_length=group_by_length)
    if group_by_length:
        spread = sum(max(len(e.second) for e in b) - min(len(e.second) for e in b) for b in batches) / len(batches)
        assert spread < 100  # random batches of these lengths spread over ~260 characters
