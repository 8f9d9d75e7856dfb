"""Names of fourfold's background tasks and queues.

The API and the CLI enqueue work by these names (``send_task``), so they never import
task code or the heavy libraries it needs.
"""

from __future__ import annotations

__all__ = ["REFRESH", "TRAIN", "FINE_TUNE", "TASK_NAMES", "REFRESH_QUEUE", "TRAINING_QUEUE", "queue_name", "lease_key"]

REFRESH = "fourfold.refresh_domain"
"""Refresh one domain's knowledge base: ``args=[domain]``, ``kwargs={"full": bool}``."""

TRAIN = "fourfold.train_domain"
"""Train a domain's model from scratch: ``args=[domain]``, ``kwargs={"force": bool}``."""

FINE_TUNE = "fourfold.fine_tune_domain"
"""Run a domain's fine-tuning stages: ``args=[domain]``, ``kwargs={"force": bool, "only": name}``."""

TASK_NAMES = (REFRESH, TRAIN, FINE_TUNE)

# Training runs for minutes to hours; a queue of its own lets operators keep refreshes
# flowing on workers that never pick up training (``fourfold worker --queues refresh``).
REFRESH_QUEUE = "refresh"
TRAINING_QUEUE = "training"


def queue_name(namespace: str, queue: str) -> str:
    """The broker queue for ``queue`` (``refresh`` / ``training``) in ``namespace``."""
    return f"{namespace}.{queue}"


def lease_key(task_name: str, domain: str) -> str:
    """What a task's writer lease is held on.

    Refreshes write the domain's index; training and fine-tuning write its artifacts.
    They hold different leases, so an hour of training never holds the knowledge base
    back, while two refreshes (or two trainings) of one domain never run at once.
    """
    return f"{domain}#training" if task_name in (TRAIN, FINE_TUNE) else domain
