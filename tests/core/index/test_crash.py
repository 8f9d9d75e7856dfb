"""A refresh killed with SIGKILL at any stage leaves the published version serving,
and the next refresh cleans up and ends where a clean build ends."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from fourfold.index import IndexLayout, refresh

from .conftest import TOPICS, load_domain, make_manifest, snapshot, write_files

pytestmark = pytest.mark.slow

CHILD = textwrap.dedent(
    """
    import sys, time
    import fourfold
    from fourfold.index import refresh

    manifest, target = sys.argv[1], sys.argv[2]

    class Announce:
        def start(self, stage, total=None):
            print(stage, flush=True)
            if stage == target:
                time.sleep(5)  # the parent kills us here, with this stage begun

        def advance(self, n=1):
            pass

    refresh(fourfold.Domain.from_file(manifest), Announce())
    print("done", flush=True)
    """
)


# The in-process property test interrupts every stage; these kill a real process at
# three points: before any vector is stored, with the new shard open, before publishing.
@pytest.mark.parametrize("stage", ["embed", "optimize", "publish"])
def test_sigkill_mid_refresh_keeps_the_published_version(tmp_path, kb, stage):
    manifest = make_manifest(tmp_path, kb)
    domain = load_domain(manifest)
    first = refresh(domain)
    before = snapshot(domain)
    # a real change: edits, a new document, a deletion
    write_files(kb, {"flu.txt": "Influenza changed its strain this year.\n", "gout.md": "# Gout\n\nGout hurts the big toe.\n"})
    (kb / "asthma.md").unlink()

    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(manifest), stage], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        for line in child.stdout:
            if line.strip() == stage:
                time.sleep(random.uniform(0, 0.2))
                break
        else:
            pytest.fail(f"the child never reached stage {stage}: {child.stderr.read()[-2000:]}")
        child.send_signal(signal.SIGKILL)
    finally:
        child.wait(timeout=60)
    assert child.returncode == -signal.SIGKILL

    # The killed refresh changed nothing a reader sees.
    layout = IndexLayout.for_domain(domain)
    assert layout.read_current() == first.version
    assert snapshot(domain) == before
    passages, version = domain.search("asthma airways", top_k=1)
    assert version == first.version and passages[0].chunk.source == "asthma.md"

    # The next refresh repairs everything and equals a clean build.
    report = refresh(domain)
    assert report.published
    assert all(layout.is_complete(v) for v in layout.version_names())
    clean = load_domain(make_manifest(tmp_path, kb, name="clean.yaml"), home=tmp_path / "clean-home")
    refresh(clean)
    assert snapshot(domain) == snapshot(clean)
    assert sorted(snapshot(domain)["documents"]) == sorted((set(TOPICS) - {"asthma.md"}) | {"gout.md"})
