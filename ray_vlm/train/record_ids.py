"""What a run trained on, record by record: ``record_ids.jsonl`` read back (``logging.record_ids``).

``step_ids(dump_dir)`` gives, per logged step, each rank's micro-batches as tuples of record ids
(``file:line``); ``records_by_id(cfg)`` maps every id of the run's datamix to its ``Record``, so an
audit or a reference training loop can rebuild exactly the examples a step saw.
"""

from __future__ import annotations

from pathlib import Path

from ray_vlm.config import FinetuneConfig
from ray_vlm.records import Record, read_records, select_datamix
from ray_vlm.train.metrics import RECORD_IDS, read_metrics

StepIds = list[list[tuple[str, ...]]]
"""One step: per rank, per micro-batch, the record ids in batch order."""


def step_ids(dump_dir: Path) -> dict[int, StepIds]:
    """``{step: ids}`` from ``record_ids.jsonl`` (empty when the run did not log them)."""
    rows = read_metrics(dump_dir, RECORD_IDS)
    return {r["step"]: [[tuple(m) for m in rank] for rank in r["ranks"]] for r in rows}


def records_by_id(cfg: FinetuneConfig) -> dict[str, Record]:
    """Every valid record of ``cfg.data.datamix``, keyed by its id (``file:line``)."""
    records: dict[str, Record] = {}
    for _, spec in select_datamix(cfg.data.datamix, cfg.data.datasets_yaml):
        for record in read_records(spec, verify_images=False):
            if isinstance(record, Record):
                records[record.source] = record
    return records
