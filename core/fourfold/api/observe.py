"""What each request leaves behind: a log line at INFO on ``fourfold.access``, Prometheus
metrics, and (when configured) a trace span.

The log line holds the method, the route template, the domain, the status and the time
taken. Never the bearer token, the path's raw text or the question: reading them from a
log would let anyone with log access ask as the client did. ``FOURFOLD_LOG_QUESTIONS=1``
adds the question (for debugging a domain on a private machine).
"""

from __future__ import annotations

import contextvars
import logging
import time
from typing import Any

from fourfold import metrics, tracing

__all__ = ["RequestObserver", "note_answer", "note_domain", "note_question"]

log = logging.getLogger("fourfold.access")

# The route handlers run in worker threads with a copy of the context: a mutable dict
# set here is shared with them, so what they note is seen when the response ends.
_REQUEST: contextvars.ContextVar[dict[str, Any] | None] = contextvars.ContextVar("fourfold_request", default=None)


def note_domain(name: str) -> None:
    """The request is about served domain ``name`` (a label for its metrics and log)."""
    current = _REQUEST.get()
    if current is not None:
        current["domain"] = name


def note_answer(timings: dict[str, float], flags: list[str]) -> None:
    """An answer's stage timings and flags, put on the request's span when tracing."""
    current = _REQUEST.get()
    span = current.get("span") if current is not None else None
    if span is not None:
        for key, ms in timings.items():
            span.set_attribute(f"fourfold.{key}", float(ms))
        span.set_attribute("fourfold.flags", list(flags))


def _server_kind() -> Any:
    from opentelemetry.trace import SpanKind

    return SpanKind.SERVER


def note_question(question: str) -> None:
    """The request's question; logged only with ``FOURFOLD_LOG_QUESTIONS=1``."""
    current = _REQUEST.get()
    if current is not None:
        current["question"] = question


class RequestObserver:
    """ASGI middleware: times each HTTP request until its last byte is sent, then counts
    it, observes its latency and logs it."""

    def __init__(self, app: Any, *, log_questions: bool = False):
        self.app = app
        self.log_questions = log_questions

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        noted: dict[str, Any] = {}
        token = _REQUEST.set(noted)
        status = 500
        tracer = tracing.tracer()
        span = tracer.start_span(f"{scope.get('method', '-')} request", kind=_server_kind()) if tracer is not None else None
        noted["span"] = span

        async def observed_send(message: dict) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, observed_send)
        finally:
            _REQUEST.reset(token)
            self._record(scope, noted, status, time.perf_counter() - started)
            if span is not None:
                route = getattr(scope.get("route"), "path", None) or "unmatched"
                span.update_name(f"{scope.get('method', '-')} {route}")
                span.set_attribute("http.request.method", scope.get("method", "-"))
                span.set_attribute("http.route", route)
                span.set_attribute("http.response.status_code", status)
                span.set_attribute("fourfold.domain", noted.get("domain", "-"))
                span.end()

    def _record(self, scope: dict, noted: dict[str, Any], status: int, seconds: float) -> None:
        route = getattr(scope.get("route"), "path", None) or "unmatched"
        method = scope.get("method", "-")
        domain = noted.get("domain", "-")
        metrics.HTTP_REQUESTS.labels(method, route, domain, str(status)).inc()
        metrics.HTTP_REQUEST_SECONDS.labels(method, route, domain).observe(seconds)
        if log.isEnabledFor(logging.INFO):
            fields: dict[str, Any] = {"method": method, "route": route, "domain": domain, "status": status, "ms": round(seconds * 1000, 1)}
            if self.log_questions and "question" in noted:
                fields["question"] = noted["question"]
            text = " ".join(f"{k}={v}" for k, v in fields.items() if k != "question")
            if "question" in fields:
                text += f" question={fields['question']!r}"
            log.info("%s", text, extra={"fields": fields})
