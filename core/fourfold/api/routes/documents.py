"""The documents of a domain's ``upload`` source: upload, replace, delete and list them.

Uploading and deleting need one of the domain's write tokens (``serve.write_tokens_env``);
listing, a read or a write token. A document is kept in the domain's store
(:mod:`fourfold.uploads`) and a refresh is queued to index the change; when no refresh
can be queued (no broker), the change is kept all the same and the response says so.

An upload's body is the file's bytes (any content type). It is limited by the source's
``max_mb`` (and the manifest's ``knowledge.limits.max_file_mb``, past which a refresh
would skip it), not by the API's ``--max-body-kb``, which exempts this route only.
"""

from __future__ import annotations

import hashlib
import logging
import re
import tempfile
from functools import partial
from pathlib import PurePosixPath
from typing import Any, Callable

import anyio
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from fourfold.api.deps import DocumentsReaderDep, WritableDomainDep
from fourfold.api.errors import ERROR_RESPONSES, ApiError
from fourfold.api.schemas import DocumentChange, DocumentList, DocumentOut, RefreshQueued, TaskOut
from fourfold.domain import Domain
from fourfold.errors import ConfigError, DocumentPathError, FourfoldError
from fourfold.knowledge import loaders_for
from fourfold.uploads import UploadedDocument, UploadStore, check_document_path, upload_source, upload_store

__all__ = ["router", "UPLOAD_PATH"]

router = APIRouter(prefix="/v1/domains", tags=["documents"])

log = logging.getLogger("fourfold.api")

UPLOAD_PATH = re.compile(r"^/v1/domains/[^/]+/documents/")
"""Paths whose PUT bodies this route limits itself (the API's body limit skips them)."""

DEFAULT_MAX_MB = 50.0

def _response(description: str) -> dict[str, Any]:
    return {"model": ERROR_RESPONSES[401]["model"], "description": description}


_AUTH = {k: v for k, v in ERROR_RESPONSES.items() if k in (401, 403, 404)}
_CHANGE = {
    **_AUTH,
    400: _response("The path is not a plain relative path ('..', absolute, backslash, NUL, empty part), or the body is empty."),
    409: _response("The domain has no 'upload' source."),
    503: _response("No document store: server mode without FOURFOLD_UPLOAD_S3_URL, or the store is unreachable."),
}


def _upload_source(domain: Domain) -> tuple[int, Any]:
    """The index and configuration of the domain's ``upload`` source (409: none)."""
    index = upload_source(domain.manifest)
    if index is None:
        raise ApiError(
            409,
            f"domain '{domain.name}' takes no uploads: add {{use: upload}} to knowledge.sources of {domain.manifest.path or 'its manifest'}",
            code="no_upload_source",
        )
    assert domain.manifest.knowledge is not None
    spec = domain.manifest.knowledge.sources[index]
    config = spec.config
    if config is None:  # a manifest built in code, not loaded from a file
        registered = domain.host.get("source", "upload")
        config = registered.cls.Config.model_validate(spec.with_) if registered else None
    return index, config


def _store(domain: Domain) -> UploadStore:
    try:
        return upload_store(domain.settings, domain.name)
    except ConfigError as exc:
        raise ApiError(503, str(exc), code="upload_store_unconfigured") from None


def _checked_path(path: str) -> str:
    try:
        return check_document_path(path)
    except DocumentPathError as exc:
        raise ApiError(400, str(exc), code="invalid_document_path", param="path") from None


async def _in_store(store: UploadStore, call: Callable[[], Any]) -> Any:
    """``call`` on a worker thread (stores block), a failure of the store answered 503."""
    try:
        return await anyio.to_thread.run_sync(call)
    except (ApiError, FourfoldError):
        raise
    except Exception as exc:
        log.warning("document store %s failed: %s", store.location, exc)
        raise ApiError(503, f"the document store {store.location} failed: {type(exc).__name__}: {exc}", code="upload_store_unavailable") from None


def _limit_bytes(domain: Domain, config: Any) -> tuple[int, str]:
    """The largest body accepted, and what sets it (for the 413 message)."""
    max_mb = float(getattr(config, "max_mb", DEFAULT_MAX_MB))
    knowledge = domain.manifest.knowledge
    assert knowledge is not None
    if knowledge.limits.max_file_mb < max_mb:
        return int(knowledge.limits.max_file_mb * 1048576), f"knowledge.limits.max_file_mb ({knowledge.limits.max_file_mb:g} MB)"
    return int(max_mb * 1048576), f"the upload source's max_mb ({max_mb:g} MB)"


def _check_readable(domain: Domain, index: int, path: str) -> None:
    """415 unless a loader of the domain reads ``path``'s extension."""
    loaders = loaders_for(domain, index)
    extension = PurePosixPath(path).suffix.lower().lstrip(".")
    if extension not in loaders:
        shown = f".{extension} files" if extension else "files without an extension"
        supported = ", ".join(f".{e}" for e in sorted(loaders))
        raise ApiError(415, f"'{path}': no loader of domain '{domain.name}' reads {shown}; supported: {supported}", code="unsupported_document_type", param="path")


def _queue_refresh(domain: Domain) -> RefreshQueued:
    """Queue a refresh of ``domain``; a broker that is not there is reported, not raised."""
    try:
        from fourfold.worker import client  # celery is optional

        info = client.request_refresh(domain.name, settings=domain.settings)
    except Exception as exc:  # the change is kept; the next refresh indexes it
        log.warning("queueing a refresh of '%s' after a document change failed: %s", domain.name, exc)
        return RefreshQueued(
            queued=False,
            reason=f"the refresh could not be queued ({type(exc).__name__}: {exc}); the change is kept and the next refresh "
            f"indexes it (POST /v1/domains/{domain.name}/refresh, or `fourfold refresh`)",
        )
    return RefreshQueued(queued=True, task=TaskOut(**info.to_dict()))


def _out(document: UploadedDocument) -> DocumentOut:
    return DocumentOut(**document.to_dict())


@router.get(
    "/{domain}/documents",
    response_model=DocumentList,
    summary="List the documents uploaded to the domain (a read or a write token)",
    responses={**_AUTH, 409: _CHANGE[409], 503: _CHANGE[503]},
)
async def list_documents(domain: DocumentsReaderDep) -> DocumentList:
    _upload_source(domain)
    store = _store(domain)
    documents = await _in_store(store, store.list)
    return DocumentList(domain=domain.name, store=store.location, documents=[_out(d) for d in documents])


@router.put(
    "/{domain}/documents/{path:path}",
    response_model=DocumentChange,
    status_code=201,
    summary="Upload or replace a document (body: its bytes; a write token); queues a refresh",
    responses={
        **_CHANGE,
        200: {"model": DocumentChange, "description": "Replaced, or unchanged (the same bytes were there already)."},
        413: _response("Larger than the upload source's max_mb (default 50 MB)."),
        415: _response("No loader of the domain reads the file's extension; the message lists those that are read."),
    },
)
async def put_document(domain: WritableDomainDep, path: str, request: Request) -> JSONResponse:
    index, config = _upload_source(domain)
    path = _checked_path(path)
    _check_readable(domain, index, path)
    store = _store(domain)
    limit, limited_by = _limit_bytes(domain, config)
    too_large = ApiError(413, f"'{path}' is larger than {limited_by}", code="document_too_large")
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise too_large
    digest, size = hashlib.sha256(), 0
    with tempfile.SpooledTemporaryFile(max_size=1 << 20) as body:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise too_large
            digest.update(chunk)
            body.write(chunk)
        if size == 0:
            raise ApiError(400, f"'{path}': the body is empty; send the document's bytes", code="empty_document")
        body.seek(0)
        sha256 = digest.hexdigest()
        kept = await _in_store(store, partial(store.get, path))
        if kept is not None and kept.sha256 == sha256:
            change = DocumentChange(domain=domain.name, path=path, action="unchanged", document=_out(kept))
            return JSONResponse(change.model_dump(mode="json"), status_code=200)
        replaced = await _in_store(store, partial(store.put, path, body, sha256=sha256, size=size))
    document = await _in_store(store, partial(store.get, path))
    refresh = await anyio.to_thread.run_sync(_queue_refresh, domain)
    change = DocumentChange(
        domain=domain.name, path=path, action="replaced" if replaced else "created", document=_out(document), refresh=refresh
    )
    return JSONResponse(change.model_dump(mode="json"), status_code=200 if replaced else 201)


@router.delete(
    "/{domain}/documents/{path:path}",
    response_model=DocumentChange,
    summary="Delete an uploaded document (a write token); queues a refresh",
    responses={**_CHANGE, 404: _response("No such domain, or no such document among its uploads.")},
)
async def delete_document(domain: WritableDomainDep, path: str) -> DocumentChange:
    _upload_source(domain)
    path = _checked_path(path)
    store = _store(domain)
    removed = await _in_store(store, partial(store.delete, path))
    if removed is None:
        raise ApiError(404, f"no document '{path}' among the uploads of domain '{domain.name}'", code="document_not_found", param="path")
    refresh = await anyio.to_thread.run_sync(_queue_refresh, domain)
    return DocumentChange(domain=domain.name, path=path, action="deleted", refresh=refresh)
