"""A domain's knowledge as whole documents: every file its sources list, fetched and
read — what trainers, fine-tuners and statistics need (a refresh reads per record and
keeps what it read before, so it has its own loop in :mod:`fourfold.index`)."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Callable, Iterable, Iterator

from fourfold.components import NullProgress, Progress
from fourfold.errors import FourfoldError, TrainingError
from fourfold.knowledge.loading import load_document
from fourfold.knowledge.scan import ScanResult
from fourfold.knowledge.sources import scan_domain
from fourfold.types import LoadedDocument, SourceFile

if TYPE_CHECKING:
    from fourfold.domain import Domain

__all__ = ["knowledge_documents", "read_documents"]

log = logging.getLogger("fourfold.training")


def _log_skipped(file: SourceFile, error: FourfoldError) -> None:
    log.warning("%s: skipped: %s", file.relpath, error)


def read_documents(
    domain: "Domain",
    scan: ScanResult | None = None,
    files: Iterable[SourceFile] | None = None,
    *,
    progress: Progress | None = None,
    on_skip: Callable[[SourceFile, FourfoldError], None] = _log_skipped,
) -> Iterator[tuple[SourceFile, LoadedDocument]]:
    """Each readable file of ``scan`` (default: :func:`scan_domain` of ``domain``), or of
    ``files`` among them, in path order, with its document: a source component's file
    is downloaded first (:meth:`ScanResult.fetch`), then read as one document
    (:func:`load_document`). A file that cannot be fetched or read is passed to
    ``on_skip`` (default: a warning in the log) and left out, as a refresh does.

    :param progress: advanced by one per file, read or skipped.
    """
    scan = scan if scan is not None else scan_domain(domain)
    progress = progress or NullProgress()
    for file in sorted(scan.files if files is None else files, key=lambda f: f.relpath):
        try:
            scan.fetch(file)
            document = load_document(domain, file)
        except FourfoldError as exc:
            on_skip(file, exc)
            progress.advance(1)
            continue
        yield file, document
        progress.advance(1)


def knowledge_documents(domain: "Domain", progress: Progress | None = None) -> list[LoadedDocument]:
    """Every readable knowledge file of ``domain``, loaded, in path order, each with its
    path as ``metadata["source"]``. Unreadable files are skipped with a warning in the
    log, as a refresh does.

    :raises TrainingError: the domain has no ``knowledge:`` block, or no file could be read.
    """
    if domain.manifest.knowledge is None:
        raise TrainingError(f"domain '{domain.name}' has no 'knowledge:' block: there is no text to train on")
    progress = progress or NullProgress()
    scan = scan_domain(domain)
    for warning in scan.warnings:
        log.warning("%s", warning)
    progress.start("load knowledge", total=len(scan.files))
    documents = []
    for file, document in read_documents(domain, scan, progress=progress):
        document.metadata.setdefault("source", file.relpath)
        documents.append(document)
    if not documents:
        raise TrainingError(f"domain '{domain.name}': no knowledge file could be read, so there is no text to train on")
    return documents
