"""Whole-pipeline indexing throughput on ../shared/data/kb-medical (.md + .txt), against
the bare embedder on the same chunk texts in naive batches of 32, in the same run.

    python tests/benchmarks/bench_index_build.py [--folder DIR] [--all-formats]

Steps, in a fresh state dir (empty vector cache):

1. full build with ``fourfold.index.refresh`` (scan, hash, load, chunk, embed, write,
   optimize, publish);
2. the bare embedder on exactly the embedded texts of that build, in document order,
   ``embed_documents`` on consecutive slices of 32 (what a naive pipeline does);
3. a refresh after appending a sentence to 1% of the files, and one with no change.

Target: pipeline throughput ≥ 0.9× the bare embedder's. Aims: full build ≤ 35 s,
1% refresh ≤ 0.5 s re-embedding only edited chunks, no-change refresh ≤ 0.1 s.
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
from fourfold.index import IndexLayout, embedding_text, refresh  # noqa: E402

SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "data"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--folder", type=Path, default=SHARED / "kb-medical")
    parser.add_argument("--all-formats", action="store_true", help="Also .html and .pdf (default: .md and .txt, as the aims).")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="fourfold-bench-build-"))
    kb = work / "kb"
    shutil.copytree(args.folder, kb)
    os.environ["FOURFOLD_HOME"] = str(work / "home")
    fourfold.get_settings(fresh=True)
    include = '["**/*.md", "**/*.txt", "**/*.html", "**/*.pdf"]' if args.all_formats else '["**/*.md", "**/*.txt"]'
    manifest = work / "bench.yaml"
    manifest.write_text(
        f"fourfold: 1\ndomain: bench\ntitle: Build bench\nknowledge:\n  sources: [{{path: kb, include: {include}}}]\n"
    )
    domain = fourfold.Domain.from_file(manifest)
    embedder = domain.embedder
    embedder.embed_documents(["load the model before timing anything"])

    started = time.perf_counter()
    report = refresh(domain)
    pipeline_s = time.perf_counter() - started
    n = report.chunks_total
    print(f"{args.folder.name} ({'all formats' if args.all_formats else '.md + .txt'}): {report.documents_total} documents → {n} chunks")
    print(f"pipeline full build      {pipeline_s:7.2f} s   {n / pipeline_s:6.1f} chunks/s")
    print("  stages: " + ", ".join(f"{k} {v:.2f}s" for k, v in report.timings.items() if k != "total"))

    layout = IndexLayout.for_domain(domain)
    reader = domain.retriever.open_store().open_version(layout.store_dir(report.version))
    chunks = sorted(reader.chunks(), key=lambda c: (c.source, c.ordinal))
    reader.close()
    texts = [embedding_text(c) for c in chunks]
    started = time.perf_counter()
    for i in range(0, len(texts), 32):
        embedder.embed_documents(texts[i : i + 32])
    bare_s = time.perf_counter() - started
    print(f"bare embedder, naive 32  {bare_s:7.2f} s   {n / bare_s:6.1f} chunks/s")
    ratio = bare_s / pipeline_s
    print(f"pipeline / bare throughput: {ratio:.2f}x  (target ≥ 0.90: {'ok' if ratio >= 0.9 else 'MISSED'}; "
          f"aim full build ≤ 35 s: {'ok' if pipeline_s <= 35 else 'missed'})")

    files = sorted(p for p in kb.rglob("*") if p.suffix in (".md", ".txt"))
    edited = files[:: max(1, len(files) // max(1, math.ceil(len(files) * 0.01)))][: math.ceil(len(files) * 0.01)]
    for p in edited:
        with p.open("a", encoding="utf-8") as fh:
            fh.write("\nThis sentence was appended to measure an incremental refresh.\n")
    started = time.perf_counter()
    edit = refresh(domain)
    edit_s = time.perf_counter() - started
    changed_chunks = sum(len(layout.read_catalog(edit.version).documents[d].chunks) for d in edit.changed)
    print(f"refresh after appending a sentence to {len(edited)} files ({len(edited) / len(files):.1%}): {edit_s:.3f} s "
          f"= {edit_s / pipeline_s:.1%} of the full build; {edit.chunks_embedded} chunks embedded "
          f"(the edited documents have {changed_chunks}); aim ≤ 0.5 s")
    started = time.perf_counter()
    same = refresh(domain)
    same_s = time.perf_counter() - started
    print(f"refresh with no change: {same_s:.3f} s = {same_s / pipeline_s:.2%} of the full build, "
          f"{same.chunks_embedded} embedded; aim ≤ 0.1 s")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
