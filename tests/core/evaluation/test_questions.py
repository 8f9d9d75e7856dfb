"""Evaluation questions: written from a domain's own headings when it has none, split
into a tune and a check half, and the embedders a comparison scores retrieval with."""

from __future__ import annotations

from fourfold.evaluation.compare import embedder_variants
from fourfold.evaluation.questions import (
    EvalQuestion,
    eval_questions_for,
    questions_from_chunks,
    read_eval_questions,
    split_questions,
    write_eval_questions,
)
from fourfold.manifest import Manifest
from fourfold.types import Chunk


def chunk(source: str, heading: str, title: str = "Gout") -> Chunk:
    return Chunk(id=source + heading, text="text", source=source, title=title, heading=heading)


def test_questions_are_written_from_question_headings_or_titles(tmp_path):
    chunks = [
        chunk("gout.md", "Gout > What are the symptoms of gout?"),
        chunk("gout.md", "Gout > Treatment"),
        chunk("asthma.md", "Asthma > Causes", title="Asthma"),
    ]
    questions = questions_from_chunks(chunks)
    assert sorted((q.question, q.sources) for q in questions) == [
        ("What are the symptoms of gout?", ("gout.md",)),
        ("What is Asthma?", ("asthma.md",)),
    ]
    write_eval_questions(tmp_path / "eval.jsonl", questions)
    assert read_eval_questions(tmp_path / "eval.jsonl", field="knowledge.eval").questions == tuple(
        EvalQuestion(q.question, q.sources, line=i) for i, q in enumerate(questions, start=1)
    )


def test_the_tune_and_check_halves_do_not_overlap_and_cover_every_question():
    questions = [EvalQuestion(f"question {i}?", ("a.md",)) for i in range(40)]
    tune, check = split_questions(questions, "tune"), split_questions(questions, "check")
    assert tune and check and not set(tune) & set(check) and len(tune) + len(check) == 40


def test_trust_falls_back_to_knowledge_eval_and_may_name_its_own(tmp_path):
    (tmp_path / "eval.jsonl").write_text('{"question": "Why?", "source": "a.md"}\n')
    (tmp_path / "trust.jsonl").write_text('{"question": "Who?"}\n')
    data = {"fourfold": 1, "domain": "d", "title": "D", "knowledge": {"sources": [{"path": "."}], "eval": "eval.jsonl"}}
    manifest = Manifest.model_validate(data)
    manifest._path = tmp_path / "d.yaml"
    assert [q.question for q in eval_questions_for(manifest, purpose="trust").questions] == ["Why?"]
    manifest = Manifest.model_validate({**data, "trust": {"eval_questions": "trust.jsonl"}})
    manifest._path = tmp_path / "d.yaml"
    assert [q.question for q in eval_questions_for(manifest, purpose="trust").questions] == ["Who?"]
    assert eval_questions_for(manifest).judged[0].sources == ("a.md",)


def test_a_comparison_scores_the_base_embedder_beside_each_tuned_one():
    manifest = Manifest.model_validate(
        {"fourfold": 1, "domain": "d", "title": "D", "embedding": {"use": "minilm", "with": {"model": "artifact:d-tuned", "batch_size": 8}}}
    )
    variants = embedder_variants(manifest, ["artifact:other"])
    assert [label for label, _ in variants] == ["base", "artifact:d-tuned", "artifact:other"]
    assert [m.embedding.with_ for _, m in variants] == [
        {"batch_size": 8},
        {"batch_size": 8, "model": "artifact:d-tuned"},
        {"batch_size": 8, "model": "artifact:other"},
    ]
    plain = Manifest.model_validate({"fourfold": 1, "domain": "d", "title": "D"})
    assert embedder_variants(plain, []) == [("minilm", plain)]
