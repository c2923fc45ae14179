"""How Serve's own processes run: ``start_serve`` starts Serve with ray_vlm's process settings,
``stop_serve`` shuts it down without leaving a call behind to fail on the console.

``SERVE_PROCESS_ENV`` reaches the Serve controller, which passes its environment on to the HTTP
proxies and every replica it creates (merged with the job's ``runtime_env``; other Ray processes,
such as Ray Data actors holding a ``VLMHandle``, are untouched). It is part of Ray Serve's
``RAY_SERVE_THROUGHPUT_OPTIMIZED`` mode: a replica runs its (async) user code on its own event
loop, and a handle's router runs on the caller's loop, instead of one extra thread and loop each,
which saves two thread hops per request and per handle call. ray_vlm's replicas never block
their loop: generation and image decoding run in worker threads.
"""

from __future__ import annotations

import logging
from typing import Any

import ray
from ray import serve
from ray.serve.config import HTTPOptions
from ray.serve.context import _disconnect, _get_global_client
from ray.serve.exceptions import RayServeException

logger = logging.getLogger(__name__)

SERVE_PROCESS_ENV = {
    "RAY_SERVE_RUN_USER_CODE_IN_SEPARATE_THREAD": "0",
    "RAY_SERVE_RUN_ROUTER_IN_SEPARATE_LOOP": "0",
}
DEFAULT_HTTP_HOST = HTTPOptions().host
CONTROLLER_OPTIONS = {"runtime_env": {"env_vars": SERVE_PROCESS_ENV}}
"""``serve.start(controller_options=...)``; Serve config files carry it as ``controller_options``."""


def start_serve(http_options: dict[str, Any] | None = None) -> None:
    """Start Serve on the connected cluster (a no-op when it already runs there)."""
    serve.start(http_options=http_options, controller_options=CONTROLLER_OPTIONS)


def serve_running() -> bool:
    """Whether Serve runs on the connected cluster."""
    try:
        _get_global_client()
    except RayServeException:
        return False
    return True


def serve_http_host() -> str:
    """The address Serve's HTTP proxies bind on the connected cluster; Serve's default
    (``127.0.0.1``, what a deploy starts it with) when it does not run there yet."""
    try:
        return _get_global_client().http_config.host
    except RayServeException:
        return DEFAULT_HTTP_HOST


def stop_serve(timeout_s: float = 30.0) -> None:
    """Shut Serve down on the connected cluster (applications, HTTP proxies, controller), as
    ``serve.shutdown()`` does; a no-op when Serve does not run there.

    ``serve.shutdown()`` (Ray 2.60) calls ``ServeController.graceful_shutdown`` and waits for it
    until the controller kills itself; the controller's methods retry forever
    (``max_task_retries=-1``), so the killed call is reported on the driver's console as a
    ``(raylet) Task ServeController.graceful_shutdown failed ... will be retried`` line. Here the
    same call is made without retries: the controller dying is its expected end.
    """
    try:
        client = _get_global_client()
    except RayServeException:
        return
    client.shutdown_cached_handles()
    shutdown = client._controller.graceful_shutdown.options(max_task_retries=0)
    try:
        ray.get(shutdown.remote(), timeout=timeout_s)
    except ray.exceptions.RayActorError:
        pass  # the controller is gone: Serve is shut down
    except ray.exceptions.GetTimeoutError:
        logger.warning("Serve's controller did not shut down within %.0f s", timeout_s)
    client._shutdown = True
    _disconnect()
