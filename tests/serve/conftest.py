"""Shared pieces of the Serve tests: Serve on the session's local Ray cluster, request helpers."""

from __future__ import annotations

import base64
import io
import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from PIL import Image

from ray_vlm.serve import stop_serve


@contextmanager
def serve_session() -> Iterator[None]:
    """Serve on the session's local Ray cluster (fixture ``ray_local``); Serve shuts down after,
    Ray stays up for the next tests."""
    stop_serve()  # a Serve left by an earlier test would keep its own HTTP port
    try:
        yield
    finally:
        stop_serve()


def demo_image(demo_assets: Path) -> Path:
    return next((demo_assets / "data/plm/shapes/images").glob("test_*.png"))


def png_data_url(image: Image.Image) -> str:
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def image_question(model: str, image_url: str, question: str = "Describe the image.") -> dict:
    """A one-image chat completion body, greedy and short."""
    content = [
        {"type": "image_url", "image_url": {"url": image_url}},
        {"type": "text", "text": question},
    ]
    return {
        "model": model,
        "messages": [{"role": "user", "content": content}],
        "max_tokens": 6,
        "temperature": 0,
    }


def post(url: str, body: dict | bytes, headers: dict | None = None) -> tuple[int, dict]:
    """POST JSON (or raw bytes) to ``url``; ``(status, parsed JSON body)`` for any status."""
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    req = urllib.request.Request(
        url, data, {"Content-Type": "application/json", **(headers or {})}, method="POST"
    )
    try:
        with urllib.request.urlopen(req, timeout=120) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def get(url: str, headers: dict | None = None) -> tuple[int, dict]:
    req = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=60) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())
