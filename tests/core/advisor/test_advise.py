"""``fourfold advise`` on the shipped manifests: every method costed, every figure with its
derivation, a recommendation with reasons, in well under 30 seconds."""

from __future__ import annotations

import json
import re

import pytest
from typer.testing import CliRunner

from fourfold.cli import app

from ...conftest import REPO_ROOT

MANIFESTS = REPO_ROOT / "deploy" / "manifests"


def figures(node):
    """Every figure (a dict with value, unit, formula and explain) in an advice."""
    if isinstance(node, dict):
        if {"value", "unit", "explain"} <= node.keys():
            yield node
        for value in node.values():
            yield from figures(value)
    elif isinstance(node, list):
        for value in node:
            yield from figures(value)


@pytest.mark.parametrize("name", ["medical", "legal"])
def test_advice_on_a_shipped_manifest(name, calibrated):
    result = CliRunner().invoke(app, ["advise", str(MANIFESTS / f"{name}.yaml"), "--json", "--questions-per-day", "2000"])
    assert result.exit_code == 0, result.output
    advice = json.loads(result.stdout)  # (its time limit is checked by the slow test, on a calibrated machine)
    lines = {line["key"]: line for line in advice["combination"]["lines"]}
    assert {"index-build", "refresh", "serving", "serving-per-day"} <= set(lines)
    assert lines["index-build"]["here"]["value"] > 0 and lines["index-build"]["parts"]["embed"]["value"] > 0
    methods = {m["key"]: m for m in advice["methods"]}
    assert {"retrieval", "prompting", "generation", "fine-tuning", "training"} <= set(methods)
    reference = next(line for line in methods["training"]["lines"] if line["key"] == "training-125m")
    n, d = reference["facts"]["parameters"]["value"], reference["facts"]["tokens needed"]["value"]
    assert d == 20 * n
    assert reference["flops"]["value"] == pytest.approx(6 * n * d, rel=0.1)
    assert reference["accelerator"]["value"] == pytest.approx(reference["flops"]["value"] / (989e12 * 0.35), rel=1e-5)
    assert reference["cost"]["value"] == pytest.approx(reference["accelerator"]["value"] / 3600 * 3.0, rel=1e-5)
    for fig in figures(advice):  # every figure says how it was made
        assert fig["explain"], fig
        if fig["value"] is not None and fig["formula"]:
            assert "=" in fig["explain"]
    rec = advice["recommendation"]
    assert {r["topic"] for r in rec["reasons"]} == {"retrieval", "prompt", "generator", "fine-tuning", "training"}
    assert "not recommended" in next(r["text"] for r in rec["reasons"] if r["topic"] == "training")
    assert rec["combination"]["retrieval"] == "hybrid"
    assert re.search(r"accelerator|H100", json.dumps(rec))


def test_the_text_output_shows_tables_recommendation_and_derivations(calibrated):
    result = CliRunner().invoke(app, ["advise", str(MANIFESTS / "legal.yaml"), "--changes-per-day", "5"])
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "This manifest" in out and "Recommended:" in out and "How each figure was derived" in out
    assert "5 documents/day (flag)" in out
    assert "Knowledge changes daily" in out and "favours retrieval" in out


def test_a_report_is_written_and_kept_for_the_api(calibrated, tmp_path, fourfold_home):
    target = tmp_path / "advice.html"
    result = CliRunner().invoke(app, ["advise", str(MANIFESTS / "legal.yaml"), "--report", str(target), "--brief"])
    assert result.exit_code == 0, result.output
    html = target.read_text()
    assert html.startswith("<!DOCTYPE html>") and "<svg" in html and "http://" not in html.replace("http://www.w3.org/2000/svg", "")
    kept = list((fourfold_home / "reports").glob("advice-legal-*.html"))
    assert len(kept) == 1 and kept[0].read_text() == html
    meta = json.loads(kept[0].with_suffix(".json").read_text())["report"]
    assert meta["kind"] == "advice" and meta["domain"] == "legal"


def test_accelerator_assumptions_can_be_changed(calibrated):
    runner = CliRunner()
    base = json.loads(runner.invoke(app, ["advise", str(MANIFESTS / "legal.yaml"), "--json"]).stdout)
    cheap = json.loads(runner.invoke(app, ["advise", str(MANIFESTS / "legal.yaml"), "--json", "--accelerator", "a100", "--mfu", "0.5", "--price-per-hour", "1"]).stdout)
    ref = lambda a: next(l for m in a["methods"] for l in m["lines"] if l["key"] == "training-125m")  # noqa: E731
    assert ref(cheap)["accelerator"]["value"] == pytest.approx(ref(base)["flops"]["value"] / (312e12 * 0.5), rel=1e-5)
    assert cheap["accelerator"]["price_per_hour"] == 1
    bad = runner.invoke(app, ["advise", str(MANIFESTS / "legal.yaml"), "--accelerator", "tpu9"])
    assert bad.exit_code == 1 and "unknown accelerator 'tpu9'" in bad.stderr


def test_a_manifest_that_trains_and_fine_tunes_gets_those_stages_costed(calibrated):
    result = CliRunner().invoke(app, ["advise", str(MANIFESTS / "clinic-all-methods.yaml"), "--json"])
    assert result.exit_code == 0, result.output
    lines = {line["key"]: line for line in json.loads(result.stdout)["combination"]["lines"]}
    training, lora = lines["training"], lines["fine_tuning[0]"]
    assert training["facts"]["steps"]["value"] <= 300
    assert training["facts"]["parameters"]["value"] == pytest.approx(4096 * 128 + 512 * 128 + 2 * (12 * 128**2 + 13 * 128) + 256)
    assert "clinic-base" in lora["what"] and lora["facts"]["trainable parameters"]["value"] == 16 * 2 * 16 * 128
    assert lora["parts"]["train"]["value"] > 0


def test_advise_without_knowledge_is_an_error_for_people(calibrated, write_manifest):
    path = write_manifest("""
        fourfold: 1
        domain: bare
        title: No knowledge
        prompt: {use: plain}
    """)
    result = CliRunner().invoke(app, ["advise", str(path)])
    assert result.exit_code == 1
    assert "has no 'knowledge:' block" in result.stderr
