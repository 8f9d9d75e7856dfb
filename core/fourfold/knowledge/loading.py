"""Reading one knowledge file with the loader registered for its extension."""

from __future__ import annotations

import os
import stat
import threading
import weakref
from typing import TYPE_CHECKING

from pydantic import BaseModel

from fourfold.components import Loader
from fourfold.errors import FourfoldError, KnowledgeError
from fourfold.knowledge.scan import HARD_LINK_WARNING
from fourfold.manifest.models import Limits
from fourfold.types import LoadedDocument, SourceFile

if TYPE_CHECKING:
    from fourfold.domain import Domain

__all__ = ["load_document", "loaders_for", "loader_config"]

_lock = threading.Lock()
_loaders: "weakref.WeakKeyDictionary[Domain, dict[str, Loader]]" = weakref.WeakKeyDictionary()


def loader_config(cls: type[Loader], limits: Limits) -> BaseModel:
    """A loader's ``Config`` with the manifest's ``knowledge.limits`` filled in.

    A loader whose ``Config`` declares ``max_pages`` gets ``limits.max_pdf_pages``;
    everything else keeps its defaults (manifests have no per-loader settings).
    """
    values = {}
    if "max_pages" in cls.Config.model_fields:
        values["max_pages"] = limits.max_pdf_pages
    return cls.Config(**values)


def loaders_for(domain: "Domain") -> dict[str, Loader]:
    """The domain's loaders by extension (lower case, no dot), built once per domain.

    Builtin loaders win an extension over third-party ones, then names in order; each
    is configured from the manifest's ``knowledge.limits``. :attr:`fourfold.Domain.loaders`
    returns the same.
    """
    with _lock:
        cached = _loaders.get(domain)
    if cached is not None:
        return cached
    knowledge = domain.manifest.knowledge
    limits = knowledge.limits if knowledge else Limits()
    specs = domain.host.components("loader")

    def builtin_first(item):
        record = domain.host.plugins.get(item[1].plugin)
        return (not (record and record.builtin), item[0])

    out: dict[str, Loader] = {}
    for name, spec in sorted(specs.items(), key=builtin_first):
        loader = domain.build("loader", name, loader_config(spec.cls, limits))
        for ext in spec.cls.extensions:
            out.setdefault(ext.lower().lstrip("."), loader)  # type: ignore[arg-type]
    with _lock:
        return _loaders.setdefault(domain, out)


def load_document(domain: "Domain", file: SourceFile) -> LoadedDocument:
    """Read ``file`` with the loader for its extension.

    An empty document (no sections) means the file has no text. Loaders may list
    partial problems (e.g. pages not read) in ``metadata["warnings"]``.

    :raises KnowledgeError: naming the file, when no loader reads its extension, the
        file changed into something else since the scan (a symlink, a FIFO, a file over
        the size limit), or the loader failed.
    """
    loaders = loaders_for(domain)
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
    if not isinstance(document, LoadedDocument):
        raise KnowledgeError(
            f"{file.relpath}: loader '{loader.name}' returned {type(document).__name__}, expected fourfold.LoadedDocument"
        )
    return document


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
