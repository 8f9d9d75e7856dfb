"""Deprecated: the domain registry is :mod:`fourfold.domains`.

This module keeps the old import path working. Every name taken from it warns with a
:class:`fourfold.FourfoldDeprecationWarning` at the importing line and is the same object
as in :mod:`fourfold.domains`.
"""

from __future__ import annotations

from typing import Any

from fourfold import domains as _domains
from fourfold.deprecation import warn_deprecated

__all__ = list(_domains.__all__)


def __getattr__(name: str) -> Any:
    if name.startswith("__"):
        raise AttributeError(name)
    value = getattr(_domains, name)  # AttributeError for names the registry does not have
    warn_deprecated(f"fourfold.registry.{name}", since="1.3", removed_in="2.0", instead=f"fourfold.domains.{name}")
    return value
