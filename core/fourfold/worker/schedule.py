"""Celery beat entries from manifests: ``knowledge.refresh`` → a periodic refresh."""

from __future__ import annotations

from typing import Iterable

from celery.schedules import crontab, schedule

from fourfold.manifest import Manifest
from fourfold.manifest.models import parse_duration
from fourfold.worker import names

__all__ = ["beat_schedule", "entry_name", "cron_schedule"]


def entry_name(domain: str) -> str:
    return f"refresh {domain}"


def cron_schedule(expression: str) -> crontab:
    """A five-field cron expression (minute hour day-of-month month day-of-week), UTC."""
    minute, hour, day_of_month, month_of_year, day_of_week = expression.split()
    return crontab(
        minute=minute, hour=hour, day_of_month=day_of_month, month_of_year=month_of_year, day_of_week=day_of_week
    )


def beat_schedule(manifests: Iterable[Manifest], namespace: str) -> dict[str, dict]:
    """One beat entry per manifest whose knowledge has a ``refresh`` block.

    A scheduled refresh expires when the next one is due: if workers were away for a
    while, they find one refresh per domain to do, not a backlog.
    """
    queue = names.queue_name(namespace, names.REFRESH_QUEUE)
    entries: dict[str, dict] = {}
    for manifest in manifests:
        refresh = manifest.knowledge.refresh if manifest.knowledge else None
        if refresh is None:
            continue
        if refresh.every:
            seconds = parse_duration(refresh.every).total_seconds()
            when: schedule = schedule(run_every=seconds)
            expires: float | None = seconds
        else:
            when = cron_schedule(refresh.cron or "")
            expires = None  # a missed nightly run still happens when workers return
        entries[entry_name(manifest.domain)] = {
            "task": names.REFRESH,
            "schedule": when,
            "args": [manifest.domain],
            "kwargs": {"full": False},
            "options": {"queue": queue, "routing_key": queue, "expires": expires},
        }
    return entries
