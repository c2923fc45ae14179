"""One planned chunk -> its records, without Ray (``record_stream`` runs this in Ray tasks; a
``torchrun`` training process without Ray calls it directly).

``chunk_records(chunk)`` reads the chunk's lines through ``ray_vlm.storage`` (one ranged read;
annotations may live in a bucket), only those ``chunk.offsets()`` names, and parses them: each
good record carries its plan ``position``; each bad one becomes a report item
``{dataset, source, reason, kind: "invalid"}``. ``encoded_rows(pieces, run_encoder(cfg), ...)``
reads and encodes a rank's pieces in its own process.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterable, Iterator
from dataclasses import replace
from typing import Any

from ray_vlm.config import FinetuneConfig
from ray_vlm.preprocess.encode import Encoder, encode_records
from ray_vlm.preprocess.processor import load_processor
from ray_vlm.preprocess.stream_plan import Chunk
from ray_vlm.records import BadRecord, Record
from ray_vlm.records.lines import csv_rows, json_item
from ray_vlm.records.reader import parse_item
from ray_vlm.storage import Location


def _chunk_items(chunk: Chunk) -> Iterator[tuple[int, int, object]]:
    """``(line number, plan position, decoded item or RecordError)`` of the chunk's lines to read,
    split and decoded by ``records.lines``' rule (the one the index counted lines by)."""
    data = Location.of(chunk.spec.annotation).read_range(chunk.start, chunk.end)
    if chunk.spec.format == "paligemma_csv":
        rows = list(csv_rows(io.BytesIO(data)))
        for i in chunk.offsets():
            yield rows[i][0], chunk.position + i, rows[i][1]
        return
    lines = data.split(b"\n")
    for i in chunk.offsets():
        item = json_item(lines[i])
        if item is not None:
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


def run_encoder(cfg: FinetuneConfig) -> Encoder:
    """The run's encoder: its model's processor (``model.processor_kwargs`` applied), its
    ``data.max_seq_len`` and ``data.max_image_pixels``."""
    processor = load_processor(cfg.checkpoint.init_ckpt_path, cfg.model.processor_kwargs)
    return Encoder(processor, cfg.data.max_seq_len, cfg.data.max_image_pixels)


def encoded_rows(
    pieces: Iterable[Chunk], encoder: Encoder, take_items: Callable[[list[dict[str, str]]], None]
) -> Iterator[dict[str, Any]]:
    """The encoded rows of ``pieces`` in plan order, read and encoded in this process (no Ray
    Data: ``torchrun``'s ranks, ``data.preprocess_workers=0``); the report items of a chunk's
    left-out and truncated records go to ``take_items`` before its rows are yielded."""
    for chunk in pieces:
        records, bad = chunk_records(chunk)
        rows, notes = encode_records(encoder, records)
        take_items(bad + notes)
        yield from rows
