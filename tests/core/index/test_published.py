"""Readers follow publishes: searching in a loop while 20 versions are published (and
old ones deleted under it) never fails and never comes back empty."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import threading
import time

import pytest

from fourfold.index import IndexLayout, PublishedIndex, refresh

from .conftest import load_domain, make_manifest

pytestmark = pytest.mark.slow

PUBLISHES = 20


def _publish_many(domain, kb, n=PUBLISHES):
    versions = []
    for i in range(n):
        (kb / "flu.txt").write_text(f"Influenza bulletin number {i}: the yearly vaccine is recommended.\n")
        report = refresh(domain)
        assert report.published
        versions.append(report.version)
    return versions


def test_a_reader_thread_sees_every_publish_without_errors(tmp_path, kb):
    manifest = make_manifest(tmp_path, kb, keep=1)  # old versions are deleted at once
    writer = load_domain(manifest)
    refresh(writer)
    reader = load_domain(manifest)  # its own Domain, as in another request handler
    errors: list[BaseException] = []
    empty = 0
    seen: set[str] = set()
    searches = 0
    stop = threading.Event()

    def loop():
        nonlocal empty, searches
        while not stop.is_set():
            try:
                passages, version = reader.search("yearly vaccine against influenza", top_k=3)
            except BaseException as exc:  # noqa: BLE001 - recorded and asserted below
                errors.append(exc)
                continue
            searches += 1
            seen.add(version)
            if not passages:
                empty += 1
            time.sleep(0.002)  # a busy server, not a spinning one: leave the writer some CPU

    thread = threading.Thread(target=loop)
    thread.start()
    try:
        versions = _publish_many(writer, kb)
        time.sleep(0.3)
    finally:
        stop.set()
        thread.join()
    assert not errors, errors[:3]
    assert empty == 0
    assert searches > PUBLISHES
    assert versions[-1] in seen and len(seen) > 2
    assert reader.index.version == versions[-1]
    reader.index.close()
    # once the reader let go, the next refresh deletes what it held
    (kb / "flu.txt").write_text("Influenza, final.\n")
    final = refresh(writer).version
    assert IndexLayout.for_domain(writer).version_names() == [final]


READER_PROCESS = textwrap.dedent(
    """
    import json, os, sys
    import fourfold
    manifest, stop_file = sys.argv[1], sys.argv[2]
    domain = fourfold.Domain.from_file(manifest)
    sparse = domain.build("retriever", "sparse")
    errors, empty, versions, searches = [], 0, [], 0
    print("ready", flush=True)
    while not os.path.exists(stop_file):
        try:
            passages, version = domain.search("influenza vaccine bulletin", top_k=3, retriever=sparse)
        except Exception as exc:
            errors.append(f"{type(exc).__name__}: {exc}")
            continue
        searches += 1
        empty += not passages
        if not versions or versions[-1] != version:
            versions.append(version)
    print(json.dumps({"errors": errors[:5], "n_errors": len(errors), "empty": empty, "versions": versions, "searches": searches}))
    """
)


def test_a_reader_process_follows_publishes(tmp_path, kb):
    manifest = make_manifest(tmp_path, kb, keep=1)
    writer = load_domain(manifest)
    refresh(writer)
    stop_file = tmp_path / "stop"
    proc = subprocess.Popen(
        [sys.executable, "-c", READER_PROCESS, str(manifest), str(stop_file)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ},
    )
    try:
        assert proc.stdout.readline().strip() == "ready", proc.stderr.read()
        versions = _publish_many(writer, kb)
        time.sleep(0.5)
    finally:
        stop_file.write_text("stop")
        out, err = proc.communicate(timeout=120)
    result = json.loads(out.strip().splitlines()[-1])
    assert result["n_errors"] == 0, result["errors"]
    assert result["empty"] == 0
    assert result["versions"][-1] == versions[-1]
    assert len(result["versions"]) > 2, result


def test_close_releases_the_version(tmp_path, kb):
    manifest = make_manifest(tmp_path, kb)
    domain = load_domain(manifest)
    refresh(domain)
    index = PublishedIndex(domain)
    assert index.version == "v000001"
    assert index.search("asthma")[1] == "v000001"
    index.close()
    layout = IndexLayout.for_domain(domain)
    assert layout.delete_version("v000001", only_if_unread=True)
