"""Listing a domain's knowledge from every source, folders and source components alike.

A folder (``knowledge.sources[i].path``) is walked and its files are read in place; a
source component (``{use: s3, with: …}``) lists its documents with change markers and
fourfold downloads only the documents a refresh must read, into the domain's source
cache (``<state dir>/domains/<domain>/sources/<i>-<name>/``), where loaders read them like
any file. What a source no longer lists is gone from the index at the next refresh;
a source that cannot be listed stops the refresh (the published index stays).
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, BinaryIO, Callable, Iterable, Mapping

from pydantic import Field

from fourfold.components import ComponentConfig, Source
from fourfold.errors import FourfoldError, KnowledgeError
from fourfold.files import atomic_file
from fourfold.knowledge.scan import ScanResult, Walk, open_regular_file, scan_folder, source_prefixes
from fourfold.manifest.models import DEFAULT_INCLUDE
from fourfold.types import SourceDocument, SourceFile

if TYPE_CHECKING:
    from fourfold.domain import Domain

__all__ = ["FolderSource", "scan_domain", "SOURCE_CACHE"]

SOURCE_CACHE = "sources"
"""Folder of the domain's state dir that holds downloaded documents."""


class FolderSource(Source):
    """A folder of documents, walked without ever leaving it (symlinks out, devices and
    hard links are skipped with a warning). ``{path: kb}`` in a manifest is this source.
    """

    name = "folder"
    description = "A folder of documents on this machine."

    class Config(ComponentConfig):
        path: str = Field(description="Folder, relative to the manifest file.")
        include: list[str] = Field(default_factory=lambda: list(DEFAULT_INCLUDE), description="Glob patterns to read.")
        exclude: list[str] = Field(default_factory=list, description="Glob patterns to skip.")

    @property
    def root(self) -> Path:
        assert self.context is not None
        return self.context.path(self.config.path)

    @property
    def location(self) -> str:
        return str(self.root)

    def documents(self, previous: Mapping[str, str], warn: Callable[[str], None]) -> Iterable[SourceDocument]:
        root = self.root
        if not root.is_dir():
            raise KnowledgeError(f"{root} {'is not a folder' if root.exists() else 'does not exist'}")
        warnings: list[str] = []
        for rel, path, size in Walk(root, "", list(self.config.include), list(self.config.exclude), warnings).files():
            digest = hashlib.sha256()
            with open_regular_file(path) as fh:
                while block := fh.read(1 << 20):
                    digest.update(block)
            yield SourceDocument(key=rel, marker=f"sha256:{digest.hexdigest()}", size=size)
        for line in warnings:
            warn(line)

    def open(self, document: SourceDocument) -> BinaryIO:
        path = (self.root / document.key).resolve()
        if self.root not in path.parents:
            raise KnowledgeError(f"{document.key}: leads out of {self.root}")
        return open_regular_file(path)


def scan_domain(domain: "Domain", previous: Mapping[str, str] | None = None) -> ScanResult:
    """List the documents of every source of ``domain``: folders as :func:`scan_sources`
    does, source components through :meth:`fourfold.Source.documents`.

    Nothing of a component's documents is downloaded here: ``result.markers`` holds their
    change markers and :meth:`ScanResult.fetch` downloads one when it must be read.

    :param previous: relpath → hash or marker the published index recorded; each source
        sees its own documents' markers, by key.
    :raises KnowledgeError: as :func:`scan_sources` for folders, and when a source
        component cannot be listed, naming it (``knowledge.sources[1]``, its name and
        location).
    """
    manifest = domain.manifest
    knowledge = manifest.knowledge
    if knowledge is None:
        raise KnowledgeError(f"{manifest.path or 'manifest'}: domain '{domain.name}' has no 'knowledge:' block, so there are no sources to read")
    previous = previous or {}
    result = ScanResult()
    owner: dict[str, int] = {}
    for index, (source, prefix) in enumerate(zip(knowledge.sources, source_prefixes(manifest))):
        if source.is_folder:
            scan_folder(manifest, index, prefix, result, owner)
        else:
            _scan_component(domain, index, prefix, previous, result, owner)
    result.files.sort(key=lambda f: f.relpath)
    return result


def _scan_component(domain: "Domain", index: int, prefix: str, previous: Mapping[str, str], result: ScanResult, owner: dict[str, int]) -> None:
    manifest = domain.manifest
    knowledge = manifest.knowledge
    assert knowledge is not None
    spec = knowledge.sources[index]
    where = f"{manifest.path or 'manifest'}: knowledge.sources[{index}]"
    # spec.config: its with: as bound (fourfold.manifest.bind) to the domain's host
    source = domain.shared("source", spec.use or "", spec.config, where=where)
    assert isinstance(source, Source)
    named = f"{where}: source '{source.name}' ({source.location})"
    mine = {_key_of(relpath, prefix): marker for relpath, marker in previous.items() if _key_of(relpath, prefix) is not None}
    warnings: list[str] = []
    try:
        documents = list(source.documents(mine, warnings.append))
    except Exception as exc:  # any failure to list is the source's, and stops the refresh
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        shown = reason if isinstance(exc, FourfoldError) else f"{type(exc).__name__}: {reason}".rstrip(": ")
        raise KnowledgeError(f"{named} could not be listed: {shown}; the published index is unchanged") from exc
    result.warnings.extend(f"{source.name} source knowledge.sources[{index}]: {line}" for line in warnings)
    max_bytes = int(knowledge.limits.max_file_mb * 1024 * 1024)
    cache = (domain.state_dir / SOURCE_CACHE / f"{index}-{source.name}").resolve()
    listed: set[str] = set()
    for document in documents:
        problem = _key_problem(document.key)
        relpath = f"{prefix}/{document.key}" if prefix else document.key
        if problem:
            result.warnings.append(f"{source.name} source knowledge.sources[{index}]: {document.key!r}: {problem}; skipped")
            continue
        if document.size is not None and document.size > max_bytes:
            result.warnings.append(
                f"{relpath}: {document.size / 1048576:.1f} MB is over knowledge.limits.max_file_mb "
                f"({knowledge.limits.max_file_mb:g} MB); skipped"
            )
            continue
        if relpath in owner:
            result.warnings.append(
                f"{relpath}: knowledge.sources[{index}] has a document at the same path as knowledge.sources[{owner[relpath]}]; "
                "skipped (give the sources different 'prefix' values)"
            )
            continue
        owner[relpath] = index
        listed.add(document.key)
        file = SourceFile(path=cache / document.key, relpath=relpath, size=document.size or 0)
        result.files.append(file)
        result.tags[relpath] = tuple(spec.tags)
        result.sources[relpath] = index
        result.markers[relpath] = document.marker
        if document.url:
            result.urls[relpath] = document.url
        result.fetchers[relpath] = _fetcher(source, document, file, max_bytes, named)
    _forget_unlisted(cache, listed)


def _key_of(relpath: str, prefix: str) -> str | None:
    if not prefix:
        return relpath
    return relpath[len(prefix) + 1 :] if relpath.startswith(prefix + "/") else None


def _key_problem(key: str) -> str | None:
    """Why ``key`` cannot name a file in the source cache (None when it can)."""
    parts = PurePosixPath(key).parts
    if not key or key.startswith("/") or "\\" in key or "\x00" in key:
        return "not a plain relative path"
    if any(p in ("..", ".") or p.startswith(".") for p in parts) or key.endswith("/"):
        return "has '.', '..', a dot-name or an empty part"
    return None


def _fetcher(source: Source, document: SourceDocument, file: SourceFile, max_bytes: int, named: str) -> Callable[[], None]:
    def fetch() -> None:
        try:
            file.path.parent.mkdir(parents=True, exist_ok=True)
            copied = 0
            # atomic: a loader never reads half a download, and a failed one leaves the old copy
            with source.open(document) as fh, atomic_file(file.path) as out:
                while block := fh.read(1 << 20):
                    copied += len(block)
                    if copied > max_bytes:
                        raise KnowledgeError(f"{file.relpath}: over knowledge.limits.max_file_mb ({max_bytes / 1048576:g} MB)")
                    out.write(block)
        except KnowledgeError:
            raise
        except Exception as exc:
            raise KnowledgeError(f"{file.relpath}: {named} could not give its bytes: {type(exc).__name__}: {exc}") from exc

    return fetch


def _forget_unlisted(cache: Path, listed: set[str]) -> None:
    """Remove downloaded copies of documents the source no longer lists."""
    if not cache.is_dir():
        return
    for folder, subfolders, files in os.walk(cache, topdown=False):
        for name in files:
            path = Path(folder) / name
            if path.relative_to(cache).as_posix() not in listed:
                path.unlink(missing_ok=True)
        for name in subfolders:
            try:
                (Path(folder) / name).rmdir()
            except OSError:
                pass  # not empty


