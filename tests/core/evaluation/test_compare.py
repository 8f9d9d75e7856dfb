"""``fourfold eval compare`` on a small dataset written by the test: the grid runs through
the real runtime, retrievers, extractive generator and a fine-tuned artifact (a tiny
causal LM), and reports quality, grounding, latency, cost and the advisor's estimates."""

from __future__ import annotations

import json
import shutil

import pytest
from typer.testing import CliRunner

from fourfold.cli import app

from ..advisor.conftest import CALIBRATION

pytestmark = [pytest.mark.slow]

DOCS = {
    "d1": "Regular hand washing with soap reduced infections among school children in the trial.",
    "d2": "Vitamin C supplements did not shorten the common cold in adults in the trial.",
    "d3": "Daily walking improved blood pressure in older adults after twelve weeks.",
    "d4": "Fluoride toothpaste reduced tooth decay in children compared with no fluoride.",
    "d5": "Sunscreen applied daily reduced new skin cancers in a five-year study.",
    "d6": "Herbal teas showed no effect on sleep quality in the small study.",
}
QUESTIONS = [
    ("q1", "Does hand washing reduce infections among school children?", "d1", "yes"),
    ("q2", "Do vitamin C supplements shorten the common cold?", "d2", "no"),
    ("q3", "Does daily walking improve blood pressure in older adults?", "d3", "yes"),
    ("q4", "Do herbal teas improve sleep quality?", "d6", "no"),
    ("q5", "Does fluoride toothpaste reduce tooth decay?", "d4", "yes"),
]


@pytest.fixture
def dataset(tmp_path):
    folder = tmp_path / "tiny-qa"
    folder.mkdir()
    (folder / "corpus.jsonl").write_text("".join(json.dumps({"id": k, "title": "", "text": v}) + "\n" for k, v in DOCS.items()))
    (folder / "queries.jsonl").write_text("".join(json.dumps({"id": q, "text": t}) + "\n" for q, t, _, _ in QUESTIONS))
    (folder / "qrels.tsv").write_text("query-id\tcorpus-id\tscore\n" + "".join(f"{q}\t{d}\t1\n" for q, _, d, _ in QUESTIONS))
    (folder / "answers.jsonl").write_text("".join(json.dumps({"id": q, "answer": a}) + "\n" for q, _, _, a in QUESTIONS))
    return folder


@pytest.fixture
def tiny_artifact(fourfold_home):
    from fourfold.artifacts import ArtifactStore
    from fourfold.testing import tiny_causal_lm

    store = ArtifactStore()
    staging = store.root / ".staging" / "tiny-lora-test"
    shutil.copytree(tiny_causal_lm(), staging / "model")
    store.commit("tiny-tuned", staging, {"kind": "causal-lm", "component": {"kind": "fine_tuner", "name": "lora"}})
    return "tiny-tuned"


def test_compare_runs_the_grid_and_reports_each_configuration(dataset, tiny_artifact, write_manifest, fourfold_home, tmp_path):
    (fourfold_home / "calibration.json").write_text(json.dumps(CALIBRATION))
    manifest = write_manifest("""
        fourfold: 1
        domain: trials
        title: Trials
        retrieval: {use: hybrid, with: {top_k: 2}}
        prompt: {use: grounded-citations}
        generation: {use: extractive}
    """)
    report = tmp_path / "compare.html"
    result = CliRunner().invoke(app, [
        "eval", "compare", str(manifest), "--dataset", str(dataset), "--artifact", tiny_artifact, "--generator", "extractive",
        "--max-tokens", "12", "--report", str(report), "--json",
    ])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["answer_metric"] == "accuracy" and out["questions"] == 5
    assert {r["retriever"] for r in out["retrieval"]} == {"sparse", "dense", "hybrid"}
    assert all(r["metrics"]["recall@10"] == 1.0 for r in out["retrieval"])
    [baseline] = out["baselines"]
    assert baseline["answer"] == "yes" and baseline["value"] == pytest.approx(3 / 5)
    configs = {c["label"]: c for c in out["configs"]}
    assert set(configs) == {
        "extractive · grounded-citations · hybrid",
        "transformers (artifact:tiny-tuned) · grounded-citations · hybrid",
        "transformers (artifact:tiny-tuned) · plain · no retrieval",
    }
    extractive = configs["extractive · grounded-citations · hybrid"]
    assert extractive["answers"] == 5 and extractive["errors"] == 0
    assert extractive["grounding"]["score"] == 1.0  # it quotes the passages it cites
    assert extractive["evidence_in_prompt"]["recall"] == 1.0
    assert 0 <= extractive["metric"]["accuracy"] <= 1 and sum(extractive["metric"]["rules"].values()) == 5
    assert len(extractive["latency_ms"]["values"]) == 5
    trust = extractive["trust"]
    assert trust["unanswerable_asked"] == 8 and trust["refused_unanswerable"] >= 0.75  # cooking, sport, … asked of trial abstracts
    assert 0 <= trust["false_refusals"] <= 1 and trust["contradictions_removed"] >= 0
    assert "refused (off-domain)" in report.read_text()
    for config in out["configs"]:
        assert config["measured"]["seconds_per_question"] > 0 and config["measured"]["cost_per_1000"] >= 0
        assert config["estimate"]["seconds_per_question"]["value"] > 0 and config["estimate"]["seconds_per_question"]["explain"]
    plain = configs["transformers (artifact:tiny-tuned) · plain · no retrieval"]
    assert plain["evidence_in_prompt"] is None and plain["grounding"]["supported"] == 0
    html = report.read_text()
    assert "Side by side" in html and html.count("<svg") >= 3 and "majority class" in html
    assert list((fourfold_home / "reports").glob("comparison-trials-*.json"))


def test_compare_needs_the_artifacts_it_is_given(dataset, write_manifest):
    manifest = write_manifest("""
        fourfold: 1
        domain: trials
        title: Trials
    """)
    result = CliRunner().invoke(app, ["eval", "compare", str(manifest), "--dataset", str(dataset), "--artifact", "missing-one", "--retriever", "sparse"])
    assert result.exit_code == 1
    assert "artifact 'missing-one' not found" in result.stderr
