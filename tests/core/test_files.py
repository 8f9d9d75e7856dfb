"""One way to write a file others read: atomic, durable, 0644 whatever the umask, a
secret 0600; and the files an index build and the API write follow it."""

from __future__ import annotations

import json
import os
import stat
import threading
from pathlib import Path

import pytest

import fourfold
from fourfold import files
from fourfold.files import atomic_file, write_atomic, write_json_atomic


def mode_of(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def private_umask():
    """A umask that would make new files private, as a careful operator's shell has."""
    old = os.umask(0o077)
    yield
    os.umask(old)


def test_plugins_get_the_helpers_from_the_public_api():
    assert {"write_atomic", "write_json_atomic", "atomic_file"} <= set(fourfold.__all__)
    assert fourfold.write_atomic is write_atomic and fourfold.write_json_atomic is write_json_atomic
    from fourfold.index.files import write_atomic as from_index  # the older import path

    assert from_index is write_atomic


def test_files_are_readable_by_all_whatever_the_umask(tmp_path, private_umask):
    write_atomic(tmp_path / "text", "hello\n")
    write_json_atomic(tmp_path / "data.json", {"b": 1, "a": [1, 2]})
    assert mode_of(tmp_path / "text") == 0o644 and mode_of(tmp_path / "data.json") == 0o644
    assert (tmp_path / "text").read_text() == "hello\n"
    assert json.loads((tmp_path / "data.json").read_text()) == {"a": [1, 2], "b": 1}


def test_a_secret_is_private_and_a_rewrite_sets_the_mode_asked_for(tmp_path):
    secret = tmp_path / "token"
    write_atomic(secret, "s3cret\n", mode=0o600)
    assert mode_of(secret) == 0o600
    write_atomic(secret, "public now\n")
    assert mode_of(secret) == 0o644


def test_exclusive_write_keeps_the_first_content(tmp_path):
    target = tmp_path / "token"
    write_atomic(target, "first\n", mode=0o600, exclusive=True)
    with pytest.raises(FileExistsError):
        write_atomic(target, "second\n", mode=0o600, exclusive=True)
    assert target.read_text() == "first\n" and os.listdir(tmp_path) == ["token"]


def test_a_failing_write_leaves_the_old_content_and_no_temporary_file(tmp_path):
    target = tmp_path / "CURRENT"
    write_atomic(target, "v000001\n")
    with pytest.raises(RuntimeError):
        with atomic_file(target) as handle:
            handle.write(b"v0000")
            raise RuntimeError("the writer died half-way")
    assert target.read_text() == "v000001\n"
    assert os.listdir(tmp_path) == ["CURRENT"]


@pytest.mark.parametrize("failing", ["fsync", "replace"])
def test_a_failing_fsync_or_rename_removes_the_temporary_file(tmp_path, monkeypatch, failing):
    target = tmp_path / "catalog.json"
    write_atomic(target, "old")

    def fail(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(files.os, failing, fail)
    with pytest.raises(OSError):
        write_atomic(target, "new")
    monkeypatch.undo()
    assert target.read_text() == "old" and os.listdir(tmp_path) == ["catalog.json"]


def test_the_file_and_its_folder_are_fsynced(tmp_path, monkeypatch):
    synced: list[str] = []
    real_fsync = os.fsync

    def fsync(fd):
        synced.append("folder" if stat.S_ISDIR(os.fstat(fd).st_mode) else "file")
        real_fsync(fd)

    monkeypatch.setattr(files.os, "fsync", fsync)
    write_atomic(tmp_path / "report.json", "{}")
    assert synced == ["file", "folder"]


def test_readers_see_the_old_or_the_new_content_never_a_mix(tmp_path):
    target = tmp_path / "catalog.json"
    size = 1 << 20
    write_atomic(target, b"a" * size)
    seen: set[bytes] = set()
    stop = threading.Event()

    def read() -> None:
        while not stop.is_set():
            data = target.read_bytes()
            seen.add(bytes([data[0]]) if data == data[:1] * size else b"torn:" + data[:16])

    reader = threading.Thread(target=read)
    reader.start()
    try:
        for i in range(60):
            write_atomic(target, (b"b" if i % 2 == 0 else b"a") * size)
    finally:
        stop.set()
        reader.join()
    assert seen <= {b"a", b"b"}, sorted(seen)


def test_an_index_build_leaves_its_files_readable_and_the_api_token_private(tmp_path, private_umask, host):
    from fourfold.api.tokens import domain_tokens, token_file
    from fourfold.index import IndexLayout, refresh

    from .index.conftest import TOPICS, load_domain, make_manifest, write_files

    kb = tmp_path / "kb"
    write_files(kb, TOPICS)
    domain = load_domain(make_manifest(tmp_path, kb, retriever="bm25"))
    refresh(domain)
    layout = IndexLayout.for_domain(domain)
    current = layout.read_current()
    assert current is not None
    assert mode_of(layout.current_file) == 0o644
    assert mode_of(layout.catalog_file(current)) == 0o644
    # the files others open too: the history the API reads, the locks readers and writers take
    assert mode_of(layout.history_file) == 0o644
    assert mode_of(layout.lock_file) == 0o644

    tokens = domain_tokens(domain.manifest, domain.settings)
    assert tokens.origin == "generated"
    path = token_file(domain.settings, domain.manifest.domain)
    assert mode_of(path) == 0o600 and path.read_text().strip() == tokens.tokens[0]
    again = domain_tokens(domain.manifest, domain.settings)
    assert (again.origin, again.tokens) == ("state", tokens.tokens)


MOUNTS = """\
/dev/sda1 / ext4 rw,relatime 0 0
nas:/export/fourfold /srv/state nfs4 rw,relatime 0 0
//files/share /mnt/share\\040docs cifs rw 0 0
tmpfs /srv/state/tmp tmpfs rw 0 0
"""


@pytest.mark.parametrize(
    "path, expected",
    [
        ("/srv/state/home/tasks.sqlite", ("nfs4", "/srv/state")),
        ("/srv/state/tmp/x", ("tmpfs", "/srv/state/tmp")),  # the deepest mount point wins
        ("/mnt/share docs/home", ("cifs", "/mnt/share docs")),
        ("/srv/statement", ("ext4", "/")),  # a prefix of the name is not a mount point
    ],
)
def test_the_file_system_of_a_path_is_its_deepest_mount(path, expected):
    from fourfold.files import file_system_of

    assert file_system_of(Path(path), MOUNTS) == expected


def test_sqlite_state_on_a_network_file_system_is_refused_with_the_reason():
    from fourfold.files import network_disk_problem

    problem = network_disk_problem(Path("/srv/state/home"), "the task records (tasks.sqlite)", MOUNTS)
    assert "network file system (nfs4)" in problem and "/srv/state" in problem and "FOURFOLD_BROKER_URL" in problem
    assert network_disk_problem(Path("/srv/state/tmp/home"), "the task records", MOUNTS) is None
    assert network_disk_problem(Path("/home/x"), "the task records", MOUNTS) is None


def test_this_machines_temporary_folder_is_a_local_disk(tmp_path):
    from fourfold.files import network_disk_problem

    assert network_disk_problem(tmp_path, "the task records") is None


def test_copy_tree_leaves_out_top_level_entries_by_name_or_pattern(tmp_path):
    from fourfold.files import copy_tree

    src = tmp_path / "src"
    (src / ".atomicwrite1x2y").mkdir(parents=True)
    (src / ".atomicwrite1x2y" / "tmpfile.tmp").write_text("half written")
    (src / "segments" / ".atomicwrite9").mkdir(parents=True)
    (src / "segments" / ".atomicwrite9" / "kept").write_text("deeper entries are copied")
    (src / "edge_config.json").write_text("{}")
    (src / "data.bin").write_bytes(b"\0" * 10 + b"x")
    copy_tree(src, tmp_path / "dst", skip=("edge_config.json", ".atomicwrite*"))
    dst = tmp_path / "dst"
    assert sorted(p.relative_to(dst).as_posix() for p in dst.rglob("*")) == [
        "data.bin", "segments", "segments/.atomicwrite9", "segments/.atomicwrite9/kept",
    ]
    assert (dst / "data.bin").read_bytes() == b"\0" * 10 + b"x"
