"""What a line of an annotation file is: one rule, shared by the registry's format guess, the
index (``preprocess.stream_plan``), the chunk reader (``preprocess.chunk_records``) and
``reader.read_records``.

JSON-lines files are split on ``\\n`` only (U+2028, U+2029, U+0085 are content, as JSON allows) and
each line is decoded by itself, so one bad byte or one bad line is that record's error and never
its neighbours'. CSV files are parsed as CSV (quoted multi-line fields, blank lines, a BOM); a
row's ``file:line`` is its first line.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Iterator

from ray_vlm.records.record import RecordError

BOM = "\ufeff"


def json_item(raw: bytes) -> object | RecordError | None:
    """One JSON-lines line (bytes, its ``\\n`` optional) -> the decoded item, a ``RecordError``
    saying why it is not one, or ``None`` for a blank line."""
    try:
        text = raw.decode("utf-8").removeprefix(BOM)
    except UnicodeDecodeError as err:
        return RecordError(
            f"not UTF-8 (byte 0x{raw[err.start]:02x} at column {err.start + 1}); "
            "save the file as UTF-8"
        )
    if not text.strip():
        return None
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        return RecordError(f"not valid JSON ({err.msg} at column {err.colno})")
    except RecursionError:
        return RecordError("not valid JSON (nested too deeply)")


def csv_rows(lines: Iterable[bytes]) -> Iterator[tuple[int, dict[str, str] | RecordError]]:
    """``(first line of the row, {column: value} or RecordError)`` for each data row of a CSV
    file given as its lines; the header is the first non-blank row, blank rows are skipped."""
    reader = csv.reader(line.decode("utf-8", "surrogateescape") for line in lines)
    header: list[str] | None = None
    end = 0
    while True:
        first = end + 1
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as err:  # the reader goes on with the next line
            end = reader.line_num
            yield first, RecordError(f"not valid CSV ({err})")
            continue
        end = reader.line_num
        if not row:
            continue
        if header is None:
            header = [name.removeprefix(BOM).strip() for name in row]
        elif len(row) != len(header):
            yield first, RecordError(f"{len(row)} fields, but the header has {len(header)}")
        elif any("\udc80" <= ch <= "\udcff" for value in row for ch in value):
            yield first, RecordError("not UTF-8; save the file as UTF-8")
        else:
            yield first, dict(zip(header, row, strict=True))
