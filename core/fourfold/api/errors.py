"""Every error leaves the API as JSON ``{"error": {"message", "type", "code"}}`` — the
shape OpenAI clients read — with a message for people and never a stack trace."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from fourfold.errors import ComponentError, FourfoldError, IndexVersionError, PluginError

__all__ = ["ApiError", "BodyTooLarge", "install_error_handlers", "error_body", "error_for_exception", "ERROR_RESPONSES"]

log = logging.getLogger("fourfold.api")

_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    405: "invalid_request_error",
    409: "conflict_error",
    413: "request_too_large",
    415: "invalid_request_error",
    422: "invalid_request_error",
    500: "server_error",
    503: "service_unavailable",
}


class ApiError(Exception):
    """An error answered as JSON with ``status``."""

    def __init__(self, status: int, message: str, *, code: str | None = None, param: str | None = None, headers: dict | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code
        self.param = param
        self.headers = headers


class BodyTooLarge(StarletteHTTPException):
    """A request body grew past the configured limit while being read. (An HTTP
    exception, so that FastAPI's body parsing passes it through unchanged.)"""

    def __init__(self, limit: int):
        super().__init__(413, f"request body is larger than the limit of {limit} bytes")
        self.limit = limit


def error_body(status: int, message: str, code: str | None = None, param: str | None = None) -> dict[str, Any]:
    return {"error": {"message": message, "type": _TYPES.get(status, "server_error" if status >= 500 else "invalid_request_error"), "code": code, "param": param}}


def _json(status: int, message: str, code: str | None = None, param: str | None = None, headers: dict | None = None) -> JSONResponse:
    return JSONResponse(error_body(status, message, code, param), status_code=status, headers=headers)


def error_for_exception(exc: BaseException) -> tuple[int, str, str]:
    """(status, message, code) for an exception raised while answering."""
    if isinstance(exc, ApiError):
        return exc.status, exc.message, exc.code or "error"
    if isinstance(exc, IndexVersionError):
        return 503, str(exc), "index_unavailable"
    if isinstance(exc, ComponentError):
        return 500, str(exc), "component_error"
    if isinstance(exc, PluginError):
        return 500, str(exc), "plugin_error"
    if isinstance(exc, FourfoldError):
        return 500, str(exc), "fourfold_error"
    log.error("unexpected error", exc_info=exc)
    return 500, f"internal error ({type(exc).__name__}); the server log has the details", "internal_error"


def _loc(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header")]
    return ".".join(parts) or (str(loc[0]) if loc else "request")


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> JSONResponse:
        return _json(exc.status, exc.message, exc.code, exc.param, exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = []
        for e in exc.errors():
            msg = e.get("msg", "invalid")
            if e.get("type") == "json_invalid":
                msg = "request body is not valid JSON"
            problems.append(f"{_loc(tuple(e.get('loc', ())))}: {msg}")
        first = exc.errors()[0] if exc.errors() else {}
        return _json(422, "; ".join(problems) or "invalid request", "invalid_request", _loc(tuple(first.get("loc", ()))) if first else None)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        message = exc.detail if isinstance(exc.detail, str) else "error"
        if isinstance(exc, BodyTooLarge):
            return _json(413, message, "request_too_large")
        if exc.status_code == 404 and message == "Not Found":
            message = f"no such endpoint: {request.method} {request.url.path}; see /docs"
        if exc.status_code == 405:
            message = f"{request.method} is not allowed on {request.url.path}; see /docs"
        return _json(exc.status_code, message, None, None, getattr(exc, "headers", None))

    @app.exception_handler(FourfoldError)
    async def _fourfold(request: Request, exc: FourfoldError) -> JSONResponse:
        status, message, code = error_for_exception(exc)
        return _json(status, message, code)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        status, message, code = error_for_exception(exc)
        return _json(status, message, code)


def _response(description: str) -> dict[str, Any]:
    from fourfold.api.schemas import ErrorResponse

    return {"model": ErrorResponse, "description": description}


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: _response("The body cannot be read (not valid UTF-8 or JSON), or asks for something not served (e.g. response_format json_object)."),
    401: _response("Missing or unknown bearer token."),
    403: _response("The token does not open this domain."),
    404: _response("No such domain (or version)."),
    413: _response("Request body too large."),
    422: _response("Invalid request (e.g. question too long)."),
    500: _response("A component of the domain failed; the message names its plugin."),
    503: _response("The domain has no published index yet, or the broker is unreachable."),
}
"""Error responses every authenticated route documents."""
