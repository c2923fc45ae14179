"""Plan which annotation lines a run reads, in which order: the datamix made concrete.

An annotation file (local or in a bucket: ``ray_vlm.storage``) is cut into chunks of
``CHUNK_LINES`` lines, located by byte offsets found in one streaming pass (no file is held in
memory). A plan is a list of ``Chunk``s:

- ``plan_each_once``: every chunk of every source once (check-data, evaluation);
- ``plan_weighted``: exactly ``total`` records drawn so that each source's share of the stream is
  its datamix weight — a source is cycled (re-shuffled each pass) when its quota exceeds its size,
  and chunks of all sources are interleaved by weighted fair queueing, so any stretch of the
  stream holds the mix to within about one chunk per source.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from ray_vlm.records import DatamixEntry, DatasetSpec
from ray_vlm.storage import Location

CHUNK_LINES = 64


@dataclass(frozen=True)
class Chunk:
    """Lines ``[first_line, first_line + num_lines)`` of ``spec.annotation`` at bytes ``[start, end)``.

    ``first_line`` is 1-based. A CSV file is one chunk (its header is needed to parse any row).
    Only the first ``limit`` lines are read (less than ``num_lines`` for the last chunk of a quota).
    """

    spec: DatasetSpec
    start: int
    end: int
    first_line: int
    num_lines: int
    limit: int


def index_chunks(spec: DatasetSpec, chunk_lines: int = CHUNK_LINES) -> list[Chunk]:
    """Cut a resolved registry entry's annotation into chunks of ``chunk_lines`` lines."""
    path = Location.of(spec.annotation)
    if spec.format == "paligemma_csv":
        lines = sum(1 for _ in path.iter_lines()) - 1
        return [Chunk(spec, 0, path.size(), 1, lines + 1, lines)]
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


def plan_each_once(sources: list[tuple[DatamixEntry, DatasetSpec]]) -> list[Chunk]:
    """Every line of every source, once, in file order."""
    return [chunk for _, spec in sources for chunk in index_chunks(spec)]


def _quota_chunks(chunks: list[Chunk], quota: int, rng: random.Random) -> list[Chunk]:
    """Chunks covering ``quota`` lines: whole shuffled passes, then part of one more."""
    picked: list[Chunk] = []
    size = sum(c.num_lines for c in chunks)
    while quota > 0 and size > 0:
        for chunk in rng.sample(chunks, len(chunks)):
            if quota <= 0:
                break
            take = min(chunk.limit, quota)
            picked.append(
                Chunk(chunk.spec, chunk.start, chunk.end, chunk.first_line, chunk.num_lines, take)
            )
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
    sources: list[tuple[DatamixEntry, DatasetSpec]], total: int, seed: int
) -> list[Chunk]:
    """``total`` records, each source contributing its ``share`` of them, interleaved.

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
    return plan
