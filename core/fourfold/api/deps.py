"""Dependencies the routes declare with ``Annotated`` (full-stack-fastapi-template style)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Path, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from fourfold.api.assistants import Assistants
from fourfold.api.errors import ApiError
from fourfold.api.observe import note_domain
from fourfold.domain import Domain

__all__ = [
    "AssistantsDep", "TokenDep", "AllowedDomainsDep", "DomainDep", "WritableDomainDep", "DocumentsReaderDep", "StatusReaderDep",
    "allowed_domains", "check_domain_access",
]

_bearer = HTTPBearer(auto_error=False, description="A token of the domain (serve.tokens_env, or the one `fourfold up` prints).")

_CHALLENGE = {"WWW-Authenticate": "Bearer"}


def get_assistants(request: Request) -> Assistants:
    return request.app.state.assistants


AssistantsDep = Annotated[Assistants, Depends(get_assistants)]


def bearer_token(credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]) -> str | None:
    return credentials.credentials if credentials else None


TokenDep = Annotated[str | None, Depends(bearer_token)]


def allowed_domains(assistants: AssistantsDep, token: TokenDep) -> set[str]:
    """The domains the request's token opens. 401 when it opens none."""
    if not token:
        raise ApiError(401, "missing bearer token: send 'Authorization: Bearer <token>'", code="missing_token", headers=_CHALLENGE)
    found = assistants.book.domains_for(token)
    if not found:
        raise ApiError(401, "unknown bearer token", code="invalid_token", headers=_CHALLENGE)
    return found


AllowedDomainsDep = Annotated[set[str], Depends(allowed_domains)]


def check_domain_access(assistants: Assistants, allowed: set[str], name: str, *, param: str = "domain") -> Domain:
    """The domain ``name`` if the token opens it: 404 when no such domain, 403 when the
    token belongs to another domain."""
    domain = assistants.domains.get(name)
    if domain is None:
        raise ApiError(404, f"no domain named '{name}' is served here", code="model_not_found" if param == "model" else "domain_not_found", param=param)
    note_domain(name)
    if name not in allowed:
        raise ApiError(403, f"this token does not open domain '{name}'", code="forbidden_domain", param=param)
    return domain


def domain_from_path(
    assistants: AssistantsDep,
    allowed: AllowedDomainsDep,
    domain: Annotated[str, Path(description="The domain's name (from its manifest).", max_length=100)],
) -> Domain:
    return check_domain_access(assistants, allowed, domain)


DomainDep = Annotated[Domain, Depends(domain_from_path)]


def writable_domain(
    assistants: AssistantsDep,
    token: TokenDep,
    domain: Annotated[str, Path(description="The domain's name (from its manifest).", max_length=100)],
) -> Domain:
    """The domain whose documents the request changes: its token must be one of the
    domain's write tokens. 401 for no or an unknown token, 404 for no such domain,
    403 for a token of another domain, 409 for a domain without an ``upload`` source,
    403 for a read token."""
    if not token:
        raise ApiError(401, "missing bearer token: send 'Authorization: Bearer <write token>'", code="missing_token", headers=_CHALLENGE)
    writes = assistants.write_book.domains_for(token)
    reads = assistants.book.domains_for(token)
    if not writes and not reads:
        raise ApiError(401, "unknown bearer token", code="invalid_token", headers=_CHALLENGE)
    found = check_domain_access(assistants, writes | reads, domain)
    if domain not in assistants.write_tokens:
        raise ApiError(
            409,
            f"domain '{domain}' takes no uploads: add {{use: upload}} to knowledge.sources of {found.manifest.path or 'its manifest'}",
            code="no_upload_source",
        )
    if domain not in writes:
        raise ApiError(
            403,
            f"this token may not change the documents of domain '{domain}': that needs a write token "
            "(serve.write_tokens_env, or the write token `fourfold serve` prints)",
            code="write_token_required",
        )
    return found


WritableDomainDep = Annotated[Domain, Depends(writable_domain)]


def documents_reader(
    assistants: AssistantsDep,
    token: TokenDep,
    domain: Annotated[str, Path(description="The domain's name (from its manifest).", max_length=100)],
) -> Domain:
    """The domain whose documents are listed, or whose status is read: a read or a
    write token of it (whoever changes the documents follows the refresh they queue)."""
    if not token:
        raise ApiError(401, "missing bearer token: send 'Authorization: Bearer <token>'", code="missing_token", headers=_CHALLENGE)
    found = assistants.book.domains_for(token) | assistants.write_book.domains_for(token)
    if not found:
        raise ApiError(401, "unknown bearer token", code="invalid_token", headers=_CHALLENGE)
    return check_domain_access(assistants, found, domain)


DocumentsReaderDep = Annotated[Domain, Depends(documents_reader)]

StatusReaderDep = DocumentsReaderDep
"""The domain whose ``status`` is read: a read or a write token of it."""
