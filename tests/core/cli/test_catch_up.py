"""``fourfold up`` restarting over built indexes: a refresh is queued only when the
documents changed, and the message says how many."""

from __future__ import annotations

import pytest

from ..index.conftest import TOPICS, make_manifest, write_files

pytestmark = pytest.mark.slow


def test_catch_up_queues_a_refresh_only_when_documents_changed(tmp_path, fourfold_home, capsys):
    from fourfold.cli.serve_cmds import _catch_up
    from fourfold.domain import Domain
    from fourfold.index import changed_documents, refresh
    from fourfold.plugins import get_host
    from fourfold.settings import get_settings
    from fourfold.worker import client

    settings = get_settings(fresh=True)
    kb = tmp_path / "kb"
    write_files(kb, TOPICS)
    domain = Domain.from_file(make_manifest(tmp_path, kb), get_host())
    assert changed_documents(domain) is None  # nothing published yet
    refresh(domain)
    assert changed_documents(domain) == []

    _catch_up([domain], settings)
    out = capsys.readouterr().out
    assert "documents unchanged since the published index" in out and "queued" not in out
    assert client.recent_tasks(5, settings=settings) == []

    first = sorted(TOPICS)[0]
    (kb / first).write_text("# Changed\n\nThis document was edited while nothing was running.\n", encoding="utf-8")
    (kb / "new.md").write_text("# New\n\nA document added while nothing was running, long enough.\n", encoding="utf-8")
    assert sorted(changed_documents(domain)) == sorted([first, "new.md"])
    _catch_up([domain], settings)
    out = capsys.readouterr().out
    assert "2 documents changed since the published index; refresh queued (task" in out
    assert [t.state for t in client.recent_tasks(5, settings=settings)] == ["queued"]
