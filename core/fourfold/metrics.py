"""Prometheus metrics: every metric fourfold exports is defined here, with the few
functions that record them.

The API process serves them at ``/metrics`` (behind ``FOURFOLD_METRICS_TOKEN``);
``fourfold worker --metrics-port N`` serves a worker's. A Celery worker runs its tasks
in child processes, so workers use prometheus-client's multiprocess mode: each process
writes its samples to files under ``PROMETHEUS_MULTIPROC_DIR`` and the server adds them
up. That variable must be set before ``prometheus_client`` is first imported, which is
why ``fourfold worker`` sets it (to a folder of its own when unset) before it loads
anything else.

Labels are bounded: routes are the API's route templates (never raw paths), domains are
the served domains' names (``-`` for anything else), statuses are numbers. No question,
answer or token ever becomes a label.
"""

from __future__ import annotations

import os
import re
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import REGISTRY, Collector

if TYPE_CHECKING:
    from fourfold.types import Answer

__all__ = [
    "CONTENT_TYPE_LATEST",
    "HTTP_REQUESTS",
    "HTTP_REQUEST_SECONDS",
    "ANSWERS",
    "ANSWER_STAGE_SECONDS",
    "REMOVED_CLAIMS",
    "GENERATED_TOKENS",
    "GENERATION_TOKENS_PER_SECOND",
    "REFRESH_SECONDS",
    "CHUNKS_EMBEDDED",
    "LEASE_WAIT_SECONDS",
    "PUBLISHED_VERSION",
    "observe_answer",
    "observe_refresh",
    "observe_lease_wait",
    "version_number",
    "StateCollector",
    "exposition",
    "multiprocess_dir",
    "serve_worker_metrics",
]

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)

# -- HTTP ------------------------------------------------------------------------------

HTTP_REQUESTS = Counter(
    "fourfold_http_requests_total", "HTTP requests answered, by method, route template, domain and status.",
    ["method", "route", "domain", "status"],
)
HTTP_REQUEST_SECONDS = Histogram(
    "fourfold_http_request_duration_seconds", "Time to answer an HTTP request (a stream: until its last byte).",
    ["method", "route", "domain"], buckets=_LATENCY_BUCKETS,
)

# -- answering -------------------------------------------------------------------------

ANSWERS = Counter(
    "fourfold_answers_total", "Answers given, by domain and outcome (answered, refused: not in the documents).",
    ["domain", "outcome"],
)
ANSWER_STAGE_SECONDS = Histogram(
    "fourfold_answer_stage_seconds",
    "Time per answering stage: retrieve, answerability, prompt, generate, check, total.",
    ["domain", "stage"], buckets=_LATENCY_BUCKETS,
)
REMOVED_CLAIMS = Counter(
    "fourfold_removed_claims_total", "Sentences the checks removed, by reason (contradiction, unsupported).",
    ["domain", "reason"],
)
GENERATED_TOKENS = Counter(
    "fourfold_generated_tokens_total", "What generators produced, in their unit (tokens, or words for extractive).",
    ["domain", "unit"],
)
GENERATION_TOKENS_PER_SECOND = Histogram(
    "fourfold_generation_tokens_per_second", "Generator speed per answer (completion tokens / generate time).",
    ["domain"], buckets=(1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 5000),
)

# -- background work -------------------------------------------------------------------

REFRESH_SECONDS = Histogram(
    "fourfold_refresh_duration_seconds", "Duration of index refreshes, by domain and outcome (published, unchanged, failed).",
    ["domain", "outcome"], buckets=(1, 2, 5, 10, 30, 60, 120, 300, 600, 1800, 3600),
)
CHUNKS_EMBEDDED = Counter(
    "fourfold_chunks_embedded_total", "Chunks whose vectors a refresh computed (not taken from the cache).", ["domain"],
)
LEASE_WAIT_SECONDS = Histogram(
    "fourfold_lease_wait_seconds", "Time a task waited for a domain's writer lease, by task kind.",
    ["domain", "kind"], buckets=(0.001, 0.01, 0.1, 0.5, 1, 5, 10, 30, 60, 300),
)
PUBLISHED_VERSION = Gauge(
    "fourfold_published_version", "Number of the index version published last by this process (v000007 is 7).",
    ["domain"], multiprocess_mode="mostrecent",
)

_STAGES = {"retrieve_ms": "retrieve", "answerability_ms": "answerability", "prompt_ms": "prompt",
           "generate_ms": "generate", "check_ms": "check", "total_ms": "total"}
_REMOVED = re.compile(r"^(contradiction|unsupported)-removed:(\d+)$")


def version_number(name: str | None) -> int | None:
    """7 for ``v000007``; None for anything else."""
    match = re.fullmatch(r"v(\d+)", name or "")
    return int(match.group(1)) if match else None


def observe_answer(answer: "Answer") -> None:
    """Record one finished answer: its outcome, stage timings, removed claims and the
    generator's output and speed."""
    domain = answer.domain
    ANSWERS.labels(domain, "refused" if answer.refused else "answered").inc()
    for key, stage in _STAGES.items():
        ms = answer.timings.get(key)
        if ms is not None:
            ANSWER_STAGE_SECONDS.labels(domain, stage).observe(ms / 1000)
    for flag in answer.flags:
        match = _REMOVED.match(flag)
        if match:
            REMOVED_CLAIMS.labels(domain, match.group(1)).inc(int(match.group(2)))
    usage = answer.usage or {}
    made = int(usage.get("completion_tokens") or 0)
    if made:
        GENERATED_TOKENS.labels(domain, str(usage.get("unit") or "tokens")).inc(made)
        generate_ms = answer.timings.get("generate_ms") or 0.0
        if generate_ms > 0:
            GENERATION_TOKENS_PER_SECOND.labels(domain).observe(made / (generate_ms / 1000))


def observe_refresh(domain: str, report: Any, seconds: float) -> None:
    """Record a finished refresh (a :class:`fourfold.index.RefreshReport`, or None when it
    failed)."""
    if report is None:
        REFRESH_SECONDS.labels(domain, "failed").observe(seconds)
        return
    REFRESH_SECONDS.labels(domain, "published" if report.published else "unchanged").observe(seconds)
    CHUNKS_EMBEDDED.labels(domain).inc(int(report.chunks_embedded or 0))
    number = version_number(report.version)
    if number is not None:
        PUBLISHED_VERSION.labels(domain).set(number)


def observe_lease_wait(domain: str, kind: str, seconds: float) -> None:
    LEASE_WAIT_SECONDS.labels(domain, kind).observe(seconds)


class StateCollector(Collector):
    """Gauges read when scraped: the published version of each served domain, and the
    tasks queued and not yet started (from fourfold's task records).

    :param published: domain name → its published version name (None: none).
    :param queued: the number of queued tasks by kind; it may raise (broker down), and
        then the queue gauge is left out of that scrape.
    """

    def __init__(self, published: Callable[[], dict[str, str | None]] | None, queued: Callable[[], dict[str, int]] | None):
        self._published = published
        self._queued = queued
        self._cache: tuple[float, dict[str, int]] | None = None

    def collect(self) -> Iterable[GaugeMetricFamily]:
        if self._published is not None:
            family = GaugeMetricFamily("fourfold_served_version", "Number of the index version each served domain answers from.", labels=["domain"])
            for domain, name in sorted(self._published().items()):
                number = version_number(name)
                if number is not None:
                    family.add_metric([domain], number)
            yield family
        if self._queued is not None:
            counts = self._queued_counts()
            if counts is not None:
                family = GaugeMetricFamily("fourfold_queue_depth", "Tasks queued and not yet started, by kind.", labels=["kind"])
                for kind, n in sorted(counts.items()):
                    family.add_metric([kind], n)
                yield family

    def _queued_counts(self) -> dict[str, int] | None:
        # Scrapes come every few seconds; the task records need not be read more often.
        now = time.monotonic()
        if self._cache is not None and now - self._cache[0] < 5:
            return self._cache[1]
        try:
            counts = self._queued()  # type: ignore[misc]
        except Exception:  # noqa: BLE001 - a broker being down must not fail the scrape
            return None
        self._cache = (now, counts)
        return counts


def serve_worker_metrics(host: str, port: int, settings: Any) -> None:
    """Serve a worker's metrics (all its pool processes') on ``host:port`` from a thread,
    with the queued tasks read from ``settings``' task records."""
    from prometheus_client import start_http_server

    def queued() -> dict[str, int]:
        from fourfold.worker import client

        counts: dict[str, int] = {}
        for task in client.recent_tasks(200, settings=settings):
            if task.state == "queued":
                counts[task.name] = counts.get(task.name, 0) + 1
        return counts

    state = StateCollector(None, queued)

    class _Scrape(Collector):
        def collect(self):
            if multiprocess_dir() is not None:
                from prometheus_client import multiprocess

                inner = CollectorRegistry()
                multiprocess.MultiProcessCollector(inner)
                yield from inner.collect()
            else:
                yield from REGISTRY.collect()
            yield from state.collect()

    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Scrape())
    start_http_server(port, addr=host, registry=registry)


def multiprocess_dir() -> Path | None:
    """The folder of multiprocess mode, when it is on."""
    value = os.environ.get("PROMETHEUS_MULTIPROC_DIR") or os.environ.get("prometheus_multiproc_dir")
    return Path(value) if value else None


def exposition(extra: Iterable[Collector] = ()) -> bytes:
    """The metrics in Prometheus' text format: this process's (or, in multiprocess mode,
    every process's) plus ``extra`` collectors."""
    if multiprocess_dir() is not None:
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        text = generate_latest(registry)
    else:
        text = generate_latest(REGISTRY)
    extra = list(extra)
    if extra:
        registry = CollectorRegistry(auto_describe=False)
        for collector in extra:
            registry.register(collector)
        text += generate_latest(registry)
    return text
