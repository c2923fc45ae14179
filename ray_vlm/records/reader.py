"""Stream the records of one registry entry, good and bad, in file order (lines as
``lines.py`` defines them)."""

from __future__ import annotations

from collections.abc import Iterator

from ray_vlm.records.formats import PARSERS
from ray_vlm.records.images import load_image
from ray_vlm.records.lines import csv_rows, json_item
from ray_vlm.records.record import BadRecord, Record, RecordError
from ray_vlm.records.registry import DatasetSpec
from ray_vlm.storage import Location


def _raw_items(annotation: Location, fmt: str) -> Iterator[tuple[int, object]]:
    """Yield ``(line, item)``; ``item`` is a ``RecordError`` for a line that does not parse."""
    if fmt == "paligemma_csv":
        yield from csv_rows(annotation.iter_lines())
        return
    for line_no, line in enumerate(annotation.iter_lines(), start=1):
        item = json_item(line)
        if item is not None:
            yield line_no, item


def parse_item(
    spec: DatasetSpec, source: str, item: object, verify_images: bool
) -> Record | BadRecord:
    """One decoded item to a ``Record``, or a ``BadRecord`` saying why not (whatever goes wrong
    with this one item is its report, never the caller's exception)."""
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
    except Exception as err:  # noqa: BLE001 - any failure on one record is that record's
        return BadRecord(spec.name, source, " ".join(f"{type(err).__name__}: {err}".split()))


def read_records(spec: DatasetSpec, verify_images: bool = True) -> Iterator[Record | BadRecord]:
    """Every record of a resolved registry entry (see ``registry.resolve_spec``), in file order.

    Bad records are yielded as ``BadRecord`` with ``source`` = ``file:line``; never raised.
    """
    annotation = Location.of(spec.annotation)
    for line_no, item in _raw_items(annotation, spec.format or ""):
        yield parse_item(spec, f"{annotation}:{line_no}", item, verify_images)
