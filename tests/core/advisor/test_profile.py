"""What the advisor reads from a domain: its corpus, its schedule, its rate of change."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest

from fourfold.advisor.profile import profile_changes, profile_corpus, refreshes_per_day


@pytest.fixture
def domain(tmp_path, write_manifest, host):
    from fourfold.domain import Domain

    folder = tmp_path / "kb"
    folder.mkdir()
    for i in range(6):
        (folder / f"doc{i}.md").write_text(f"# Document {i}\n\n" + "Hand washing stops germs from spreading between people. " * (20 + i))
    path = write_manifest("""
        fourfold: 1
        domain: hygiene
        title: Hygiene
        knowledge:
          sources: [{path: kb}]
          refresh: {every: 2h}
    """)
    return Domain.from_file(path, host)


def test_the_corpus_is_counted_in_embedder_tokens_and_timed(domain):
    profile = profile_corpus(domain)
    assert profile.documents == profile.files == 6 and not profile.sampled
    assert profile.tokens > 6 * 20 * 8
    assert profile.chunks >= 6
    assert profile.embedded_tokens >= profile.tokens  # title lines and special tokens
    assert profile.padded_tokens >= profile.embedded_tokens
    assert profile.load_s > 0 and profile.scan_s > 0
    assert len(profile.sample_chunks) >= 6


def test_a_large_corpus_is_sampled_and_extrapolated(domain):
    full = profile_corpus(domain)
    sampled = profile_corpus(domain, sample_files=3)
    assert sampled.sampled and sampled.files_read == 3
    assert sampled.documents == pytest.approx(6, abs=1)
    assert sampled.tokens == pytest.approx(full.tokens, rel=0.25)


def test_refreshes_per_day_follow_the_schedule(domain, write_manifest, host):
    from fourfold.domain import Domain

    assert refreshes_per_day(domain).value == 12
    cron = write_manifest("""
        fourfold: 1
        domain: cron
        title: Cron
        knowledge: {sources: [{path: kb}], refresh: {cron: "0 3,15 * * 1-5"}}
    """, name="cron.yaml")
    assert refreshes_per_day(Domain.from_file(cron, host)).value == pytest.approx(2 * 5 / 7)


def test_change_rate_comes_from_the_flag_then_the_history_then_an_assumption(domain):
    corpus = profile_corpus(domain)
    assumed = profile_changes(domain, corpus)
    assert assumed.source == "assumption" and assumed.documents_per_day.value == pytest.approx(0.06)
    assert profile_changes(domain, corpus, changes_per_day=5).documents_per_day.value == 5

    history = domain.state_dir / "index" / "history.jsonl"
    history.parent.mkdir(parents=True)
    start = datetime.now(timezone.utc) - timedelta(days=2)
    events = [
        {"event": "publish", "base": None, "summary": "hygiene: published v000001 (full build: first build; 6 added, 0 changed, 0 removed, 0 renamed, 0 unchanged; 6 chunks: 6 embedded, 0 from cache, 0 kept, 0 removed; 1.00 s)", "time": start},
        {"event": "unchanged", "time": start + timedelta(hours=12)},
        {"event": "publish", "base": "v000001", "summary": "hygiene: published v000002 (delta on v000001; 0 added, 2 changed, 0 removed, 0 renamed, 4 unchanged; 6 chunks: 3 embedded, 0 from cache, 3 kept, 0 removed; 0.10 s)", "time": start + timedelta(days=1)},
        {"event": "publish", "base": "v000002", "summary": "hygiene: published v000003 (delta on v000002; 1 added, 0 changed, 1 removed, 0 renamed, 5 unchanged; 6 chunks: 1 embedded, 0 from cache, 5 kept, 1 removed; 0.10 s)", "time": start + timedelta(days=2)},
    ]
    history.write_text("".join(json.dumps({**e, "time": e["time"].strftime("%Y-%m-%dT%H:%M:%S%z")}) + "\n" for e in events))
    found = profile_changes(domain, corpus)
    assert found.source == "history"
    assert found.documents_per_day.value == pytest.approx(4 / 2, rel=0.05)  # the first build does not count
    assert found.chunks_per_day.value == pytest.approx(4 / 2, rel=0.05)
