"""A state dir that cannot be written fails a refresh with an error that names the file
and the errno, never a crash of the process (SIGBUS from a memory-mapped SQLite file)."""

from __future__ import annotations

import sqlite3
import subprocess

import numpy as np
import pytest

from fourfold.errors import IndexVersionError
from fourfold.index import IndexLayout, VectorCache, refresh

from .conftest import load_domain, make_manifest, write_files


def test_the_vector_cache_maps_no_shared_memory(tmp_path):
    path = tmp_path / "vectors.sqlite"
    with VectorCache(path, "model-a", 4) as cache:
        cache.put_many(["h1", "h2"], np.ones((2, 4), dtype=np.float32))
        assert set(cache.get_many(["h1", "h2", "h3"])) == {"h1", "h2"}
        # WAL's -shm file is mapped into the process; a state dir that turns read-only
        # or full under that mapping kills it with SIGBUS. A rollback journal does not.
        assert not (tmp_path / "vectors.sqlite-shm").exists()
    con = sqlite3.connect(path)
    try:
        assert con.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
    finally:
        con.close()


@pytest.fixture
def read_only(tmp_path):
    """Make a folder read-only for this process by bind-mounting it read-only onto
    itself (a chmod does not stop root); undone at teardown."""
    mounted = []

    def make(folder):
        first = subprocess.run(["mount", "--bind", str(folder), str(folder)], capture_output=True, text=True)
        if first.returncode != 0:
            pytest.skip(f"cannot bind-mount here (needs mount privileges): {first.stderr.strip()}")
        mounted.append(folder)
        done = subprocess.run(["mount", "-o", "remount,bind,ro", str(folder)], capture_output=True, text=True)
        assert done.returncode == 0, done.stderr

    yield make
    for folder in reversed(mounted):
        subprocess.run(["umount", str(folder)], check=False)


def test_a_read_only_index_folder_fails_naming_the_path_and_errno(tmp_path, kb, read_only):
    manifest = make_manifest(tmp_path, kb, retriever="hybrid")
    domain = load_domain(manifest)
    first = refresh(domain)
    layout = IndexLayout.for_domain(domain)
    write_files(kb, {"flu.txt": "Influenza changed its strain this year.\n"})

    read_only(layout.root)
    with pytest.raises(IndexVersionError) as caught:
        refresh(domain)
    message = str(caught.value)
    assert str(layout.root) in message and "EROFS" in message, message
    assert layout.read_current() == first.version  # the published version is untouched


def test_a_read_only_vector_cache_fails_naming_the_file(tmp_path, kb, read_only):
    manifest = make_manifest(tmp_path, kb, retriever="hybrid")
    domain = load_domain(manifest)
    first = refresh(domain)
    layout = IndexLayout.for_domain(domain)
    write_files(kb, {"gout.md": "# Gout\n\nGout hurts the big toe at night.\n"})

    read_only(layout.vector_cache_file)  # only the cache: the refresh gets as far as embedding
    with pytest.raises(IndexVersionError) as caught:
        refresh(domain)
    message = str(caught.value)
    assert str(layout.vector_cache_file) in message and "readonly" in message.lower(), message
    assert layout.read_current() == first.version
    assert layout.version_names() == [first.version]  # nothing half-built is kept
