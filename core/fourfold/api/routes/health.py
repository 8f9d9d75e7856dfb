"""``GET /healthz`` (and ``HEAD``): is the process up (no token needed)."""

from __future__ import annotations

from fastapi import APIRouter, Response

import fourfold
from fourfold.api.deps import AssistantsDep
from fourfold.api.schemas import Health

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=Health, summary="Liveness check")
def healthz(assistants: AssistantsDep) -> Health:
    return Health(version=fourfold.__version__, domains=len(assistants.domains))


@router.head("/healthz", include_in_schema=False)
def healthz_head() -> Response:
    # Load balancers and uptime checks often probe with HEAD.
    return Response(status_code=200)
