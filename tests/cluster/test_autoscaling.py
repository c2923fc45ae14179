"""Autoscaling for real on one machine: Ray's ``fake_multinode`` provider with node types derived
from ``cluster.yaml`` (``fake_cluster.py``). The head has no CPU and no worker node runs at first;
a submitted 2-worker fine-tune (2 training workers + a preprocessing actor each, 1 CPU each; a
fake node has 2) makes the autoscaler start worker nodes, the job succeeds, and idle nodes are
terminated again (``idle_timeout_minutes`` scaled to seconds).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from ray._private.services import get_node_ip_address

from ray_vlm.train.run_state import read_state
from tests.cluster.fake_cluster import fake_cluster_config
from tests.cluster.ray_head import RayHead, finetune_entrypoint, free_port
from tests.conftest import REPO

pytestmark = pytest.mark.slow

SCALE_DOWN_TIMEOUT_S = 180


@pytest.fixture(scope="module")
def head(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RayHead]:
    root = tmp_path_factory.mktemp("fake_cluster")
    gcs_port = free_port()
    launcher = yaml.safe_load((REPO / "cluster.yaml").read_text())
    config = fake_cluster_config(launcher, f"{get_node_ip_address()}:{gcs_port}")
    (root / "autoscaling.json").write_text(json.dumps(config))
    head = RayHead.start(
        root,
        f"--autoscaling-config={root / 'autoscaling.json'}",
        "--num-cpus=0",
        env={"RAY_FAKE_CLUSTER": "1", "AUTOSCALER_UPDATE_INTERVAL_S": "1"},
        gcs_port=gcs_port,
    )
    yield head
    head.stop()


def _workers(head: RayHead) -> dict[str, dict]:
    """Every worker node the cluster has seen, by node id."""
    return {n["node_id"]: n for n in head.nodes() if not n["is_head_node"]}


def _alive(head: RayHead) -> set[str]:
    return {i for i, n in _workers(head).items() if n["state"] == "ALIVE"}


def test_a_job_scales_the_cluster_up_and_idle_nodes_go_away(
    head: RayHead, demo_assets: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    assert _workers(head) == {}
    dump_dir = tmp_path_factory.mktemp("shared") / "run"
    # Fake nodes share this machine's session directory: each node's runtime-env agent would
    # delete and unpack the job's uploaded working_dir again in the same place when it first
    # sees it, under the other nodes' running processes. The repo is used in place instead.
    runtime_env = tmp_path_factory.mktemp("env") / "runtime_env.yaml"
    settings = yaml.safe_load((REPO / "jobs/runtime_env.yaml").read_text())
    runtime_env.write_text(yaml.safe_dump({**settings, "working_dir": f"local://{REPO}"}))
    entrypoint = finetune_entrypoint(demo_assets, dump_dir, "distributed.num_workers=2")
    job = head.submit(*entrypoint, runtime_env=str(runtime_env))
    assert job.returncode == 0, job.stdout[-3000:] + job.stderr[-3000:]
    state = read_state(dump_dir / "checkpoints" / f"{2:010d}")
    assert state is not None and state.world_size == 2

    launched = _workers(head)
    assert len(launched) >= 2, launched  # 4 CPUs of work, 2 per node, none on the head
    assert all(n["resources_total"]["CPU"] == 2 for n in launched.values()), launched
    deadline = time.time() + SCALE_DOWN_TIMEOUT_S
    while _alive(head) and time.time() < deadline:
        time.sleep(2)
    # Nothing of the job is left on them: Ray Data's detached cluster actors were made on the head
    # by the job's driver (``ray_runtime.keep_ray_data_actors_here``), not by a training worker.
    assert _alive(head) == set(), _workers(head)
