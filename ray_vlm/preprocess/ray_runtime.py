"""Connect to Ray once: the running cluster when there is one (``ray job submit``, ``RAY_ADDRESS``,
a head started with ``ray start`` on this machine), else a one-machine cluster started here.

A cluster started here gets as many logical CPUs as the run asks for at once (``min_cpus``, at
least the machine's cores): on one machine the run's processes share the cores, and counting
fewer CPUs than processes would only make some wait forever for the others. It grows with the
work: a later run in the same process that asks for more is given a cluster restarted with
enough, once nothing holds a CPU or GPU of the old one (a notebook's second, bigger ``train()``).
A cluster someone started (``ray start``, ``RAY_ADDRESS``, a ``ray.init`` of their own) is taken
as it is: ``resources.check_fits`` refuses a run that does not fit it.

On a running cluster, Ray Data's cluster-wide actors are created from here first
(``keep_ray_data_actors_here``): Ray Data makes them detached, on the node of the first process
that runs a dataset, and they never exit. Made by a training worker or the evaluation dispatcher
on an autoscaled worker node, they would keep that node busy, never idle and never scaled down,
after the job; made here, they stay on the driver's node (the head under ``ray job submit``).
"""

from __future__ import annotations

import logging
import math
import os
import time

import ray
from ray._private.services import canonicalize_bootstrap_address
from ray.data._internal.cluster_autoscaler.default_autoscaling_coordinator import (
    get_or_create_autoscaling_coordinator,
)
from ray.data._internal.execution.node_trackers.actor_location import (
    get_or_create_actor_location_tracker,
)
from ray.data._internal.stats import get_or_create_stats_actor
from ray.data._internal.usage.actor import get_or_create_usage_collection_actor
from ray.data._internal.usage.collector import usage_collection_disabled

log = logging.getLogger(__name__)

IDLE_WAIT_S = 15.0
"""How long a cluster started here may take to release what a finished run held (Ray Train's
worker actors and Ray Data's actors exit asynchronously) before it counts as busy."""

_started_here: dict[str, object] = {}
"""The cluster this process started: ``{"gcs": address, "cpus": logical CPUs}``; empty otherwise."""


def ensure_ray(min_cpus: float = 0) -> None:
    """``ray.init`` unless already connected (growing a cluster started here that has fewer than
    ``min_cpus`` logical CPUs); quiet logs from Ray Data's progress bars."""
    cpus = max(os.cpu_count() or 1, math.ceil(min_cpus))
    if ray.is_initialized():
        if _ours_and_too_small(cpus) and _idle():
            log.warning(
                "restarting the local Ray cluster ray_vlm started with %s CPUs: this run needs %s",
                _started_here["cpus"],
                cpus,
            )
            ray.shutdown()
        else:
            return
    address = os.environ.get("RAY_ADDRESS") or canonicalize_bootstrap_address(None)
    local = {} if address else {"num_cpus": cpus}
    ray.init(address=address, include_dashboard=False, log_to_driver=False, **local)
    ray.data.DataContext.get_current().enable_progress_bars = False
    _started_here.clear()
    if address:
        keep_ray_data_actors_here()
    else:
        _started_here.update(gcs=ray.get_runtime_context().gcs_address, cpus=cpus)


def _ours_and_too_small(cpus: int) -> bool:
    return (
        _started_here.get("gcs") == ray.get_runtime_context().gcs_address
        and cpus > _started_here["cpus"]
    )


def _idle() -> bool:
    """Whether nothing holds a CPU or GPU of the connected cluster, waiting up to ``IDLE_WAIT_S``
    for a finished run's actors to go. A busy cluster is kept (``check_fits`` then refuses)."""
    deadline = time.monotonic() + IDLE_WAIT_S
    while True:
        total, free = ray.cluster_resources(), ray.available_resources()
        held = {r: total[r] - free.get(r, 0) for r in ("CPU", "GPU") if r in total}
        if all(v < 1e-9 for v in held.values()):
            return True
        if time.monotonic() > deadline:
            log.warning("not restarting the local Ray cluster: work still holds %s", held)
            return False
        time.sleep(0.2)


def keep_ray_data_actors_here() -> None:
    """Create (or find) Ray Data's detached per-cluster actors, pinned to this process's node
    when they do not exist yet; each takes no CPU. Those a run would not make are left out (the
    usage recorder when usage stats are off)."""
    get_or_create_stats_actor()
    get_or_create_actor_location_tracker()
    get_or_create_autoscaling_coordinator()
    if not usage_collection_disabled():
        get_or_create_usage_collection_actor()
