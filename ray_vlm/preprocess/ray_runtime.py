"""Connect to Ray once: the running cluster when there is one (``ray job submit``, ``RAY_ADDRESS``),
else a local one started here."""

from __future__ import annotations

import os

import ray

# A local cluster advertises at least this many logical CPUs: training workers, preprocessing
# actors and read tasks each hold one while mostly waiting on each other, and a 2-core laptop
# would otherwise deadlock (workers holding every CPU while their data never gets one).
LOCAL_MIN_CPUS = 8


def ensure_ray() -> None:
    """``ray.init`` unless already connected; quiet logs from Ray Data's progress bars."""
    if ray.is_initialized():
        return
    address = os.environ.get("RAY_ADDRESS")
    local = {} if address else {"num_cpus": max(LOCAL_MIN_CPUS, os.cpu_count() or 1)}
    ray.init(address=address, include_dashboard=False, log_to_driver=False, **local)
    ray.data.DataContext.get_current().enable_progress_bars = False
