"""``ensure_ray``: a local cluster ray_vlm started grows with the work, once idle; any other
cluster is taken as it is (the training-side check, two ``train()`` calls in one process, is in
``tests/train/test_zero3_loading.py``)."""

from __future__ import annotations

import os

import pytest
import ray

from ray_vlm.preprocess import ray_runtime
from ray_vlm.preprocess.ray_runtime import ensure_ray

CORES = os.cpu_count() or 1


def test_a_cluster_started_here_grows_when_idle_and_stays_while_busy(no_ray, monkeypatch) -> None:
    ensure_ray(CORES)
    assert ray.cluster_resources()["CPU"] == CORES
    ensure_ray(CORES + 1)
    assert ray.cluster_resources()["CPU"] == CORES + 1

    @ray.remote(num_cpus=1)
    class Busy:
        def ready(self) -> bool:
            return True

    busy = Busy.remote()
    ray.get(busy.ready.remote())
    monkeypatch.setattr(ray_runtime, "IDLE_WAIT_S", 0.5)
    ensure_ray(CORES + 2)  # something holds a CPU: kept (check_fits then refuses the run)
    assert ray.cluster_resources()["CPU"] == CORES + 1
    assert ray.get(busy.ready.remote())


@pytest.mark.usefixtures("no_ray")
def test_a_cluster_someone_else_started_is_never_touched() -> None:
    ray.init(num_cpus=1, include_dashboard=False)
    ensure_ray(CORES + 2)
    assert ray.cluster_resources()["CPU"] == 1
