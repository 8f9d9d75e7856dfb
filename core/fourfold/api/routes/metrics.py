"""``GET /metrics``: Prometheus metrics, for a scraper holding ``FOURFOLD_METRICS_TOKEN``.

Off (404) while no token is configured: the metrics name domains and show traffic, which
a domain's clients should not see. Not in the OpenAPI schema: it is for Prometheus, not
for API clients.
"""

from __future__ import annotations

import hmac

from fastapi import APIRouter, Request, Response
from fastapi.concurrency import run_in_threadpool

from fourfold import metrics
from fourfold.api.errors import ApiError

router = APIRouter()


@router.get("/metrics", include_in_schema=False)
async def prometheus_metrics(request: Request) -> Response:
    expected = request.app.state.metrics_token
    if not expected:
        raise ApiError(404, "metrics are off: set FOURFOLD_METRICS_TOKEN and scrape with 'Authorization: Bearer <it>'", code="metrics_off")
    given = request.headers.get("authorization", "")
    scheme, _, token = given.partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(token.strip().encode(), expected.encode()):
        raise ApiError(401, "/metrics needs 'Authorization: Bearer <FOURFOLD_METRICS_TOKEN>'", code="invalid_token", headers={"WWW-Authenticate": "Bearer"})
    body = await run_in_threadpool(metrics.exposition, [request.app.state.metrics_collector])
    return Response(body, media_type=metrics.CONTENT_TYPE_LATEST)
