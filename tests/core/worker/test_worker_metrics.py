"""``fourfold worker --metrics-port``: the refreshes its pool children ran, as Prometheus
sees them (multiprocess mode)."""

from __future__ import annotations

import socket
import subprocess

import httpx
import pytest

from tests.core.worker.conftest import IDLE_START, fourfold_argv, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _scrape(port: int) -> str:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    except httpx.HTTPError:
        return ""


@pytest.mark.parametrize("broker", ["sqlite"], indirect=True)
def test_a_workers_metrics_count_the_refreshes_its_children_ran(broker, make_corpus, processes):
    corpus = make_corpus("metered")
    port = _free_port()
    worker = processes(
        "worker",
        fourfold_argv("worker", str(corpus.manifest), "--concurrency", "1", "--pool", "prefork", "--metrics-port", str(port)),
        IDLE_START,  # the metrics count the one refresh asked for below
    )
    wait_until(lambda: "fourfold_queue_depth" in _scrape(port) or (not worker.alive() and pytest.fail(worker.log_text()[-3000:])), 60, "the metrics port", log=worker.log)
    done = subprocess.run(fourfold_argv("refresh", corpus.domain, "--wait"), capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stdout + done.stderr
    text = wait_until(lambda: (t := _scrape(port)) and f'fourfold_refresh_duration_seconds_count{{domain="{corpus.domain}",outcome="published"}} 1.0' in t and t, 30, "the refresh in the metrics", log=worker.log)
    assert f'fourfold_chunks_embedded_total{{domain="{corpus.domain}"}}' in text
    assert f'fourfold_published_version{{domain="{corpus.domain}"}} 1.0' in text
    assert f'fourfold_lease_wait_seconds_count{{domain="{corpus.domain}",kind="refresh"}} 1.0' in text


def test_task_events_are_on_with_redis_so_flower_sees_tasks():
    from fourfold.settings import Settings
    from fourfold.worker.app import make_app

    conf = make_app(Settings(broker_url="redis://127.0.0.1:6379/0")).conf
    assert conf.worker_send_task_events and conf.task_send_sent_event
