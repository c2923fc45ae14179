"""Ray Serve throughput with dynamic batching vs batching off, over HTTP on loopback (issue 5).

Run: ``.venv/bin/python benchmarks/serve_throughput.py [--quick]``.

Serves the tiny demo LLaVA (``make_demo_assets``, built in a temp dir) with ``run_server`` on a
free 127.0.0.1 port as two applications at once, each with one generation replica:
``/batched`` (``batching.max_batch_size=32``) and ``/unbatched`` (``max_batch_size=1``); both use
``--batch-wait-s`` as ``batching.batch_wait_timeout_s``. Only one of them is sent requests at a
time (the local cluster advertises 4 logical CPUs so both fit; the machine has 2 cores).

At each concurrency level (1, 8, 32), client threads, each holding one keep-alive HTTP connection,
send the same request (one 64x64 PNG + "Describe the image.", greedy, ``max_tokens`` fixed) back
to back. A level runs four segments, batched / unbatched / unbatched / batched, so that a
drifting machine load (other jobs) weighs on both modes alike; each segment sends at most half of
``--requests`` (at least ``1.5 x concurrency``) and stops issuing new ones after half of
``--level-seconds``. Warm-up requests (model load, first batches) are not counted.
requests/s = answered requests / segment wall time (summed over a mode's segments); latencies are
per request, client side.

Prints one JSON line at the end: ``batched_rps``, ``unbatched_rps``, ``ratio``, ``p50_ms``,
``p99_ms`` (batched, concurrency 32), ``errors`` (non-200 answers and failed connections, all
levels and modes) and the per-mode, per-concurrency breakdown. ``--smoke``: the same code at toy
size (concurrency 1 and 4, a few requests, 2-s levels).
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np  # noqa: E402
import ray  # noqa: E402
from ray import serve  # noqa: E402

from ray_vlm.config.serve_schema import BatchingConfig, SamplingDefaults, ServeConfig  # noqa: E402
from ray_vlm.demo.assets import make_demo_assets  # noqa: E402
from ray_vlm.serve.server import free_loopback_port, image_data_url, run_server  # noqa: E402

CONCURRENCY = (1, 8, 32)
MODES = ("batched", "unbatched")
SEGMENTS = ("batched", "unbatched", "unbatched", "batched")
MAX_TOKENS = 16
MODEL = "tiny-llava"
WARMUP_REQUESTS = 8
MAX_BATCH_SIZE = 32
BATCH_WAIT_S = 0.25
"""Measured here: at concurrency 32 the HTTP front (proxy and ingress share the 2 cores with the
replica) takes ~0.2 s to hand a whole round of 32 requests to the replica. 0.02 s (the config
default) formed batches of 1-4 requests; 0.1 s often split a round into two batches that each
wait out the timeout (ratio 3.8-4.1 over three runs); 0.25 s keeps a round in one batch (ratio
4.1-5.0 over four runs). The price is latency at low concurrency: a batch that will not fill waits
the full 0.25 s (see the concurrency 1 and 8 rows)."""


def request_body(image: Path) -> bytes:
    content = [
        {"type": "image_url", "image_url": {"url": image_data_url(image)}},
        {"type": "text", "text": "Describe the image."},
    ]
    body = {
        "model": MODEL,
        "messages": [{"role": "user", "content": content}],
        "max_tokens": MAX_TOKENS,
        "temperature": 0,
    }
    return json.dumps(body).encode()


class Client:
    """POSTs ``body`` to ``{prefix}/v1/chat/completions``; one keep-alive connection a thread."""

    def __init__(self, port: int, prefix: str, body: bytes) -> None:
        self.port, self.path, self.body = port, f"{prefix}/v1/chat/completions", body
        self.local = threading.local()

    def _post(self) -> int:
        conn = getattr(self.local, "conn", None)
        if conn is None:
            conn = self.local.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)
        try:
            conn.request("POST", self.path, self.body, {"Content-Type": "application/json"})
            resp = conn.getresponse()
            resp.read()
        except (OSError, http.client.HTTPException):
            conn.close()
            self.local.conn = None
            return 0
        return resp.status

    def segment(self, concurrency: int, max_requests: int, max_seconds: float) -> dict:
        """``{latencies (s), errors, wall (s)}`` of up to ``max_requests`` requests."""
        latencies: list[float] = []
        errors = issued = 0
        lock = threading.Lock()
        start = time.perf_counter()

        def worker() -> None:
            nonlocal errors, issued
            while True:
                with lock:
                    if issued >= max_requests or time.perf_counter() - start > max_seconds:
                        return
                    issued += 1
                t0 = time.perf_counter()
                status = self._post()
                elapsed = time.perf_counter() - t0
                with lock:
                    if status == 200:
                        latencies.append(elapsed)
                    else:
                        errors += 1

        with ThreadPoolExecutor(concurrency) as pool:
            for f in [pool.submit(worker) for _ in range(concurrency)]:
                f.result()
        return {"latencies": latencies, "errors": errors, "wall": time.perf_counter() - start}


def summary(segments: list[dict]) -> dict:
    ms = np.asarray([t for s in segments for t in s["latencies"]]) * 1000
    wall = sum(s["wall"] for s in segments)
    return {
        "requests": len(ms),
        "errors": sum(s["errors"] for s in segments),
        "rps": round(len(ms) / wall, 2),
        "p50_ms": round(float(np.percentile(ms, 50)), 1) if len(ms) else None,
        "p99_ms": round(float(np.percentile(ms, 99)), 1) if len(ms) else None,
    }


def deploy(ckpt: Path, port: int, mode: str, args: argparse.Namespace) -> str:
    """Deploy one application; returns its route prefix."""
    cfg = ServeConfig(
        ckpt=str(ckpt),
        model_name=MODEL,
        app_name=f"bench_{mode}",
        route_prefix=f"/{mode}",
        port=port,
        batching=BatchingConfig(args.max_batch_size if mode == "batched" else 1, args.batch_wait_s),
        defaults=SamplingDefaults(max_tokens=MAX_TOKENS, temperature=0.0),
    )
    run_server(cfg, blocking=False)
    return cfg.route_prefix


def run(ckpt: Path, body: bytes, args: argparse.Namespace) -> dict[str, dict[str, dict]]:
    """``{mode: {concurrency: summary}}`` over every level."""
    port = free_loopback_port()
    clients = {mode: Client(port, deploy(ckpt, port, mode, args), body) for mode in MODES}
    for client in clients.values():
        client.segment(WARMUP_REQUESTS, WARMUP_REQUESTS, args.level_seconds)
    results: dict[str, dict[str, dict]] = {mode: {} for mode in MODES}
    for c in args.concurrency:
        segments: dict[str, list[dict]] = {mode: [] for mode in MODES}
        for mode in SEGMENTS:
            limit = max(args.requests // 2, 3 * c // 2)
            segments[mode].append(clients[mode].segment(c, limit, args.level_seconds / 2))
        for mode in MODES:
            results[mode][str(c)] = {
                **summary(segments[mode]),
                "load_avg_1m": round(os.getloadavg()[0], 2),
            }
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer requests, shorter levels")
    parser.add_argument("--requests", type=int, default=0, help="most requests per level and mode")
    parser.add_argument("--level-seconds", type=float, default=0.0, help="time cap per level/mode")
    parser.add_argument("--batch-wait-s", type=float, default=BATCH_WAIT_S)
    parser.add_argument("--max-batch-size", type=int, default=MAX_BATCH_SIZE, help="batched mode")
    parser.add_argument("--concurrency", type=int, nargs="+", default=list(CONCURRENCY))
    parser.add_argument("--smoke", action="store_true", help="toy size: concurrency 1 and 4")
    args = parser.parse_args()
    if args.smoke:
        args.requests, args.level_seconds, args.concurrency = 8, 2.0, [1, 4]
    args.requests = args.requests or (64 if args.quick else 384)
    args.level_seconds = args.level_seconds or (16.0 if args.quick else 40.0)

    with tempfile.TemporaryDirectory(prefix="ray_vlm_bench_serve_") as tmp:
        assets = make_demo_assets(tmp, counts={"train": 4, "test": 4}, models=("llava",))
        body = request_body(next((assets / "data/plm/shapes/images").glob("test_*.png")))
        # Logical CPUs: both applications' replicas fit; only one is busy at a time.
        ray.init(num_cpus=4, include_dashboard=False, log_to_driver=False)
        try:
            results = run(assets / "models/llava", body, args)
        finally:
            serve.shutdown()
            ray.shutdown()

    top = str(max(args.concurrency))
    batched, unbatched = results["batched"][top], results["unbatched"][top]
    result = {
        "batched_rps": batched["rps"],
        "unbatched_rps": unbatched["rps"],
        "ratio": round(batched["rps"] / max(unbatched["rps"], 1e-9), 2),
        "p50_ms": batched["p50_ms"],
        "p99_ms": batched["p99_ms"],
        "errors": sum(level["errors"] for mode in results.values() for level in mode.values()),
        "max_tokens": MAX_TOKENS,
        "max_batch_size": args.max_batch_size,
        "batch_wait_timeout_s": args.batch_wait_s,
        "per_concurrency": results,
    }
    if args.smoke:
        result["smoke"] = True
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
