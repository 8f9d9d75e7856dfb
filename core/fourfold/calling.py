"""Calling a plugin's component so that whatever it raises names it.

Everything that runs a component's code — answering, searching, training — goes through
:func:`call_component`: an exception from the component becomes a
:class:`fourfold.ComponentError` naming the component, its plugin and its domain, and
with ``FOURFOLD_TRACE_PLUGINS=1`` each call is logged with how long it took.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from fourfold.components import Component
from fourfold.errors import ComponentError, FourfoldError

__all__ = ["call_component", "component_error"]

log = logging.getLogger("fourfold.plugins")


def call_component(component: Component, method: str, *args: Any, **kwargs: Any) -> Any:
    """Call ``component.method`` and turn any exception into a :class:`ComponentError`
    naming the component, its plugin and its domain.

    With ``FOURFOLD_TRACE_PLUGINS=1`` each call is logged (logger ``fourfold.plugins``)
    with the component, its plugin, its domain and how long it took.
    """
    ctx = component.context
    if not (ctx is not None and ctx.settings.trace_plugins):
        try:
            return getattr(component, method)(*args, **kwargs)
        except FourfoldError:
            raise
        except Exception as exc:
            raise component_error(component, f"{method}() raised {type(exc).__name__}: {exc}") from exc
    started = time.perf_counter()
    outcome = ""
    try:
        return getattr(component, method)(*args, **kwargs)
    except FourfoldError as exc:
        outcome = f" raised {type(exc).__name__}"
        raise
    except Exception as exc:
        outcome = f" raised {type(exc).__name__}"
        raise component_error(component, f"{method}() raised {type(exc).__name__}: {exc}") from exc
    finally:
        took = (time.perf_counter() - started) * 1000
        log.info(
            "component %s %s.%s plugin=%s domain=%s took=%.2fms%s",
            component.kind, component.name, method, ctx.plugin or "-", ctx.domain, took, outcome,
        )


def component_error(component: Component, message: str) -> ComponentError:
    """A :class:`ComponentError` saying ``message`` of ``component``, naming it, its
    plugin and its domain."""
    ctx = component.context
    return ComponentError(
        message,
        kind=component.kind,
        name=component.name,
        plugin=ctx.plugin if ctx else None,
        domain=ctx.domain if ctx else None,
    )
