"""A deployment's first start builds the indexes it lacks: once per domain, whichever
processes start and in whatever order."""

from __future__ import annotations

import socket
import time

import pytest

from .conftest import current_version, fourfold_argv, published_history, wait_until


def _publishes(home, domain: str) -> list[dict]:
    return [e for e in published_history(home, domain) if e.get("event") == "publish"]


def _refreshes(domain: str) -> list:
    """Refresh tasks recorded for ``domain``, less requests that lost a race to queue
    and were dropped at once (recorded ``skipped``, never sent)."""
    from fourfold.worker import client

    return [t for t in client.recent_tasks(100) if t.domain == domain and t.name == "refresh" and t.state != "skipped"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# -------------------------------------------------------------------------
# Which domains lack an index
# -------------------------------------------------------------------------


def test_missing_indexes_names_domains_with_knowledge_and_no_published_version(make_corpus, write_manifest):
    from fourfold.domain import Domain
    from fourfold.index.layout import IndexLayout
    from fourfold.worker.bootstrap import missing_indexes

    empty = Domain.from_file(make_corpus("unbuilt").manifest)
    built = Domain.from_file(make_corpus("built").manifest)
    layout = IndexLayout.for_domain(built)
    layout.ensure()
    layout.write_current("v000001")
    no_knowledge = Domain.from_file(write_manifest("""
        fourfold: 1
        domain: chatty
        title: No documents
        generation: {use: extractive}
    """, "chatty.yaml"))
    no_retrieval = Domain.from_file(write_manifest(f"""
        fourfold: 1
        domain: plainly
        title: Answers without passages
        knowledge: {{sources: [{{path: {make_corpus("plainly").knowledge}}}]}}
        prompt: {{use: plain}}
        generation: {{use: extractive}}
    """, "plainly.yaml"))

    assert missing_indexes([empty, built, no_knowledge, no_retrieval]) == ["unbuilt"]


def test_a_request_while_the_first_build_runs_joins_it_instead_of_following_it(broker):
    from fourfold.worker import client, names
    from fourfold.worker.state import LeaseHolder, open_state

    state = open_state()
    state.update_task("first-build", name="refresh", domain="notes", state="running")
    holder = LeaseHolder.for_this_process("first-build")
    assert state.acquire_lease("notes", holder, 30) is None

    joined = client.request_task(names.REFRESH, "notes", join_running=True)
    assert joined.existing and joined.id == "first-build" and joined.follows is None
    assert state.dirty("notes") is None, "joining must not record a follow-up run"

    followed = client.request_task(names.REFRESH, "notes")  # an ordinary request still follows
    assert followed.follows == "first-build" and state.dirty("notes") == followed.id
    state.release_lease("notes", holder.token)


def test_first_builds_are_off_with_the_setting_off(make_corpus, monkeypatch):
    from fourfold.domain import Domain
    from fourfold.settings import get_settings
    from fourfold.worker.bootstrap import queue_missing_indexes_in_background

    monkeypatch.setenv("FOURFOLD_FIRST_BUILD", "false")
    domain = Domain.from_file(make_corpus("quiet").manifest)
    assert queue_missing_indexes_in_background([domain], get_settings(fresh=True)) is None


# -------------------------------------------------------------------------
# Real processes
# -------------------------------------------------------------------------


def test_a_worker_builds_a_missing_index_when_it_starts(broker, make_corpus, start_worker):
    corpus = make_corpus("firstrun")  # no knowledge.refresh schedule, and nobody asks
    worker = start_worker(corpus.manifest)
    wait_until(lambda: current_version(broker.home, corpus.domain), 120, "the first index to be published", log=worker.log)
    assert "domain 'firstrun' has no published index; queued its first build" in worker.log_text()
    assert len(_publishes(broker.home, corpus.domain)) == 1


@pytest.mark.parametrize("broker", ["redis"], indirect=True)
def test_api_replicas_beat_and_a_worker_starting_together_build_each_index_once(broker, make_corpus, processes, write_manifest):
    """Two API replicas and beat start before any worker, then a worker: one refresh per
    domain is queued between them, and each domain is published once."""
    corpora = [make_corpus("alpha", documents=3), make_corpus("beta", documents=3)]
    manifests = [str(c.manifest) for c in corpora]
    starters = [
        processes("api", fourfold_argv("serve", *manifests, "--port", str(_free_port()))),
        processes("api", fourfold_argv("serve", *manifests, "--port", str(_free_port()))),
        processes("beat", fourfold_argv("beat", *manifests, "--loglevel", "info")),
    ]

    def said_it(proc, domain: str) -> bool:
        assert proc.alive(), f"{proc.name} exited:\n{proc.log_text()[-3000:]}"
        return f"domain '{domain}' has no published index" in proc.log_text()

    for proc in starters:
        for c in corpora:
            wait_until(lambda: said_it(proc, c.domain), 120, f"{proc.name} to ask for the first build of {c.domain}", log=proc.log)
    for c in corpora:
        assert len(_refreshes(c.domain)) == 1, [t.to_dict() for t in _refreshes(c.domain)]
        queued_by = [p.name for p in starters if f"domain '{c.domain}' has no published index; queued" in p.log_text()]
        assert len(queued_by) == 1, f"{c.domain}: queued by {queued_by}"

    worker = processes("worker", fourfold_argv("worker", *manifests, "--concurrency", "1", "--loglevel", "info"))
    for c in corpora:
        wait_until(lambda: current_version(broker.home, c.domain), 120, f"{c.domain}'s first index", log=worker.log)
    time.sleep(2)  # anything queued twice would be running by now
    for c in corpora:
        assert len(_publishes(broker.home, c.domain)) == 1
        assert len(_refreshes(c.domain)) == 1, [t.to_dict() for t in _refreshes(c.domain)]
