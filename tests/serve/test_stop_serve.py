"""``stop_serve`` shuts Serve down (controller and HTTP proxy gone) and is a no-op without it."""

from __future__ import annotations

import pytest
import ray
from ray.serve._private.constants import SERVE_CONTROLLER_NAME, SERVE_NAMESPACE

from ray_vlm.serve import start_serve, stop_serve

pytestmark = pytest.mark.usefixtures("ray_local")


def _controller_alive() -> bool:
    try:
        ray.get_actor(SERVE_CONTROLLER_NAME, namespace=SERVE_NAMESPACE)
    except ValueError:
        return False
    return True


def test_stop_serve_removes_the_controller_and_is_idempotent() -> None:
    start_serve()
    assert _controller_alive()
    stop_serve()
    assert not _controller_alive()
    stop_serve()  # nothing runs: no error, no wait
    start_serve()  # a fresh Serve starts after it
    assert _controller_alive()
    stop_serve()
