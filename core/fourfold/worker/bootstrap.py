"""A deployment's first start builds the indexes it lacks.

``fourfold worker``, ``fourfold beat`` and ``fourfold serve`` (with a broker set up)
each queue a refresh, as they start, of every domain they were given that has no
published index version; otherwise every domain would answer "no published index"
until its first scheduled refresh. Processes start in any order and in any number:

- a request made while a refresh of the domain is queued returns that task, decided
  in the shared worker state in one atomic step (:func:`fourfold.worker.client.request_task`),
  so the processes of a deployment queue one refresh per domain between them;
- a request made while one runs joins it (``join_running``) rather than recording a
  follow-up run: a first build needs one run, not two;
- a process that starts after the index was published finds nothing missing.

Whether a domain has a published index is decided in :func:`missing_indexes` alone.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import TYPE_CHECKING, Iterable

from fourfold.errors import FourfoldError
from fourfold.index.layout import IndexLayout
from fourfold.settings import Settings, get_settings
from fourfold.worker import client, names

if TYPE_CHECKING:
    from fourfold.domain import Domain

__all__ = ["missing_indexes", "queue_missing_indexes", "queue_missing_indexes_in_background", "RETRY_SECONDS"]

RETRY_SECONDS = 5.0
"""Pause before trying again when the broker cannot be reached yet (a process of a
deployment may start before its Redis)."""

log = logging.getLogger("fourfold.worker.bootstrap")


def missing_indexes(domains: Iterable["Domain"]) -> list[str]:
    """Names of the domains in ``domains`` that have knowledge to index but no
    published index version. Domains without a ``knowledge:`` block, or whose prompt
    strategy answers without passages, need none and are left out."""
    missing = []
    for domain in domains:
        if domain.manifest.knowledge is None or not _uses_retrieval(domain):
            continue
        if IndexLayout.for_domain(domain).read_current() is None:
            missing.append(domain.name)
    return missing


def _uses_retrieval(domain: "Domain") -> bool:
    try:
        return bool(domain.prompt_strategy.uses_retrieval)
    except FourfoldError:
        return True  # a refresh does not need the strategy; the API reports what is broken


def queue_missing_indexes(domains: Iterable["Domain"], settings: Settings | None = None) -> dict[str, client.TaskInfo]:
    """Queue a refresh of each domain in ``domains`` without a published index (or find
    the one queued or running for it already), logging one line per domain.

    :returns: the task that builds each such domain's index, by domain name.
    :raises Exception: what the broker or the worker state raised; the domains handled
        before it stay handled, and calling again carries on.
    """
    settings = settings or get_settings()
    tasks = {}
    for name in missing_indexes(domains):
        info = client.request_task(names.REFRESH, name, kwargs={"full": False}, settings=settings, join_running=True)
        if info.existing:
            log.info("domain '%s' has no published index; its first build is %s already (task %s)", name, info.state, info.id)
        else:
            log.info("domain '%s' has no published index; queued its first build (task %s)", name, info.id)
        tasks[name] = info
    return tasks


def queue_missing_indexes_in_background(
    domains: Iterable["Domain"], settings: Settings | None = None, *, retry: float = RETRY_SECONDS
) -> threading.Thread | None:
    """:func:`queue_missing_indexes` in a daemon thread, tried again every ``retry``
    seconds until it gets through, so a process that starts before its broker does
    not block on it or give up.

    :returns: the thread, or None when ``settings.first_build`` is off
        (``FOURFOLD_FIRST_BUILD=false``).
    """
    settings = settings or get_settings()
    if not settings.first_build:
        return None
    domains = list(domains)

    def run() -> None:
        warned = False
        while True:
            try:
                queue_missing_indexes(domains, settings)
                return
            except Exception as exc:
                if not warned:
                    log.warning("cannot queue the first build of missing indexes yet (%s: %s); trying again every %gs",
                                type(exc).__name__, exc, retry)
                    warned = True
            time.sleep(retry)

    thread = threading.Thread(target=run, name="fourfold-first-build", daemon=True)
    thread.start()
    return thread
