"""Run the endpoint from Python or ``ray-vlm serve``, and ask it one question (the demo).

``run_server(cfg)`` joins the Ray cluster named by ``RAY_ADDRESS`` or starts a local one, starts
Serve's HTTP proxy on ``cfg.host:cfg.port`` and deploys the application.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import socket
import time
import urllib.request
from pathlib import Path
from typing import Any

from ray import serve
from ray.serve.context import _get_global_client

from ray_vlm.config.loader import ConfigError
from ray_vlm.config.serve_schema import ServeConfig
from ray_vlm.export import locate_model
from ray_vlm.preprocess.ray_runtime import ensure_ray
from ray_vlm.preprocess.resources import check_fits, serve_demand, with_replica_gpus
from ray_vlm.serve.app import build_application
from ray_vlm.serve.serve_processes import start_serve, stop_serve


def free_loopback_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def base_url(cfg: ServeConfig) -> str:
    """What to give the OpenAI client as ``base_url``, e.g. ``http://127.0.0.1:8000/v1``."""
    host = "127.0.0.1" if cfg.host in ("0.0.0.0", "::") else cfg.host
    return f"http://{host}:{cfg.port}{cfg.route_prefix.rstrip('/')}/v1"


def _check_http_address(cfg: ServeConfig) -> None:
    """Serve keeps the HTTP address it started with (a new one is ignored with a warning): say so."""
    running = _get_global_client().http_config
    if (running.host, running.port) != (cfg.host, cfg.port):
        raise ConfigError(
            f"keys 'host', 'port': Serve already runs on this Ray cluster at "
            f"{running.host}:{running.port}; use those, or stop it first (`serve shutdown`)"
        )


def run_server(cfg: ServeConfig, blocking: bool) -> str:
    """Deploy the application and return its ``base_url``; ``blocking`` waits for Ctrl-C, then
    shuts Serve down. A non-loopback ``host`` without an API key is refused first
    (``AuthConfig.check_exposure``; the key is looked up here, on this driver). The model is
    located next, on this driver (a raw checkpoint consolidated, a hub id checked; ``UserError``
    if unreachable), and the replicas must fit the cluster."""
    cfg.auth.check_exposure(cfg.host)
    cfg = dataclasses.replace(
        cfg, model_name=cfg.served_model_name, ckpt=locate_model(cfg.ckpt, "ckpt")
    )
    ensure_ray(serve_demand(cfg).cpus)
    cfg = with_replica_gpus(cfg)
    check_fits(serve_demand(cfg))
    start_serve({"host": cfg.host, "port": cfg.port})
    _check_http_address(cfg)
    serve.run(build_application(cfg), name=cfg.app_name, route_prefix=cfg.route_prefix)
    url = base_url(cfg)
    if blocking:
        print(f"serving '{cfg.served_model_name}' at {url} (Ctrl-C stops)", flush=True)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            stop_serve()
    return url


def image_data_url(path: str | Path) -> str:
    """A file's bytes as a ``data:image/...;base64,...`` URL (what clients send)."""
    suffix = Path(path).suffix.lstrip(".").lower().replace("jpg", "jpeg") or "png"
    return f"data:image/{suffix};base64,{base64.b64encode(Path(path).read_bytes()).decode()}"


def post_chat(url: str, body: dict[str, Any], api_key: str = "", timeout_s: float = 60.0) -> dict:
    """POST ``body`` to ``{url}/chat/completions``; the parsed JSON answer (raises on non-2xx)."""
    headers = {"Content-Type": "application/json"}
    if api_key:
        headers["Authorization"] = f"Bearer {api_key}"
    req = urllib.request.Request(
        f"{url}/chat/completions", json.dumps(body).encode(), headers, method="POST"
    )
    with urllib.request.urlopen(req, timeout=timeout_s) as resp:
        return json.loads(resp.read())


def serve_and_ask(model_dir: str | Path, image: str | Path, question: str) -> dict[str, Any]:
    """Serve ``model_dir`` on a free loopback port, send one real HTTP request with ``image``,
    shut Serve down. Returns ``{"url", "answer", "usage", "seconds"}``. Uses the running Ray
    cluster, or starts a local one."""
    cfg = ServeConfig(ckpt=str(model_dir), port=free_loopback_port(), app_name="ray_vlm_demo")
    url = run_server(cfg, blocking=False)
    try:
        content = [
            {"type": "image_url", "image_url": {"url": image_data_url(image)}},
            {"type": "text", "text": question},
        ]
        body = {
            "model": cfg.served_model_name,
            "messages": [{"role": "user", "content": content}],
            "max_tokens": 16,
            "temperature": 0,
        }
        start = time.perf_counter()
        answer = post_chat(url, body)
        seconds = time.perf_counter() - start
    finally:
        stop_serve()
    return {
        "url": url,
        "answer": answer["choices"][0]["message"]["content"],
        "usage": answer["usage"],
        "seconds": round(seconds, 3),
    }
