"""The ``Session`` of a Ray Train worker, and ``train_loop``, the ``TorchTrainer``'s function.

Each rank streams its own share of the plan through its own Ray Data pipeline (read task +
preprocessing actors: ``data.preprocess_workers`` shared out over the ranks, at least one each;
with 0, the rank reads and encodes its share itself, ``chunk_records.encoded_rows``), in plan
order (``preserve_order``): the same rows in the same order on every run, which is what lets a
resume continue exactly where a checkpoint stood. Checkpoints go to
``ray.train.report``, which stores every rank's part under ``<dump_dir>/checkpoints/<step>``.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import ray.data
import ray.train
from ray.train import Checkpoint

from ray_vlm.config import FinetuneConfig
from ray_vlm.config.secrets import install_log_masking
from ray_vlm.preprocess.chunk_records import encoded_rows, run_encoder
from ray_vlm.preprocess.encode import Encoder
from ray_vlm.preprocess.pipeline import build_dataset
from ray_vlm.preprocess.report import report_or_raise
from ray_vlm.preprocess.stream_plan import Chunk
from ray_vlm.train.loop import Recipe


def rank_actors(cfg: FinetuneConfig, rank: int) -> int:
    """Preprocessing actors of ``rank``'s pipeline: ``data.preprocess_workers`` shared out, >= 1
    (0 when it is 0: the rank encodes its records itself)."""
    total, world = cfg.data.preprocess_workers, cfg.distributed.num_workers
    return max(1, total // world + (rank < total % world)) if total else 0


class RaySession:
    def __init__(self, cfg: FinetuneConfig, report) -> None:
        context = ray.train.get_context()
        self.rank, self.world = context.get_world_rank(), context.get_world_size()
        self.cfg = cfg
        self.report_actor = report

    @contextlib.contextmanager
    def restored(self) -> Iterator[Path | None]:
        checkpoint = ray.train.get_checkpoint()
        if checkpoint is None:
            yield None
            return
        with checkpoint.as_directory() as folder:
            yield Path(folder)

    @functools.cached_property
    def _encoder(self) -> Encoder:
        return run_encoder(self.cfg)

    def rows(self, pieces: list[Chunk]) -> Iterable[dict[str, Any]]:
        cfg = self.cfg
        if not cfg.data.preprocess_workers:
            policy = cfg.data.bad_records
            return encoded_rows(
                pieces,
                self._encoder,
                lambda items: report_or_raise(self.report_actor, items, policy),
            )
        ray.data.DataContext.get_current().enable_progress_bars = False
        data = replace(cfg.data, preprocess_workers=rank_actors(cfg, self.rank))
        dataset, _ = build_dataset(
            pieces,
            cfg.checkpoint.init_ckpt_path,
            data,
            cfg.model.processor_kwargs,
            report=self.report_actor,
        )
        dataset.context.execution_options.preserve_order = True
        return dataset.iter_rows()

    def report(self, metrics: dict, folder: Path, name: str) -> None:
        checkpoint = Checkpoint.from_directory(str(folder))
        ray.train.report(metrics, checkpoint=checkpoint, checkpoint_dir_name=name)


def train_loop(config: dict) -> None:
    """``{"cfg": FinetuneConfig, "data": DataStart, "report": RecordReport actor}`` -> a run."""
    install_log_masking()  # this worker's log records (Ray's, DeepSpeed's) name no credentials
    session = RaySession(config["cfg"], config["report"])
    Recipe(config["cfg"], config["data"], session).train()
