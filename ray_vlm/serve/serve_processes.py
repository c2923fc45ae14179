"""How Serve's own processes run: ``start_serve`` starts Serve with ray_vlm's process settings.

``SERVE_PROCESS_ENV`` reaches the Serve controller, which passes its environment on to the HTTP
proxies and every replica it creates (merged with the job's ``runtime_env``; other Ray processes,
such as Ray Data actors holding a ``VLMHandle``, are untouched). It is part of Ray Serve's
``RAY_SERVE_THROUGHPUT_OPTIMIZED`` mode: a replica runs its (async) user code on its own event
loop, and a handle's router runs on the caller's loop, instead of one extra thread and loop each,
which saves two thread hops per request and per handle call. ray_vlm's replicas never block
their loop: generation and image decoding run in worker threads.
"""

from __future__ import annotations

from typing import Any

from ray import serve

SERVE_PROCESS_ENV = {
    "RAY_SERVE_RUN_USER_CODE_IN_SEPARATE_THREAD": "0",
    "RAY_SERVE_RUN_ROUTER_IN_SEPARATE_LOOP": "0",
}
CONTROLLER_OPTIONS = {"runtime_env": {"env_vars": SERVE_PROCESS_ENV}}
"""``serve.start(controller_options=...)``; Serve config files carry it as ``controller_options``."""


def start_serve(http_options: dict[str, Any] | None = None) -> None:
    """Start Serve on the connected cluster (a no-op when it already runs there)."""
    serve.start(http_options=http_options, controller_options=CONTROLLER_OPTIONS)
