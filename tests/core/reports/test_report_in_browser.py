"""The reports open from disk in a real browser (Debian's chromium, headless, no server,
no network) and show their tables and plots."""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

import pytest

from fourfold.reports import render_advice, render_comparison

from ...conftest import REPO_ROOT
from ..advisor.conftest import CALIBRATION

pytestmark = [pytest.mark.slow]

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


def comparison() -> dict:
    configs = []
    for i, (label, acc, lat) in enumerate([("smollm2 · plain · no retrieval", 0.52, 900.0), ("smollm2 · grounded-citations · hybrid", 0.61, 4200.0),
                                           ("transformers (artifact:pubmedqa-lora) · grounded-citations · hybrid", 0.7, 4400.0)]):
        generator = label.split(" · ")[0]
        configs.append({
            "key": f"c{i}", "label": label, "prompt": label.split(" · ")[1], "retriever": None if "no retrieval" in label else "hybrid",
            "generator": generator, "generator_label": generator, "answers": 4, "errors": 0,
            "metric": {"accuracy": acc, "unmapped": 1, "answered": 4}, "grounding": {"score": 0.5, "claims": 4, "supported": 2},
            "latency_ms": {"p50": lat, "p95": lat * 1.5, "values": [lat * 0.8, lat, lat * 1.1, lat * 1.5]},
            "measured": {"seconds_per_question": lat / 1000, "cpu_seconds_per_question": lat / 600, "cost_per_1000": lat / 36000},
            "estimate": {"seconds_per_question": {"value": lat / 900, "text": f"{lat / 900:.2f} s", "explain": "a + b = c"},
                         "cost_per_1000_here": {"value": 0.1, "text": "$0.10", "explain": "x"}, "cost_per_1000_accelerator": {"value": 0.001, "text": "$0.001", "explain": "y"}},
            "examples": [{"question": "Is it? <b>not bold</b>", "gold": "yes", "answer": "Yes [1].", "scored": "yes"}],
        })
    return {
        "kind": "comparison", "dataset": "pubmedqa", "manifest": "medical.yaml", "split": "check", "limit": 4, "questions": 4, "answer_metric": "accuracy",
        "created": "2026-01-01T00:00:00+00:00", "took_s": 12.0, "machine": {"label": "Test CPU"}, "prices": {"machine_per_hour": 0.1, "accelerator": "NVIDIA H100 SXM"},
        "grounding_rule": {"min_words": 3, "min_overlap": 0.5, "min_cosine": 0.7},
        "retrieval": [{"retriever": r, "metrics": {"ndcg@10": 0.9, "recall@10": 0.95, "mrr@10": 0.88}, "latency_ms": {"p50": 10.0, "p95": 20.0}, "queries": 4}
                      for r in ("sparse", "dense", "hybrid")],
        "baselines": [{"label": "majority class ('yes')", "value": 0.55}], "configs": configs, "notes": ["a note"],
    }


@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).exists():
        pytest.fail("chromium is not installed: apt-get install -y chromium (make system-deps)")
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as profile, sync_playwright() as p:
        context = p.chromium.launch_persistent_context(
            profile, executable_path=CHROMIUM, headless=True, offline=True,
            args=["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
        )
        try:
            yield context
        finally:
            context.close()


def open_report(browser, html: str, tmp_path: Path):
    path = tmp_path / "report.html"
    path.write_text(html, encoding="utf-8")
    page = browser.new_page()
    requests = []
    page.on("request", lambda r: requests.append(r.url))
    page.goto(path.as_uri())
    page.wait_for_load_state("load")
    assert all(url.startswith(("file:", "data:")) for url in requests), requests  # nothing fetched
    return page


def plots_drawn(page) -> int:
    boxes = page.eval_on_selector_all("svg.plot", "els => els.map(e => { const r = e.getBoundingClientRect(); return r.width * r.height; })")
    assert all(area > 10_000 for area in boxes), boxes
    return len(boxes)


def test_the_advice_report_shows_its_tables_plots_and_recommendation(browser, tmp_path, host, fourfold_home):
    from fourfold.advisor import advise
    from fourfold.domain import Domain

    domain = Domain.from_file(REPO_ROOT / "deploy" / "manifests" / "legal.yaml", host)
    data = advise(domain, calibration=CALIBRATION).to_dict()
    page = open_report(browser, render_advice(data), tmp_path)
    assert "Which method for legal" in page.title() or "legal" in page.inner_text("h1")
    assert page.locator("#recommendation").is_visible()
    assert "Recommended:" in page.inner_text("#recommendation")
    assert page.locator("table.costs").count() >= 4
    assert page.locator("table.costs tbody tr").count() >= 8
    assert plots_drawn(page) >= 3
    assert page.locator("svg.plot-bar rect.bar").count() >= 5
    page.locator("table.costs details summary").first.click()
    assert "here =" in page.locator("table.costs .derivation").first.inner_text()
    embedded = json.loads(page.inner_text("#report-data") or page.eval_on_selector("#report-data", "e => e.textContent"))
    assert embedded["domain"] == "legal"


def test_the_comparison_report_shows_tables_and_plots(browser, tmp_path):
    data = comparison()
    page = open_report(browser, render_comparison(data), tmp_path)
    assert page.locator("table.answers tbody tr").count() == 4  # the baseline and three configurations
    assert page.locator("table.retrieval tbody tr").count() == 3
    assert plots_drawn(page) >= 3
    assert page.locator("svg.plot-scatter circle.point").count() == 3
    assert page.locator("svg.plot-scatter line.baseline").count() == 1
    assert page.locator("svg.plot-box g.box").count() == 3
    assert "majority class" in page.inner_text("table.answers")
    assert page.locator("b", has_text="not bold").count() == 0  # dataset text is escaped
