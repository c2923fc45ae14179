"""A Ray Dataset of parsed records from a plan of chunks.

Rows are ``Record.to_row()`` dicts. Bad records go to the ``RecordReport`` (or stop the run under
``data.bad_records=fail``); they never reach the next stage and are never lost.

Reading is a ``map_batches`` with the same resources as the preprocessing actors (one CPU), so Ray
Data fuses it into them: each actor parses its own chunks (JSON parsing costs ~1% of what the
processor costs per record) and no separate read-task processes are started or scheduled.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from typing import Any

import numpy as np
import ray

from ray_vlm.preprocess.report import report_or_raise
from ray_vlm.preprocess.stream_plan import Chunk
from ray_vlm.records import BadRecord, Record, RecordError
from ray_vlm.records.reader import parse_item

STAGE_CPUS = 1.0
"""CPUs of a read task and of a preprocessing actor: equal resources let Ray Data fuse the two."""
RECORD_COLUMNS = ("dataset", "source", "images", "roles", "texts")


def _chunk_items(chunk: Chunk) -> Iterator[tuple[int, object]]:
    with open(chunk.spec.annotation, "rb") as f:
        f.seek(chunk.start)
        data = f.read(chunk.end - chunk.start).decode("utf-8")
    if chunk.spec.format == "paligemma_csv":
        reader = csv.DictReader(io.StringIO(data, newline=""))
        for i, row in enumerate(reader):
            if i >= chunk.limit:
                return
            yield reader.line_num, row
        return
    for i, line in enumerate(data.splitlines()[: chunk.limit]):
        if not line.strip():
            continue
        try:
            yield chunk.first_line + i, json.loads(line)
        except json.JSONDecodeError as err:
            yield (
                chunk.first_line + i,
                RecordError(f"not valid JSON ({err.msg} at column {err.colno})"),
            )


def read_chunk(chunk: Chunk, report, policy: str) -> list[dict[str, Any]]:
    """Parse one planned chunk into record rows; report the bad ones."""
    good, bad = [], []
    for line_no, item in _chunk_items(chunk):
        parsed = parse_item(
            chunk.spec, f"{chunk.spec.annotation}:{line_no}", item, verify_images=False
        )
        if isinstance(parsed, BadRecord):
            bad.append({**parsed.to_dict(), "kind": "invalid"})
        else:
            good.append(parsed.to_row())
    report_or_raise(report, bad, policy)
    return good


def read_chunks(batch: dict[str, np.ndarray], report, policy: str) -> dict[str, list[Any]]:
    """``map_batches`` form of ``read_chunk``: a batch of chunks -> a batch of record columns."""
    rows = [row for chunk in batch["chunk"] for row in read_chunk(chunk, report, policy)]
    return {key: [row[key] for row in rows] for key in RECORD_COLUMNS}


def record_dataset(plan: list[Chunk], report, policy: str) -> ray.data.Dataset:
    """Parsed records of every planned chunk, one block per chunk (at most 200 blocks)."""
    items = [{"chunk": c} for c in plan]
    return ray.data.from_items(items, override_num_blocks=max(1, min(len(items), 200))).map_batches(
        read_chunks, fn_kwargs={"report": report, "policy": policy}, num_cpus=STAGE_CPUS
    )


def records_of_batch(batch: dict[str, Any]) -> list[Record]:
    """The ``Record``s of a Ray Data batch of record rows (columns ``RECORD_COLUMNS``)."""
    return [
        Record.from_row({k: batch[k][i] for k in RECORD_COLUMNS})
        for i in range(len(batch["source"]))
    ]
