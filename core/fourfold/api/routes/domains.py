"""Operating a domain: ``status``, ``refresh`` (queued for a worker) and ``rollback``.

The API process never writes an index itself except for rollback, which only moves
the published pointer back to a version kept on disk (under the domain's writer lock).
"""

from __future__ import annotations

import logging

from fastapi import APIRouter, Body
from fastapi.responses import JSONResponse

from fourfold.api.deps import DomainDep, StatusReaderDep
from fourfold.api.errors import ERROR_RESPONSES, ApiError
from fourfold.api.schemas import DomainStatus, RefreshRequest, RefreshResponse, RollbackRequest, RollbackResponse
from fourfold.errors import FourfoldError, IndexVersionError

router = APIRouter(prefix="/v1/domains", tags=["domains"])

log = logging.getLogger("fourfold.api")

_NOT_FOUND = "has no index version"


def _running_task(domain_name: str, settings) -> dict | None:
    """Progress of the refresh writing the domain now (None: none, or no worker state)."""
    try:
        from fourfold.worker import client
    except ImportError:
        return None
    try:
        return client.task_progress(domain_name, settings=settings)
    except Exception as exc:  # the broker being down must not break status
        log.warning("reading task progress of '%s' failed: %s", domain_name, exc)
        return None


@router.get(
    "/{domain}/status",
    response_model=DomainStatus,
    summary="Index version, counts, last refresh and running task (a read or a write token)",
    responses={k: v for k, v in ERROR_RESPONSES.items() if k in (401, 403, 404)},
)
def status(domain: StatusReaderDep) -> DomainStatus:
    from fourfold.index import index_status

    st = index_status(domain).to_dict()
    m = domain.manifest
    return DomainStatus(
        domain=domain.name,
        title=domain.title,
        index={
            "published": st.get("published"),
            "documents": st.get("documents") or 0,
            "chunks": st.get("chunks") or 0,
            "created": st.get("created"),
            "versions": st.get("versions") or [],
            "last_refresh": st.get("last_refresh"),
            "writer": st.get("writer"),
        },
        task=_running_task(domain.name, domain.settings),
        components={
            "prompt": m.prompt.use,
            "retrieval": m.retrieval.use,
            "generation": m.generation.use,
            "embedding": m.embedding.use,
        },
    )


@router.post(
    "/{domain}/refresh",
    response_model=RefreshResponse,
    status_code=202,
    summary="Queue a knowledge refresh (or return the one already queued; while one runs, the follow-up run after it)",
    responses={**{k: v for k, v in ERROR_RESPONSES.items() if k in (401, 403, 404, 413, 422, 503)},
               200: {"model": RefreshResponse, "description": "A refresh was already queued, or a follow-up recorded: that task."}},
)
def refresh(domain: DomainDep, body: RefreshRequest | None = Body(None)) -> JSONResponse:
    try:
        from fourfold.worker import client
    except ImportError as exc:
        raise ApiError(503, f"background refreshes are not available in this installation ({exc})", code="worker_unavailable") from None
    try:
        info = client.request_refresh(domain.name, full=bool(body and body.full), settings=domain.settings)
    except FourfoldError as exc:
        raise ApiError(503, str(exc), code="broker_unavailable") from None
    task = info.to_dict()
    return JSONResponse({"task": task}, status_code=200 if info.existing else 202)


@router.post(
    "/{domain}/rollback",
    response_model=RollbackResponse,
    summary="Publish an earlier index version again",
    responses={**{k: v for k, v in ERROR_RESPONSES.items() if k in (401, 403, 404, 413, 422)},
               409: {"model": ERROR_RESPONSES[401]["model"], "description": "Nothing to roll back to, or a refresh is writing the index."}},
)
def rollback(domain: DomainDep, body: RollbackRequest | None = Body(None)) -> RollbackResponse:
    from fourfold.index import rollback as rollback_index

    try:
        published = rollback_index(domain, body.to if body else None, wait=5.0)
    except IndexVersionError as exc:
        message = str(exc)
        raise ApiError(404 if _NOT_FOUND in message else 409, message, code="rollback_refused") from None
    return RollbackResponse(domain=domain.name, published=published)
