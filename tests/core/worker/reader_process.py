"""A process that serves queries: ``python reader_process.py MANIFEST OUT QUERY…``.

Searches the queries round-robin until killed, appending one JSON line per search to
OUT: ``{"t", "version", "hits", "error"}``. It loads the domain once and never
restarts, so the versions it reports show whether it follows publishes by itself.
"""

from __future__ import annotations

import json
import os
import sys
import time


def main() -> None:
    manifest, out, *queries = sys.argv[1:]
    import fourfold

    domain = fourfold.Domain.from_file(manifest)
    with open(out, "a", encoding="utf-8") as f:
        i = 0
        while True:
            query = queries[i % len(queries)]
            i += 1
            record = {"t": time.time(), "pid": os.getpid()}
            try:
                passages, version = domain.search(query)
                record.update(version=version, hits=len(passages))
            except Exception as exc:  # reported, never fatal: the test counts these
                record.update(version=None, hits=0, error=f"{type(exc).__name__}: {exc}")
            f.write(json.dumps(record) + "\n")
            f.flush()
            time.sleep(0.02)


if __name__ == "__main__":
    main()
