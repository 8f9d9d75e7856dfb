"""Reading one knowledge file with the loader registered for its extension."""

from __future__ import annotations

import os
import stat
import threading
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from fourfold.components import Loader
from fourfold.errors import FourfoldError, KnowledgeError, ManifestError
from fourfold.knowledge.scan import HARD_LINK_WARNING
from fourfold.manifest.models import Limits
from fourfold.types import LoadedDocument, Section, SourceFile

if TYPE_CHECKING:
    from fourfold.domain import Domain

__all__ = ["DomainLoaders", "load_document", "load_records", "loader_for", "loaders_for", "loader_config", "loader_identity"]


def loader_config(cls: type[Loader], limits: Limits, settings: dict[str, Any] | None = None) -> BaseModel:
    """A loader's ``Config`` from a source's settings for it (``knowledge.sources[].loaders``),
    with the manifest's ``knowledge.limits`` filled in.

    A loader whose ``Config`` declares ``max_pages`` gets ``limits.max_pdf_pages``
    unless the settings give it.
    """
    values: dict[str, Any] = {}
    if "max_pages" in cls.Config.model_fields:
        values["max_pages"] = limits.max_pdf_pages
    values.update(settings or {})
    return cls.Config.model_validate(values)


class DomainLoaders:
    """The loaders of one domain by extension (lower case, no dot), built on first use
    once per source and kept for the domain's life; a :class:`fourfold.Domain` owns one
    (``domain.knowledge_loaders``).

    Builtin loaders win an extension over third-party ones, then names in order. Each
    is configured from the manifest's ``knowledge.limits`` and, for a source (an index
    into ``knowledge.sources``), that source's ``loaders:`` settings; a loader named
    there also wins its extensions for that source.
    """

    def __init__(self, domain: "Domain"):
        self._domain = domain
        self._lock = threading.Lock()
        self._by_source: dict[int | None, dict[str, Loader]] = {}

    def for_source(self, source: int | None = None) -> dict[str, Loader]:
        """The loaders for files of ``source`` (None: of no particular source)."""
        with self._lock:
            cached = self._by_source.get(source)
        if cached is not None:
            return cached
        built = self._build(source)
        with self._lock:
            return self._by_source.setdefault(source, built)

    def _build(self, source: int | None) -> dict[str, Loader]:
        domain = self._domain
        knowledge = domain.manifest.knowledge
        limits = knowledge.limits if knowledge else Limits()
        chosen: dict[str, dict[str, Any]] = {}
        if knowledge is not None and source is not None and 0 <= source < len(knowledge.sources):
            chosen = knowledge.sources[source].loaders
        specs = domain.host.components("loader")

        def order(item):
            record = domain.host.plugins.get(item[1].plugin)
            return (item[0] not in chosen, not (record and record.builtin), item[0])

        where = f"{domain.manifest.path or 'manifest'}: knowledge.sources[{source}].loaders"
        out: dict[str, Loader] = {}
        for name, spec in sorted(specs.items(), key=order):
            try:
                config = loader_config(spec.cls, limits, chosen.get(name))
            except ValueError as exc:
                raise ManifestError([f"{where}.{name}: {exc}"]) from None
            loader = domain.build("loader", name, config)
            for ext in spec.cls.extensions:
                out.setdefault(ext.lower().lstrip("."), loader)  # type: ignore[arg-type]
        if knowledge is not None:
            for name in chosen:
                if name not in specs:
                    raise ManifestError([f"{where}.{name}: {domain.host.missing_component_message('loader', name)}"])
        return out


def loaders_for(domain: "Domain", source: int | None = None) -> dict[str, Loader]:
    """The domain's loaders by extension for ``source`` (an index into
    ``knowledge.sources``), built once per domain and source: see :class:`DomainLoaders`.
    :attr:`fourfold.Domain.loaders` returns the loaders of no particular source.
    """
    return domain.knowledge_loaders.for_source(source)


def loader_for(domain: "Domain", file: SourceFile, source: int | None = None) -> Loader | None:
    """The loader that reads ``file`` (None when no loader reads its extension)."""
    return loaders_for(domain, source).get(file.suffix)


def loader_identity(domain: "Domain", loader: Loader) -> dict[str, Any]:
    """What identifies the code and settings that read a file: the loader's
    :meth:`fourfold.Domain.identity` and its config. A document is read again when
    this changes."""
    return {**domain.identity(loader), "config": loader.config.model_dump(mode="json")}


def load_document(domain: "Domain", file: SourceFile, source: int | None = None) -> LoadedDocument:
    """Read ``file`` as one document; a file whose loader returns several records comes
    back as one document holding each record's sections under its title (what trainers
    and statistics need). See :func:`load_records`."""
    records = load_records(domain, file, source)
    if len(records) == 1:
        return records[0]
    sections = [
        Section(s.text, (r.title, *s.heading_path) if r.title else s.heading_path, s.page) for r in records for s in r.sections
    ]
    warnings = [w for r in records for w in (r.metadata.get("warnings") or [])]
    return LoadedDocument(title=file.path.stem, sections=sections, metadata={"warnings": warnings} if warnings else {})


def load_records(domain: "Domain", file: SourceFile, source: int | None = None) -> list[LoadedDocument]:
    """Read ``file`` with the loader for its extension (for ``source``, with that
    source's loader settings): one document per record, most often exactly one.

    An empty document (no sections) means the file has no text. Loaders may list
    partial problems (e.g. rows not read) in ``metadata["warnings"]``.

    :raises KnowledgeError: naming the file, when no loader reads its extension, the
        file changed into something else since the scan (a symlink, a FIFO, a file over
        the size limit), the loader failed, or it returned something else than
        documents.
    """
    loaders = loaders_for(domain, source)
    loader = loaders.get(file.suffix)
    if loader is None:
        known = ", ".join(sorted(loaders)) or "none"
        raise KnowledgeError(f"{file.relpath}: no loader reads '.{file.suffix}' files (installed loaders read: {known})")
    _check_still_safe(domain, file)
    try:
        document = loader.load(file)
    except FourfoldError as exc:
        raise KnowledgeError(f"{file.relpath}: {exc}") from exc
    except Exception as exc:  # any loader failure is a warning about this file, not a crash
        plugin = loader.context.plugin if loader.context else None
        raise KnowledgeError(
            f"{file.relpath}: loader '{loader.name}' (plugin '{plugin}') could not read it: {type(exc).__name__}: {exc}"
        ) from exc
    records = document if isinstance(document, list) else [document]
    for record in records:
        if not isinstance(record, LoadedDocument):
            found = type(document).__name__ if record is document else f"a list containing {type(record).__name__}"
            raise KnowledgeError(
                f"{file.relpath}: loader '{loader.name}' returned {found}, expected fourfold.LoadedDocument "
                "(or a list of them, one per record)"
            )
        if not isinstance(record.title, str):
            raise KnowledgeError(f"{file.relpath}: loader '{loader.name}' returned a title of type {type(record.title).__name__}; give a str")
        warnings = record.metadata.get("warnings")
        if warnings is not None and not (isinstance(warnings, list) and all(isinstance(w, str) for w in warnings)):
            raise KnowledgeError(
                f"{file.relpath}: loader '{loader.name}' returned metadata['warnings'] = {warnings!r}; give a list of strings"
            )
    return records


def _check_still_safe(domain: "Domain", file: SourceFile) -> None:
    """The scan vetted ``file.path``; refuse it if it has been swapped since."""
    try:
        st = os.lstat(file.path)
        real = os.path.realpath(file.path)
    except OSError as exc:
        raise KnowledgeError(f"{file.relpath}: cannot be read ({exc.strerror or exc})") from exc
    if real != os.path.abspath(file.path):
        raise KnowledgeError(f"{file.relpath}: now leads to {real} through a symlink (changed since the scan); skipped")
    if not stat.S_ISREG(st.st_mode):
        raise KnowledgeError(f"{file.relpath}: is no longer a regular file (changed since the scan); skipped")
    knowledge = domain.manifest.knowledge
    if knowledge and st.st_nlink > 1 and not knowledge.limits.allow_hard_links:
        raise KnowledgeError(f"{file.relpath}: {HARD_LINK_WARNING.format(n=st.st_nlink)} (changed since the scan); skipped")
    if knowledge and st.st_size > knowledge.limits.max_file_mb * 1024 * 1024:
        raise KnowledgeError(
            f"{file.relpath}: {st.st_size / 1048576:.1f} MB is over knowledge.limits.max_file_mb "
            f"({knowledge.limits.max_file_mb:g} MB); skipped"
        )
