"""``fourfold tasks`` read on an 80-column terminal."""

from __future__ import annotations

import time
import uuid

from typer.testing import CliRunner

from fourfold.cli import app

REFRESH_RESULT = {
    "status": "succeeded", "domain": "medical", "version": "v000004", "published": True, "base": "v000003", "full": False,
    "added_count": 2, "changed_count": 1, "removed_count": 0, "renamed_count": 0, "unchanged_count": 40, "skipped_count": 0,
    "warnings_count": 0, "reread_count": 0, "chunks_total": 812, "chunks_kept": 790, "chunks_embedded": 22,
    "chunks_from_cache": 0, "chunks_removed": 3, "timings": {"scan": 0.1, "embed": 4.2, "total": 5.0},
}


def test_tasks_fit_80_columns_with_a_one_line_outcome(fourfold_home, monkeypatch):
    from fourfold.settings import get_settings
    from fourfold.worker.state import open_state

    state = open_state(get_settings(fresh=True))
    now = time.time()
    ids = []
    for i, (st, result) in enumerate([("succeeded", REFRESH_RESULT), ("succeeded", {**REFRESH_RESULT, "published": False})]):
        task_id = str(uuid.uuid4())
        ids.append(task_id)
        state.update_task(task_id, name="refresh", domain="medical", state=st, queued_at=now - 60 + i, started_at=now - 50 + i,
                          finished_at=now - 40 + i, result=result)
    monkeypatch.setenv("COLUMNS", "80")
    out = CliRunner().invoke(app, ["tasks"], env={"COLUMNS": "80"}).output
    lines = out.splitlines()
    assert all(len(line) <= 80 for line in lines), "\n".join(lines)
    squeezed = "".join(out.split())  # the outcome column may wrap
    assert "publishedv000004:2added,1changed;22chunksembedded" in squeezed, out
    assert "no change (v000004)" in out
    assert ids[0][:8] in out and "=" not in out and "chunks_kept" not in out
    table = lines[lines.index(next(line for line in lines if line.startswith("recent"))) + 1 :]
    assert len([line for line in table if line.strip()]) <= 2 + 4, out  # header, rule, then at most 3 lines a task
