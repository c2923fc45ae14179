"""``check_fits`` against the session's one-machine cluster (``ensure_ray(min_cpus=8)``: a cluster
started here counts as many logical CPUs as asked, at least the cores)."""

from __future__ import annotations

import pytest
import ray

from ray_vlm.config import FinetuneConfig, load_config
from ray_vlm.preprocess.resources import ResourceError, check_fits, train_demand
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
    with pytest.raises(ResourceError, match=r"needs 2 GPUs .* has 0: lower distributed.num_workers, "
                       r"distributed.gpus_per_worker"):  # fmt: skip
        check_fits(gpus)
