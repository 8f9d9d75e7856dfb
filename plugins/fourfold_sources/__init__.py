"""Knowledge sources: a folder on this machine, an S3-compatible bucket, a website, and
documents uploaded over HTTP.

Each lists its documents with a cheap change marker (a content hash, an ETag or version
id, HTTP validators), so a refresh downloads and reads only what changed; fourfold keeps
the downloaded bytes under the domain's state dir for the loaders.
"""

from __future__ import annotations

import fourfold
from fourfold_sources.s3 import S3Source
from fourfold_sources.upload import UploadSource
from fourfold_sources.web import WebSource

FOURFOLD_PLUGIN_API = "1.4"

__all__ = ["S3Source", "UploadSource", "WebSource"]


@fourfold.hookimpl
def register_sources(register):
    for source in (fourfold.FolderSource, S3Source, WebSource, UploadSource):
        register(source)
