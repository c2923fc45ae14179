"""One planned chunk -> its records, without Ray (``record_stream`` runs this in Ray tasks; a
``torchrun`` training process without Ray calls it directly).

``chunk_records(chunk)`` reads the chunk's lines through ``ray_vlm.storage`` (one ranged read;
annotations may live in a bucket), only those ``chunk.offsets()`` names, and parses them: each
good record carries its plan ``position``; each bad one becomes a report item
``{dataset, source, reason, kind: "invalid"}``.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from dataclasses import replace

from ray_vlm.preprocess.stream_plan import Chunk
from ray_vlm.records import BadRecord, Record, RecordError
from ray_vlm.records.reader import parse_item
from ray_vlm.storage import Location


def _chunk_items(chunk: Chunk) -> Iterator[tuple[int, int, object]]:
    """``(line number, plan position, decoded item or RecordError)`` of the chunk's lines to read."""
    data = Location.of(chunk.spec.annotation).read_range(chunk.start, chunk.end).decode("utf-8")
    if chunk.spec.format == "paligemma_csv":
        reader = csv.DictReader(io.StringIO(data, newline=""))
        rows = [(reader.line_num, row) for row in reader]
        for i in chunk.offsets():
            yield rows[i][0], chunk.position + i, rows[i][1]
        return
    lines = data.splitlines()
    for i in chunk.offsets():
        line = lines[i]
        if not line.strip():
            continue
        try:
            item: object = json.loads(line)
        except json.JSONDecodeError as err:
            item = RecordError(f"not valid JSON ({err.msg} at column {err.colno})")
        yield chunk.first_line + i, chunk.position + i, item


def chunk_records(chunk: Chunk) -> tuple[list[Record], list[dict[str, str]]]:
    """The chunk's good records and the report items of its bad ones."""
    good, bad = [], []
    for line_no, position, item in _chunk_items(chunk):
        parsed = parse_item(
            chunk.spec, f"{chunk.spec.annotation}:{line_no}", item, verify_images=False
        )
        if isinstance(parsed, BadRecord):
            bad.append({**parsed.to_dict(), "kind": "invalid"})
        else:
            good.append(replace(parsed, position=position))
    return good, bad
