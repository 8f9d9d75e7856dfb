"""Operating the API: /metrics for Prometheus (behind its own token), a log line per
request without tokens or questions, JSON logs."""

from __future__ import annotations

import json
import logging

import pytest
from prometheus_client import REGISTRY

from fourfold.logs import JsonFormatter

SCRAPE = "scrape-token-for-tests-0123"


@pytest.fixture
def scraping(served):
    served.app.state.metrics_token = SCRAPE
    yield {"Authorization": f"Bearer {SCRAPE}"}
    served.app.state.metrics_token = None


def value(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_metrics_are_off_without_a_token(client, served):
    response = client.get("/metrics", headers=served.auth("legal"))
    assert response.status_code == 404 and "FOURFOLD_METRICS_TOKEN" in response.json()["error"]["message"]


def test_metrics_need_the_scrape_token_not_a_domain_token(client, served, scraping):
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", headers=served.auth("legal")).status_code == 401
    assert client.get("/metrics", headers=scraping).status_code == 200


def test_answers_are_counted_by_route_domain_stage_and_outcome(client, served, scraping):
    route = "/v1/domains/{domain}/ask"
    before = value("fourfold_http_requests_total", method="POST", route=route, domain="legal", status="200")
    refused_before = value("fourfold_answers_total", domain="legal", outcome="refused")
    answered_before = value("fourfold_answers_total", domain="legal", outcome="answered")
    asked = client.post("/v1/domains/legal/ask", json={"question": "How long is personal data kept?"}, headers=served.auth("legal"))
    assert asked.status_code == 200 and "not-in-documents" not in asked.json()["flags"]
    off = client.post("/v1/domains/legal/ask", json={"question": "Who won the football world cup in 1998?"}, headers=served.auth("legal"))
    assert "not-in-documents" in off.json()["flags"]
    assert client.post("/v1/domains/legal/ask", json={"question": "x"}, headers=served.auth("hr")).status_code == 403

    text = client.get("/metrics", headers=scraping).text
    assert value("fourfold_http_requests_total", method="POST", route=route, domain="legal", status="200") == before + 2
    assert value("fourfold_http_requests_total", method="POST", route=route, domain="legal", status="403") >= 1
    assert value("fourfold_answers_total", domain="legal", outcome="refused") == refused_before + 1
    assert value("fourfold_answers_total", domain="legal", outcome="answered") == answered_before + 1
    for stage in ("retrieve", "answerability", "prompt", "generate", "check", "total"):
        assert f'fourfold_answer_stage_seconds_count{{domain="legal",stage="{stage}"}}' in text
    assert 'fourfold_generated_tokens_total{domain="legal",unit="words"}' in text
    assert 'fourfold_served_version{domain="legal"}' in text
    assert "fourfold_queue_depth" in text or "# HELP fourfold_queue_depth" not in text  # left out only when the broker is down
    assert 'fourfold_http_request_duration_seconds_bucket{domain="legal",le="0.005",method="POST",route="/v1/domains/{domain}/ask"}' in text


def test_unknown_paths_and_domains_do_not_become_labels(client, served, scraping):
    client.get("/no/such/path/abc123")
    client.post("/v1/domains/zzz-unknown-42/ask", json={"question": "hi"}, headers=served.auth("legal"))
    text = client.get("/metrics", headers=scraping).text
    assert "abc123" not in text and "zzz-unknown-42" not in text
    assert 'route="unmatched"' in text


def test_each_request_is_logged_without_token_or_question(client, served, caplog):
    question = "How much notice is needed to terminate? SECRET-QUESTION-WORDS"
    with caplog.at_level(logging.INFO, logger="fourfold.access"):
        client.post("/v1/domains/legal/ask", json={"question": question}, headers=served.auth("legal"))
        client.get("/v1/models", headers={"Authorization": "Bearer not-a-real-token-1234"})
    lines = [r.getMessage() for r in caplog.records if r.name == "fourfold.access"]
    assert any("method=POST route=/v1/domains/{domain}/ask domain=legal status=200 ms=" in line for line in lines), lines
    assert any("route=/v1/models domain=- status=401" in line for line in lines), lines
    logged = "\n".join(lines)
    assert "SECRET-QUESTION-WORDS" not in logged and served.token("legal") not in logged and "not-a-real-token" not in logged


def test_json_logs_carry_the_request_fields():
    record = logging.LogRecord("fourfold.access", logging.INFO, __file__, 1, "%s", ("GET /healthz",), None)
    record.fields = {"method": "GET", "route": "/healthz", "domain": "-", "status": 200, "ms": 1.5}
    line = json.loads(JsonFormatter().format(record))
    assert line["level"] == "info" and line["logger"] == "fourfold.access" and line["status"] == 200 and line["route"] == "/healthz"
    assert line["time"].endswith("Z")


def test_requests_run_inside_a_span_when_tracing_is_on(client, served):
    trace = pytest.importorskip("opentelemetry.trace", reason="the opentelemetry API is not installed (pip install 'fourfold[otel]')")
    from fourfold import tracing

    try:
        sdk = __import__("opentelemetry.sdk.trace", fromlist=["TracerProvider"])
        export = __import__("opentelemetry.sdk.trace.export", fromlist=["SimpleSpanProcessor"])
        memory = __import__("opentelemetry.sdk.trace.export.in_memory_span_exporter", fromlist=["InMemorySpanExporter"])
    except ImportError:
        sdk = None
    if sdk is None:
        # API only: spans are no-ops, and answering must work all the same.
        tracing.use_tracer(trace.get_tracer("fourfold-test"))
        try:
            r = client.post("/v1/domains/legal/ask", json={"question": "How long is personal data kept?"}, headers=served.auth("legal"))
            assert r.status_code == 200
        finally:
            tracing.use_tracer(None)
        pytest.skip("the OpenTelemetry SDK is not installed (pip install 'fourfold[otel]'): span contents not checked")
    exporter = memory.InMemorySpanExporter()
    provider = sdk.TracerProvider()
    provider.add_span_processor(export.SimpleSpanProcessor(exporter))
    tracing.use_tracer(provider.get_tracer("fourfold-test"))
    try:
        client.post("/v1/domains/legal/ask", json={"question": "How long is personal data kept?"}, headers=served.auth("legal"))
    finally:
        tracing.use_tracer(None)
    (span,) = exporter.get_finished_spans()
    assert span.name == "POST /v1/domains/{domain}/ask"
    assert span.attributes["fourfold.domain"] == "legal" and span.attributes["http.response.status_code"] == 200
    assert "fourfold.retrieve_ms" in span.attributes
    assert not any("personal data" in str(v) for v in span.attributes.values())
