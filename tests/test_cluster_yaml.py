"""``cluster.yaml`` passes the Ray cluster launcher's own schema validation."""

from __future__ import annotations

import copy

import jsonschema
import pytest
import yaml
from ray.autoscaler._private.util import prepare_config, validate_config

from tests.conftest import REPO


@pytest.fixture(scope="module")
def cluster() -> dict:
    return yaml.safe_load((REPO / "cluster.yaml").read_text())


def test_cluster_yaml_is_a_valid_launcher_config(cluster: dict) -> None:
    validate_config(prepare_config(copy.deepcopy(cluster)))
    gpu = cluster["available_node_types"]["ray.worker.gpu"]
    assert gpu["min_workers"] == 0 < gpu["max_workers"]  # GPU nodes only while work needs them
    assert cluster["head_node_type"] == "ray.head.cpu"
    assert any("ray_vlm" in c for c in cluster["setup_commands"])


def test_the_validation_rejects_a_mistake(cluster: dict) -> None:
    broken = copy.deepcopy(cluster)
    broken["available_node_types"]["ray.worker.gpu"]["min_worker"] = 1  # typo
    with pytest.raises(jsonschema.ValidationError, match="min_worker"):
        validate_config(prepare_config(broken))


def test_every_node_reaches_the_storage_and_the_hub_token(cluster: dict) -> None:
    for name, node_type in cluster["available_node_types"].items():
        assert "IamInstanceProfile" in node_type["node_config"], name  # the bucket, no keys
    for key in ("head_start_ray_commands", "worker_start_ray_commands"):
        start = next(c for c in cluster[key] if "ray start" in c)
        assert start.startswith("export HF_TOKEN=") and "RAY_AUTH_MODE=token" in start, key
    assert "~/.cache/huggingface/token" in cluster["file_mounts"]
