"""``fourfold index build/status/rollback``, ``search``, ``ask`` and ``eval retrieval``
through the real CLI, embedder and engine."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from fourfold.cli import app

from ..index.conftest import TOPICS, make_manifest, write_files

pytestmark = pytest.mark.slow

runner = CliRunner()


def run(*args: str):
    return runner.invoke(app, list(args), catch_exceptions=False)


@pytest.fixture
def manifest(tmp_path):
    kb = tmp_path / "kb"
    write_files(kb, TOPICS)
    return make_manifest(tmp_path, kb)


def test_search_before_any_build_says_what_to_run(manifest):
    result = run("search", str(manifest), "diabetes")
    assert result.exit_code == 1
    assert f"no published index for domain 'kb'; run 'fourfold index build {manifest}'" in result.output.replace("\n", "")


def test_build_status_search_rollback(manifest, tmp_path):
    built = run("index", "build", str(manifest))
    assert built.exit_code == 0, built.output
    assert "published v000001" in built.output

    again = json.loads(run("index", "build", str(manifest), "--json").stdout)
    assert again["published"] is False and again["reason"] == "no change"

    status = json.loads(run("index", "status", str(manifest), "--json").stdout)
    assert status["published"] == "v000001" and status["documents"] == len(TOPICS)
    assert [e["event"] for e in status["history"]] == ["publish", "unchanged"]

    found = json.loads(run("search", str(manifest), "metformin insulin treatment", "--json", "--top-k", "2").stdout)
    assert found["version"] == "v000001" and len(found["passages"]) == 2
    first = found["passages"][0]
    assert first["source"] == "diabetes.md" and first["rank"] == 1 and "metformin" in first["text"]

    filtered = json.loads(
        run("search", str(manifest), "agreement rent", "--json", "--source-prefix", "legal/", "--file-type", "txt", "--retriever", "sparse").stdout
    )
    assert [p["source"] for p in filtered["passages"]] == ["legal/lease.txt"]
    tagged = json.loads(run("search", str(manifest), "asthma", "--json", "--tag", "nope").stdout)
    assert tagged["passages"] == []

    text = run("search", str(manifest), "asthma wheezing")
    assert text.exit_code == 0 and "asthma.md" in text.output

    nothing_older = run("index", "rollback", str(manifest))
    assert nothing_older.exit_code == 1 and "nothing to roll back to" in nothing_older.output

    (tmp_path / "kb" / "flu.txt").write_text("Measles is prevented by the MMR vaccine.\n")
    assert "published v000002" in run("index", "build", str(manifest)).output
    rolled = run("index", "rollback", str(manifest))
    assert rolled.exit_code == 0 and "published v000001" in rolled.output
    assert json.loads(run("search", str(manifest), "flu", "--json").stdout)["version"] == "v000001"
    assert "published v000002" in run("index", "rollback", str(manifest), "--to", "v000002").output
    shown = run("index", "status", str(manifest))
    assert "v000002" in shown.output and "rollback" in shown.output


def test_ask_answers_through_the_domains_components(manifest):
    assert run("index", "build", str(manifest)).exit_code == 0
    answer = json.loads(run("ask", str(manifest), "How is diabetes treated?", "--json").stdout)
    assert answer["domain"] == "kb" and answer["index_version"] == "v000001"
    assert answer["text"]
    assert any(c["source"] == "diabetes.md" for c in answer["citations"])


def test_eval_retrieval_on_a_tiny_dataset(tmp_path):
    data = tmp_path / "tiny"
    data.mkdir()
    corpus = [
        {"id": "d1", "title": "Diabetes", "text": "Metformin and insulin treat type 2 diabetes."},
        {"id": "d2", "title": "Asthma", "text": "Inhalers open the airways during an asthma attack."},
        {"id": "d3", "title": "Lease", "text": "The tenant pays rent every month."},
    ]
    queries = [{"id": "q1", "text": "what medicine for diabetes"}, {"id": "q2", "text": "asthma inhaler"}, {"id": "q3", "text": "rent"}]
    (data / "corpus.jsonl").write_text("\n".join(json.dumps(r) for r in corpus) + "\n")
    (data / "queries.jsonl").write_text("\n".join(json.dumps(r) for r in queries) + "\n")
    (data / "qrels.tsv").write_text("query-id\tcorpus-id\tscore\nq1\td1\t1\nq2\td2\t1\nq3\td3\t1\n")
    result = run("eval", "retrieval", "--dataset", str(data), "--json", "-r", "sparse", "-r", "hybrid", "-r", "bm25")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert [r["retriever"] for r in report["results"]] == ["sparse", "hybrid", "bm25"]
    for r in report["results"]:
        assert r["queries"] == 3 and r["metrics"]["ndcg@10"] == 1.0 and r["latency_ms"]["p50"] > 0
    assert report["index"]["sparse"]["built"] is True and report["index"]["hybrid"]["built"] is False  # shared store
    rerun = json.loads(run("eval", "retrieval", "--dataset", str(data), "--json", "-r", "dense").stdout)
    assert rerun["index"]["dense"]["built"] is False  # the corpus is indexed once
    table = run("eval", "retrieval", "--dataset", str(data), "-r", "dense")
    assert "nDCG@10" in table.output and "dense" in table.output


def test_commands_take_a_recorded_domains_name_as_well_as_its_manifest(manifest):
    assert run("index", "build", str(manifest)).exit_code == 0
    status = json.loads(run("index", "status", "kb", "--json").stdout)
    assert status["published"] == "v000001"
    found = json.loads(run("search", "kb", "metformin", "--json", "--top-k", "1").stdout)
    assert found["passages"][0]["source"] == "diabetes.md"
    unknown = runner.invoke(app, ["index", "status", "medical"])
    assert unknown.exit_code == 1
    assert "domain 'medical' is not known" in unknown.output and "kb" in unknown.output
    missing = runner.invoke(app, ["index", "status", "nowhere/medical.yaml"])
    assert missing.exit_code == 1 and "nowhere/medical.yaml: no such manifest file" in missing.output
