"""Incremental refresh cost on ../shared/data/kb-legal (copied to a temp dir first).

    python tests/benchmarks/bench_refresh.py [--folder DIR] [--qdrant-url URL]

In a fresh state dir (empty vector cache): a full build, then a refresh after appending
one sentence to 1% of the files (Markdown and text files, where an appended sentence is
text), then a refresh with no change.

Targets: the 1% refresh takes ≤ 5% of the full build and re-embeds only the edited
documents' changed chunks; the no-change refresh takes < 3% of it. With ``--qdrant-url``
the index is built on that Qdrant server (server mode); bench_scaleout.py runs it so.
"""

from __future__ import annotations

import argparse
import math
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import fourfold  # noqa: E402
from fourfold.index import IndexLayout, refresh  # noqa: E402

SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "data"


class Stages:
    def __init__(self):
        self.stage = None

    def start(self, stage, total=None):
        print(f"  … {stage}" + (f" ({total})" if total else ""), flush=True)

    def advance(self, n=1):
        pass


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--folder", type=Path, default=SHARED / "kb-legal")
    parser.add_argument("--qdrant-url", default=None, help="build on this Qdrant server (server mode)")
    args = parser.parse_args()
    run(args.folder, qdrant_url=args.qdrant_url)


def run(folder: Path, *, qdrant_url: str | None = None) -> dict:
    """Full build, 1% edit, no change; prints the figures and returns them (seconds)."""
    work = Path(tempfile.mkdtemp(prefix="fourfold-bench-refresh-"))
    kb = work / "kb"
    shutil.copytree(folder, kb)
    os.environ["FOURFOLD_HOME"] = str(work / "home")
    if qdrant_url:
        os.environ["FOURFOLD_QDRANT_URL"] = qdrant_url
        os.environ["FOURFOLD_NAMESPACE"] = f"bench{os.getpid()}"
    fourfold.get_settings(fresh=True)
    manifest = work / "bench.yaml"
    manifest.write_text("fourfold: 1\ndomain: bench\ntitle: Refresh bench\nknowledge:\n  sources: [{path: kb}]\n")
    domain = fourfold.Domain.from_file(manifest)
    domain.embedder.embed_documents(["load the model before timing anything"])

    print(f"full build of {folder}{' on ' + qdrant_url if qdrant_url else ''} …", flush=True)
    started = time.perf_counter()
    full = refresh(domain, Stages())
    full_s = time.perf_counter() - started
    print(f"full build: {full.documents_total} documents, {full.chunks_total} chunks, {full_s:.1f} s "
          f"({len(full.skipped)} skipped)")
    print("  stages: " + ", ".join(f"{k} {v:.2f}s" for k, v in full.timings.items() if k != "total"))

    files = sorted(p for p in kb.rglob("*") if p.is_file())
    count = math.ceil(len(files) * 0.01)
    text_files = [p for p in files if p.suffix in (".md", ".txt")]
    step = max(1, len(text_files) // count)
    edited = text_files[::step][:count]
    for p in edited:
        with p.open("a", encoding="utf-8") as fh:
            fh.write("\nThe parties further agree that notices may also be given by electronic mail.\n")
    started = time.perf_counter()
    edit = refresh(domain)
    edit_s = time.perf_counter() - started
    catalog = IndexLayout.for_domain(domain).read_catalog(edit.version)
    edited_chunks = sum(len(catalog.documents[d].chunks) for d in edit.changed)
    print(f"refresh after appending a sentence to {len(edited)} of {len(files)} files: {edit_s:.3f} s = "
          f"{edit_s / full_s:.2%} of the full build (target ≤ 5%: {'ok' if edit_s <= 0.05 * full_s else 'MISSED'})")
    print(f"  changed {edit.changed}; {edit.chunks_embedded} chunks embedded, {edit.chunks_kept} kept; "
          f"the edited documents have {edited_chunks} chunks "
          f"({'only edited chunks re-embedded' if edit.chunks_embedded <= edited_chunks else 'TOO MANY re-embedded'})")
    print("  stages: " + ", ".join(f"{k} {v:.3f}s" for k, v in edit.timings.items() if k != "total"))

    started = time.perf_counter()
    same = refresh(domain)
    same_s = time.perf_counter() - started
    print(f"refresh with no change: {same_s:.3f} s = {same_s / full_s:.2%} of the full build "
          f"(target < 3%: {'ok' if same_s < 0.03 * full_s else 'MISSED'}), {same.chunks_embedded} embedded")
    shutil.rmtree(work, ignore_errors=True)
    return {
        "full_s": full_s, "edit_s": edit_s, "same_s": same_s, "edited_files": len(edited), "files": len(files),
        "embedded": edit.chunks_embedded, "edited_chunks": edited_chunks, "chunks": full.chunks_total,
    }


if __name__ == "__main__":
    sys.exit(main())
