"""What a refresh over an S3 bucket costs when little or nothing changed.

    python tests/benchmarks/bench_sources.py [--objects N]

moto's S3 server (tests/helpers/moto_s3.py, the local stand-in for an S3-compatible
store) is started on a free port and filled with N Markdown objects (default 500). A
domain reads them through the builtin ``s3`` source (bm25 retrieval, so no vectors):

1. first build: every object downloaded once;
2. no-change refresh: objects downloaded (target 0) and seconds (target ≤ 1 s);
3. refresh after changing 1% of the objects: exactly those downloaded.

Downloads are counted in moto's request log (GetObject requests).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import textwrap
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT)]

from tests.helpers.entry_points import add_declared_builtins  # noqa: E402
from tests.helpers.moto_s3 import CREDENTIALS, start_moto  # noqa: E402

add_declared_builtins(ROOT / "pyproject.toml")  # the s3 source, before the next `make install`

import fourfold  # noqa: E402
from fourfold.index import refresh  # noqa: E402

BUCKET = "bench-knowledge"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--objects", type=int, default=500)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="fourfold-bench-sources-"))
    os.environ.update(CREDENTIALS)
    os.environ["FOURFOLD_HOME"] = str(work / "home")
    moto = start_moto(work)
    try:
        client = moto.client()
        client.create_bucket(Bucket=BUCKET)
        for i in range(args.objects):
            client.put_object(Bucket=BUCKET, Key=f"kb/topic-{i:04d}.md", Body=f"# Topic {i}\n\nParagraph about subject {i} and its remedy.\n".encode())
        manifest = work / "domain.yaml"
        manifest.write_text(
            textwrap.dedent(
                f"""
                fourfold: 1
                domain: bucket
                title: Knowledge in a bucket
                knowledge:
                  sources: [{{use: s3, with: {{bucket: {BUCKET}, prefix: kb, endpoint_url: '{moto.url}'}}}}]
                retrieval: {{use: bm25}}
                """
            ).lstrip()
        )
        from fourfold.plugins import get_host

        domain = fourfold.Domain(fourfold.load_manifest(manifest, get_host()), get_host())

        def timed_refresh():
            before = len(moto.downloads(BUCKET))
            started = time.perf_counter()
            report = refresh(domain)
            return report, time.perf_counter() - started, len(moto.downloads(BUCKET)) - before

        report, seconds, downloads = timed_refresh()
        print(f"first build: {args.objects} objects, {downloads} downloaded, {seconds:.2f} s, published {report.version}")

        report, seconds, downloads = timed_refresh()
        ok = downloads == 0 and seconds <= 1.0
        print(f"no-change refresh over {args.objects} S3 objects: {downloads} objects downloaded (target 0), "
              f"{seconds:.3f} s (target ≤ 1 s) -> {'OK' if ok else 'MISSED'}")

        changed = max(1, args.objects // 100)
        for i in range(changed):
            client.put_object(Bucket=BUCKET, Key=f"kb/topic-{i:04d}.md", Body=f"# Topic {i}\n\nRevised paragraph {i}.\n".encode())
        report, seconds, downloads = timed_refresh()
        print(f"refresh after changing {changed} objects: {downloads} downloaded, {len(report.changed)} changed, "
              f"{seconds:.2f} s, published {report.version}")
        return 0 if ok and downloads == changed else 1
    finally:
        moto.stop()


if __name__ == "__main__":
    sys.exit(main())
