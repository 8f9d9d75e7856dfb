"""A domain's uploaded documents: the store the ``upload`` source reads and the
``/v1/domains/{domain}/documents`` routes write.

Each document is kept with its size, the SHA-256 of its bytes (computed once, at upload
time, and the source's change marker) and when it was uploaded. Where:

- **one host** (no ``FOURFOLD_QDRANT_URL``): a folder of the domain's state dir,
  ``<state>/domains/<domain>/uploads/``: ``files/<path>`` holds the bytes and
  ``meta/<path>.json`` the rest, each written atomically, bytes first, under a lock
  (``.lock``) so two uploads of one path never leave one's bytes with the other's hash.
  A document is listed once its ``meta`` file is there, so its bytes always are too.
- **``FOURFOLD_UPLOAD_S3_URL``** (required in server mode, where hosts share no disk):
  objects ``<prefix>/<domain>/<path>`` of that S3-compatible bucket, the hash and upload
  time in each object's metadata. A PUT of an object is atomic. Listing reads an
  object's metadata with one HEAD request the first time the store sees its ETag (16 at
  a time); after that, in the same process, a listing costs ``ListObjectsV2`` only.

Server mode with no S3 store configured is refused (:class:`ConfigError` naming
``FOURFOLD_UPLOAD_S3_URL``): a folder only one host sees would leave the worker that
refreshes the index without the documents the API host received.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import unicodedata
from abc import ABC, abstractmethod
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import BinaryIO, Iterator

from fourfold.errors import ConfigError, DocumentPathError
from fourfold.files import atomic_file, write_json_atomic
from fourfold.manifest import Manifest
from fourfold.settings import Settings

__all__ = [
    "UploadStore", "UploadedDocument", "FolderUploads", "S3Uploads", "check_document_path", "upload_source", "upload_store", "UPLOADS",
]

UPLOADS = "uploads"
"""Folder of the domain's state dir that holds its uploads on one host."""

_MAX_PATH_BYTES = 1024  # S3's limit on a key; folders allow about as much


@dataclass(frozen=True)
class UploadedDocument:
    """One uploaded document.

    :ivar path: its POSIX path in the store (``"guides/cats.md"``), NFC-normalised.
    :ivar size: bytes.
    :ivar sha256: hex SHA-256 of its bytes.
    :ivar uploaded: when it was uploaded, ISO 8601 in UTC.
    """

    path: str
    size: int
    sha256: str
    uploaded: str

    def to_dict(self) -> dict:
        return asdict(self)


def check_document_path(path: str) -> str:
    """``path`` as the store keeps it (Unicode NFC, so a name typed on any system is one
    document).

    :raises DocumentPathError: ``path`` is empty, absolute, holds a backslash, a NUL or
        another control character, an empty, ``.`` or ``..`` part, or a part starting
        with ``.``; or is over 1024 bytes in UTF-8.
    """
    shown = repr(path)
    if not path:
        raise DocumentPathError("a document path is needed, e.g. 'guides/cats.md'")
    if path.startswith("/"):
        raise DocumentPathError(f"{shown}: an absolute path; give a path relative to the domain's documents, e.g. 'guides/cats.md'")
    if "\\" in path:
        raise DocumentPathError(f"{shown}: holds a backslash; separate folders with '/'")
    if any(ord(c) < 32 or ord(c) == 127 for c in path):
        raise DocumentPathError(f"{shown}: holds a NUL or another control character")
    path = unicodedata.normalize("NFC", path)
    parts = path.split("/")
    if any(p in ("", ".", "..") for p in parts):
        raise DocumentPathError(f"{shown}: has an empty, '.' or '..' part; give a plain relative path such as 'guides/cats.md'")
    if any(p.startswith(".") for p in parts):
        raise DocumentPathError(f"{shown}: has a part starting with '.' (hidden names are not documents)")
    if len(path.encode("utf-8")) > _MAX_PATH_BYTES:
        raise DocumentPathError(f"{shown[:60]}…: longer than {_MAX_PATH_BYTES} bytes")
    return path


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


class UploadStore(ABC):
    """Where one domain's uploaded documents are kept. Paths given to its methods are
    checked with :func:`check_document_path` by the caller."""

    @property
    @abstractmethod
    def location(self) -> str:
        """Where the store is, for messages."""

    @abstractmethod
    def list(self) -> list[UploadedDocument]:
        """Every document, sorted by path."""

    @abstractmethod
    def get(self, path: str) -> UploadedDocument | None:
        """The document at ``path`` (None: there is none)."""

    @abstractmethod
    def put(self, path: str, data: BinaryIO, *, sha256: str, size: int) -> UploadedDocument | None:
        """Keep ``data`` (read to its end; its hash and size computed by the caller) at
        ``path``, replacing what was there. Returns the document it replaced, if any."""

    @abstractmethod
    def open(self, path: str) -> BinaryIO:
        """The bytes of the document at ``path``.

        :raises FileNotFoundError: there is none.
        """

    @abstractmethod
    def delete(self, path: str) -> UploadedDocument | None:
        """Remove the document at ``path``; returns it (None: there was none)."""


class FolderUploads(UploadStore):
    """A folder on this host (see the module docstring for its layout)."""

    def __init__(self, root: Path):
        self.root = Path(root)

    @property
    def location(self) -> str:
        return str(self.root)

    def _file(self, path: str) -> Path:
        return self.root / "files" / path

    def _meta(self, path: str) -> Path:
        return self.root / "meta" / f"{path}.json"

    @contextmanager
    def _locked(self) -> Iterator[None]:
        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.root / ".lock", "a+b") as handle:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle.fileno(), fcntl.LOCK_UN)

    def _read_meta(self, meta: Path, path: str) -> UploadedDocument | None:
        try:
            found = json.loads(meta.read_text(encoding="utf-8"))
            return UploadedDocument(path=path, size=int(found["size"]), sha256=str(found["sha256"]), uploaded=str(found["uploaded"]))
        except FileNotFoundError:
            return None

    def list(self) -> list[UploadedDocument]:
        base = self.root / "meta"
        out = []
        for folder, _, names in os.walk(base):
            for name in names:
                if name.endswith(".json") and not name.startswith("."):
                    path = (Path(folder) / name).relative_to(base).as_posix()[: -len(".json")]
                    found = self._read_meta(Path(folder) / name, path)
                    if found is not None:
                        out.append(found)
        return sorted(out, key=lambda d: d.path)

    def get(self, path: str) -> UploadedDocument | None:
        return self._read_meta(self._meta(path), path)

    def put(self, path: str, data: BinaryIO, *, sha256: str, size: int) -> UploadedDocument | None:
        document = UploadedDocument(path=path, size=size, sha256=sha256, uploaded=_now())
        with self._locked():
            replaced = self.get(path)
            for folder in (self._file(path).parent, self._meta(path).parent):
                folder.mkdir(parents=True, exist_ok=True)
            with atomic_file(self._file(path)) as out:
                shutil.copyfileobj(data, out, 1 << 20)
            write_json_atomic(self._meta(path), {k: v for k, v in document.to_dict().items() if k != "path"})
        return replaced

    def open(self, path: str) -> BinaryIO:
        return open(self._file(path), "rb")

    def delete(self, path: str) -> UploadedDocument | None:
        with self._locked():
            found = self.get(path)
            if found is None:
                return None
            self._meta(path).unlink(missing_ok=True)  # unlisted first: never listed without its bytes
            self._file(path).unlink(missing_ok=True)
            for top in (self.root / "files", self.root / "meta"):
                folder = (top / path).parent
                while folder != top:
                    try:
                        folder.rmdir()
                    except OSError:
                        break  # not empty
                    folder = folder.parent
        return found


class S3Uploads(UploadStore):
    """Objects under ``<prefix>/<domain>/`` of an S3-compatible bucket."""

    def __init__(self, bucket: str, prefix: str, *, endpoint_url: str | None = None, timeout_s: float = 10.0):
        self.bucket = bucket
        self.prefix = prefix
        self.endpoint_url = endpoint_url
        self.timeout_s = timeout_s
        self._client = None
        # (path, ETag) -> what its HEAD said: an ETag changes with the bytes, so a
        # document seen once is listed again without asking for its metadata.
        self._seen: dict[tuple[str, str], UploadedDocument] = {}

    @classmethod
    def from_url(cls, url: str, domain: str, *, endpoint_url: str | None = None) -> "S3Uploads":
        """The store of ``domain`` in ``s3://bucket/prefix``."""
        bucket, _, prefix = url.removeprefix("s3://").partition("/")
        prefix = "/".join(p for p in [*prefix.split("/"), domain] if p) + "/"
        return cls(bucket, prefix, endpoint_url=endpoint_url)

    @property
    def location(self) -> str:
        where = f"s3://{self.bucket}/{self.prefix}"
        return f"{where} at {self.endpoint_url}" if self.endpoint_url else where

    @property
    def client(self):
        """The boto3 S3 client (credentials from the AWS_* environment)."""
        if self._client is None:
            # boto3 takes most of a second to import: only processes with an S3 store pay it.
            import boto3
            from botocore.config import Config

            config = Config(connect_timeout=self.timeout_s, read_timeout=self.timeout_s, retries={"max_attempts": 2, "mode": "standard"})
            self._client = boto3.session.Session().client("s3", endpoint_url=self.endpoint_url, config=config)
        return self._client

    def _document(self, path: str, head: dict) -> UploadedDocument:
        meta = head.get("Metadata") or {}
        sha256 = meta.get("sha256")
        uploaded = meta.get("uploaded") or head["LastModified"].astimezone(timezone.utc).isoformat(timespec="seconds")
        if not sha256:  # put there by something other than fourfold: hash it once here
            digest = hashlib.sha256()
            body = self.client.get_object(Bucket=self.bucket, Key=self.prefix + path)["Body"]
            for block in iter(lambda: body.read(1 << 20), b""):
                digest.update(block)
            sha256 = digest.hexdigest()
        return UploadedDocument(path=path, size=int(head["ContentLength"]), sha256=sha256, uploaded=uploaded)

    def list(self) -> list[UploadedDocument]:
        pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=self.prefix)
        listed = [(o["Key"][len(self.prefix) :], o["ETag"]) for page in pages for o in page.get("Contents", [])]
        listed = [(path, etag) for path, etag in listed if path and not path.endswith("/")]
        unseen = [path for path, etag in listed if (path, etag) not in self._seen]
        with ThreadPoolExecutor(max_workers=16) as pool:
            for path, head in zip(unseen, pool.map(self._head, unseen)):
                if head is not None:
                    self._seen[(path, head["ETag"])] = self._document(path, head)
        return sorted((self._seen[key] for key in listed if key in self._seen), key=lambda d: d.path)

    def _head(self, path: str) -> dict | None:
        try:
            return self.client.head_object(Bucket=self.bucket, Key=self.prefix + path)
        except self.client.exceptions.ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return None  # deleted since it was listed
            raise

    def get(self, path: str) -> UploadedDocument | None:
        head = self._head(path)
        return None if head is None else self._document(path, head)

    def put(self, path: str, data: BinaryIO, *, sha256: str, size: int) -> UploadedDocument | None:
        replaced = self.get(path)
        # Metadata is ASCII: the hash and the time are.
        self.client.put_object(
            Bucket=self.bucket, Key=self.prefix + path, Body=data, ContentLength=size,
            Metadata={"sha256": sha256, "uploaded": _now()},
        )
        return replaced

    def open(self, path: str) -> BinaryIO:
        try:
            return self.client.get_object(Bucket=self.bucket, Key=self.prefix + path)["Body"]
        except self.client.exceptions.ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey"):
                raise FileNotFoundError(f"{self.location}{path}") from None
            raise

    def delete(self, path: str) -> UploadedDocument | None:
        found = self.get(path)
        if found is not None:
            self.client.delete_object(Bucket=self.bucket, Key=self.prefix + path)
        return found


def upload_store(settings: Settings, domain: str) -> UploadStore:
    """The store of ``domain``'s uploaded documents: ``FOURFOLD_UPLOAD_S3_URL`` when set,
    else a folder of its state dir.

    :raises ConfigError: server mode (``FOURFOLD_QDRANT_URL``) without
        ``FOURFOLD_UPLOAD_S3_URL``.
    """
    if settings.upload_s3_url:
        return S3Uploads.from_url(settings.upload_s3_url, domain, endpoint_url=settings.upload_s3_endpoint)
    if settings.qdrant_url:
        raise ConfigError(
            f"domain '{domain}': uploaded documents need a store every host sees, and FOURFOLD_QDRANT_URL is set "
            "(server mode, hosts without a shared disk): set FOURFOLD_UPLOAD_S3_URL=s3://bucket/prefix "
            "(and FOURFOLD_UPLOAD_S3_ENDPOINT for MinIO or another S3-compatible service; credentials from AWS_*)"
        )
    return FolderUploads(settings.domain_dir(domain) / UPLOADS)



def upload_source(manifest: Manifest) -> int | None:
    """Index in ``knowledge.sources`` of the domain's ``upload`` source (None: it has
    none, so nothing may be uploaded to it)."""
    sources = manifest.knowledge.sources if manifest.knowledge else []
    return next((i for i, s in enumerate(sources) if s.use == "upload"), None)
