"""``knowledge.refresh`` in a manifest becomes a beat entry."""

from __future__ import annotations

from datetime import datetime, timezone

from celery.schedules import crontab, schedule

from fourfold.manifest import Manifest
from fourfold.worker import names
from fourfold.worker.schedule import beat_schedule, cron_schedule


def _manifest(domain: str, refresh: dict | None) -> Manifest:
    knowledge = {"sources": [{"path": "kb"}]}
    if refresh is not None:
        knowledge["refresh"] = refresh
    return Manifest.model_validate({"fourfold": 1, "domain": domain, "title": domain, "knowledge": knowledge})


def test_intervals_and_crons_become_entries():
    entries = beat_schedule(
        [_manifest("legal", {"every": "30m"}), _manifest("medical", {"cron": "0 3 * * 0"}), _manifest("plain", None)],
        "ns",
    )
    assert set(entries) == {"refresh legal", "refresh medical"}
    legal = entries["refresh legal"]
    assert legal["task"] == names.REFRESH and legal["args"] == ["legal"]
    assert isinstance(legal["schedule"], schedule) and legal["schedule"].run_every.total_seconds() == 1800
    assert legal["options"]["queue"] == "ns.refresh"
    assert legal["options"]["expires"] == 1800  # no backlog of stale refreshes
    medical = entries["refresh medical"]["schedule"]
    assert isinstance(medical, crontab)
    assert medical.hour == {3} and medical.minute == {0} and medical.day_of_week == {0}


def test_cron_fields_are_in_cron_order():
    sched = cron_schedule("15 4 1 6 *")  # 04:15 on the 1st of June
    assert sched.minute == {15} and sched.hour == {4}
    assert sched.day_of_month == {1} and sched.month_of_year == {6}
    assert sched.is_due(datetime(2020, 6, 1, 4, 14, tzinfo=timezone.utc)) is not None
