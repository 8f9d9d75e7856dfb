"""Building the FastAPI application."""

from __future__ import annotations

from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import AsyncIterator

import anyio
from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

import fourfold
from fourfold.api.assistants import Assistants
from fourfold.api.errors import install_error_handlers
from fourfold.api.headers import SecurityHeaders
from fourfold.api.limits import BodySizeLimit
from fourfold.api.observe import RequestObserver
from fourfold.api.routes import ask, documents, domains, health, metrics, openai, page, plugins, reports
from fourfold.api.routes.page import STATIC
from fourfold.metrics import StateCollector
from fourfold.plugins import PluginHost
from fourfold.settings import Settings

__all__ = ["ApiOptions", "create_app"]

DESCRIPTION = """\
Domain assistants built from fourfold manifests.

* **OpenAI-compatible**: `POST /v1/chat/completions` and `GET /v1/models`; the model is
  the domain. Completions carry the extra fields `citations` and `fourfold`.
* **Domains**: ask, status, refresh (queued for a worker), rollback.
* **Documents**: upload, replace, delete and list the documents of a domain's `upload`
  source; each change queues a refresh.
* Every `/v1` route needs `Authorization: Bearer <token>` with a token of the domain;
  uploading and deleting documents need one of its write tokens.
* **Reports**: `GET /reports/` lists the `fourfold advise` and `fourfold eval compare`
  reports kept in the state dir; a report about a served domain needs that domain's token.
"""


@dataclass(frozen=True)
class ApiOptions:
    """Limits of one API process.

    :ivar max_body_bytes: larger request bodies get 413 (document uploads aside: the
        ``upload`` source's ``max_mb`` limits them).
    :ivar warm_up: load every domain's components and models at start-up, before the
        server accepts connections.
    :ivar metrics_token: the bearer token of ``GET /metrics`` (default: the settings'
        ``FOURFOLD_METRICS_TOKEN``; none: /metrics is off).
    """

    max_body_bytes: int = 256 * 1024
    warm_up: bool = True
    metrics_token: str | None = None


def create_app(
    manifests: list[str | Path] | None = None,
    *,
    assistants: Assistants | None = None,
    options: ApiOptions | None = None,
    host: PluginHost | None = None,
    settings: Settings | None = None,
) -> FastAPI:
    """The API for ``manifests`` (default: the domains in the state dir's registry).

    :raises FourfoldError: a manifest is invalid or no domain is given.
    """
    options = options or ApiOptions()
    assistants = assistants or Assistants.from_manifests(manifests, host=host, settings=settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if options.warm_up:
            # Before the server listens: the first questions must not load models and
            # import their libraries in several threads at once (transformers' lazy
            # imports are not thread-safe), and /healthz answers once domains are ready.
            await anyio.to_thread.run_sync(assistants.warm_up().join)
        yield
        assistants.close()

    app = FastAPI(
        lifespan=lifespan,
        title="fourfold",
        version=fourfold.__version__,
        description=DESCRIPTION,
        openapi_tags=[
            {"name": "openai", "description": "OpenAI-compatible endpoints; model = domain."},
            {"name": "domains", "description": "Ask, status, refresh and rollback per domain."},
            {"name": "documents", "description": "Documents uploaded to a domain's 'upload' source (write tokens)."},
        ],
    )
    app.state.assistants = assistants
    app.state.options = options
    app.state.metrics_token = options.metrics_token or assistants.settings.metrics_token
    app.state.metrics_collector = StateCollector(_published(assistants), _queued(assistants))
    install_error_handlers(app)
    for module in (health, openai, ask, domains, documents, plugins, reports, page, metrics):
        app.include_router(module.router)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    app.add_middleware(BodySizeLimit, max_bytes=options.max_body_bytes, exempt=documents.UPLOAD_PATH)
    app.add_middleware(SecurityHeaders)  # errors from the others get the headers too
    app.add_middleware(RequestObserver, log_questions=assistants.settings.log_questions)  # outermost: sees every status
    return app


def _published(assistants: Assistants):
    def read() -> dict[str, str | None]:
        out: dict[str, str | None] = {}
        for name, domain in assistants.domains.items():
            if domain.manifest.knowledge is None:
                continue
            try:
                out[name] = domain.index.version
            except Exception:  # noqa: BLE001 - a scrape must not fail for one domain
                out[name] = None
        return out

    return read


def _queued(assistants: Assistants):
    def count() -> dict[str, int]:
        from fourfold.worker import client

        counts: dict[str, int] = {}
        for task in client.recent_tasks(200, settings=assistants.settings):
            if task.state == "queued":
                counts[task.name] = counts.get(task.name, 0) + 1
        return counts

    return count
