"""The Grafana dashboard in deploy/ queries only metrics fourfold defines."""

from __future__ import annotations

import json
import re
from pathlib import Path

from prometheus_client import REGISTRY

import fourfold.metrics  # noqa: F401 - defines the metrics

DASHBOARD = Path(__file__).resolve().parents[2] / "deploy" / "grafana" / "fourfold.json"
COLLECTED_AT_SCRAPE = {"fourfold_served_version", "fourfold_queue_depth"}  # StateCollector's gauges


def test_every_metric_the_dashboard_queries_exists():
    dashboard = json.loads(DASHBOARD.read_text())
    defined = set(COLLECTED_AT_SCRAPE)
    suffixes = {"counter": ["_total"], "histogram": ["_bucket", "_count", "_sum"], "gauge": [""]}
    for family in REGISTRY.collect():
        if family.name.startswith("fourfold_"):
            defined.update(family.name + suffix for suffix in suffixes[family.type])
    used = set()
    for panel in dashboard["panels"]:
        for target in panel["targets"]:
            used.update(re.findall(r"\bfourfold_[a-z_]+", target["expr"]))
    assert used and not used - defined, f"unknown metrics in the dashboard: {sorted(used - defined)}"
    assert {p["title"] for p in dashboard["panels"]} >= {"Answer stages p95", "Refresh duration p95", "Tasks queued"}
