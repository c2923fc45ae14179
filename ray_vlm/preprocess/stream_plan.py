"""Plan which annotation lines a run reads, in which order: the datamix made concrete.

An annotation file (local or in a bucket: ``ray_vlm.storage``) is cut into chunks of
``CHUNK_LINES`` lines, located by byte offsets found in one streaming pass (no file is held in
memory). A plan is a list of ``Chunk``s whose records are numbered by *position* in plan order
(``Chunk.position`` is that of its first planned line):

- ``plan_each_once``: every chunk of every source once (check-data, evaluation);
- ``plan_weighted``: exactly ``total`` records drawn so that each source's share of the stream is
  its datamix weight — a source is cycled (re-shuffled each pass) when its quota exceeds its size,
  and chunks of all sources are interleaved by weighted fair queueing, so any stretch of the
  stream holds the mix to within about one chunk per source.

``pieces(plan, positions)`` narrows a plan to some of its positions (a training rank's share):
chunks whose ``keep`` names the lines to read. ``plan_to_json`` / ``plan_from_json`` store a
plan with its run, so a resumed run reads the same positions.
"""

from __future__ import annotations

import bisect
import random
from collections.abc import Iterable
from dataclasses import asdict, dataclass, replace

from ray_vlm.records import DatamixEntry, DatasetSpec
from ray_vlm.records.lines import csv_rows
from ray_vlm.storage import Location

CHUNK_LINES = 64


@dataclass(frozen=True)
class Chunk:
    """Lines ``[first_line, first_line + num_lines)`` of ``spec.annotation`` at bytes ``[start, end)``.

    ``first_line`` is 1-based. A CSV file is one chunk (its header is needed to parse any row)
    whose "lines" are its data rows (``records.reader.csv_rows``; a quoted field may span lines).
    Only the first ``limit`` lines are read (less than ``num_lines`` for the last chunk of a quota),
    or, when ``keep`` is set, only the lines at those offsets among them.
    """

    spec: DatasetSpec
    start: int
    end: int
    first_line: int
    num_lines: int
    limit: int
    position: int = 0
    """Plan position of the chunk's first planned line (its line ``i`` is ``position + i``)."""
    keep: tuple[int, ...] | None = None
    """Offsets (< ``limit``) of the only lines to read, ascending; ``None``: all ``limit``."""

    def offsets(self) -> Iterable[int]:
        return range(self.limit) if self.keep is None else self.keep


def index_chunks(spec: DatasetSpec, chunk_lines: int = CHUNK_LINES) -> list[Chunk]:
    """Cut a resolved registry entry's annotation into chunks of ``chunk_lines`` lines."""
    path = Location.of(spec.annotation)
    if spec.format == "paligemma_csv":
        rows = sum(1 for _ in csv_rows(path.iter_lines()))
        return [Chunk(spec, 0, path.size(), 1, rows, rows)]
    chunks, offset, first, count = [], 0, 1, 0
    start = 0
    for line in path.iter_lines():
        offset += len(line)
        count += 1
        if count == chunk_lines:
            chunks.append(Chunk(spec, start, offset, first, count, count))
            start, first, count = offset, first + count, 0
    if count:
        chunks.append(Chunk(spec, start, offset, first, count, count))
    return chunks


def numbered(chunks: list[Chunk], first: int = 0) -> list[Chunk]:
    """``chunks`` with consecutive plan positions from ``first`` on."""
    out = []
    for chunk in chunks:
        out.append(replace(chunk, position=first))
        first += chunk.limit
    return out


def plan_each_once(sources: list[tuple[DatamixEntry, DatasetSpec]]) -> list[Chunk]:
    """Every line of every source, once, in file order."""
    return numbered([chunk for _, spec in sources for chunk in index_chunks(spec)])


def pieces(plan: list[Chunk], positions: Iterable[int]) -> list[Chunk]:
    """The chunks of ``plan`` holding ``positions`` (ascending), each keeping only those lines."""
    starts = [c.position for c in plan]
    out: list[Chunk] = []
    keep: list[int] = []
    current = -1
    for p in positions:
        k = bisect.bisect_right(starts, p) - 1
        if k != current:
            if keep:
                out.append(replace(plan[current], keep=tuple(keep)))
            current, keep = k, []
        keep.append(p - plan[k].position)
    if keep:
        out.append(replace(plan[current], keep=tuple(keep)))
    return out


def plan_to_json(plan: list[Chunk]) -> list[dict]:
    return [asdict(replace(c, keep=None)) for c in plan]


def plan_from_json(rows: list[dict]) -> list[Chunk]:
    return [Chunk(**{**row, "spec": DatasetSpec(**row["spec"])}) for row in rows]


def _quota_chunks(chunks: list[Chunk], quota: int, rng: random.Random) -> list[Chunk]:
    """Chunks covering ``quota`` lines: whole shuffled passes, then part of one more."""
    picked: list[Chunk] = []
    size = sum(c.num_lines for c in chunks)
    while quota > 0 and size > 0:
        for chunk in rng.sample(chunks, len(chunks)):
            if quota <= 0:
                break
            take = min(chunk.limit, quota)
            picked.append(replace(chunk, limit=take))
            quota -= take
    return picked


def quotas(shares: list[float], total: int) -> list[int]:
    """``total`` split by ``shares`` into whole records that sum to ``total`` exactly (largest
    remainders get the records rounding leaves over)."""
    exact = [share * total for share in shares]
    counts = [int(x) for x in exact]
    by_remainder = sorted(range(len(shares)), key=lambda i: counts[i] - exact[i])
    for i in by_remainder[: total - sum(counts)]:
        counts[i] += 1
    return counts


def plan_weighted(
    sources: list[tuple[DatamixEntry, DatasetSpec]], total: int, seed: int, first: int = 0
) -> list[Chunk]:
    """``total`` records, each source contributing its ``share`` of them, interleaved; positions
    from ``first`` on (a plan extended by another draw continues its numbering).

    Interleaving is weighted fair queueing: a source's next chunk is due when the stream would
    reach its end if every source advanced at its share (``(lines given + chunk) / quota``); the
    chunk due first comes next (ties by the datamix order).
    """
    rng = random.Random(seed)
    shares = quotas([entry.share for entry, _ in sources], total)
    queues = [
        _quota_chunks(index_chunks(spec), quota, rng)
        for (_, spec), quota in zip(sources, shares, strict=True)
    ]
    planned = [sum(c.limit for c in q) for q in queues]
    given = [0] * len(queues)
    plan: list[Chunk] = []
    while any(queues):
        due = [((given[i] + q[0].limit) / planned[i], i) for i, q in enumerate(queues) if q]
        _, i = min(due)
        chunk = queues[i].pop(0)
        given[i] += chunk.limit
        plan.append(chunk)
    return numbered(plan, first)
