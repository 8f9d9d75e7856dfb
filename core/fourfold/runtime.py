"""Deprecated: the answering pipeline is :mod:`fourfold.answering`.

This module keeps the old import path working. Every name taken from it warns with a
:class:`fourfold.FourfoldDeprecationWarning` at the importing line and is the same object
as in :mod:`fourfold.answering`.
"""

from __future__ import annotations

from typing import Any

from fourfold import answering as _answering
from fourfold.deprecation import warn_deprecated

__all__ = list(_answering.__all__)


def __getattr__(name: str) -> Any:
    if name.startswith("__"):
        raise AttributeError(name)
    value = getattr(_answering, name)  # AttributeError for names answering does not have
    warn_deprecated(f"fourfold.runtime.{name}", since="1.3", removed_in="2.0", instead=f"fourfold.answering.{name}")
    return value
