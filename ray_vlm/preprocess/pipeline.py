"""The Ray Data pipeline: planned chunks -> parsed records -> encoded examples, streamed.

``build_dataset(plan, processor_path, cfg, processor_kwargs)`` returns a ``Dataset`` whose rows
are encoded examples (``encode.Example``: ``pixel_values`` holds tiles, ``num_images`` counts
images) plus ``num_tokens``, ``dataset``, ``source`` and ``truncated``, and the ``RecordReport``
actor that counts what was left out.
Nothing runs until the dataset is consumed (a Ray Train worker's shard, or ``check_data``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import ray

from ray_vlm.config import DataConfig
from ray_vlm.preprocess.encode import ROW_COLUMNS, EncodeError, Encoder
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
        max_seq_len: int,
        report,
        policy: str,
    ) -> None:
        self.encoder = Encoder(load_processor(processor_path, processor_kwargs), max_seq_len)
        self.report = report
        self.policy = policy

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, list[Any]]:
        out: dict[str, list[Any]] = {k: [] for k in ROW_COLUMNS}
        notes = []
        for record in records_of_batch(batch):
            try:
                ex = self.encoder.encode(record)
            except EncodeError as err:
                notes.append(
                    {
                        "dataset": record.dataset,
                        "source": record.source,
                        "reason": str(err),
                        "kind": err.kind,
                    }
                )
                continue
            if ex.truncated:
                notes.append(
                    {
                        "dataset": record.dataset,
                        "source": record.source,
                        "kind": "truncated",
                        "reason": f"text cut to data.max_seq_len={self.encoder.max_seq_len} tokens",
                    }
                )
            row = ex.row(record)
            for key in ROW_COLUMNS:
                out[key].append(row[key])
        report_or_raise(self.report, notes, self.policy)
        return out


def build_dataset(
    plan: list[Chunk],
    processor_path: str,
    cfg: DataConfig,
    processor_kwargs: dict[str, Any] | None = None,
) -> tuple[ray.data.Dataset, Any]:
    """The streaming dataset of encoded examples for ``plan`` and its ``RecordReport`` actor.

    The processor is loaded here once (``model.processor_kwargs`` applied), so that a bad
    setting stops the caller with its ``ProcessorSettingError`` instead of failing every actor.
    """
    kwargs = dict(processor_kwargs or {})
    load_processor(processor_path, kwargs)
    report = RecordReport.remote()
    records = record_dataset(plan, report, cfg.bad_records)
    encoded = records.map_batches(
        EncodeBatch,
        fn_constructor_args=(processor_path, kwargs, cfg.max_seq_len, report, cfg.bad_records),
        batch_size=cfg.preprocess_batch_size,
        compute=ray.data.ActorPoolStrategy(size=cfg.preprocess_workers),
        num_cpus=ENCODE_CPUS,
    )
    return encoded, report
