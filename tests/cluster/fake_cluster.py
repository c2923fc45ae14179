"""A ``fake_multinode`` autoscaling config derived from ``cluster.yaml``: the same node types,
``min_workers`` and upscaling speed, scaled down to what one 2-core machine can fake.

Scaled: each worker type becomes a fake node with ``FAKE_WORKER_RESOURCES`` (2 logical CPUs; no
GPU, the fake nodes train on CPU) and at most ``MAX_FAKE_WORKERS`` of it; the idle timeout shrinks
to seconds. The head keeps ``cluster.yaml``'s resources (``CPU: 0``: no work on the head) under
the type name the fake provider gives its head (``ray.head.default``). Start the head with
``RAY_FAKE_CLUSTER=1 ray start --head --autoscaling-config=<this> --num-cpus=0``; the autoscaler
then starts and stops worker nodes as Ray processes on this machine.
"""

from __future__ import annotations

import copy

from ray.autoscaler._private.fake_multi_node.node_provider import FAKE_HEAD_NODE_TYPE

FAKE_WORKER_RESOURCES = {"CPU": 2}
MAX_FAKE_WORKERS = 2
IDLE_TIMEOUT_MINUTES = 0.1
EMPTY_KEYS = {
    "auth": {},
    "docker": {},
    "file_mounts": {},
    "cluster_synced_files": [],
    "file_mounts_sync_continuously": False,
    "rsync_exclude": [],
    "rsync_filter": [],
    "initialization_commands": [],
    "setup_commands": [],
    "head_setup_commands": [],
    "worker_setup_commands": [],
    "head_start_ray_commands": [],
    "worker_start_ray_commands": [],
}
"""Launcher keys with nothing to do on fake nodes (no SSH, no docker, no setup)."""


def fake_cluster_config(launcher: dict, gcs_address: str) -> dict:
    """The fake autoscaling config of the launcher config ``launcher`` (``cluster.yaml``), for a
    head whose GCS listens on ``gcs_address``."""
    head_type = launcher["head_node_type"]
    types = launcher["available_node_types"]
    workers = {
        name: {
            "resources": dict(FAKE_WORKER_RESOURCES),
            "node_config": {},
            "min_workers": spec["min_workers"],
            "max_workers": min(spec["max_workers"], MAX_FAKE_WORKERS),
        }
        for name, spec in types.items()
        if name != head_type
    }
    head = {"resources": copy.deepcopy(types[head_type]["resources"]), "node_config": {}}
    return {
        "cluster_name": launcher["cluster_name"],
        "max_workers": min(launcher["max_workers"], MAX_FAKE_WORKERS),
        "upscaling_speed": launcher["upscaling_speed"],
        "idle_timeout_minutes": IDLE_TIMEOUT_MINUTES,
        "provider": {
            "type": "fake_multinode",
            "gcs_address": gcs_address,
            "use_node_id_as_ip": True,
            "disable_node_updaters": True,
            "disable_launch_config_check": True,
        },
        "available_node_types": {FAKE_HEAD_NODE_TYPE: {**head, "max_workers": 0}, **workers},
        "head_node_type": FAKE_HEAD_NODE_TYPE,
        **copy.deepcopy(EMPTY_KEYS),
    }
