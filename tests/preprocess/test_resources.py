"""``check_fits`` against the session's one-machine cluster (``ensure_ray(min_cpus=8)``: a cluster
started here counts as many logical CPUs as asked, at least the cores)."""

from __future__ import annotations

import pytest
import ray

from ray_vlm.config import FinetuneConfig, load_config
from ray_vlm.config.serve_schema import ServeConfig
from ray_vlm.preprocess.resources import (
    ResourceError,
    check_fits,
    cluster_gpus,
    serve_demand,
    train_demand,
    with_replica_gpus,
)
from tests.conftest import LOCAL_TEST_CPUS

pytestmark = pytest.mark.usefixtures("ray_local")


def test_a_cluster_started_here_counts_the_cpus_asked_for() -> None:
    assert ray.cluster_resources()["CPU"] == LOCAL_TEST_CPUS


def test_a_run_that_fits_passes_and_one_that_does_not_is_refused_with_the_numbers() -> None:
    cfg = load_config(FinetuneConfig, ["distributed.num_workers=3", "data.preprocess_workers=5"])
    fits = train_demand(cfg)
    assert fits.cpus == 8
    check_fits(fits)
    # each worker's pipeline has at least one preprocessing actor
    too_many = train_demand(load_config(FinetuneConfig, ["distributed.num_workers=5"]))
    with pytest.raises(ResourceError) as refused:
        check_fits(too_many)
    assert str(refused.value) == (
        "this run needs 10 CPUs (5 train workers x 1 + 5 preprocessing actors x 1) but the Ray "
        "cluster has 8: lower distributed.num_workers, distributed.cpus_per_worker, "
        "data.preprocess_workers, or add nodes"
    )
    gpus = train_demand(load_config(FinetuneConfig, ["distributed.use_gpu=true"]))
    with pytest.raises(
        ResourceError, match=r"needs 2 GPUs .* has 0: lower distributed.num_workers,"
    ):
        check_fits(gpus)


def test_replicas_take_a_gpu_where_the_cluster_has_or_can_scale_to_one(capsys) -> None:
    """``replicas.num_gpus: auto`` against cluster views: GPU nodes now, GPU node types an
    autoscaler may add (``cluster.yaml``'s GPU workers start at 0), none; and this cluster."""
    cpu_head, gpu_node = {"CPU": 4.0}, {"CPU": 96.0, "GPU": 8.0}
    assert cluster_gpus([cpu_head, gpu_node], None) == 8
    assert cluster_gpus([cpu_head], {"CPU": 388.0, "GPU": 32.0}) == 32
    assert cluster_gpus([cpu_head], None) == cluster_gpus([cpu_head], {"CPU": 8.0}) == 0
    auto = ServeConfig()
    assert auto.replicas.num_gpus == "auto" and serve_demand(auto).total("GPU") == 0
    assert with_replica_gpus(auto).replicas.num_gpus == 0  # this cluster has no GPU
    assert "serve: replicas.num_gpus=auto: CPU (no GPU in the cluster)" in capsys.readouterr().out
    set_here = load_config(ServeConfig, ["replicas.num_gpus=0.5"])
    assert with_replica_gpus(set_here) is set_here
