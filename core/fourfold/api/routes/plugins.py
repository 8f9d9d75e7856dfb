"""``GET /v1/plugins``: what is loaded (any domain's token)."""

from __future__ import annotations

from fastapi import APIRouter

from fourfold.api.deps import AllowedDomainsDep, AssistantsDep
from fourfold.api.errors import ERROR_RESPONSES
from fourfold.api.schemas import PluginsResponse

router = APIRouter(prefix="/v1", tags=["plugins"])


@router.get(
    "/plugins",
    response_model=PluginsResponse,
    summary="Installed plugins and their components",
    responses={k: v for k, v in ERROR_RESPONSES.items() if k in (401,)},
)
def plugins(assistants: AssistantsDep, allowed: AllowedDomainsDep) -> PluginsResponse:
    # Tracebacks name files and code of the serving machine: the CLI shows them, HTTP does not.
    records = [{k: v for k, v in r.to_dict().items() if k != "traceback"} for r in assistants.host.plugin_records()]
    return PluginsResponse(plugins=records)
