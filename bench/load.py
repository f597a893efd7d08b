"""Load test: concurrent gradio_client users against the app launched on loopback.

    python bench/load.py [--artifacts artifacts] [--clients 20] [--requests 25] [--explain-share 0.2]

Starts `app.py` on 127.0.0.1 in a subprocess, then runs `--clients` threads, each sending `--requests`
requests (predict, or explain with probability `--explain-share`). Prints JSON: failed requests, p50/p99
latency per kind, and throughput. Traffic stays on loopback; the run is bounded in count and time.
"""

from __future__ import annotations

import argparse
import json
import random
import socket
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from gradio_client import Client

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sentiment.config import DEFAULT_IG_STEPS  # noqa: E402  (the app's default explanation steps)

REVIEWS = [
    "A warm, funny film with a wonderful cast; I would happily watch it again.",
    "Dull and far too long. The plot goes nowhere and the acting is wooden.",
    "Not bad, not great: a handsome production let down by a muddled final act.",
    "The best thriller I have seen in years, tense from the first scene to the last.",
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until_up(url: str, process: subprocess.Popen, timeout: float = 180.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"app exited with {process.returncode}")
        try:
            Client(url, verbose=False)
            return
        except Exception:  # not listening yet
            time.sleep(1)
    raise TimeoutError(f"app not up at {url} after {timeout} s")


def user(url: str, requests: int, explain_share: float, seed: int) -> list[tuple[str, float, bool]]:
    rng = random.Random(seed)
    client = Client(url, verbose=False)
    results = []
    for _ in range(requests):
        kind = "explain" if rng.random() < explain_share else "predict"
        review = rng.choice(REVIEWS)
        start = time.perf_counter()
        try:
            client.predict(review, api_name="/predict") if kind == "predict" else \
                client.predict(review, DEFAULT_IG_STEPS, api_name="/explain")
            ok = True
        except Exception:
            ok = False
        results.append((kind, time.perf_counter() - start, ok))
    return results


def summary(seconds: list[float]) -> dict:
    if not seconds:
        return {"n": 0}
    return {"n": len(seconds), "p50_s": statistics.median(seconds), "p99_s": float(np.percentile(seconds, 99))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--artifacts", default=str(ROOT / "artifacts"))
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--requests", type=int, default=25)
    parser.add_argument("--explain-share", type=float, default=0.2)
    args = parser.parse_args()
    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    process = subprocess.Popen([sys.executable, str(ROOT / "app.py"), "--artifacts", args.artifacts, "--host",
                                "127.0.0.1", "--port", str(port)], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    try:
        wait_until_up(url, process)
        start = time.perf_counter()
        with ThreadPoolExecutor(args.clients) as pool:
            futures = [pool.submit(user, url, args.requests, args.explain_share, seed) for seed in range(args.clients)]
            results = [r for f in futures for r in f.result()]
        wall = time.perf_counter() - start
    finally:
        process.terminate()
        process.wait(timeout=30)
    print(json.dumps({
        "clients": args.clients, "requests": len(results), "failed": sum(not ok for _, _, ok in results),
        "wall_s": wall, "requests_per_s": len(results) / wall,
        "predict": summary([s for k, s, ok in results if k == "predict" and ok]),
        "explain": summary([s for k, s, ok in results if k == "explain" and ok])}, indent=2))


if __name__ == "__main__":
    main()
