"""Knowledge ingestion figures on the demo folders: scan, hash, load (per format) and chunk.

    python tests/benchmarks/bench_ingest.py [FOLDER ...]   # default: ../shared/data/kb-medical and kb-legal

Prints files, warnings, chunks and timings for each folder. Loading and chunking must
stay a small share of a full index build, whose cost is embedding: the last line of
each folder compares them with the time MiniLM takes to embed the same chunks (batch 32,
length-sorted; only measured with --embed, it takes a minute or two per folder).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import fourfold  # noqa: E402
from fourfold.knowledge import chunk_document, file_hash, load_document, scan_sources, text_for_embedding  # noqa: E402

SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "data"


def domain_for(folder: Path, home: Path) -> fourfold.Domain:
    manifest = home / f"{folder.name}.yaml"
    manifest.write_text(f"fourfold: 1\ndomain: {folder.name}\ntitle: {folder.name}\nknowledge:\n  sources: [{{path: '{folder}'}}]\n")
    return fourfold.Domain.from_file(manifest)


def bench(folder: Path, home: Path, embed: bool) -> None:
    domain = domain_for(folder, home)
    embedder = domain.embedder
    embedder.token_spans("warm up the tokenizer")
    chunking = domain.manifest.knowledge.chunking

    started = time.perf_counter()
    scan = scan_sources(domain.manifest)
    scanned = time.perf_counter()
    for file in scan.files:
        file_hash(file)
    hashed = time.perf_counter()

    load_s: Counter[str] = Counter()
    files: Counter[str] = Counter()
    chunks_by: Counter[str] = Counter()
    chunk_s = 0.0
    problems: list[str] = []
    texts: list[str] = []
    for file in scan.files:
        t0 = time.perf_counter()
        try:
            doc = load_document(domain, file)
        except fourfold.KnowledgeError as exc:
            problems.append(str(exc))
            continue
        t1 = time.perf_counter()
        problems += [f"{file.relpath}: {w}" for w in doc.metadata.get("warnings", [])]
        chunks = chunk_document(doc, file, embedder=embedder, chunking=chunking, tags=scan.tags_for(file))
        t2 = time.perf_counter()
        if not chunks:
            problems.append(f"{file.relpath}: no text")
        load_s[file.suffix] += t1 - t0
        chunk_s += t2 - t1
        files[file.suffix] += 1
        chunks_by[file.suffix] += len(chunks)
        texts += [text_for_embedding(c) for c in chunks]

    size_mb = sum(f.size for f in scan.files) / 1e6
    total = hashed - started + sum(load_s.values()) + chunk_s
    print(f"\n== {folder}  ({len(scan.files)} files, {size_mb:.1f} MB)")
    print(f"scan {scanned - started:.3f} s, hash {hashed - scanned:.3f} s, warnings {len(scan.warnings)}: {scan.warnings[:3]}")
    for ext in sorted(files):
        print(f"  {ext:5} {files[ext]:4} files  load {load_s[ext]:6.2f} s  {chunks_by[ext]:5} chunks")
    print(f"chunking {chunk_s:.2f} s; {sum(chunks_by.values())} chunks; load problems {len(problems)}: {problems[:3]}")
    lengths = [len(embedder.token_spans(t)) for t in texts]
    print(f"embedding inputs: median {statistics.median(lengths):.0f} tokens, max {max(lengths)} (window {embedder.max_tokens})")
    print(f"scan+hash+load+chunk: {total:.2f} s ({size_mb / total:.2f} MB/s, {len(texts) / total:.0f} chunks/s)")
    if embed:
        embedder.embed_documents(texts[:32])
        t0 = time.perf_counter()
        embedder.embed_documents(texts)
        seconds = time.perf_counter() - t0
        print(f"embedding the same chunks: {seconds:.1f} s ({len(texts) / seconds:.1f} chunks/s); ingestion is {total / seconds:.1%} of it")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folders", nargs="*", type=Path, default=[SHARED / "kb-medical", SHARED / "kb-legal"])
    parser.add_argument("--embed", action="store_true", help="also time embedding the chunks")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as home:
        os.environ["FOURFOLD_HOME"] = home
        for folder in args.folders:
            if not folder.is_dir():
                sys.exit(f"{folder} is not a folder")
            bench(folder.resolve(), Path(home), args.embed)


if __name__ == "__main__":
    main()
