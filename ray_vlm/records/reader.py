"""Stream the records of one registry entry, good and bad, in file order."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator

from ray_vlm.records.formats import PARSERS
from ray_vlm.records.images import load_image
from ray_vlm.records.record import BadRecord, Record, RecordError
from ray_vlm.records.registry import DatasetSpec
from ray_vlm.storage import Location


def _raw_items(annotation: Location, fmt: str) -> Iterator[tuple[int, object]]:
    """Yield ``(line, item)``; ``item`` is a ``RecordError`` for a line that does not parse."""
    lines = (line.decode("utf-8") for line in annotation.iter_lines())
    if fmt == "paligemma_csv":
        reader = csv.DictReader(lines)
        for row in reader:
            yield reader.line_num, row
        return
    for line_no, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            yield line_no, json.loads(line)
        except json.JSONDecodeError as err:
            yield line_no, RecordError(f"not valid JSON ({err.msg} at column {err.colno})")


def parse_item(
    spec: DatasetSpec, source: str, item: object, verify_images: bool
) -> Record | BadRecord:
    """One decoded item to a ``Record``, or a ``BadRecord`` saying why not."""
    try:
        if isinstance(item, RecordError):
            raise item
        record = PARSERS[spec.format or ""](item, spec, source)
        if verify_images:
            for path in record.images:
                load_image(path)
        return record
    except (RecordError, ValueError) as err:
        return BadRecord(spec.name, source, str(err))


def read_records(spec: DatasetSpec, verify_images: bool = True) -> Iterator[Record | BadRecord]:
    """Every record of a resolved registry entry (see ``registry.resolve_spec``), in file order.

    Bad records are yielded as ``BadRecord`` with ``source`` = ``file:line``; never raised.
    """
    annotation = Location.of(spec.annotation)
    for line_no, item in _raw_items(annotation, spec.format or ""):
        yield parse_item(spec, f"{annotation}:{line_no}", item, verify_images)
