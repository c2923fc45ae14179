"""Killing a generation replica under load: every request is answered (the HTTP front re-sends
the requests the dead replica held) or fails cleanly; the failures are counted and reported."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import ray
from ray import serve

from ray_vlm.config.loader import config_from_dict
from ray_vlm.config.serve_schema import ServeConfig
from ray_vlm.serve.handle import GENERATOR_DEPLOYMENT
from ray_vlm.serve.server import free_loopback_port, image_data_url, run_server
from tests.serve.conftest import demo_image, image_question, post, serve_session

MODEL, APP = "tiny-llava", "fault"
REQUESTS, CONCURRENCY = 32, 8


@pytest.fixture(scope="module")
def endpoint(demo_assets: Path, ray_local):
    args = {
        "ckpt": str(demo_assets / "models" / "llava"),
        "model_name": MODEL,
        "app_name": APP,
        "port": free_loopback_port(),
        "batching": {"max_batch_size": 4},
        "replicas": {"min_replicas": 2, "max_replicas": 2, "num_cpus": 0.5},
    }
    with serve_session():
        yield run_server(config_from_dict(ServeConfig, args, "test"), blocking=False)


def _generator_replica_names() -> list[str]:
    prefix = f"SERVE_REPLICA::{APP}#{GENERATOR_DEPLOYMENT}#"
    names = [a["name"] for a in ray.util.list_named_actors(all_namespaces=True)]
    return [n for n in names if n.startswith(prefix)]


@pytest.mark.slow
def test_killing_a_replica_under_load_loses_no_request(endpoint, demo_assets: Path) -> None:
    body = {**image_question(MODEL, image_data_url(demo_image(demo_assets))), "max_tokens": 48}
    replicas = _generator_replica_names()
    assert len(replicas) == 2
    with ThreadPoolExecutor(CONCURRENCY) as pool:
        futures = [pool.submit(post, f"{endpoint}/chat/completions", body) for _ in range(REQUESTS)]
        while sum(f.done() for f in futures) < CONCURRENCY // 2:
            time.sleep(0.02)
        killed_while_pending = sum(not f.done() for f in futures)
        ray.kill(ray.get_actor(replicas[0], namespace="serve"), no_restart=True)
        results = [f.result() for f in futures]
    failed = [(status, out) for status, out in results if status != 200]
    print(
        f"\n{REQUESTS} requests, replica killed with {killed_while_pending} pending: "
        f"{REQUESTS - len(failed)} answered, {len(failed)} failed"
    )
    for status, out in failed:  # a failure must be a clean, retryable OpenAI-style error
        assert status in (503, 504) and out["error"]["type"] == "server_error", out
    assert not failed, f"{len(failed)} requests failed: {failed[:3]}"
    status, out = post(f"{endpoint}/chat/completions", body)
    assert status == 200, out
    deadline = time.time() + 90  # Serve replaces the dead replica; the app turns healthy again

    def recovered() -> bool:
        names = _generator_replica_names()
        replaced = len(names) == 2 and replicas[0] not in names
        return replaced and serve.status().applications[APP].status == "RUNNING"

    while not recovered():
        assert time.time() < deadline, f"not recovered: {serve.status().applications[APP]}"
        time.sleep(0.5)
