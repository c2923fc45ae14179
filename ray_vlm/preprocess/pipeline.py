"""The Ray Data pipeline: planned chunks -> parsed records -> encoded examples, streamed.

``build_dataset(plan, processor_path, cfg, processor_kwargs)`` returns a ``Dataset`` whose rows
are encoded examples (``encode.Example.row``: ``ROW_COLUMNS`` and the processor's model inputs),
and the ``RecordReport`` actor that counts what was left out.
Nothing runs until the dataset is consumed (a Ray Train worker's shard, or ``check_data``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import ray

from ray_vlm.config import DataConfig
from ray_vlm.preprocess.encode import ROW_COLUMNS, Encoder, encode_records
from ray_vlm.preprocess.processor import load_processor
from ray_vlm.preprocess.record_stream import record_dataset, records_of_batch
from ray_vlm.preprocess.report import RecordReport, report_or_raise
from ray_vlm.preprocess.stream_plan import Chunk

ENCODE_CPUS = 1.0
"""CPUs each preprocessing actor holds (it runs the processor flat out)."""


class EncodeBatch:
    """``map_batches`` callable: one per preprocessing actor, holding the processor once."""

    def __init__(
        self,
        processor_path: str,
        processor_kwargs: dict[str, Any],
        cfg: DataConfig,
        report,
    ) -> None:
        processor = load_processor(processor_path, processor_kwargs)
        self.encoder = Encoder(processor, cfg.max_seq_len, cfg.max_image_pixels)
        self.report = report
        self.policy = cfg.bad_records

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, list[Any]]:
        rows, notes = encode_records(self.encoder, records_of_batch(batch))
        report_or_raise(self.report, notes, self.policy)
        return {key: [row[key] for row in rows] for key in self.columns}

    @property
    def columns(self) -> tuple[str, ...]:
        return (*ROW_COLUMNS, *self.encoder.input_keys)


def build_dataset(
    plan: list[Chunk],
    processor_path: str,
    cfg: DataConfig,
    processor_kwargs: dict[str, Any] | None = None,
    report=None,
) -> tuple[ray.data.Dataset, Any]:
    """The streaming dataset of encoded examples for ``plan`` and the ``RecordReport`` actor its
    left-out records go to (``report``, or a new one).

    The processor is loaded here once (``model.processor_kwargs`` applied), so that a bad
    setting stops the caller with its ``ProcessorSettingError`` instead of failing every actor.
    """
    kwargs = dict(processor_kwargs or {})
    load_processor(processor_path, kwargs)
    report = report or RecordReport.remote()
    records = record_dataset(plan, report, cfg.bad_records)
    encoded = records.map_batches(
        EncodeBatch,
        fn_constructor_args=(processor_path, kwargs, cfg, report),
        batch_size=cfg.preprocess_batch_size,
        compute=ray.data.ActorPoolStrategy(size=cfg.preprocess_workers),
        num_cpus=ENCODE_CPUS,
    )
    return encoded, report
