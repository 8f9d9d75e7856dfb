"""Container health checks: ``python -m fourfold.worker.health worker|beat``.

- ``worker``: a worker on this host announced itself within the last 30 s (the worker
  records itself every 10 s in the shared state while it can reach the broker).
- ``beat``: the beat schedule file in the state dir was written within the last
  10 minutes (beat rewrites it at least every 3 minutes while it runs).

Exit status 0 when healthy, 1 otherwise, with one line saying why.
"""

from __future__ import annotations

import socket
import sys
import time

from fourfold.settings import get_settings

BEAT_STALE_SECONDS = 600


def check_worker() -> tuple[bool, str]:
    from fourfold.worker.state import open_state

    host = socket.gethostname()
    mine = {n: w for n, w in open_state(get_settings()).workers().items() if w.get("host") == host}
    if not mine:
        return False, f"no worker on {host} recorded itself in the last 30 s"
    return True, "alive: " + ", ".join(sorted(mine))


def check_beat() -> tuple[bool, str]:
    state_dir = get_settings().state_dir
    files = sorted(state_dir.glob("beat-schedule*"), key=lambda p: p.stat().st_mtime, reverse=True)
    if not files:
        return False, f"no beat schedule file in {state_dir}"
    age = time.time() - files[0].stat().st_mtime
    if age > BEAT_STALE_SECONDS:
        return False, f"{files[0]} was last written {age:.0f}s ago"
    return True, f"{files[0].name} written {age:.0f}s ago"


def main(argv: list[str]) -> int:
    what = argv[0] if argv else "worker"
    checks = {"worker": check_worker, "beat": check_beat}
    if what not in checks:
        print(f"usage: python -m fourfold.worker.health worker|beat (got '{what}')", file=sys.stderr)
        return 2
    try:
        ok, message = checks[what]()
    except Exception as exc:
        ok, message = False, f"{type(exc).__name__}: {exc}"
    print(message, file=sys.stdout if ok else sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
