"""Stage 1 of the flow: annotation files -> typed ``Record``s (or ``BadRecord`` reports)."""

from ray_vlm.records.images import load_image
from ray_vlm.records.reader import read_records
from ray_vlm.records.record import ASSISTANT, USER, BadRecord, Record, RecordError, Turn
from ray_vlm.records.registry import (
    DatamixEntry,
    DatasetSpec,
    load_registry,
    parse_datamix,
    resolve_spec,
    select_datamix,
)

__all__ = [
    "ASSISTANT",
    "USER",
    "BadRecord",
    "DatamixEntry",
    "DatasetSpec",
    "Record",
    "RecordError",
    "Turn",
    "load_image",
    "load_registry",
    "parse_datamix",
    "read_records",
    "resolve_spec",
    "select_datamix",
]
