"""Scoring answers: yes/no/maybe labels, token F1, grounding."""

from __future__ import annotations

import json

import numpy as np
import pytest

from fourfold.evaluation.answers import answer_label, best_token_f1, classify_answer, grounding, load_answers, split_claims, token_f1


@pytest.mark.parametrize(
    ("text", "label", "rule"),
    [
        ("Yes, inhibin is a useful marker [1].", "yes", "lead"),
        ("**No.** The trial found nothing.", "no", "lead"),
        ("Maybe — the evidence is mixed.", "maybe", "lead"),
        ("Based on the sources, the answer is no [2].", "no", "stated"),
        ("It is unclear whether the therapy helps.", "maybe", "hedge"),
        ("The provided documents do not contain the answer to this question.", "maybe", "refusal"),
        ("Hyperbaric oxygen did not reduce mortality [1].", "no", "negation"),
        ("Patients called by their first names were more satisfied.", "yes", "affirmation"),
        ("Hmm", None, "unmapped"),
        ("", None, "unmapped"),
    ],
)
def test_generated_answers_map_to_labels(text, label, rule):
    no_answer = "The provided documents do not contain the answer to this question."
    assert classify_answer(text, no_answer=no_answer) == (label, rule)
    assert answer_label(text, no_answer=no_answer) == label


def test_token_f1_is_squads():
    assert token_f1("The data may be shared [1].", "may be shared") == pytest.approx(2 * 0.75 / 1.75)
    assert token_f1("\"May be shared.\" [1]", "may be shared") == 1.0
    assert token_f1("shared with partners", "may be shared") == pytest.approx(2 * (1 / 3) * (1 / 3) / (2 / 3))
    assert best_token_f1('"collected automatically" [2]', ["collected", "automatically"]) == pytest.approx(2 / 3)
    assert token_f1("", "x") == 0.0


def test_the_answer_key_decides_the_metric(tmp_path):
    (tmp_path / "answers.jsonl").write_text(json.dumps({"id": "q1", "answer": "Yes"}) + "\n" + json.dumps({"id": "q2", "answer": "no"}) + "\n")
    key = load_answers(tmp_path)
    assert key.metric == "accuracy" and key.gold("q1") == "yes"
    (tmp_path / "answers.jsonl").write_text(json.dumps({"id": "q1", "answer": "may", "answers": ["may", "may be shared"]}) + "\n")
    key = load_answers(tmp_path)
    assert key.metric == "token_f1" and key.gold("q1") == ["may", "may be shared"]
    (tmp_path / "answers.jsonl").write_text("{not json\n")
    with pytest.raises(Exception, match=r"answers.jsonl:1"):
        load_answers(tmp_path)


def test_grounding_counts_claims_backed_by_the_passage_they_cite():
    passages = [
        "Serum inhibin levels were higher in patients with persistent trophoblastic disease.",
        "Dogs need a walk twice a day.",
    ]
    text = "Yes. Inhibin levels were higher in persistent trophoblastic disease [1]. Cats sleep sixteen hours daily [2]. Unrelated claim without any source here."
    assert [c for _, c in split_claims(text)] == [[], [1], [2], []]
    g = grounding(text, passages)
    assert (g.claims, g.supported, g.uncited) == (3, 1, 1)  # "Yes." is no claim
    assert g.score == pytest.approx(1 / 3)
    # A paraphrase sharing few words counts when the embedder finds it close enough.
    para = "Raised inhibin marks ongoing trophoblastic illness [1]."
    assert grounding(para, passages).supported == 0
    identity = lambda texts: np.ones((len(texts), 2)) / np.sqrt(2)  # noqa: E731 - every text "identical"
    assert grounding(para, passages, embed=identity).by_cosine == 1


def test_a_citation_to_a_passage_that_was_not_retrieved_supports_nothing():
    assert grounding("Inhibin levels were higher [3].", ["Inhibin levels were higher."]).supported == 0
