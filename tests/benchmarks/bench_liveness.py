"""Liveness of background refreshes at full size: the fault-injection tests of
``tests/core/worker/test_liveness.py`` with 5 rounds each and Redis outages of 60 s and
120 s under the default 30 s writer lease.

    python tests/benchmarks/bench_liveness.py [--rounds 5] [--outages 60,120] [--lease 30] [--signals SIGTERM,SIGKILL]

Needs Redis on 127.0.0.1:6379 and ``redis-server`` on the PATH (the outage runs start
their own). Prints the ``FIGURE`` lines the tests emit, then pytest's summary.

Targets: after a main-process SIGKILL and a worker restart the change is indexed within
60 s, every round, on both brokers; an edit made during a refresh is indexed by the
follow-up run, every round; a refresh survives the outages (SIGTERM and SIGKILL of
Redis) with its change indexed.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TESTS = "tests/core/worker/test_liveness.py"


def run(selection: str, env: dict[str, str]) -> int:
    argv = [sys.executable, "-m", "pytest", "-q", "-s", "-p", "no:cacheprovider", TESTS, "-k", selection]
    done = subprocess.run(argv, cwd=ROOT, env={**os.environ, **env}, capture_output=True, text=True)
    for line in done.stdout.splitlines():
        if "FIGURE" in line:  # pytest's progress dots may precede it on the line
            print(line[line.index("FIGURE"):], flush=True)
        elif " passed" in line or " failed" in line or line.startswith(("FAILED", "ERROR")):
            print(line, flush=True)
    return done.returncode


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--outages", default="60,120", help="Redis outage lengths in seconds, comma-separated")
    parser.add_argument("--lease", type=int, default=30, help="FOURFOLD_LEASE_SECONDS during the outages")
    parser.add_argument("--signals", default="SIGTERM,SIGKILL", help="how Redis is stopped for each outage")
    args = parser.parse_args()
    env = {
        "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false", "FOURFOLD_LIVENESS_ROUNDS": str(args.rounds),
        "FOURFOLD_LIVENESS_SIGNALS": args.signals,
    }
    status = run("main_process or follow_up", env) if args.rounds > 0 else 0
    for outage in [float(x) for x in args.outages.split(",") if x.strip()]:
        status |= run(
            "outage",
            {**env, "FOURFOLD_LIVENESS_LEASE_SECONDS": str(args.lease), "FOURFOLD_LIVENESS_OUTAGE_SECONDS": str(outage)},
        )
    return status


if __name__ == "__main__":
    sys.exit(main())
