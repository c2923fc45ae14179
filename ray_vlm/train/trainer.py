"""``train(cfg)``: fine-tune on Ray Train workers running DeepSpeed; resumes what ``dump_dir`` holds.

The driver (this module) plans the data (``data_plan.data_start``: the run's plan of
``data.datamix`` records, each rank's share and where each rank stands) and runs a
``TorchTrainer`` whose workers run ``ray_session.train_loop``; each worker streams its own share
through its own Ray Data pipeline, exactly from where it stood. ``dump_dir`` is a local path, a
shared filesystem path or a URI (``ray_vlm.storage``); everything the run writes goes there, and
Ray Train keeps the run in ``<dump_dir>/checkpoints`` (its ``RunConfig(storage_path,
storage_filesystem, name="checkpoints")``): a restarted worker group (``distributed.max_failures``)
and a second ``train`` on the same ``dump_dir`` both continue from the newest checkpoint Ray
registered, every record of the plan trained on exactly once. Workers on CPU get the glibc malloc
settings ZeRO-3 needs (``host_memory.py``). ``train.log`` is followed while it runs (a progress bar of steps: ``progress.py``); ``loss.png`` is
drawn at the end.

Before Ray starts anything, the driver checks what the run must reach (``dump_dir``, the model, the
datamix: ``UserError`` naming the key), then that the cluster can hold the whole run at once
(``resources.check_fits``) and that every node sees a local ``dump_dir`` (``shared_storage``); each
worker checks that too before loading the model (nodes an autoscaler adds later). One live run
per ``dump_dir``: the driver holds its lease (``lease.py``) for the whole run.
"""

from __future__ import annotations

from dataclasses import dataclass

import ray
from ray.train import CheckpointConfig, FailureConfig, RunConfig, ScalingConfig
from ray.train.torch import TorchConfig, TorchTrainer

from ray_vlm.config import CONFIG_FILE, FinetuneConfig, UserError
from ray_vlm.preprocess.ray_runtime import ensure_ray
from ray_vlm.preprocess.report import RecordReport
from ray_vlm.preprocess.resources import check_fits, train_demand
from ray_vlm.preprocess.shared_storage import check_shared, check_visible_here, data_locations
from ray_vlm.storage import Location
from ray_vlm.train.data_plan import DataStart
from ray_vlm.train.host_memory import worker_malloc_env
from ray_vlm.train.lease import Lease
from ray_vlm.train.metrics import TRAIN_LOG, plot_loss, read_metrics
from ray_vlm.train.progress import follow
from ray_vlm.train.ray_session import train_loop
from ray_vlm.train.run_start import start_run
from ray_vlm.train.run_state import CHECKPOINTS, latest_state, step_dir_name


@dataclass(frozen=True)
class TrainResult:
    dump_dir: Location
    step: int
    """Optimizer steps done (``cfg.steps`` when the run finished)."""
    checkpoint: Location
    """The newest checkpoint folder, ``<dump_dir>/checkpoints/<step>``."""
    metrics: list[dict]
    """Rows of ``metrics.jsonl``."""
    left_out: dict[str, dict[str, int]]
    """Records the pipeline could not use or truncated, ``{dataset: {kind: count}}``."""


def _worker(config: dict) -> None:
    """``train_loop`` on a worker that sees ``dump_dir`` (a node added later may not)."""
    check_visible_here(Location.of(config["cfg"].dump_dir) / CONFIG_FILE, "dump_dir")
    train_loop(config)


def _trainer(cfg: FinetuneConfig, data: DataStart, report) -> TorchTrainer:
    dist = cfg.distributed
    dump_dir = Location.of(cfg.dump_dir)
    resources = {
        "CPU": dist.cpus_per_worker,
        **({"GPU": dist.gpus_per_worker} if dist.use_gpu else {}),
    }
    return TorchTrainer(
        _worker,
        train_loop_config={"cfg": cfg, "data": data, "report": report},
        scaling_config=ScalingConfig(
            num_workers=dist.num_workers, use_gpu=dist.use_gpu, resources_per_worker=resources
        ),
        torch_config=TorchConfig(timeout_s=dist.timeout_s),
        run_config=RunConfig(
            storage_path=dump_dir.path,
            storage_filesystem=dump_dir.fs,
            name=CHECKPOINTS,
            failure_config=FailureConfig(max_failures=dist.max_failures),
            checkpoint_config=CheckpointConfig(num_to_keep=cfg.checkpoint.dump.keep or None),
            worker_runtime_env={"env_vars": worker_malloc_env(dist.use_gpu)},
        ),
    )


def _user_error(error: BaseException) -> UserError | None:
    """The ``UserError`` a worker raised, if that is what ended the run."""
    failures = getattr(error, "worker_failures", {}) or {}
    for failure in [error, *failures.values()]:
        while failure is not None:
            if isinstance(failure, UserError):
                return failure
            failure = failure.__cause__
    return None


def train(cfg: FinetuneConfig) -> TrainResult:
    """Run (or resume) the fine-tuning ``cfg`` describes; returns where its outputs are. The run
    holds ``dump_dir``'s lease from before it writes there until it ends (``lease.py``):
    ``LeaseHeld`` while another live run holds it."""
    with Lease.take(cfg.dump_dir):
        return _train(cfg)


def _train(cfg: FinetuneConfig) -> TrainResult:
    """``train`` once the lease is held."""
    start = start_run(cfg)
    cfg, dump_dir, state = start.cfg, Location.of(start.cfg.dump_dir), start.state
    left_out: dict[str, dict[str, int]] = {}
    if start.data is not None:
        demand = train_demand(cfg)
        ensure_ray(demand.cpus)
        check_fits(demand)
        check_shared({"dump_dir": dump_dir / CONFIG_FILE, **data_locations(start.sources)})
        report = RecordReport.remote()
        with follow(dump_dir / TRAIN_LOG, cfg.steps, state.step if state else 0):
            result = _trainer(cfg, start.data, report).fit()
        if result.error is not None:
            raise _user_error(result.error) or result.error
        left_out = ray.get(report.counts.remote())
        state = latest_state(dump_dir)
    plot_loss(dump_dir)
    return TrainResult(
        dump_dir=dump_dir,
        step=state.step,
        checkpoint=dump_dir / CHECKPOINTS / step_dir_name(state.step),
        metrics=read_metrics(dump_dir),
        left_out=left_out,
    )
