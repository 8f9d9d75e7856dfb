"""OpenTelemetry tracing, optional: ``pip install fourfold[otel]``, then set
``OTEL_EXPORTER_OTLP_ENDPOINT`` (spans go there over OTLP/HTTP) or
``OTEL_TRACES_EXPORTER=console``. Off otherwise, and nothing is imported.

Each API request becomes one server span named after its route template
(``POST /v1/domains/{domain}/ask``) with the domain and status as attributes; an answer
adds its stage timings (``fourfold.retrieve_ms``, …) and its flags. No question or
answer text is ever put on a span.
"""

from __future__ import annotations

import logging
import os
from typing import Any

__all__ = ["tracing_wanted", "setup_tracing", "tracer"]

log = logging.getLogger("fourfold.tracing")

_tracer: Any = None


def tracing_wanted() -> bool:
    """Whether the environment asks for traces."""
    exporter = os.environ.get("OTEL_TRACES_EXPORTER", "")
    return bool(os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT") or os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")) or exporter not in ("", "none")


def setup_tracing(service_name: str = "fourfold") -> bool:
    """Install a tracer provider exporting as the environment says; False (and a warning
    naming the extra) when the OpenTelemetry SDK is not installed, or when nothing asks
    for traces."""
    global _tracer
    if not tracing_wanted():
        return False
    try:
        from opentelemetry import trace
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter
    except ImportError:
        log.warning("tracing is configured (OTEL_*) but the OpenTelemetry SDK is missing: pip install 'fourfold[otel]'")
        return False
    provider = TracerProvider(resource=Resource.create({"service.name": os.environ.get("OTEL_SERVICE_NAME", service_name)}))
    if os.environ.get("OTEL_TRACES_EXPORTER") == "console":
        exporter: Any = ConsoleSpanExporter()
    else:
        try:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        except ImportError:
            log.warning("OTLP export needs opentelemetry-exporter-otlp-proto-http: pip install 'fourfold[otel]'")
            return False
        exporter = OTLPSpanExporter()
    provider.add_span_processor(BatchSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    _tracer = trace.get_tracer("fourfold")
    return True


def tracer() -> Any:
    """The tracer when tracing is on, else None."""
    return _tracer


def use_tracer(value: Any) -> None:
    """Trace with ``value`` (an OpenTelemetry tracer; None: off). For tests and embedders
    that set up OpenTelemetry themselves."""
    global _tracer
    _tracer = value
