"""What a run asks of the Ray cluster, checked against what the cluster has before anything starts.

A ``Demand`` is the run's parts: each ``Part`` is ``count`` items (training workers, preprocessing
actors, read tasks, Serve replicas, ...) of ``cpus`` / ``gpus`` each, with the config keys that set
them. ``check_fits(demand)`` compares the total and the largest single item with the cluster: its
alive nodes, or when an autoscaler may add nodes, the most its node types can scale to (when Ray
knows it; otherwise the autoscaler decides). A run that cannot fit raises ``ResourceError`` naming the
numbers and the keys to change: Ray itself would wait forever (training workers holding their
CPUs while the data pipeline that feeds them waits for one).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace

import ray
from ray._private import ray_constants
from ray._private.state import state as ray_state
from ray.autoscaler._private.util import format_readonly_node_type
from ray.experimental.internal_kv import _internal_kv_get

from ray_vlm.config import DataConfig, FinetuneConfig, UserError
from ray_vlm.config.serve_schema import ServeConfig
from ray_vlm.preprocess.pipeline import ENCODE_CPUS
from ray_vlm.preprocess.record_stream import READ_CPUS, READ_TASKS

RESOURCES = ("CPU", "GPU")


class ResourceError(UserError):
    """A run that asks for more than the cluster has or can scale to."""


@dataclass(frozen=True)
class Part:
    what: str
    """e.g. ``train workers``."""
    count: int
    cpus: float
    gpus: float
    count_key: str = ""
    """The config key of ``count`` ("" when no key sets it)."""
    cpu_key: str = ""
    gpu_key: str = ""

    def each(self, resource: str) -> float:
        return self.cpus if resource == "CPU" else self.gpus

    def keys(self, resource: str) -> list[str]:
        """The keys that lower what this part holds of ``resource``."""
        own = self.cpu_key if resource == "CPU" else self.gpu_key
        return [k for k in (self.count_key, own) if k]


@dataclass(frozen=True)
class Demand:
    parts: tuple[Part, ...]

    def __add__(self, other: Demand) -> Demand:
        return Demand(self.parts + other.parts)

    def total(self, resource: str) -> float:
        return sum(p.count * p.each(resource) for p in self.parts)

    @property
    def cpus(self) -> float:
        return self.total("CPU")

    def describe(self, resource: str) -> str:
        """``2 train workers x 1 + 2 preprocessing actors x 1``."""
        return " + ".join(
            f"{p.count} {p.what} x {p.each(resource):g}" for p in self.parts if p.each(resource)
        )

    def keys(self, resource: str) -> str:
        keys = [k for p in self.parts if p.each(resource) for k in p.keys(resource)]
        return ", ".join(dict.fromkeys(keys))


def data_demand(cfg: DataConfig, pipelines: int = 1) -> Demand:
    """``pipelines`` Ray Data pipelines of ``preprocess.pipeline.build_dataset`` sharing
    ``data.preprocess_workers`` actors (at least one each; none with 0: each training worker
    encodes its own records)."""
    if not cfg.preprocess_workers:
        return Demand(())
    return Demand(
        (
            Part(
                "preprocessing actors",
                max(cfg.preprocess_workers, pipelines),
                ENCODE_CPUS,
                0,
                "data.preprocess_workers",
            ),
            Part("read tasks", READ_TASKS * pipelines, READ_CPUS, 0, "data.preprocess_workers"),
        )
    )


def train_demand(cfg: FinetuneConfig) -> Demand:
    """Training workers plus the data pipelines feeding them (one per worker), all at once."""
    dist = cfg.distributed
    worker = Part(
        "train workers",
        dist.num_workers,
        dist.cpus_per_worker,
        dist.gpus_per_worker if dist.use_gpu else 0,
        "distributed.num_workers",
        "distributed.cpus_per_worker",
    )  # one whole GPU a worker: only num_workers lowers the GPUs
    return Demand((worker,)) + data_demand(cfg.data, pipelines=dist.num_workers)


def cluster_gpus(nodes: list[dict[str, float]], most: dict[str, float] | None) -> float:
    """GPUs of a cluster view: its alive nodes' ``Resources``, or what its node types can scale to
    (``most``, when an autoscaler config says it), whichever is more."""
    return max(sum(n.get("GPU", 0) for n in nodes), (most or {}).get("GPU", 0))


def with_replica_gpus(cfg: ServeConfig) -> ServeConfig:
    """``cfg`` with ``replicas.num_gpus: auto`` decided on the connected cluster (one GPU a
    replica when it has or can scale to any, else the CPU), the choice printed; else as it is."""
    if cfg.replicas.num_gpus != "auto":
        return cfg
    nodes = [n["Resources"] for n in ray.nodes() if n["Alive"]]
    gpus = cluster_gpus(nodes, ray_state.get_max_resources_from_cluster_config())
    chosen = 1 if gpus >= 1 else 0
    where = (
        f"one GPU a replica (the cluster has {gpus:g})" if chosen else "CPU (no GPU in the cluster)"
    )
    print(f"serve: replicas.num_gpus=auto: {where}", flush=True)
    return replace(cfg, replicas=replace(cfg.replicas, num_gpus=chosen))


def serve_demand(cfg: ServeConfig, http: bool = True) -> Demand:
    """The replicas Serve must start: ``min_replicas`` generation replicas and, with ``http``,
    the HTTP front (autoscaling adds more only where the cluster has room). GPUs count once
    ``with_replica_gpus`` decided ``auto`` (none before)."""
    r = cfg.replicas
    gpus = 0 if r.num_gpus == "auto" else r.num_gpus
    # fmt: off
    generators = Part("generation replicas", r.min_replicas, r.num_cpus, gpus,
                      "replicas.min_replicas", "replicas.num_cpus", "replicas.num_gpus")
    front = Part("HTTP front replicas", r.ingress_replicas, r.ingress_num_cpus, 0,
                 "replicas.ingress_replicas", "replicas.ingress_num_cpus")
    # fmt: on
    return Demand((generators, front) if http else (generators,))


def _autoscaler_adds_nodes() -> bool:
    """Whether the cluster's autoscaler may add nodes: every ``ray start`` head runs one, but
    without a cluster config it only mirrors the nodes there are (one "readonly" type per node)."""
    status = _internal_kv_get(ray_constants.DEBUG_AUTOSCALING_STATUS)
    report = (json.loads(status) if status else {}).get("autoscaler_report") or {}
    types = report.get("node_type_mapping") or {}
    return any(kind != format_readonly_node_type(node) for node, kind in types.items())


def _capacity(nodes: list[dict[str, float]]) -> tuple[dict[str, float] | None, str]:
    """What a run is checked against, and how to name it; ``None`` when an autoscaler may add
    nodes whose sizes Ray does not report (it then decides)."""
    most = ray_state.get_max_resources_from_cluster_config()
    if most:
        return most, "can scale to"
    if _autoscaler_adds_nodes():
        return None, ""
    return {r: sum(n.get(r, 0) for n in nodes) for r in RESOURCES}, "has"


def check_fits(demand: Demand) -> None:
    """Raise ``ResourceError`` unless the connected cluster can run ``demand`` all at once."""
    nodes = [n["Resources"] for n in ray.nodes() if n["Alive"]]
    capacity, scope = _capacity(nodes)
    if capacity is None:
        return
    for resource in RESOURCES:
        need, have = demand.total(resource), capacity.get(resource, 0)
        if need > have + 1e-9:
            raise ResourceError(
                f"this run needs {need:g} {resource}s ({demand.describe(resource)}) but the Ray "
                f"cluster {scope} {have:g}: lower {demand.keys(resource)}, or add nodes"
            )
        if scope != "has":
            continue
        largest = max((n.get(resource, 0) for n in nodes), default=0)
        for part in demand.parts:
            if part.each(resource) > largest + 1e-9:
                raise ResourceError(
                    f"one of the {part.what} needs {part.each(resource):g} {resource}s but the "
                    f"largest Ray node has {largest:g}: lower {', '.join(part.keys(resource))}, "
                    "or add a larger node"
                )
