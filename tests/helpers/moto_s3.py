"""moto's S3 server in its own process: the local stand-in for an S3-compatible store.

Its request log (one line per request, werkzeug's format) is kept in a file, so a test
can count what a client asked for, e.g. how many objects it downloaded.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class MotoServer:
    url: str
    process: subprocess.Popen
    log: Path

    def requests(self) -> list[str]:
        """The request lines served so far (``"GET /bucket/key HTTP/1.1"``)."""
        return re.findall(r'"([A-Z]+ \S+ HTTP/[\d.]+)"', self.log.read_text(errors="replace"))

    def downloads(self, bucket: str) -> list[str]:
        """Keys of the GetObject requests served for ``bucket`` so far (listings aside)."""
        out = []
        for line in self.requests():
            method, target, _ = line.split(" ")
            if method == "GET" and target.startswith(f"/{bucket}/") and "?" not in target and len(target) > len(bucket) + 2:
                out.append(target[len(bucket) + 2 :])
        return out

    def client(self):
        import boto3

        return boto3.session.Session(
            aws_access_key_id=CREDENTIALS["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
            region_name=CREDENTIALS["AWS_DEFAULT_REGION"],
        ).client("s3", endpoint_url=self.url)

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()


def start_moto(folder: Path, timeout: float = 60) -> MotoServer:
    """Start ``python -m moto.server`` on a free port; return once it answers."""
    port = free_port()
    log = folder / "moto.log"
    out = open(log, "wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=out, stderr=subprocess.STDOUT, env={**os.environ, **CREDENTIALS},
    )
    out.close()
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"moto's server exited: {log.read_text(errors='replace')[-2000:]}")
        try:
            httpx.get(f"{url}/moto-api/", timeout=1)
            return MotoServer(url, process, log)
        except httpx.HTTPError:
            if time.monotonic() > deadline:
                process.kill()
                raise RuntimeError("moto's server did not start") from None
            time.sleep(0.2)
