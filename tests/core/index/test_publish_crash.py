"""A refresh process that dies at any step of publishing leaves a history that tells
the truth: a version either served or was never published, rollback goes to the last
version that served, and the next refresh leaves no stray file behind."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from fourfold.index import IndexLayout, refresh, rollback

from .conftest import load_domain, make_manifest, write_files

pytestmark = pytest.mark.slow

# The child runs one refresh and dies (os._exit, as abrupt as SIGKILL for the files)
# at the named step of publishing.
CHILD = textwrap.dedent(
    """
    import os, sys
    import fourfold
    from fourfold.index import layout as layout_module, refresh
    from fourfold.index.layout import IndexLayout

    manifest, point = sys.argv[1], sys.argv[2]

    def die(*_a, **_k):
        os._exit(9)

    def patch(name, before=None, after=None):
        original = getattr(IndexLayout, name)

        def wrapper(self, *args, **kwargs):
            if before is None or before(*args, **kwargs):
                die()
            return original(self, *args, **kwargs)

        setattr(IndexLayout, name, wrapper)

    if point == "before-catalog":
        patch("write_catalog")
    elif point == "before-current":
        patch("write_current")
    elif point == "inside-current":
        # The new CURRENT is written to its temporary file, which is never renamed.
        real_replace = os.replace
        def replace(src, dst, *a, **k):
            if str(dst).endswith("CURRENT"):
                die()
            return real_replace(src, dst, *a, **k)
        os.replace = replace
    elif point == "after-current":
        patch("mark_published")
    elif point == "before-history":
        patch("append_history", before=lambda event, **fields: event == "publish")
    elif point == "mid-prune":
        # A pruned version is renamed to the trash, then dies half-deleted.
        layout_module.remove_tree = die
    refresh(fourfold.Domain.from_file(manifest))
    print("finished without reaching", point)
    """
)

POINTS = ["before-catalog", "before-current", "inside-current", "after-current", "before-history", "mid-prune"]
SERVES_NEW = {"after-current", "before-history", "mid-prune"}  # CURRENT was replaced before the death


def _edit(kb, n: int) -> None:
    write_files(kb, {"flu.txt": f"Influenza revision {n}: a yearly vaccine prevents most infections.\n"})


def _stray_files(layout: IndexLayout) -> list[str]:
    stray = [p.name for p in layout.stray_temporary_files()]
    stray += [p.name for p in layout.trash()]
    for name in layout.version_names():
        if not layout.is_complete(name) or not layout.was_published(name):
            stray.append(f"{name} (never served)")
    return stray


@pytest.mark.parametrize("point", POINTS)
def test_a_crash_at_any_step_of_publishing_leaves_a_consistent_history(tmp_path, kb, point):
    manifest = make_manifest(tmp_path, kb, retriever="bm25", keep=2)
    domain = load_domain(manifest)
    layout = IndexLayout.for_domain(domain)
    served: list[str] = []
    for n in range(2):
        _edit(kb, n)
        served.append(refresh(domain).version)

    _edit(kb, 2)
    child = subprocess.run([sys.executable, "-c", CHILD, str(manifest), point], capture_output=True, text=True, timeout=120)
    assert child.returncode == 9, f"the child did not die at {point}: {child.stdout}{child.stderr[-2000:]}"

    # Readers serve a complete version: the old one, or the new one once CURRENT named it.
    current = layout.read_current()
    if point in SERVES_NEW:
        assert current not in served
        served.append(current)
    else:
        assert current == served[-1]
    passages, version = domain.search("yearly vaccine", top_k=1)
    assert version == current and passages
    if point == "inside-current":
        assert any(p.name.startswith(".CURRENT.") for p in layout.stray_temporary_files())

    # Rollback never picks a version that did not serve; and back again.
    latest, previous = served[-1], served[-2]
    assert rollback(domain) == previous
    assert rollback(domain, latest) == latest
    served += [previous, latest]

    # The next refresh repairs the records, publishes and leaves nothing stray.
    _edit(kb, 3)
    report = refresh(domain)
    assert report.published
    served.append(report.version)
    assert _stray_files(layout) == []
    history = [e["version"] for e in layout.history() if e.get("event") in ("publish", "rollback")]
    assert history == served, f"the history {history} does not say which versions served: {served}"
    assert rollback(domain) == latest
