"""How fourfold announces that part of the plugin API is going away.

The policy (``docs/plugin_api.md``): a minor plugin API version only adds; something
deprecated in a minor version keeps working, with a :class:`FourfoldDeprecationWarning`
at the point of use, until the next major version — and for at least two minor versions
and six months.
"""

from __future__ import annotations

import warnings

__all__ = ["FourfoldDeprecationWarning", "warn_deprecated", "deprecated_hook_warning"]


class FourfoldDeprecationWarning(DeprecationWarning):
    """Something a plugin uses is deprecated in the plugin API and will be removed in the
    next major version. pytest shows these in a plugin's test run; make them errors with
    ``-W error::fourfold.FourfoldDeprecationWarning``."""


def _message(what: str, since: str, removed_in: str, instead: str | None) -> str:
    text = f"{what} is deprecated since plugin API {since} and will be removed in plugin API {removed_in}"
    return text + (f"; use {instead} instead" if instead else "")


def warn_deprecated(what: str, *, since: str, removed_in: str, instead: str | None = None, stacklevel: int = 3) -> None:
    """Warn, at the caller's caller (the plugin's line), that ``what`` is deprecated.

    :param what: the deprecated thing, as a plugin author writes it
        (``"Retriever.search(filters=dict)"``).
    :param since: the plugin API version that deprecated it.
    :param removed_in: the major version that removes it.
    :param instead: what to use instead.
    """
    warnings.warn(_message(what, since, removed_in, instead), FourfoldDeprecationWarning, stacklevel=stacklevel)


def deprecated_hook_warning(hook: str, *, since: str, removed_in: str, instead: str | None = None) -> FourfoldDeprecationWarning:
    """The warning to put on a deprecated hookspec, so pluggy issues it where a plugin
    implements the hook: ``@hookspec(warn_on_impl=deprecated_hook_warning(...))``."""
    return FourfoldDeprecationWarning(_message(f"the hook {hook}", since, removed_in, instead))
