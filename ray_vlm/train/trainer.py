"""``train(cfg)``: fine-tune on Ray Train workers running DeepSpeed; resumes what ``dump_dir`` holds.

The driver (this module) plans the data (``plan_weighted`` over ``data.datamix``, as many examples
as the run consumes: ``planned_examples``), builds the streaming Ray Dataset, and runs a
``TorchTrainer`` whose workers run ``loop.train_loop``. ``dump_dir`` is a local path, a shared
filesystem path or a URI (``ray_vlm.storage``); everything the run writes goes there, and Ray Train
keeps the run in ``<dump_dir>/checkpoints`` (its ``RunConfig(storage_path, storage_filesystem,
name="checkpoints")``): a restarted worker group (``distributed.max_failures``) and a second
``train`` on the same ``dump_dir`` both continue from the newest complete checkpoint; the driver
first cuts the examples that checkpoint consumed from the front of the plan, so they are not
preprocessed again. Workers on CPU get the glibc malloc settings ZeRO-3 needs (``host_memory.py``).
``train.log`` is echoed while it runs; ``loss.png`` is drawn at the end.

Before Ray starts anything, the driver checks what the run must reach (``dump_dir``, the model, the
datamix: ``UserError`` naming the key), then that the cluster can hold the whole run at once
(``resources.check_fits``) and that every node sees a local ``dump_dir`` (``shared_storage``); each
worker checks that too before loading the model (nodes an autoscaler adds later).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import ray
from ray.train import CheckpointConfig, FailureConfig, RunConfig, ScalingConfig
from ray.train.torch import TorchTrainer

from ray_vlm.config import FinetuneConfig, UserError, config_to_yaml
from ray_vlm.preflight import check_finetune
from ray_vlm.preprocess.pipeline import build_dataset
from ray_vlm.preprocess.ray_runtime import ensure_ray
from ray_vlm.preprocess.resources import check_fits, train_demand
from ray_vlm.preprocess.shared_storage import check_shared, check_visible_here, data_locations
from ray_vlm.preprocess.stream_plan import Chunk, plan_weighted
from ray_vlm.storage import Location
from ray_vlm.train.host_memory import worker_malloc_env
from ray_vlm.train.loop import train_loop
from ray_vlm.train.metrics import TRAIN_LOG, plot_loss, read_metrics
from ray_vlm.train.run_state import CHECKPOINTS, TrainState, latest_state, step_dir_name
from ray_vlm.train.tracking import check_tracking, resolved_tracking_uri

CONFIG_FILE = "config.yaml"


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


def _absolute(path: str) -> str:
    """Workers may run in another directory: local paths that exist are made absolute."""
    return str(Path(path).resolve()) if Path(path).exists() else path


def _resolved(cfg: FinetuneConfig) -> FinetuneConfig:
    return replace(
        cfg,
        dump_dir=Location.of(cfg.dump_dir).uri,
        checkpoint=replace(cfg.checkpoint, init_ckpt_path=_absolute(cfg.checkpoint.init_ckpt_path)),
        distributed=replace(
            cfg.distributed, deepspeed_config=_absolute(cfg.distributed.deepspeed_config)
        ),
        logging=replace(
            cfg.logging, mlflow_tracking_uri=resolved_tracking_uri(cfg.logging.mlflow_tracking_uri)
        ),
    )


def planned_examples(cfg: FinetuneConfig, state: TrainState | None) -> int:
    """Examples the whole run consumes: what the resumed checkpoint already did plus what the
    steps left take with this run's workers and batch (a resume may change the world size)."""
    per_step = cfg.batch_size * cfg.grad_acc_steps * cfg.distributed.num_workers
    if state is None:
        return cfg.steps * per_step
    return state.samples + max(0, cfg.steps - state.step) * per_step


def trim_plan(plan: list[Chunk], samples: int) -> tuple[list[Chunk], int]:
    """Drop the whole chunks that ``samples`` consumed examples cover (within the current pass);
    returns the rest and the ``plan_offset`` the workers count their skipping from."""
    planned = sum(c.limit for c in plan)
    remainder = samples % planned if planned else 0
    cut = 0
    while cut < len(plan) - 1 and plan[cut].limit <= remainder:
        remainder -= plan[cut].limit
        cut += 1
    return plan[cut:], samples - remainder


@contextlib.contextmanager
def _echo(path: Location) -> Iterator[None]:
    """Print lines appended to ``path`` while the block runs (workers' stdout stays in Ray);
    polled every second locally, every 5 s in a bucket."""
    done = threading.Event()
    offset = path.size() if path.exists() else 0
    period_s = 1.0 if path.is_local else 5.0

    def pump() -> None:
        nonlocal offset
        while True:
            finished = done.wait(period_s)
            size = path.size() if path.exists() else 0
            if size > offset:
                print(path.read_range(offset, size).decode("utf-8", "replace"), end="", flush=True)
                offset = size
            if finished:
                return

    thread = threading.Thread(target=pump, daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join()


def _worker(config: dict) -> None:
    """``train_loop`` on a worker that sees ``dump_dir`` (a node added later may not)."""
    check_visible_here(Location.of(config["cfg"].dump_dir) / CONFIG_FILE, "dump_dir")
    train_loop(config)


def _trainer(cfg: FinetuneConfig, dataset, plan_offset: int) -> TorchTrainer:
    dist = cfg.distributed
    dump_dir = Location.of(cfg.dump_dir)
    resources = {
        "CPU": dist.cpus_per_worker,
        **({"GPU": dist.gpus_per_worker} if dist.use_gpu else {}),
    }
    return TorchTrainer(
        _worker,
        train_loop_config={"cfg": cfg, "plan_offset": plan_offset},
        scaling_config=ScalingConfig(
            num_workers=dist.num_workers, use_gpu=dist.use_gpu, resources_per_worker=resources
        ),
        run_config=RunConfig(
            storage_path=dump_dir.path,
            storage_filesystem=dump_dir.fs,
            name=CHECKPOINTS,
            failure_config=FailureConfig(max_failures=dist.max_failures),
            checkpoint_config=CheckpointConfig(num_to_keep=cfg.checkpoint.dump.keep or None),
            worker_runtime_env={"env_vars": worker_malloc_env(dist.use_gpu)},
        ),
        datasets={"train": dataset},
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
    """Run (or resume) the fine-tuning ``cfg`` describes; returns where its outputs are."""
    cfg = _resolved(cfg)
    check_tracking(cfg.logging)
    sources = check_finetune(cfg)
    dump_dir = Location.of(cfg.dump_dir)
    (dump_dir / CONFIG_FILE).write_text(config_to_yaml(cfg))
    state = latest_state(dump_dir)
    left_out: dict[str, dict[str, int]] = {}
    if state is None or state.step < cfg.steps:
        demand = train_demand(cfg)
        ensure_ray(demand.cpus)
        check_fits(demand)
        check_shared({"dump_dir": dump_dir / CONFIG_FILE, **data_locations(sources)})
        plan, plan_offset = trim_plan(
            plan_weighted(sources, planned_examples(cfg, state), cfg.seed),
            state.samples if state else 0,
        )
        dataset, report = build_dataset(
            plan, cfg.checkpoint.init_ckpt_path, cfg.data, cfg.model.processor_kwargs
        )
        with _echo(dump_dir / TRAIN_LOG):
            result = _trainer(cfg, dataset, plan_offset).fit()
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
