"""``/reports/``: the advice and comparison reports kept in the state dir.

Reports can quote dataset questions and describe a domain's knowledge, so they need a
token: a report about a domain served here opens with that domain's token only; a
report about anything else (a dataset, a domain not served by this process) opens with
any valid token.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path
from fastapi.responses import Response
from pydantic import BaseModel, Field

from fourfold.api.deps import AllowedDomainsDep, AssistantsDep
from fourfold.api.errors import ERROR_RESPONSES, ApiError
from fourfold.reports import ReportInfo, list_reports, read_report

router = APIRouter(prefix="/reports", tags=["reports"])


class ReportOut(BaseModel):
    name: str = Field(description="Report name (file names without extension).")
    kind: str = Field(description="'advice' (fourfold advise) or 'comparison' (fourfold eval compare).")
    domain: str | None = Field(description="The domain the report is about.")
    title: str
    created: str
    html: str = Field(description="Path of the self-contained HTML page.")
    json_: str = Field(alias="json", description="Path of the report's data as JSON.")


class ReportList(BaseModel):
    reports: list[ReportOut]


def _readable(report_domain: str | None, assistants, allowed: set[str]) -> bool:
    if report_domain and report_domain in assistants.domains:
        return report_domain in allowed
    return True


def _out(r: ReportInfo) -> ReportOut:
    return ReportOut(name=r.name, kind=r.kind, domain=r.domain, title=r.title, created=r.created, html=f"/reports/{r.html}", json=f"/reports/{r.json}")


@router.get(
    "/",
    response_model=ReportList,
    response_model_by_alias=True,
    summary="Reports this token may read, newest first",
    responses={k: v for k, v in ERROR_RESPONSES.items() if k in (401,)},
)
def reports(assistants: AssistantsDep, allowed: AllowedDomainsDep) -> ReportList:
    return ReportList(reports=[_out(r) for r in list_reports(assistants.settings) if _readable(r.domain, assistants, allowed)])


@router.get(
    "/{name}",
    summary="One report: its HTML page (.html) or its data (.json)",
    response_class=Response,
    responses={
        200: {"content": {"text/html": {}, "application/json": {}}, "description": "The report file."},
        **{k: v for k, v in ERROR_RESPONSES.items() if k in (401, 403)},
        404: {**ERROR_RESPONSES[404], "description": "No such report."},
    },
)
def report(
    assistants: AssistantsDep,
    allowed: AllowedDomainsDep,
    name: Annotated[str, Path(description="A file name from the list, e.g. advice-medical-20260101T120000.html", max_length=160)],
) -> Response:
    kept = read_report(name, assistants.settings)
    if kept is None:
        raise ApiError(404, f"no report named '{name}'; GET /reports/ lists them", code="report_not_found", param="name")
    content, meta = kept
    domain = meta.get("domain")
    if not _readable(domain, assistants, allowed):
        raise ApiError(403, f"this token does not open domain '{domain}', which report '{name}' is about", code="forbidden_domain", param="name")
    media = "text/html; charset=utf-8" if name.endswith(".html") else "application/json"
    return Response(content, media_type=media, headers={"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"})
