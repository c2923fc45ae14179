"""Connect to Ray once: the running cluster when there is one (``ray job submit``, ``RAY_ADDRESS``,
a head started with ``ray start`` on this machine), else a one-machine cluster started here.

A cluster started here gets as many logical CPUs as the run asks for at once (``min_cpus``, at
least the machine's cores): on one machine the run's processes share the cores, and counting
fewer CPUs than processes would only make some wait forever for the others. A cluster someone
started is taken as it is: ``resources.check_fits`` refuses a run that does not fit it.

On a running cluster, Ray Data's cluster-wide actors are created from here first
(``keep_ray_data_actors_here``): Ray Data makes them detached, on the node of the first process
that runs a dataset, and they never exit. Made by a training worker or the evaluation dispatcher
on an autoscaled worker node, they would keep that node busy, never idle and never scaled down,
after the job; made here, they stay on the driver's node (the head under ``ray job submit``).
"""

from __future__ import annotations

import math
import os

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


def ensure_ray(min_cpus: float = 0) -> None:
    """``ray.init`` unless already connected; quiet logs from Ray Data's progress bars."""
    if ray.is_initialized():
        return
    address = os.environ.get("RAY_ADDRESS") or canonicalize_bootstrap_address(None)
    local = {} if address else {"num_cpus": max(os.cpu_count() or 1, math.ceil(min_cpus))}
    ray.init(address=address, include_dashboard=False, log_to_driver=False, **local)
    ray.data.DataContext.get_current().enable_progress_bars = False
    if address:
        keep_ray_data_actors_here()


def keep_ray_data_actors_here() -> None:
    """Create (or find) Ray Data's detached per-cluster actors, pinned to this process's node
    when they do not exist yet; each takes no CPU. Those a run would not make are left out (the
    usage recorder when usage stats are off)."""
    get_or_create_stats_actor()
    get_or_create_actor_location_tracker()
    get_or_create_autoscaling_coordinator()
    if not usage_collection_disabled():
        get_or_create_usage_collection_actor()
