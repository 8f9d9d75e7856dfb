"""The ``upload`` source: documents added, replaced and deleted over HTTP.

``PUT /v1/domains/{domain}/documents/{path}`` keeps a document in the domain's own
store (:func:`fourfold.upload_store`: a folder of the state dir on one host, the bucket
of ``FOURFOLD_UPLOAD_S3_URL`` in server mode) with the SHA-256 of its bytes, computed
once at upload time; that hash is the change marker, so listing reads no document's
bytes and a refresh opens only what was uploaded since the last one.
"""

from __future__ import annotations

from functools import cached_property
from typing import BinaryIO, Callable, Iterable, Mapping

from pydantic import Field

import fourfold

DEFAULT_MAX_MB = 50


class UploadSource(fourfold.Source):
    """Documents uploaded to the domain over HTTP."""

    name = "upload"
    description = "Documents uploaded over HTTP (PUT /v1/domains/{domain}/documents/{path}) with a write token."

    class Config(fourfold.ComponentConfig):
        max_mb: float = Field(
            DEFAULT_MAX_MB, gt=0, le=5120, description="Largest document the upload route accepts, in MB (larger: 413)."
        )

    @cached_property
    def store(self) -> fourfold.UploadStore:
        """The domain's document store (one per source instance, so what a store learns
        while listing serves the next refresh).

        :raises fourfold.ConfigError: server mode without ``FOURFOLD_UPLOAD_S3_URL``.
        """
        assert self.context is not None
        return fourfold.upload_store(self.context.settings, self.context.domain)

    @property
    def location(self) -> str:
        try:
            return f"uploads in {self.store.location}"
        except fourfold.ConfigError:
            return "uploads (no store configured)"

    def documents(self, previous: Mapping[str, str], warn: Callable[[str], None]) -> Iterable[fourfold.SourceDocument]:
        return [fourfold.SourceDocument(key=d.path, marker=f"sha256:{d.sha256}", size=d.size) for d in self.store.list()]

    def open(self, document: fourfold.SourceDocument) -> BinaryIO:
        return self.store.open(document.key)
