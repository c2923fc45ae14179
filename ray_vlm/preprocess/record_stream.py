"""A Ray Dataset of parsed records from a plan of chunks.

Rows are ``Record.to_row()`` dicts. Bad records go to the ``RecordReport`` (or stop the run under
``data.bad_records=fail``); they never reach the next stage and are never lost.

Reading is cheap (parsing a 64-line chunk takes a few ms, ~1% of what the processor spends on
those records), so chunks are read by ``READ_TASKS`` task at a time, in plan order: the datamix
holds along the stream (parallel reads finished out of order: a source's chunks bunched up while
a new worker process started), and no worker process is started per chunk (that took the
processor actors' CPU for tens of seconds on a 2-core machine). Reading is kept out of the
processor actors on purpose: fused into them, Ray Data bundles ``preprocess_batch_size`` input
rows, i.e. *chunks*, per task (two actors got 1,024 and 576 of 1,600 records). Chunks are read
through ``ray_vlm.storage`` (``chunk_records``: one ranged read each), so annotations may live in a
bucket.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import ray

from ray_vlm.preprocess.chunk_records import chunk_records
from ray_vlm.preprocess.report import report_or_raise
from ray_vlm.preprocess.stream_plan import Chunk
from ray_vlm.records import Record

READ_CPUS = 0.0
"""The read task reserves no CPU: it parses about 1% of what the processor actors compute, and a
reserved CPU would sit idle beside them (or leave a run that fits a node waiting for one)."""
READ_TASKS = 1
"""Concurrent read tasks. One parses thousands of records/s, far more than a few processor actors
take (~150 records/s each); more would reorder the stream."""
RECORD_COLUMNS = ("dataset", "source", "images", "roles", "texts", "question_type", "position")


def read_chunk(chunk: Chunk, report, policy: str) -> list[dict[str, Any]]:
    """Parse one planned chunk into record rows; report the bad ones."""
    good, bad = chunk_records(chunk)
    report_or_raise(report, bad, policy)
    return [record.to_row() for record in good]


def read_chunks(batch: dict[str, np.ndarray], report, policy: str) -> dict[str, list[Any]]:
    """``map_batches`` form of ``read_chunk``: a batch of chunks -> a batch of record columns."""
    rows = [row for chunk in batch["chunk"] for row in read_chunk(chunk, report, policy)]
    return {key: [row[key] for row in rows] for key in RECORD_COLUMNS}


def record_dataset(plan: list[Chunk], report, policy: str) -> ray.data.Dataset:
    """Parsed records of every planned chunk, one block per chunk (at most 200 blocks)."""
    items = [{"chunk": c} for c in plan]
    return ray.data.from_items(items, override_num_blocks=max(1, min(len(items), 200))).map_batches(
        read_chunks,
        fn_kwargs={"report": report, "policy": policy},
        compute=ray.data.TaskPoolStrategy(size=READ_TASKS),
        num_cpus=READ_CPUS,
    )


def records_of_batch(batch: dict[str, Any]) -> list[Record]:
    """The ``Record``s of a Ray Data batch of record rows (columns ``RECORD_COLUMNS``)."""
    return [
        Record.from_row({k: batch[k][i] for k in RECORD_COLUMNS})
        for i in range(len(batch["source"]))
    ]
