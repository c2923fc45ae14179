"""ZeRO-3 training across two nodes: ``ray.cluster_utils.Cluster`` simulates a head and two worker
nodes on this machine, and ``train(cfg)`` with 2 workers puts one on each.

Node shapes force the spread: each worker takes ``distributed.cpus_per_worker=2`` CPUs, the worker
nodes have 3 (room for one training worker and one preprocessing actor), the head has 1 (none).
The workers' nodes are read back from Ray's state API, and so are those of Ray Data's
cluster-wide detached actors, which must stay on the driver's node (the head). ``dump_dir`` is a temp dir, the "shared
storage" both nodes see. The cluster's files go to a temp dir of its own (``RAY_TMPDIR``), so a
``ray.init()`` elsewhere on this machine does not find it.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import ray
from ray.cluster_utils import Cluster
from ray.util.state import list_actors

from ray_vlm.config import FinetuneConfig, load_config
from ray_vlm.preprocess.ray_runtime import ensure_ray
from ray_vlm.train.run_state import read_state
from ray_vlm.train.trainer import TrainResult, train
from tests.cluster.ray_head import free_port, short_temp_dir
from tests.conftest import LOCAL_TEST_CPUS, REPO

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def two_nodes() -> Iterator[dict[str, str]]:
    """A head (1 CPU) and nodes ``node_a``, ``node_b`` (3 CPUs each); yields ``{name: node id}``.
    A Ray connection this process had before is restored afterwards."""
    was_connected = ray.is_initialized()
    ray.shutdown()
    with short_temp_dir() as ray_tmp, pytest.MonkeyPatch.context() as env:
        env.setenv("RAY_TMPDIR", ray_tmp)
        cluster = Cluster(
            initialize_head=True,
            head_node_args={
                "num_cpus": 1,
                "include_dashboard": True,
                "dashboard_port": free_port(),
                "dashboard_agent_listen_port": free_port(),
            },
        )
        try:
            nodes = {
                name: cluster.add_node(num_cpus=3, resources={name: 1})
                for name in ("node_a", "node_b")
            }
            cluster.wait_for_nodes()
            env.setenv("RAY_ADDRESS", cluster.address)
            ensure_ray()  # joins it as `ray job submit`'s driver would
            yield {name: node.node_id for name, node in nodes.items()}
        finally:
            ray.shutdown()
            cluster.shutdown()
    if was_connected:
        ensure_ray(min_cpus=LOCAL_TEST_CPUS)


@pytest.fixture(scope="module")
def run(two_nodes, demo_assets: Path, tmp_path_factory: pytest.TempPathFactory) -> TrainResult:
    cfg = load_config(
        FinetuneConfig,
        [
            f"config={REPO / 'configs/finetune/demo.yaml'}",
            f"dump_dir={tmp_path_factory.mktemp('shared') / 'run'}",
            f"data.datasets_yaml={demo_assets / 'datasets.yaml'}",
            f"checkpoint.init_ckpt_path={demo_assets / 'models/llava'}",
            f"distributed.deepspeed_config={REPO / 'configs/deepspeed/zero3.json'}",
            "distributed.num_workers=2",
            "distributed.cpus_per_worker=2",
            "data.preprocess_workers=1",
            "steps=2",
            "batch_size=4",
        ],
    )
    return train(cfg)


def test_one_training_worker_on_each_node(run: TrainResult, two_nodes: dict[str, str]) -> None:
    workers = list_actors(filters=[("class_name", "=", "RayTrainWorker")])
    assert len(workers) == 2, workers
    assert sorted(w.node_id for w in workers) == sorted(two_nodes.values())


def test_the_run_is_a_two_rank_zero3_checkpoint_on_shared_storage(run: TrainResult) -> None:
    assert run.step == 2
    state = read_state(run.checkpoint)
    assert state is not None and state.world_size == 2
    for rank in (0, 1):
        assert (run.checkpoint / f"ds/zero_pp_rank_{rank}_mp_rank_00_optim_states.pt").is_file()
    assert "2 workers, ZeRO stage 3" in (run.dump_dir / "train.log").read_text()


def test_ray_data_cluster_actors_stay_on_the_drivers_node(run: TrainResult) -> None:
    """Made by a worker on another node, they would keep that node busy after the run."""
    names = {"datasets_stats_actor", "ActorLocationTracker", "AutoscalingCoordinator"}
    actors = [a for a in list_actors(detail=True) if a.name in names]
    assert {a.name for a in actors} == names, actors
    assert {a.node_id for a in actors} == {ray.get_runtime_context().get_node_id()}, actors
