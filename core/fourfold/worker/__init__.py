"""Background work: the Celery app, its tasks, the beat schedule and a light client.

- :mod:`fourfold.worker.names` — task and queue names (enqueue by name).
- :mod:`fourfold.worker.client` — request a refresh, read progress and task records;
  imports neither task code nor models.
- :mod:`fourfold.worker.app` — the Celery app built from settings.
- :mod:`fourfold.worker.state` — leases, delivery counts, progress and task records in
  Redis, or in SQLite in the state dir on the embedded broker.
- :mod:`fourfold.worker.tasks` — the task implementations (worker processes only).
- :mod:`fourfold.worker.schedule` — beat entries from manifests.
"""
