"""The Celery app is configured from settings: broker choice, reliability and JSON only."""

from __future__ import annotations

import subprocess
import sys

from fourfold import get_settings
from fourfold.worker import names
from fourfold.worker.app import make_app


def test_embedded_defaults_use_sqlite_in_the_state_dir(fourfold_home):
    app = make_app(get_settings(fresh=True))
    assert app.conf.broker_url == f"sqla+sqlite:///{fourfold_home / 'broker.sqlite'}"
    assert app.conf.result_backend == f"db+sqlite:///{fourfold_home / 'results.sqlite'}"
    # Transport options go to SQLAlchemy's create_engine: nothing Redis-specific there.
    assert "visibility_timeout" not in app.conf.broker_transport_options


def test_redis_broker_is_namespaced(monkeypatch):
    monkeypatch.setenv("FOURFOLD_BROKER_URL", "redis://127.0.0.1:6379/3")
    monkeypatch.setenv("FOURFOLD_NAMESPACE", "blue")
    monkeypatch.setenv("FOURFOLD_TASK_TIME_LIMIT", "600")
    app = make_app(get_settings(fresh=True))
    assert app.conf.broker_url == "redis://127.0.0.1:6379/3"
    assert app.conf.result_backend == "redis://127.0.0.1:6379/3"
    options = app.conf.broker_transport_options
    assert options["global_keyprefix"] == "blue:"
    assert options["visibility_timeout"] > 600  # a slow task is not handed out twice
    assert app.conf.result_backend_transport_options["global_keyprefix"] == "blue:"
    assert app.conf.task_default_queue == "blue.refresh"
    assert app.conf.task_routes[names.TRAIN]["queue"] == "blue.training"


def test_reliability_and_serialisation():
    conf = make_app(get_settings(fresh=True)).conf
    assert conf.task_acks_late and conf.task_reject_on_worker_lost
    assert conf.worker_prefetch_multiplier == 1
    assert conf.task_serializer == "json" and conf.result_serializer == "json"
    assert list(conf.accept_content) == ["json"]
    assert conf.result_extended is False  # task arguments stay out of the result backend
    assert 0 < conf.task_soft_time_limit < conf.task_time_limit
    assert conf.worker_max_memory_per_child > 0


def test_client_imports_neither_task_code_nor_models():
    code = (
        "import sys\n"
        "from fourfold.worker import client\n"
        "heavy = [m for m in ('torch', 'transformers', 'qdrant_edge', 'fourfold.worker.tasks') if m in sys.modules]\n"
        "print(','.join(heavy))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == ""


def test_task_names_are_stable():
    assert names.REFRESH == "fourfold.refresh_domain"
    assert set(names.TASK_NAMES) == {names.REFRESH, names.TRAIN, names.FINE_TUNE}
