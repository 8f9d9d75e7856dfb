"""The ``s3`` source: objects of an S3-compatible bucket (AWS, MinIO, Ceph, …).

Listing costs ``ListObjectsV2`` calls only (1000 objects each); an object's ETag (or its
version id, with ``versions: true``) is its change marker, so an unchanged object is
never downloaded. Credentials come from the environment as for any AWS client
(``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``, ``AWS_SESSION_TOKEN``,
``AWS_PROFILE``, ``AWS_DEFAULT_REGION``); nothing secret goes in the manifest.
"""

from __future__ import annotations

from typing import BinaryIO, Callable, Iterable, Mapping

import boto3
from botocore.config import Config as BotoConfig
from pydantic import Field, field_validator
from wcmatch import glob

import fourfold

# As for folders: ``**`` spans folders, ``{a,b}`` alternatives, case-insensitive.
GLOB_FLAGS = glob.GLOBSTAR | glob.BRACE | glob.IGNORECASE | glob.NODOTDIR
READABLE = ["**/*.md", "**/*.markdown", "**/*.txt", "**/*.html", "**/*.htm", "**/*.pdf"]


class S3Source(fourfold.Source):
    """Objects under a prefix of an S3-compatible bucket."""

    name = "s3"
    description = "Objects of an S3-compatible bucket (AWS S3, MinIO, …); credentials from the AWS_* environment."

    class Config(fourfold.ComponentConfig):
        bucket: str = Field(min_length=3, description="Bucket name.")
        prefix: str = Field("", description="Only objects under this key prefix; keys in citations are relative to it.")
        include: list[str] = Field(default_factory=lambda: list(READABLE), description="Glob patterns of keys (below prefix) to read.")
        exclude: list[str] = Field(default_factory=list, description="Glob patterns of keys (below prefix) to skip.")
        endpoint_url: str | None = Field(None, description="Endpoint of an S3-compatible service other than AWS (MinIO: http://host:9000).")
        region: str | None = Field(None, description="Region (default: AWS_DEFAULT_REGION, else us-east-1).")
        versions: bool = Field(False, description="Use object version ids as change markers (a versioned bucket); else ETags.")
        timeout_s: float = Field(10.0, gt=0, description="Connect and read timeout of each request, in seconds.")

        @field_validator("prefix")
        @classmethod
        def _folder_like(cls, value: str) -> str:
            value = value.lstrip("/")
            return value if not value or value.endswith("/") else value + "/"

    def __init__(self, config=None, context=None):
        super().__init__(config, context)
        self._client = None

    @property
    def location(self) -> str:
        where = f"s3://{self.config.bucket}/{self.config.prefix}"
        return f"{where} at {self.config.endpoint_url}" if self.config.endpoint_url else where

    @property
    def client(self):
        """The boto3 S3 client (built on first use; credentials from the environment)."""
        if self._client is None:
            c = self.config
            self._client = boto3.session.Session().client(
                "s3",
                endpoint_url=c.endpoint_url,
                region_name=c.region,
                config=BotoConfig(
                    connect_timeout=c.timeout_s, read_timeout=c.timeout_s, retries={"max_attempts": 2, "mode": "standard"}
                ),
            )
        return self._client

    def documents(self, previous: Mapping[str, str], warn: Callable[[str], None]) -> Iterable[fourfold.SourceDocument]:
        c = self.config
        if c.versions:
            pages = self.client.get_paginator("list_object_versions").paginate(Bucket=c.bucket, Prefix=c.prefix)
            listed = ((o, f"version:{o['VersionId']}") for page in pages for o in page.get("Versions", []) if o.get("IsLatest"))
        else:
            pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=c.bucket, Prefix=c.prefix)
            listed = ((o, f"etag:{o['ETag'].strip(chr(34))}") for page in pages for o in page.get("Contents", []))
        out = []
        for obj, marker in listed:  # listing fully first: an error midway fails the whole listing
            key = obj["Key"][len(c.prefix) :]
            if not key or key.endswith("/") or not glob.globmatch(key, c.include, flags=GLOB_FLAGS, exclude=c.exclude or None):
                continue
            out.append(fourfold.SourceDocument(key=key, marker=marker, size=obj.get("Size")))
        return out

    def open(self, document: fourfold.SourceDocument) -> BinaryIO:
        c = self.config
        extra = {"VersionId": document.marker.removeprefix("version:")} if document.marker.startswith("version:") else {}
        return self.client.get_object(Bucket=c.bucket, Key=c.prefix + document.key, **extra)["Body"]
