"""Connect to Ray once: the running cluster when there is one (``ray job submit``, ``RAY_ADDRESS``,
a head started with ``ray start`` on this machine), else a one-machine cluster started here.

A cluster started here gets as many logical CPUs as the run asks for at once (``min_cpus``, at
least the machine's cores): on one machine the run's processes share the cores, and counting
fewer CPUs than processes would only make some wait forever for the others. A cluster someone
started is taken as it is: ``resources.check_fits`` refuses a run that does not fit it.
"""

from __future__ import annotations

import math
import os

import ray
from ray._private.services import canonicalize_bootstrap_address


def ensure_ray(min_cpus: float = 0) -> None:
    """``ray.init`` unless already connected; quiet logs from Ray Data's progress bars."""
    if ray.is_initialized():
        return
    address = os.environ.get("RAY_ADDRESS") or canonicalize_bootstrap_address(None)
    local = {} if address else {"num_cpus": max(os.cpu_count() or 1, math.ceil(min_cpus))}
    ray.init(address=address, include_dashboard=False, log_to_driver=False, **local)
    ray.data.DataContext.get_current().enable_progress_bars = False
