"""A local path on a multi-node cluster must be on storage every node sees; say so before the run.

Ray Train persists checkpoints from every worker's node and Ray Data reads records on any node, so
a ``dump_dir`` (or data) on the head node's own disk works until the first checkpoint upload, then
fails. ``check_shared({key: location})`` runs on the driver once the cluster is known: for each
local location it asks every other alive node that has CPUs or GPUs whether it sees the file (a
zero-CPU task pinned to the node) and raises ``StorageError`` naming the nodes that do not and the
fix. URIs (``s3://``...) are reached from every node by design. ``check_visible_here`` is the same
check from inside a worker (nodes an autoscaler adds after the start).
"""

from __future__ import annotations

import os

import ray
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from ray_vlm.records import DatamixEntry, DatasetSpec
from ray_vlm.storage import Location, StorageError

PROBE_TIMEOUT_S = 60.0
FIX = (
    "on a multi-node cluster use a shared filesystem every node mounts (NFS, EFS) or a bucket URI "
    "(s3://bucket/path, gs://bucket/path)"
)


@ray.remote(num_cpus=0)
def _seen(paths: list[str]) -> list[bool]:
    return [os.path.exists(p) for p in paths]


def _message(key: str, loc: Location, nodes: list[str]) -> str:
    return f"{key}: Ray node(s) {', '.join(nodes)} do not see {loc}; {FIX}"


def check_shared(locations: dict[str, Location]) -> None:
    """Raise ``StorageError`` if another node of the cluster does not see a local location."""
    local = {key: loc for key, loc in locations.items() if loc.is_local}
    here = ray.get_runtime_context().get_node_id()
    nodes = [
        n
        for n in ray.nodes()
        if n["Alive"]
        and n["NodeID"] != here
        and (n["Resources"].get("CPU", 0) or n["Resources"].get("GPU", 0))
    ]
    if not local or not nodes:
        return
    paths = [str(loc.local_path) for loc in local.values()]
    probes = [
        _seen.options(
            scheduling_strategy=NodeAffinitySchedulingStrategy(n["NodeID"], soft=False)
        ).remote(paths)
        for n in nodes
    ]
    seen = ray.get(probes, timeout=PROBE_TIMEOUT_S)
    for i, (key, loc) in enumerate(local.items()):
        blind = [n["NodeManagerAddress"] for n, ok in zip(nodes, seen, strict=True) if not ok[i]]
        if blind:
            raise StorageError(_message(key, loc, blind))


def data_locations(sources: list[tuple[DatamixEntry, DatasetSpec]]) -> dict[str, Location]:
    """The files and folders a datamix reads, keyed for ``check_shared``'s message."""
    found: dict[str, Location] = {}
    for _, spec in sources:
        found[f"dataset '{spec.name}' annotation"] = Location.of(spec.annotation)
        found[f"dataset '{spec.name}' root_dir"] = Location.of(spec.root_dir or spec.annotation)
    return found


def check_visible_here(loc: Location, key: str) -> None:
    """Inside a Ray worker: raise ``StorageError`` if this node does not see ``loc``."""
    if loc.is_local and not loc.exists():
        node = ray.util.get_node_ip_address()
        raise StorageError(_message(key, loc, [node]))
