"""The quality gate: every new version is scored on the domain's evaluation questions
before it is published; a refresh that breaks retrieval is held unpublished with a
report of what got worse, the published version keeps serving, and a person can still
publish the held version with a recorded reason."""

from __future__ import annotations

import json
import types

import pytest
from typer.testing import CliRunner

import fourfold
from fourfold.cli import app
from fourfold.domain import Domain
from fourfold.errors import ManifestError
from fourfold.index import IndexLayout, index_status, refresh
from fourfold.index.quality import QualityGateRefused
from fourfold.testing import HashingEmbedder

TOPICS = {
    "kittens": "Kittens need four small meals of wet food every day until six months of age.",
    "parrots": "Parrots crack seeds and nuts with their curved beaks and live for decades.",
    "goldfish": "Goldfish need a filtered aquarium and the water changed every week.",
    "tortoises": "Tortoises hibernate through the winter in a cool box filled with straw.",
    "rabbits": "Rabbits chew hay all day, which wears down their ever growing teeth.",
    "hamsters": "Hamsters run for miles at night on a wheel inside their cage.",
    "horses": "Horses have their hooves trimmed by a farrier every six to eight weeks.",
    "snakes": "Snakes shed their skin in one piece when they outgrow it.",
}
QUESTIONS = {
    "kittens": "How many meals of wet food do kittens need?",
    "parrots": "What do parrots crack with their curved beaks?",
    "goldfish": "How often is the aquarium water of goldfish changed?",
    "tortoises": "Where do tortoises hibernate in winter?",
    "rabbits": "Why do rabbits chew hay all day?",
    "hamsters": "When do hamsters run on their wheel?",
    "horses": "How often does a farrier trim the hooves of horses?",
    "snakes": "How do snakes shed their skin?",
}


class NotesLoader(fourfold.Loader):
    """Reads ``.note`` files; a broken release returns no text for every other file."""

    name = "notes"
    extensions = ("note",)
    version = "1"
    broken = False

    def load(self, file):
        text = file.path.read_text(encoding="utf-8")
        if self.broken and sorted(TOPICS).index(file.path.stem) % 2 == 0:
            text = ""
        return [fourfold.LoadedDocument(title=file.path.stem, sections=[fourfold.Section(text)] if text else [])]


@fourfold.hookimpl
def register_loaders(register):
    register(NotesLoader)


@fourfold.hookimpl
def register_embedders(register):
    register(HashingEmbedder)


MANIFEST = """
fourfold: 1
domain: pets
title: Pets
knowledge:
  sources: [{path: notes, include: ["*.note"]}]
  gate: {min_chunks: 1, min_ndcg_at_10: 0.5, max_drop: 0.1}
  eval: eval-questions.jsonl
embedding: {use: hashing}
retrieval: {use: hybrid, with: {top_k: 3}}
"""


@pytest.fixture
def pets(host, write_manifest, tmp_path):
    for module_name, hook in (("fourfold_notes", register_loaders), ("fourfold_hashing", register_embedders)):
        plugin = types.ModuleType(module_name)
        plugin.FOURFOLD_PLUGIN_API = "1.1"
        setattr(plugin, hook.__name__, hook)
        host.register(plugin, name=module_name, distribution=module_name.replace("_", "-"))
    (tmp_path / "notes").mkdir()
    for topic, text in TOPICS.items():
        (tmp_path / "notes" / f"{topic}.note").write_text(text, encoding="utf-8")
    (tmp_path / "eval-questions.jsonl").write_text(
        "".join(json.dumps({"question": q, "source": f"{t}.note"}) + "\n" for t, q in QUESTIONS.items()), encoding="utf-8"
    )
    return write_manifest(MANIFEST)


def test_a_refresh_with_a_broken_loader_is_held_and_the_published_version_keeps_serving(pets, host, monkeypatch):
    first = refresh(Domain.from_file(pets, host))
    assert first.published and first.quality["passed"]
    assert first.quality["quality"]["ndcg_at_10"] >= 0.9
    assert "gate" in first.timings

    monkeypatch.setattr(NotesLoader, "broken", True)
    monkeypatch.setattr(NotesLoader, "version", "2")  # a new release re-reads every file
    domain = Domain.from_file(pets, host)
    with pytest.raises(QualityGateRefused) as refused:
        refresh(domain)
    message = str(refused.value)
    held = refused.value.verdict.version
    assert f"version {held} is held unpublished by knowledge.gate" in message
    assert "nDCG@10 fell 0.500 (1.000 → 0.500), more than knowledge.gate.max_drop (0.100)" in message
    assert "questions got worse" in message and f"{first.version} keeps serving" in message

    # the published version still serves, and answers the questions the broken one lost
    layout = IndexLayout.for_domain(domain)
    assert layout.read_current() == first.version
    passages, version = domain.search(QUESTIONS["goldfish"], top_k=1)
    assert version == first.version and passages[0].chunk.source == "goldfish.note"

    # index status names the held version, why, which questions got worse and what they now find
    status = index_status(domain)
    assert [h["version"] for h in status.held] == [held]
    worse = status.held[0]["worse"]
    assert {w["question"] for w in worse} == {QUESTIONS[t] for i, t in enumerate(sorted(TOPICS)) if i % 2 == 0}
    assert all(w["before"] > w["after"] and w["top"] and w["top_before"][0]["text"] for w in worse)
    assert next(v for v in status.versions if v.version == held).held
    assert layout.history()[-1]["event"] == "refused"

    shown = CliRunner().invoke(app, ["index", "status", str(pets)], env={"COLUMNS": "200"})
    assert f"held by the quality gate: {held}" in shown.output and QUESTIONS["goldfish"] in shown.output

    # the next refresh builds (and holds) it again, keeping only the newest held version
    with pytest.raises(QualityGateRefused) as again:
        refresh(Domain.from_file(pets, host))
    assert layout.read_current() == first.version
    assert [h["version"] for h in index_status(domain).held] == [again.value.verdict.version]
    held = again.value.verdict.version

    # rolling "back" to it is refused; publishing it needs --force and a reason, which is recorded
    rolled = CliRunner().invoke(app, ["index", "rollback", str(pets), "--to", held])
    assert rolled.exit_code != 0 and "held by the quality gate" in rolled.output
    plain = CliRunner().invoke(app, ["index", "publish", str(pets), held])
    assert plain.exit_code != 0 and "--force" in plain.output
    forced = CliRunner().invoke(app, ["index", "publish", str(pets), held, "--force", "--reason", "half the notes are retired"])
    assert forced.exit_code == 0, forced.output
    assert layout.read_current() == held
    event = layout.history()[-1]
    assert event["event"] == "publish" and event["forced"] and event["reason"] == "half the notes are retired"
    assert not index_status(domain).held


def test_the_floor_holds_a_first_build_that_cannot_answer(pets, host, tmp_path):
    (tmp_path / "eval-questions.jsonl").write_text(json.dumps({"question": "Who trims hooves?", "source": "dragons.note"}) + "\n")
    domain = Domain.from_file(pets, host)
    with pytest.raises(QualityGateRefused, match=r"nDCG@10 0\.000 is below knowledge.gate.min_ndcg_at_10 \(0\.500\)"):
        refresh(domain)
    assert IndexLayout.for_domain(domain).read_current() is None


def test_a_gate_on_quality_needs_evaluation_questions_and_bad_lines_are_named(pets, host, tmp_path):
    pets.write_text(MANIFEST.replace("  eval: eval-questions.jsonl\n", ""))
    result = CliRunner().invoke(app, ["validate", str(pets)])
    assert result.exit_code == 1 and "name their file in knowledge.eval" in result.output

    pets.write_text(MANIFEST)
    (tmp_path / "eval-questions.jsonl").write_text('{"question": "ok?", "source": "kittens.note"}\n{"source": "x"}\n')
    with pytest.raises(ManifestError, match=r"eval-questions.jsonl:2: knowledge.eval: expected a JSON object with a 'question'"):
        refresh(Domain.from_file(pets, host))


def test_eval_retrieval_scores_the_published_index_on_its_questions(pets, host, tmp_path):
    refresh(Domain.from_file(pets, host))
    (tmp_path / "eval-questions.jsonl").write_text(
        json.dumps({"question": QUESTIONS["kittens"], "source": "kittens.note"}) + "\n"
        + json.dumps({"question": QUESTIONS["parrots"], "source": "parrots.note", "passage": "live for decades"}) + "\n"
        + json.dumps({"question": QUESTIONS["snakes"], "source": "snakes.note", "passage": "words no chunk holds"}) + "\n"
    )
    result = CliRunner().invoke(app, ["eval", "retrieval", str(pets), "--json"])
    assert result.exit_code == 0, result.output
    scored = json.loads(result.output)["results"][0]
    assert scored["retriever"] == "hybrid" and scored["version"] == "v000001"
    assert [q["ndcg"] for q in scored["questions"]] == [1.0, 1.0, 0.0]
    assert scored["questions"][2]["top"][0]["source"] == "snakes.note"  # found, but not the passage asked for

    shown = CliRunner().invoke(app, ["eval", "retrieval", str(pets), "-r", "hybrid", "-r", "sparse"], env={"COLUMNS": "200"})
    assert shown.exit_code == 0, shown.output
    assert "pets v000001 on eval-questions.jsonl (all, 3 questions)" in shown.output and "sparse" in shown.output
    assert QUESTIONS["snakes"] in shown.output  # the weakest questions are named


def test_answerability_calibrates_with_the_knowledge_eval_questions(pets, host):
    from fourfold.trust.service import _eval_questions

    assert _eval_questions(Domain.from_file(pets, host)) == list(QUESTIONS.values())
