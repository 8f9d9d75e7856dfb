"""Serving benchmark: ``/ask`` latency and throughput over HTTP, and SmolLM2 speed.

    python tests/benchmarks/bench_serving.py [--home DIR] [--requests N]

Serves the shipped legal and medical manifests (both extractive) with
``fourfold serve`` in its own process, then measures from this one:

- ``/ask`` on legal (extractive): latency p50/p95 at concurrency 1 and 8, requests/s;
- ``/ask`` on medical with ``stream: true``: time to the first streamed text over HTTP;
- SmolLM2 in-process: time to first token and tokens/s of generation, on grounded
  prompts built from the medical index;
- ``/metrics`` overhead: ``/ask`` p50 at concurrency 1 while a scraper reads
  ``/metrics`` every ``--scrape-interval`` seconds, against the same requests without
  scraping (rounds alternate, so drift hits both alike). ``--metrics-only`` serves only
  legal and measures just that.

Indexes are built first when the state dir (``--home``, default a temporary folder)
has none; pass the same ``--home`` again to skip that.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
MANIFESTS = REPO / "deploy" / "manifests"


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    k = (len(ordered) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def questions(domain: str) -> list[str]:
    path = MANIFESTS / domain / "eval-questions.jsonl"
    return [json.loads(line)["question"] for line in path.read_text().splitlines() if line.strip()]


METRICS_TOKEN = "bench-metrics-token-0123456789"


def prepare(home: Path, domains: tuple[str, ...] = ("legal", "medical")) -> None:
    """Indexes built and SmolLM2 converted before anything is timed."""
    from fourfold_generators.smollm2 import smollm2_checkpoint

    if "medical" in domains:
        smollm2_checkpoint(home / "models")
    env = {**os.environ, "FOURFOLD_HOME": str(home)}
    for domain in domains:
        if (home / "domains" / domain / "index" / "CURRENT").exists():
            continue
        print(f"building the {domain} index in {home} …", flush=True)
        subprocess.run([sys.executable, "-m", "fourfold", "index", "build", str(MANIFESTS / f"{domain}.yaml")], env=env, check=True,
                       stdout=subprocess.DEVNULL)


def start_server(home: Path, port: int, domains: tuple[str, ...] = ("legal", "medical")) -> subprocess.Popen:
    env = {**os.environ, "FOURFOLD_HOME": str(home), "HF_HUB_OFFLINE": "1", "FOURFOLD_METRICS_TOKEN": METRICS_TOKEN}
    env.pop("FOURFOLD_LEGAL_TOKENS", None)
    env.pop("FOURFOLD_MEDICAL_TOKENS", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "fourfold", "serve", *(str(MANIFESTS / f"{d}.yaml") for d in domains),
         "--port", str(port), "--log-level", "warning"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    import httpx

    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"fourfold serve exited: {proc.stderr.read().decode()[-2000:]}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200:
                return proc
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise SystemExit("fourfold serve did not start in 300 s")


def token(home: Path, domain: str) -> str:
    return (home / "domains" / domain / "api-token").read_text().strip()


def ask_latencies(url: str, tok: str, qs: list[str], total: int, concurrency: int) -> tuple[list[float], float, int]:
    import httpx

    latencies: list[float] = []
    errors = 0
    lock = threading.Lock()
    counter = iter(range(total))

    def worker() -> None:
        nonlocal errors
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {tok}"}, timeout=120) as client:
            while True:
                with lock:
                    i = next(counter, None)
                if i is None:
                    return
                started = time.perf_counter()
                r = client.post("/v1/domains/legal/ask", json={"question": qs[i % len(qs)]})
                took = time.perf_counter() - started
                with lock:
                    if r.status_code == 200 and r.json()["citations"] is not None:
                        latencies.append(took)
                    else:
                        errors += 1

    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return latencies, time.perf_counter() - started, errors


def metrics_overhead(url: str, tok: str, qs: list[str], n: int, interval: float, rounds: int = 6) -> dict:
    """p50 of /ask at concurrency 1 without and with a scraper of /metrics, in rounds
    ordered A B B A A B … so that drift on a shared machine hits both alike; and how
    long one scrape takes."""
    import httpx

    plain: list[float] = []
    scraped: list[float] = []
    scrape_ms: list[float] = []
    sizes: list[int] = []

    def scraping_round() -> list[float]:
        stop = threading.Event()

        def scrape() -> None:
            with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {METRICS_TOKEN}"}, timeout=30) as client:
                while not stop.is_set():
                    started = time.perf_counter()
                    r = client.get("/metrics")
                    scrape_ms.append((time.perf_counter() - started) * 1000)
                    if r.status_code != 200:
                        raise SystemExit(f"/metrics answered {r.status_code}: {r.text[:200]}")
                    sizes.append(len(r.content))
                    stop.wait(interval)

        scraper = threading.Thread(target=scrape)
        scraper.start()
        try:
            return ask_latencies(url, tok, qs, n, 1)[0]
        finally:
            stop.set()
            scraper.join()

    for i in range(rounds):
        with_scraping = i % 4 in (1, 2)
        if with_scraping:
            scraped.extend(scraping_round())
        else:
            plain.extend(ask_latencies(url, tok, qs, n, 1)[0])
    p50_plain, p50_scraped = percentile(plain, .5) * 1000, percentile(scraped, .5) * 1000
    return {
        "p50_ms_without": round(p50_plain, 2),
        "p50_ms_with_scraping": round(p50_scraped, 2),
        "overhead_percent": round((p50_scraped - p50_plain) / p50_plain * 100, 2),
        "scrapes": len(scrape_ms),
        "scrape_ms_p50": round(statistics.median(scrape_ms), 2) if scrape_ms else None,
        "exposition_bytes": max(sizes) if sizes else 0,
        "requests_each": len(plain),
    }


def print_overhead(result: dict, interval: float) -> None:
    print(f"\n/metrics scraped every {interval:g} s during /ask (legal, concurrency 1, {result['requests_each']} requests each way)")
    print(f"  p50 without scraping {result['p50_ms_without']:.1f} ms, with {result['p50_ms_with_scraping']:.1f} ms: "
          f"overhead {result['overhead_percent']:+.2f}% (target <= 2%)")
    print(f"  {result['scrapes']} scrapes, p50 {result['scrape_ms_p50']} ms each, {result['exposition_bytes']} bytes")


def http_first_text(url: str, tok: str, qs: list[str], n: int) -> list[float]:
    import httpx

    out = []
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {tok}"}, timeout=300) as client:
        for q in qs[:n]:
            started = time.perf_counter()
            first = None
            with client.stream("POST", "/v1/domains/medical/ask", json={"question": q, "stream": True, "max_tokens": 48}) as r:
                for line in r.iter_lines():
                    if first is None and line.startswith("event: delta"):
                        first = time.perf_counter() - started
            if first is not None:
                out.append(first)
    return out


def smollm2_speed(home: Path, qs: list[str], n: int, max_tokens: int) -> tuple[list[float], list[float], list[int]]:
    os.environ["FOURFOLD_HOME"] = str(home)
    import fourfold

    domain = fourfold.Domain.from_file(MANIFESTS / "medical.yaml")
    generator = domain.build("generator", "smollm2")  # the medical manifest answers extractively
    generator.prepare(fourfold.NullProgress())
    tokenizer = generator.loaded().tokenizer
    ttfts, rates, counts = [], [], []
    for q in qs[:n]:
        passages, _ = domain.search(q)
        prompt = domain.prompt_strategy.build(q, passages, [])
        started = time.perf_counter()
        first, text = None, ""
        for piece in generator.stream(prompt, fourfold.GenerationLimits(max_tokens=max_tokens)):
            first = first if first is not None else time.perf_counter() - started
            text += piece
        total = time.perf_counter() - started
        tokens = len(tokenizer(text, add_special_tokens=False)["input_ids"])
        if first is not None and tokens > 1 and total > first:
            ttfts.append(first)
            rates.append((tokens - 1) / (total - first))
            counts.append(tokens)
    return ttfts, rates, counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--home", type=Path, help="state dir to use (kept); default: a temporary one")
    parser.add_argument("--requests", type=int, default=60, help="/ask requests per concurrency level")
    parser.add_argument("--smollm2-prompts", type=int, default=5, help="grounded prompts for the SmolLM2 figures")
    parser.add_argument("--max-tokens", type=int, default=64, help="tokens generated per SmolLM2 answer")
    parser.add_argument("--scrape-interval", type=float, default=1.0, help="seconds between /metrics scrapes (Prometheus: 15)")
    parser.add_argument("--metrics-only", action="store_true", help="serve legal only and measure just the /metrics overhead")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

    temporary = args.home is None
    home = Path(tempfile.mkdtemp(prefix="fourfold-bench-")) if temporary else args.home.resolve()
    home.mkdir(parents=True, exist_ok=True)
    domains = ("legal",) if args.metrics_only else ("legal", "medical")
    prepare(home, domains)
    port = free_port()
    server = start_server(home, port, domains)
    url = f"http://127.0.0.1:{port}"
    if args.metrics_only:
        try:
            legal_qs = questions("legal")
            n = min(args.requests, len(legal_qs))
            ask_latencies(url, token(home, "legal"), legal_qs[:n], n, 1)  # loads models, caches sentence vectors
            result = metrics_overhead(url, token(home, "legal"), legal_qs[:n], n, args.scrape_interval)
            print_overhead(result, args.scrape_interval)
            print(json.dumps(result))
        finally:
            server.send_signal(signal.SIGTERM)
            server.wait(timeout=30)
            if temporary:
                shutil.rmtree(home, ignore_errors=True)
        return
    try:
        legal_qs = questions("legal")
        ask_latencies(url, token(home, "legal"), ["What is this about?", "Who approves contracts?"], 2, 1)  # loads the models
        n = min(args.requests, len(legal_qs))
        print(f"\n/ask over HTTP, domain legal (extractive), {n} distinct questions per row")
        print(f"{'':>34} {'p50 ms':>8} {'p95 ms':>8} {'req/s':>7} {'errors':>6}")
        rows = [
            ("first sight, concurrency 1", 1),  # sentence vectors of these passages not cached yet
            ("seen before, concurrency 1", 1),
            ("seen before, concurrency 8", 8),
        ]
        for label, concurrency in rows:
            lat, took, errors = ask_latencies(url, token(home, "legal"), legal_qs[:n], n, concurrency)
            print(f"{label:>34} {percentile(lat, .5) * 1000:>8.1f} {percentile(lat, .95) * 1000:>8.1f} "
                  f"{len(lat) / took:>7.1f} {errors:>6}")

        print_overhead(metrics_overhead(url, token(home, "legal"), legal_qs[:n], n, args.scrape_interval), args.scrape_interval)

        medical_qs = questions("medical")
        firsts = http_first_text(url, token(home, "medical"), medical_qs, 3)
        if firsts:
            print(f"\n/ask stream over HTTP, domain medical (extractive): first text after "
                  f"p50 {statistics.median(firsts) * 1000:.0f} ms (retrieval + prompt + first token), n={len(firsts)}")
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)

    ttfts, rates, counts = smollm2_speed(home, medical_qs, args.smollm2_prompts, args.max_tokens)
    if rates:
        print(f"\nSmolLM2-135M in-process, grounded medical prompts, {len(rates)} answers of ~{statistics.mean(counts):.0f} tokens")
        print(f"  time to first token: p50 {statistics.median(ttfts) * 1000:.0f} ms, max {max(ttfts) * 1000:.0f} ms")
        print(f"  generation speed:    {statistics.median(rates):.1f} tokens/s (median), {min(rates):.1f}–{max(rates):.1f}")
    if temporary:
        shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    main()
